"""The LibriSpeech layout on tiny synthetic trees, the shared sample and the built-in LibriSpeech mini."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile

from speechsep.data import librispeech as ls
from speechsep.data import sources
from speechsep.data.corpus import CorpusError, discover_corpus
from speechsep.data.mixing import MixingConfig, make_mixture, split_speakers
from speechsep.signal import SAMPLE_RATE

HEADER = ";ID  |SEX| SUBSET           |MINUTES| NAME\n"
TABLE = {  # speaker -> (sex, subset)
    "19": ("F", "train-clean-100"),
    "26": ("M", "train-clean-100"),
    "32": ("F", "train-clean-100"),
    "40": ("M", "train-clean-100"),
    "84": ("F", "dev-clean"),
    "174": ("M", "dev-clean"),
    "61": ("M", "test-clean"),
    "121": ("F", "test-clean"),
}
FILE_SECONDS = 0.05


def speakers_txt(extra: str = "", skip: tuple = ()) -> str:
    lines = [f"{s:<5}| {sex} | {subset:<16} | 25.00 | Reader {s}"
             for s, (sex, subset) in TABLE.items() if s not in skip]
    return HEADER + "\n".join(lines) + "\n" + extra


def write_flac(path: Path, seconds: float = FILE_SECONDS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (np.random.default_rng(len(str(path))).standard_normal(int(16000 * seconds)) * 1000).astype(np.int16)
    soundfile.write(str(path), data, 16000, format="FLAC", subtype="PCM_16")


def make_tree(base: Path, subsets=("train-clean-100", "dev-clean", "test-clean"), utts: int = 2,
              table: str | None = None) -> Path:
    """base/LibriSpeech/<subset>/<spk>/<chap>/<spk>-<chap>-<utt>.flac (+ .trans.txt); returns the LibriSpeech folder."""
    root = base / "LibriSpeech"
    root.mkdir(parents=True)
    for speaker, (_, subset) in TABLE.items():
        if subset not in subsets:
            continue
        chapter = str(1000 + int(speaker))
        folder = root / subset / speaker / chapter
        for utterance in range(utts):
            write_flac(folder / f"{speaker}-{chapter}-{utterance:04d}.flac")
        (folder / f"{speaker}-{chapter}.trans.txt").write_text(f"{speaker}-{chapter}-0000 HELLO\n")
    if table is not None:
        (root / "SPEAKERS.TXT").write_text(table)
    return root


def discover_quietly(root, **kwargs):
    """(entries, report, warning messages) of :func:`discover_librispeech`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entries, report = ls.discover_librispeech(root, **kwargs)
    return entries, report, [str(w.message) for w in caught]


# ----------------------------------------------------------------------------- discovery


def test_subset_folder_as_root(tmp_path):
    root = make_tree(tmp_path, subsets=("train-clean-100",), table=speakers_txt())
    entries, report, caught = discover_quietly(root / "train-clean-100")
    assert caught == []
    assert report.layout == "subset"
    assert report.speakers_txt == str(root / "SPEAKERS.TXT")  # found one level up
    assert len(entries) == 8
    assert {(e.speaker, e.sex, e.subset) for e in entries} == {
        ("19", "F", "train-clean-100"), ("26", "M", "train-clean-100"),
        ("32", "F", "train-clean-100"), ("40", "M", "train-clean-100")}
    assert report.subsets == {"train-clean-100": {"split": None, "files": 8, "speakers": 4}}
    assert all(Path(e.path).suffix == ".flac" and Path(e.path).is_file() for e in entries)
    assert all(e.seconds == pytest.approx(FILE_SECONDS) for e in entries)  # from the headers


