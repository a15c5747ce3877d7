"""Several corpora in one run (--corpus-root), their speaker-disjoint splits, and random-crop training mixtures."""

import argparse
import dataclasses
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import voice, write_audio
from speechsep import cli
from speechsep.data.corpus import Corpus, CorpusError, Utterance, combine_corpora, discover_corpus
from speechsep.data.mixing import SPLITS, MixingConfig, make_mixture, split_composition, split_speakers
from speechsep.data.shards import DatasetConfig, iter_records, write_dataset
from speechsep.data.toy import toy_corpus
from speechsep.signal import SAMPLE_RATE


def memory_corpus(name: str, speakers: list[tuple[str, str, str | None]], utterances: int = 2,
                  seconds: float = 3.0) -> Corpus:
    """A corpus that exists only in memory: (speaker id, sex, official split) each, ramp waveforms."""
    items = [Utterance(f"{speaker}/u{i}", speaker, sex, f"mem:{name}:{speaker}:{i}", official, seconds)
             for speaker, sex, official in speakers for i in range(utterances)]

    def load(utterance):
        return np.linspace(0.1, 1.0, int(seconds * SAMPLE_RATE), dtype=np.float32)

    return Corpus(name, f"/memory/{name}", "memory", items, loader=load)


def owned(splits: dict, name: str) -> dict:
    """The speakers of corpus ``name`` in a combined split, without the namespace."""
    prefix = f"{name}:"
    return {split: sorted(s[len(prefix):] for s in speakers if s.startswith(prefix))
            for split, speakers in splits.items()}


# ----------------------------------------------------------------------------- combining


def test_combined_ids_are_namespaced_and_a_shared_id_stays_two_speakers():
    first = memory_corpus("alpha", [("1", "F", None), ("2", "M", None), ("3", "F", None)])
    second = memory_corpus("beta", [("1", "M", None), ("7", "F", None)])
    combined = combine_corpora([first, second])
    assert combined.layout == "combined" and combined.name == "alpha+beta"
    assert combined.speakers == {"alpha:1": "F", "alpha:2": "M", "alpha:3": "F", "beta:1": "M", "beta:7": "F"}
    assert len(combined.utterances) == 10 and len({u.key for u in combined.utterances}) == 10
    utterance = combined.utterances_of("beta:1")[0]
    assert utterance.key == "beta:1/u0" and utterance.path == "mem:beta:1:0" and utterance.seconds == 3.0
    assert combined.load(utterance).shape == (3 * SAMPLE_RATE,)  # each part's own loader
    summary = combined.summary()
    assert summary["speakers"] == 5 and [part["name"] for part in summary["parts"]] == ["alpha", "beta"]
    assert combine_corpora([first]) is first  # one corpus stays as it is
    twins = combine_corpora([first, dataclasses.replace(first, root="/memory/other")])  # same name, other folder
    assert [part.name for part in twins.parts] == ["alpha", "alpha-2"] and len(twins.speakers) == 6


def test_same_folder_twice_and_a_folder_of_no_layout_are_clear_errors(generic_corpus, tmp_path):
    parser = argparse.ArgumentParser()
    cli.add_corpus_arguments(parser)
    args = parser.parse_args(["--timit", str(generic_corpus), "--corpus-root", str(generic_corpus / ".." / "generic")])
    with pytest.raises(CorpusError, match="given twice"):
        cli.corpus_from_args(args)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no audio here")
    args = parser.parse_args(["--corpus-root", str(generic_corpus), "--corpus-root", str(tmp_path / "notes")])
    with pytest.raises(CorpusError, match=str(tmp_path / "notes")):
        cli.corpus_from_args(args)


def test_corpus_roots_from_the_command_line(generic_corpus, tmp_path):
    for index, name in enumerate(["dr1-fvmh0", "dr1-mcpm0", "dr2-faem0", "dr2-mabc0"]):
        for utterance in range(2):
            write_audio(tmp_path / "nltk" / name / f"sa{utterance}.wav", voice(index, utterance))
    parser = argparse.ArgumentParser()
    cli.add_corpus_arguments(parser)
    args = parser.parse_args(["--corpus-root", str(tmp_path / "nltk"), "--corpus-root", str(generic_corpus)])
    corpus = cli.corpus_from_args(args)
    assert [part.layout for part in corpus.parts] == ["nltk-sample", "generic"]
    assert corpus.speakers["nltk:FVMH0"] == "F" and corpus.speakers["generic:spk0"] == "?"
    text = cli.describe_corpus(corpus)
    assert "2 corpora combined" in text and "nltk (nltk-sample layout" in text and "generic (generic layout" in text
    single = cli.corpus_from_args(parser.parse_args(["--corpus-root", str(generic_corpus)]))
    assert single.layout == "generic" and "spk0" in single.speakers  # one root: ids as they are


