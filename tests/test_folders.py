"""``separate DIR --out OUT``: the tree mirrored, a bad file named and the rest done, reruns skip what is done,
a killed run leaves no file under a final name, ``--shard I/N`` splits the files, bad options are one line."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from speechsep.__main__ import main
from speechsep.separation import files, longform

from test_longform import _band_network, _two_tone_talkers


@pytest.fixture(scope="module")
def band_run(tmp_path_factory):
    return _band_network(tmp_path_factory.mktemp("runs") / "band")


@pytest.fixture
def corpus(tmp_path):
    """in/a.wav, in/deeper/b.flac (16 kHz), in/deeper/c.wav and in/broken.wav (not audio)."""
    mixture = _two_tone_talkers(1.0).sum(axis=0)
    (tmp_path / "in" / "deeper").mkdir(parents=True)
    soundfile.write(tmp_path / "in" / "a.wav", mixture, 8000)
    soundfile.write(tmp_path / "in" / "deeper" / "b.flac", np.repeat(mixture, 2), 16000)
    soundfile.write(tmp_path / "in" / "deeper" / "c.wav", mixture[::-1].copy(), 8000)
    (tmp_path / "in" / "broken.wav").write_text("not audio")
    return tmp_path / "in"


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_a_folder_is_mirrored_a_bad_file_named_and_a_rerun_skips_what_is_done(band_run, corpus, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["separate", "--model", str(band_run), "--out", str(out), str(corpus)]) == 1  # one file failed
    captured = capsys.readouterr()
    assert captured.err.count("error:") == 1 and "broken.wav" in captured.err
    assert _tree(out) == ["a_s1.wav", "a_s2.wav", "deeper/b_s1.wav", "deeper/b_s2.wav", "deeper/c_s1.wav",
                          "deeper/c_s2.wav"]
    assert soundfile.info(str(out / "deeper" / "b_s1.wav")).samplerate == 16000  # the file's own rate
    assert "separated 3 of 4 files (0 already done, 1 failed); 2 talkers: 3" in captured.out
    before = (out / "a_s1.wav").stat().st_mtime_ns
    assert main(["separate", "--model", str(band_run), "--out", str(out), str(corpus)]) == 1
    assert "separated 0 of 4 files (3 already done, 1 failed)" in capsys.readouterr().out
    assert (out / "a_s1.wav").stat().st_mtime_ns == before
    (corpus / "broken.wav").unlink()
    assert main(["separate", "--model", str(band_run), "--out", str(out), "--overwrite", str(corpus)]) == 0
    assert "separated 3 of 3 files (0 already done, 0 failed)" in capsys.readouterr().out
    assert (out / "a_s1.wav").stat().st_mtime_ns != before


def test_estimates_written_beside_their_mixtures_are_not_taken_for_recordings(band_run, corpus, capsys):
    (corpus / "broken.wav").unlink()
    assert main(["separate", "--model", str(band_run), str(corpus)]) == 0
    assert main(["separate", "--model", str(band_run), str(corpus)]) == 0
    assert "separated 0 of 3 files (3 already done, 0 failed)" in capsys.readouterr().out


def test_a_killed_run_leaves_no_file_under_a_final_name(band_run, corpus, tmp_path, monkeypatch):
    (corpus / "broken.wav").unlink()
    out = tmp_path / "out"
    real = longform.OverlapAdd.push
    calls = []

    def killed(self, first, spectra):
        calls.append(first)
        if len(calls) == 2:  # the second file, mid-way
            raise KeyboardInterrupt
        return real(self, first, spectra)

    monkeypatch.setattr(longform, "BLOCK_FRAMES", 50)
    monkeypatch.setattr(longform.OverlapAdd, "push", killed)
    with pytest.raises(KeyboardInterrupt):
        main(["separate", "--model", str(band_run), "--out", str(out), str(corpus)])
    assert _tree(out) == []  # the first file had written its temporary files only, and they are gone
    monkeypatch.setattr(longform.OverlapAdd, "push", real)
    assert main(["separate", "--model", str(band_run), "--out", str(out), str(corpus)]) == 0
    assert len(_tree(out)) == 6


def test_shards_split_the_files_between_them(band_run, corpus, tmp_path, capsys):
    (corpus / "broken.wav").unlink()
    trees = []
    for index in range(2):
        out = tmp_path / f"out{index}"
        assert main(["separate", "--model", str(band_run), "--out", str(out), "--shard", f"{index}/2",
                     str(corpus)]) == 0
        trees.append(set(_tree(out)))
    assert not trees[0] & trees[1] and len(trees[0] | trees[1]) == 6
    for bad in ("2/2", "1/0", "x", "-1/3"):
        with pytest.raises(SystemExit):
            main(["separate", "--model", str(band_run), f"--shard={bad}", str(corpus)])
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--shard" in err
    assert files.shard_of(list(range(7)), 2, 3) == [2, 5]


def test_an_output_folder_that_cannot_be_written_is_one_line_and_nothing_is_written(band_run, corpus, tmp_path,
                                                                                 capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    with pytest.raises(SystemExit):
        main(["separate", "--model", str(band_run), "--out", str(blocker / "out"), str(corpus)])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err
    assert blocker.read_text() == "a file, not a folder"


def test_a_folder_named_like_a_wav_is_still_a_bad_file(band_run, tmp_path, capsys):
    (tmp_path / "odd.wav").mkdir()
    assert main(["separate", "--model", str(band_run), "--out", str(tmp_path / "out"), str(tmp_path / "odd.wav")]) == 1
    assert "odd.wav" in capsys.readouterr().err