def test_librispeech_folder_as_root_maps_subsets_to_splits(tmp_path):
    root = make_tree(tmp_path, table=speakers_txt())
    (root / "not-a-subset").mkdir()  # stray folders next to the subsets are ignored
    entries, report, caught = discover_quietly(root)
    assert caught == []
    assert report.layout == "librispeech" and len(entries) == report.files == 16
    assert {name: info["split"] for name, info in report.subsets.items()} == {
        "dev-clean": "valid", "test-clean": "test", "train-clean-100": None}
    assert report.female == 4 and report.male == 4
    by_speaker = {e.speaker: (e.sex, e.subset) for e in entries}
    assert by_speaker["84"] == ("F", "dev-clean") and by_speaker["61"] == ("M", "test-clean")
    # a parent holding a LibriSpeech/ folder (how the openslr tarballs extract) works too
    assert ls.discover_librispeech(tmp_path, warn=False)[1].files == 16


def test_speaker_missing_from_table_is_unknown_with_one_warning(tmp_path):
    root = make_tree(tmp_path, table=speakers_txt(skip=("26", "61")))
    entries, report, caught = discover_quietly(root)
    assert len(entries) == 16
    assert report.unknown_sex == ["26", "61"]
    assert {e.sex for e in entries if e.speaker in ("26", "61")} == {"?"}
    assert len(caught) == 1 and "2 speaker(s) with unknown sex (26, 61)" in caught[0]


def test_garbage_lines_are_counted_not_fatal(tmp_path):
    extra = ("this is not a speaker line\n"
             "abc | F | train-clean-100 | 1.0 | bad id\n"
             "60   | M | train-clean-100  | 20.18 | |CBW|Simon\n"  # '|' in NAME is fine
             "\x00\xff garbage \ufffd\n")
    root = make_tree(tmp_path, table=speakers_txt(extra=extra, skip=("19",)))
    (root / "SPEAKERS.TXT").write_bytes((root / "SPEAKERS.TXT").read_bytes() + b"\xff\xfe\x80 bytes\n")
    entries, report, caught = discover_quietly(root)
    assert len(entries) == 16
    assert len(report.malformed_lines) == 4  # 3 text lines + the invalid-UTF-8 line
    assert report.unknown_sex == ["19"]
    assert len(caught) == 1 and "4 malformed line(s)" in caught[0] and "unknown sex (19)" in caught[0]
    table, _ = ls.read_speakers_txt(root / "SPEAKERS.TXT")
    assert table["60"] == "M" and table["121"] == "F"


def test_conflicting_duplicate_speaker_becomes_unknown(tmp_path):
    root = make_tree(tmp_path, table=speakers_txt(extra="26 | F | train-clean-100 | 1.0 | dup\n"))
    _, report, caught = discover_quietly(root)
    assert report.speakers["26"] == "?" and len(report.malformed_lines) == 1 and len(caught) == 1


def test_no_speakers_txt_warns_once(tmp_path):
    root = make_tree(tmp_path, table=None)
    entries, report, caught = discover_quietly(root / "test-clean")
    assert len(entries) == 4 and {e.sex for e in entries} == {"?"}
    assert report.speakers_txt is None and report.unknown_sex == ["61", "121"]
    assert len(caught) == 1 and "no SPEAKERS.TXT" in caught[0]


def test_speakers_txt_search_stops_two_levels_up(tmp_path):
    root = make_tree(tmp_path / "a", subsets=("train-clean-100",), table=None)  # a/LibriSpeech
    subset = root / "train-clean-100"
    (tmp_path / "a" / "SPEAKERS.TXT").write_text(speakers_txt())  # subset/../../ : found
    report = ls.discover_librispeech(subset, warn=False)[1]
    assert report.speakers_txt == str(tmp_path / "a" / "SPEAKERS.TXT") and report.female == 2
    (tmp_path / "a" / "SPEAKERS.TXT").rename(tmp_path / "SPEAKERS.TXT")  # 3 levels up: not found
    report = ls.discover_librispeech(subset, warn=False)[1]
    assert report.speakers_txt is None and "no SPEAKERS.TXT" in report.warning