# ----------------------------------------------------------------------------- splits across corpora


@st.composite
def corpora(draw):
    """1-3 in-memory corpora; every one has a speaker "1"; some sexes unknown, some official splits."""
    parts = []
    for number in range(draw(st.integers(1, 3))):
        count = draw(st.integers(6, 24))
        ids = ["1"] + [f"s{i}" for i in range(1, count)]
        speakers = [(speaker, draw(st.sampled_from("FFFMMM?")),
                     draw(st.sampled_from([None] * 8 + ["test", "valid"]))) for speaker in ids]
        parts.append(memory_corpus(f"c{number}", speakers, utterances=1))
    return parts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=corpora(), seed=st.integers(0, 2**16))
def test_combined_splits_never_share_a_speaker(parts, seed):
    combined = combine_corpora(parts)
    try:
        splits = split_speakers(combined, seed=seed)
    except ValueError as error:
        assert "split would get" in str(error)
        assume(False)
    sets = [set(splits[name]) for name in SPLITS]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert set().union(*sets) == set(combined.speakers)  # every speaker in exactly one split
    for utterance in combined.utterances:
        if utterance.official_split in ("test", "valid"):  # never trained on
            assert utterance.speaker in splits[utterance.official_split]
    for part in combined.parts:
        mine = owned(splits, part.name)
        assert "1" in sum(mine.values(), [])  # the shared id "1" is a speaker of every corpus
        try:
            alone = split_speakers(part, seed=seed)
        except ValueError:
            continue
        assert mine == alone  # each corpus' part of the split is its split when alone


def test_combined_split_keeps_each_corpus_split_and_proportions(timit_sample, librispeech_sample):
    timit, libri = discover_corpus(timit_sample), discover_corpus(librispeech_sample)
    combined = combine_corpora([timit, libri])
    splits = split_speakers(combined, seed=0)
    assert owned(splits, "timit-sample") == split_speakers(timit, seed=0)  # the TIMIT-only test speakers
    assert owned(splits, "librispeech-sample") == split_speakers(libri, seed=0)
    composition = split_composition(combined, splits)
    assert [c["speakers"] for c in composition["corpora"]] == [12, 230]
    test = composition["per_split"]["test"]
    assert test["timit-sample"]["speakers"] == 4 and test["librispeech-sample"]["speakers"] == 69
    assert abs(test["librispeech-sample"]["female"] - test["librispeech-sample"]["male"]) <= 1
    minutes = sum(composition["per_split"][name]["timit-sample"]["minutes"] for name in SPLITS)
    assert minutes == pytest.approx(composition["corpora"][0]["minutes"], abs=0.02)


def test_official_valid_speakers_go_to_valid_and_unknown_sex_is_fine():
    speakers = ([(f"t{i}", "FM"[i % 2], None) for i in range(10)] + [("d0", "F", "valid"), ("d1", "?", "valid")]
                + [("e0", "M", "test"), ("e1", "?", "test"), ("e2", "F", "test")] + [("u0", "?", None)])
    corpus = memory_corpus("m", speakers)
    splits = split_speakers(corpus, seed=3)
    assert splits["valid"] == ["d0", "d1"] and splits["test"] == ["e0", "e1", "e2"]
    assert len(splits["train"]) == 11


# ----------------------------------------------------------------------------- random crops


@settings(max_examples=40, deadline=None)
@given(crop=st.floats(0.05, 5.0), seconds=st.lists(st.floats(0.2, 6.0), min_size=2, max_size=3),
       seed=st.integers(0, 999))
def test_random_crops_have_the_crop_length(crop, seconds, seed):
    """Every source is a contiguous piece of its ramp utterance: cropped when longer, whole when shorter."""
    lengths = [int(s * SAMPLE_RATE) for s in seconds]
    utterances = [Utterance(f"s{i}/u", f"s{i}", "FM"[i % 2], f"mem:{i}") for i in range(len(lengths))]
    corpus = Corpus("ramps", "/memory/ramps", "memory", utterances,
                    loader=lambda u: np.linspace(0.5, 1.0, lengths[int(u.speaker[1:])], dtype=np.float32))
    config = MixingConfig(num_speakers=len(lengths), crop_seconds=crop)
    record = make_mixture(corpus, list(corpus.speakers), config, np.random.default_rng(seed))
    length = int(round(crop * SAMPLE_RATE))
    assert record["sources"].shape == (len(lengths), length) and record["mixture"].shape == (length,)
    for speaker, source in zip(record["speakers"], record["sources"]):
        nonzero = np.flatnonzero(source)
        assert len(nonzero) == min(length, lengths[int(speaker[1:])])
        assert nonzero[-1] - nonzero[0] + 1 == len(nonzero)  # one contiguous stretch
        assert np.all(np.diff(source[nonzero]) > 0)  # an increasing piece of the ramp


