"""Corpus layouts, speaker sex, audio loading and every bad-input case."""


import numpy as np
import pytest
import soundfile

from conftest import voice, write_audio
from speechsep.data import audio as audio_module
from speechsep.data import sources
from speechsep.data.audio import AudioFileError, load_audio
from speechsep.data.corpus import CorpusError, discover_corpus, speaker_sex
from speechsep.data.sources import find_corpus
from speechsep.data.mixing import MixingConfig, make_mixture, split_speakers


def test_ldc_layout_sphere_and_riff_case_insensitive(tmp_path):
    root = tmp_path / "TIMIT"
    write_audio(root / "TRAIN" / "DR1" / "FCJF0" / "SA1.WAV", voice(0), 16000, format="NIST", subtype="PCM_16")
    write_audio(root / "TRAIN" / "DR2" / "MDAB0" / "SI1.WAV", voice(1), 16000, format="NIST", subtype="PCM_16")
    write_audio(root / "TRAIN" / "DR2" / "FAKS0" / "SA2.WAV", voice(2), 16000)
    write_audio(root / "train" / "dr3" / "mabc0" / "sx1.wav", voice(3), 16000)  # lower case too
    write_audio(root / "TEST" / "DR1" / "MTES0" / "SA1.WAV", voice(5), 16000, format="NIST", subtype="PCM_16")
    write_audio(root / "TEST" / "DR4" / "FTES1" / "SA1.WAV", voice(4), 16000)
    assert soundfile.info(str(root / "TRAIN" / "DR1" / "FCJF0" / "SA1.WAV")).format == "NIST"
    corpus = discover_corpus(root)
    assert corpus.layout == "ldc"
    assert corpus.speakers == {"FCJF0": "F", "MDAB0": "M", "FAKS0": "F", "MABC0": "M", "MTES0": "M", "FTES1": "F"}
    assert {u.official_split for u in corpus.utterances if u.speaker.endswith("TES0")} == {"test"}
    audio = corpus.load(corpus.utterances[0])
    assert audio.dtype == np.float32 and abs(len(audio) - 4000) <= 1  # 8000 samples at 16 kHz -> 4000 at 8 kHz
    splits = split_speakers(corpus, valid_fraction=0.3)
    assert splits["test"] == ["FTES1", "MTES0"]  # the official TEST speakers
    assert not set(splits["valid"]) & {"FTES1", "MTES0"}


def test_nltk_sample_layout(tmp_path):
    for index, name in enumerate(["dr1-fvmh0", "dr1-mcpm0", "dr2-faem0"]):
        write_audio(tmp_path / name / "sa1.wav", voice(index), 16000)
    corpus = discover_corpus(tmp_path)
    assert corpus.layout == "nltk-sample"
    assert corpus.speakers == {"FVMH0": "F", "MCPM0": "M", "FAEM0": "F"}


def test_generic_layout_unknown_sex(generic_corpus):
    corpus = discover_corpus(generic_corpus)
    assert corpus.layout == "generic"
    assert set(corpus.speakers) == {"spk0", "spk1", "spk2", "spk3"}
    assert set(corpus.speakers.values()) == {"?"}
    assert len(corpus.utterances) == 12  # wav and flac, found recursively


def test_shared_timit_sample(timit_sample):
    corpus = discover_corpus(timit_sample)
    summary = corpus.summary()
    assert (summary["speakers"], summary["female"], summary["male"], summary["utterances"]) == (12, 6, 6, 120)
    splits = split_speakers(corpus, seed=3)
    assert [len(splits[k]) for k in ("train", "valid", "test")] == [6, 2, 4]
    for first, second in (("train", "valid"), ("train", "test"), ("valid", "test")):
        assert not set(splits[first]) & set(splits[second])
    assert sorted(corpus.speakers[s] for s in splits["test"]) == ["F", "F", "M", "M"]  # sex-balanced
    assert split_speakers(corpus, seed=3) == splits and split_speakers(corpus, seed=4) != splits


def test_speaker_sex():
    assert [speaker_sex(s) for s in ("FCJF0", "mdab0", "MBMA1", "spk1", "alice")] == ["F", "M", "M", "?", "?"]


# ----------------------------------------------------------------------------- bad input