def test_non_audio_files_are_ignored(tmp_path):
    root = make_tree(tmp_path, subsets=("dev-clean",), table=speakers_txt())
    chapter = root / "dev-clean" / "84" / "1084"
    (chapter / "notes.md").write_text("hello")
    (chapter / "84-1084-0000.flac.bak").write_bytes(b"junk")
    (root / "dev-clean" / "README").write_text("stray file at speaker level")
    (root / "dev-clean" / "_extra").mkdir()  # non-numeric folder at speaker level
    entries, report, caught = discover_quietly(root)
    assert caught == [] and report.skipped == []
    assert len(entries) == 4 and all(e.path.endswith(".flac") for e in entries)
    assert report.ignored == 2 + 2 + 1  # 2 .trans.txt, notes.md, .bak, _extra


@pytest.mark.parametrize("probe", ["magic", "info"])
def test_undecodable_flac_is_skipped_and_counted(tmp_path, probe):
    root = make_tree(tmp_path, subsets=("test-clean",), table=speakers_txt())
    bad = root / "test-clean" / "61" / "1061" / "61-1061-0009.flac"
    bad.write_bytes(b"this is not a FLAC file at all" * 10)
    empty = root / "test-clean" / "121" / "1121" / "121-1121-0009.flac"
    empty.write_bytes(b"")
    entries, report, caught = discover_quietly(root, probe=probe)
    assert len(entries) == 4
    assert sorted(p for p, _ in report.skipped) == sorted([str(bad), str(empty)])
    assert len(caught) == 1 and "skipped 2 unusable file(s)" in caught[0]
    assert str(bad) not in {e.path for e in entries}


def test_probe_none_reads_names_only(tmp_path):
    root = make_tree(tmp_path, subsets=("test-clean",), table=speakers_txt())
    (root / "test-clean" / "61" / "1061" / "61-1061-0009.flac").write_bytes(b"junk")
    entries, report, caught = discover_quietly(root, probe="none")
    assert len(entries) == 5 and report.skipped == [] and caught == []
    assert {e.seconds for e in entries} == {None}


def test_looks_like_librispeech(tmp_path):
    root = make_tree(tmp_path / "ls", table=speakers_txt())
    assert ls.looks_like_librispeech(root)
    assert ls.looks_like_librispeech(root / "dev-clean")
    (root / "dev-clean").rename(tmp_path / "my-subset")  # a subset folder under another name
    assert ls.looks_like_librispeech(tmp_path / "my-subset")
    # generic <speaker>/<file> trees (e.g. TIMIT-like, or numbers without LibriSpeech file names) are not
    write_flac(tmp_path / "generic" / "FCJF0" / "SA1.flac")
    write_flac(tmp_path / "generic2" / "123" / "456" / "utt.flac")
    assert not ls.looks_like_librispeech(tmp_path / "generic")
    assert not ls.looks_like_librispeech(tmp_path / "generic2")
    assert not ls.looks_like_librispeech(tmp_path / "missing")
    with pytest.raises(ls.LibriSpeechError, match="does not look like LibriSpeech"):
        ls.discover_librispeech(tmp_path / "generic")
    with pytest.raises(ls.LibriSpeechError, match="does not exist"):
        ls.discover_librispeech(tmp_path / "missing")


@pytest.mark.parametrize("subset, split", [
    ("test-clean", "test"), ("test-other", "test"), ("dev-clean", "valid"), ("dev-other", "valid"),
    ("train-clean-100", None), ("train-clean-360", None), ("train-other-500", None),
    ("my-subset", None), (None, None)])
def test_subset_split(subset, split):
    assert ls.subset_split(subset) == split


# ----------------------------------------------------------------------------- as a speechsep corpus


def test_discover_corpus_librispeech_folder_official_splits(tmp_path):
    root = make_tree(tmp_path, table=speakers_txt())
    corpus = discover_corpus(root)
    assert corpus.layout == "librispeech" and corpus.name == "LibriSpeech"
    assert corpus.speakers == {s: sex for s, (sex, _) in TABLE.items()}
    assert {u.key for u in corpus.utterances_of("61")} == {"61/61-1061-0000", "61/61-1061-0001"}
    assert all(u.seconds == pytest.approx(FILE_SECONDS) for u in corpus.utterances)
    splits = split_speakers(corpus, seed=5)
    assert splits == {"train": ["19", "26", "32", "40"], "valid": ["174", "84"], "test": ["121", "61"]}
    assert split_speakers(corpus, seed=6) == splits  # official splits do not depend on the seed