def test_dynamic_mixing_draws_a_fresh_crop_every_time():
    corpus = memory_corpus("m", [("a", "F", None), ("b", "M", None)], utterances=1, seconds=6.0)
    rng = np.random.default_rng(0)
    firsts = set()
    for _ in range(10):
        record = make_mixture(corpus, ["a", "b"], MixingConfig(crop_seconds=4.0), rng)
        index = record["speakers"].index("a")
        firsts.add(round(float(record["sources"][index, 1] / record["sources"][index, 0]), 6))  # ramp position
    assert len(firsts) > 5


def test_crop_seconds_is_checked():
    with pytest.raises(ValueError, match="crop_seconds"):
        MixingConfig(crop_seconds=0.0)
    with pytest.raises(ValueError, match="crop_seconds"):
        MixingConfig(crop_seconds=float("nan"))
    assert MixingConfig(crop_seconds=4.0, speed_range=(0.9, 1.1)).held_out() == MixingConfig()


# ----------------------------------------------------------------------------- datasets of several corpora


def test_dataset_crops_train_only_and_records_its_corpora(tmp_path):
    parts = [dataclasses.replace(toy_corpus(6, 2), name=name, root=f"<{name}>") for name in ("toyA", "toyB")]
    combined = combine_corpora(parts)
    config = DatasetConfig(mixtures={"train": 4, "valid": 2, "test": 2}, shard_size=4,
                           mixing=MixingConfig(seed=2, crop_seconds=1.5))
    index = write_dataset(combined, tmp_path, config, progress=False)
    assert {r["sources"].shape[1] for r in iter_records(tmp_path, "train")} == {int(1.5 * SAMPLE_RATE)}
    rng_test = np.random.default_rng([2, 2, 0])  # the generator of test mixture 0
    test_record = next(iter_records(tmp_path, "test"))
    speakers = index["splits"]["test"]["speakers"]
    expected = make_mixture(combined, speakers, config.mixing.held_out(), rng_test)
    np.testing.assert_array_equal(test_record["mixture"], expected["mixture"])  # test mixtures are not cropped
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [c["name"] for c in manifest["corpora"]] == ["toyA", "toyB"]
    assert manifest["per_split"]["test"]["toyA"]["speakers"] == sum(s.startswith("toyA:") for s in speakers)
    assert sum(manifest["per_split"][n]["toyB"]["speakers"] for n in SPLITS) == 6
    assert index["corpora"] == {key: manifest[key] for key in ("corpora", "per_split")}
    assert {e["speaker"] for e in manifest["splits"]["train"]} == set(index["splits"]["train"]["speakers"])


def test_dataset_from_before_crops_still_resumes(tmp_path):
    corpus = toy_corpus(8, 3)
    config = DatasetConfig(mixtures={"train": 12, "valid": 4, "test": 4}, shard_size=5, mixing=MixingConfig(seed=1))
    write_dataset(corpus, tmp_path, config, progress=False, stop_after_shards=1)
    index = json.loads((tmp_path / "index.json").read_text())
    del index["config"]["mixing"]["crop_seconds"]  # as written before that field existed
    (tmp_path / "index.json").write_text(json.dumps(index))
    assert write_dataset(corpus, tmp_path, config, progress=False)["complete"]


def test_default_dataset_folder_names_the_crop(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHSEP_CACHE", str(tmp_path))
    corpus = toy_corpus(4, 1)
    cropped = DatasetConfig.from_total(60, mixing=MixingConfig(crop_seconds=4.0))
    plain = DatasetConfig.from_total(60)
    assert cli.default_data_dir(corpus, cropped).name.startswith("toy-2spk-60mix-seed0-crop4s-")
    assert cli.default_data_dir(corpus, plain).name.startswith("toy-2spk-60mix-seed0-")
    assert cli.default_data_dir(corpus, plain) != cli.default_data_dir(corpus, cropped)