def test_missing_and_empty_folder(tmp_path):
    with pytest.raises(CorpusError, match=f"{tmp_path / 'nope'} does not exist"):
        discover_corpus(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no audio files found in .*empty"):
        discover_corpus(tmp_path / "empty")


def test_single_speaker_is_refused(tmp_path):
    write_audio(tmp_path / "dr1-fvmh0" / "sa1.wav", voice(0))
    write_audio(tmp_path / "dr1-fvmh0" / "sa2.wav", voice(0, 1))
    with pytest.raises(CorpusError, match="1 usable speaker.*at least 2"):
        discover_corpus(tmp_path)


def test_not_audio_and_zero_length_files_are_skipped_and_counted(generic_corpus):
    (generic_corpus / "spk0" / "notes.wav").write_text("this is not audio")
    (generic_corpus / "spk1" / "empty.wav").write_bytes(b"")
    write_audio(generic_corpus / "spk2" / "noframes.wav", np.zeros(0))
    with pytest.warns(UserWarning, match="skipped 3 unusable"):
        corpus = discover_corpus(generic_corpus)
    reasons = dict(corpus.skipped)
    assert len(corpus.utterances) == 12 and len(reasons) == 3
    assert "not a readable audio file" in reasons[str(generic_corpus / "spk0" / "notes.wav")]
    assert "zero-length" in reasons[str(generic_corpus / "spk2" / "noframes.wav")]
    with pytest.raises(AudioFileError, match="notes.wav: not a readable audio file"):
        load_audio(generic_corpus / "spk0" / "notes.wav")


def test_unreadable_file_is_skipped(generic_corpus, monkeypatch):
    target = str(generic_corpus / "spk3" / "session" / "u0.wav")
    real_info = soundfile.info

    def info(path, *args, **kwargs):  # tests run as root, so chmod 000 would not bite
        if str(path) == target:
            raise PermissionError(13, "Permission denied", path)
        return real_info(path, *args, **kwargs)

    monkeypatch.setattr(audio_module.soundfile, "info", info)
    with pytest.warns(UserWarning, match="skipped 1"):
        corpus = discover_corpus(generic_corpus)
    assert dict(corpus.skipped)[target].startswith("permission denied")


def test_stereo_44k_24bit_is_downmixed_and_resampled(tmp_path):
    time = np.arange(44100) / 44100
    left, right = np.sin(2 * np.pi * 440 * time), np.sin(2 * np.pi * 440 * time + np.pi)
    path = write_audio(tmp_path / "stereo.wav", 0.5 * np.stack([left, 0.2 * left], 1), 44100, subtype="PCM_24")
    audio = load_audio(path)
    assert audio.shape == (8000,) and audio.dtype == np.float32
    assert abs(np.max(np.abs(audio[100:-100])) - 0.3) < 0.01  # mean of 0.5 and 0.1
    cancel = write_audio(tmp_path / "cancel.wav", 0.5 * np.stack([left, right], 1), 44100)
    assert np.max(np.abs(load_audio(cancel))) < 1e-3


def test_silent_file_gives_no_nan_and_is_counted(tmp_path):
    for index, name in enumerate(["dr1-fvmh0", "dr1-mcpm0", "dr2-faem0"]):
        write_audio(tmp_path / name / "sa1.wav", voice(index))
    write_audio(tmp_path / "dr1-mcpm0" / "silent.wav", np.zeros(8000))
    corpus = discover_corpus(tmp_path)
    rng = np.random.default_rng(0)
    speakers = sorted(corpus.speakers)
    for _ in range(12):
        record = make_mixture(corpus, speakers, MixingConfig(), rng)
        for key in ("mixture", "sources", "log_magnitude"):
            assert np.isfinite(record[key]).all()
        assert all(np.any(source) for source in record["sources"])
    assert [reason for _, reason in corpus.skipped] == ["all-zero (silent) audio"]


def test_toy_corpus_is_announced_once(capsys, monkeypatch):
    monkeypatch.setattr(sources, "_announced_toy", False)
    corpus = find_corpus(corpus="toy")
    assert "NOT speech" in capsys.readouterr().err
    assert corpus.is_toy and corpus.summary()["speakers"] >= 8
    find_corpus(corpus="toy")
    assert "NOT speech" not in capsys.readouterr().err


def test_find_corpus_order(generic_corpus, monkeypatch, tmp_path):
    monkeypatch.setenv("TIMIT_WAV", str(generic_corpus))
    assert find_corpus().root == str(generic_corpus)
    monkeypatch.delenv("TIMIT_WAV")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sources, "nltk_timit_sample", lambda download=True: generic_corpus)
    assert find_corpus().name == "nltk-timit-sample"  # an NLTK sample already downloaded
    (tmp_path / "TIMIT_WAV").symlink_to(generic_corpus)  # ./TIMIT_WAV in the working folder comes first
    assert find_corpus().root == str(tmp_path / "TIMIT_WAV")
    (tmp_path / "TIMIT_WAV").unlink()
    with pytest.raises(CorpusError, match="no TIMIT folder"):
        find_corpus(corpus="timit")


def test_no_corpus_anywhere_falls_back_to_embedded_librispeech_then_toy(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("TIMIT_WAV", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sources, "_announced_toy", False)
    monkeypatch.setattr(sources, "_announced_embedded", False)
    asked = []

    def offline(download=True):
        asked.append(download)
        raise CorpusError("could not download the NLTK TIMIT sample (offline?)")

    monkeypatch.setattr(sources, "nltk_timit_sample", offline)
    corpus = find_corpus()
    assert corpus.name == "librispeech-mini" and not corpus.is_toy
    assert asked == [False]  # the fallback never downloads
    assert "LibriSpeech mini" in capsys.readouterr().out
    monkeypatch.setattr(sources, "EMBEDDED_LIBRISPEECH", tmp_path / "stripped")  # an install without it
    assert find_corpus().is_toy
    printed = capsys.readouterr()
    assert "stripped" in printed.out and "NOT speech" in printed.err
    with pytest.raises(CorpusError, match="offline"):
        find_corpus(corpus="nltk")
    assert asked[-1] is True