def test_discover_corpus_subset_root_without_speakers_txt(tmp_path):
    root = make_tree(tmp_path, subsets=("train-clean-100",), table=None)
    (root / "train-clean-100" / "19" / "1019" / "19-1019-0007.flac").write_bytes(b"garbage, not FLAC")
    with pytest.warns(UserWarning) as caught:
        corpus = discover_corpus(root / "train-clean-100")
    assert len(caught) == 1  # everything in one warning
    message = str(caught[0].message)
    assert "no SPEAKERS.TXT" in message and "skipped 1 unusable file(s)" in message
    assert str(root / "train-clean-100") in message
    assert corpus.layout == "librispeech" and set(corpus.speakers.values()) == {"?"}
    assert [path for path, _ in corpus.skipped] == [str(root / "train-clean-100" / "19" / "1019" / "19-1019-0007.flac")]
    assert corpus.summary()["unknown_sex"] == 4
    splits = split_speakers(corpus, seed=0, min_speakers=1)  # unknown sex never breaks the balancing
    assert [len(splits[k]) for k in ("train", "valid", "test")] == [2, 1, 1]
    assert sorted(sum(splits.values(), [])) == sorted(corpus.speakers)


def test_discover_corpus_one_speaker_librispeech_is_refused(tmp_path):
    root = make_tree(tmp_path, subsets=("test-clean",), table=speakers_txt())
    for path in (root / "test-clean" / "121").rglob("*.flac"):
        path.write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped 2"), pytest.raises(CorpusError, match="1 usable speaker"):
        discover_corpus(root)


def test_shared_librispeech_sample(librispeech_sample):
    corpus = discover_corpus(librispeech_sample)
    summary = corpus.summary()
    assert (summary["layout"], summary["speakers"], summary["female"], summary["male"]) == (
        "librispeech", 230, 114, 116)
    assert 40 < sum(u.seconds for u in corpus.utterances) / 60 < 55  # about 48 minutes


# ----------------------------------------------------------------------------- the built-in LibriSpeech mini


def test_embedded_librispeech_mini_is_real_speech_and_splits(monkeypatch, capsys):
    monkeypatch.setattr(sources, "_announced_embedded", False)
    corpus = sources.find_corpus(corpus="librispeech-mini")
    assert "LibriSpeech mini" in capsys.readouterr().out
    folder = sources.EMBEDDED_LIBRISPEECH
    summary = corpus.summary()
    assert (summary["speakers"], summary["female"], summary["male"], summary["utterances"]) == (40, 20, 20, 40)
    assert not corpus.is_toy and corpus.skipped == []
    infos = [soundfile.info(u.path) for u in corpus.utterances]
    assert {(i.samplerate, i.channels, i.format) for i in infos} == {(SAMPLE_RATE, 1, "FLAC")}
    assert all(4.0 <= u.seconds <= 17.0 for u in corpus.utterances)
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) <= 8e6
    for name in ("LICENSE.TXT", "SPEAKERS.TXT", "ATTRIBUTION.md"):
        assert (folder / name).is_file()
    assert "Creative Commons Attribution 4.0" in (folder / "LICENSE.TXT").read_text()
    splits = split_speakers(corpus, seed=0)
    assert [len(splits[k]) for k in ("train", "valid", "test")] == [22, 6, 12]
    assert sorted(corpus.speakers[s] for s in splits["test"]).count("F") == 6  # sex-balanced
    # training mixtures of two single-utterance speakers: 4 s random crops
    rng = np.random.default_rng(0)
    record = make_mixture(corpus, splits["train"], MixingConfig(crop_seconds=4.0), rng)
    assert record["sources"].shape == (2, 4 * SAMPLE_RATE)
    assert np.all(np.abs(record["sources"]).max(axis=1) > 0.01)  # both talkers audible
