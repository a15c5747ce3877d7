"""Mixtures, records, pickle shards: correctness, resume, safety, versioning."""

import json
import os
import pickle

import numpy as np
import pytest

from speechsep import signal
from speechsep.data.corpus import discover_corpus
from speechsep.data.mixing import MixingConfig, make_mixture, split_speakers
from speechsep.data.shards import (
    FORMAT_VERSION, DatasetConfig, ShardError, compute_stats, iter_records, load_shard, load_stats,
    read_index, write_dataset,
)
from speechsep.data.toy import toy_corpus
from speechsep.io import UnsafePickleError, safe_loads, sha256_of


@pytest.fixture(scope="module")
def corpus():
    return toy_corpus(num_speakers=8, utterances_per_speaker=3)


def small_config(**mixing):
    return DatasetConfig(mixtures={"train": 12, "valid": 4, "test": 4}, shard_size=5,
                         mixing=MixingConfig(seed=1, **mixing))


def test_mixture_is_sum_of_sources_and_levels_hold(corpus):
    speakers = sorted(corpus.speakers)
    rng = np.random.default_rng(0)
    for num_speakers in (2, 3):
        config = MixingConfig(num_speakers=num_speakers, level_range_db=(2.0, 5.0))
        for _ in range(10):
            record = make_mixture(corpus, speakers, config, rng)
            sources = record["sources"].astype(np.float64)
            np.testing.assert_allclose(record["mixture"], sources.sum(0), atol=1e-6)
            energies = (sources**2).sum(1)
            measured = 10 * np.log10(energies / energies[0])
            np.testing.assert_allclose(measured, record["levels_db"], atol=0.1)
            assert all(2.0 <= abs(level) <= 5.0 for level in record["levels_db"][1:])
            assert len(set(record["speakers"])) == num_speakers
            assert np.max(np.abs(record["mixture"])) == pytest.approx(0.9, abs=1e-5)


def test_length_modes(corpus):
    speakers = sorted(corpus.speakers)
    short = make_mixture(corpus, speakers, MixingConfig(length_mode="min"), np.random.default_rng(5))
    long = make_mixture(corpus, speakers, MixingConfig(length_mode="max"), np.random.default_rng(5))
    assert len(short["mixture"]) <= len(long["mixture"])


def test_ibm_and_active_bins_are_right(corpus):
    record = make_mixture(corpus, sorted(corpus.speakers), MixingConfig(), np.random.default_rng(2))
    spectra = signal.stft(record["sources"])
    mixture_spectrum = signal.stft(record["mixture"])
    np.testing.assert_array_equal(record["ibm"], np.argmax(np.abs(spectra), axis=0))
    magnitude_db = 20 * np.log10(np.abs(mixture_spectrum) + 1e-30)
    np.testing.assert_array_equal(record["active"], magnitude_db >= magnitude_db.max() - 40)
    assert 0.05 < record["active"].mean() < 0.95
    frames = signal.num_frames(len(record["mixture"]))
    assert record["log_magnitude"].shape == record["ibm"].shape == (frames, 129)


def test_dataset_layout_index_stats(corpus, tmp_path):
    index = write_dataset(corpus, tmp_path, small_config(), progress=False)
    assert index["complete"] and index["format_version"] == FORMAT_VERSION
    assert [index["splits"][s]["mixtures"] for s in ("train", "valid", "test")] == [12, 4, 4]
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == [f"shard-0000{i}.pkl" for i in range(3)]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    split_sets = [{e["speaker"] for e in manifest["splits"][s]} for s in ("train", "valid", "test")]
    assert not (split_sets[0] & split_sets[1] or split_sets[0] & split_sets[2] or split_sets[1] & split_sets[2])
    for split, speakers in zip(("train", "valid", "test"), split_sets):
        for record in iter_records(tmp_path, split):
            assert set(record["speakers"]) <= speakers
    mean, std = load_stats(tmp_path)
    expected = compute_stats(iter_records(tmp_path, "train"))
    np.testing.assert_allclose(mean, expected["mean"], rtol=1e-6)
    everything = compute_stats(r for s in ("train", "valid", "test") for r in iter_records(tmp_path, s))
    assert not np.allclose(mean, everything["mean"])  # train only
    assert mean.shape == std.shape == (129,) and np.all(std > 0)


def test_resume_after_kill_mid_write(corpus, tmp_path):
    reference = write_dataset(corpus, tmp_path / "reference", small_config(), progress=False)
    target = tmp_path / "resumed"
    partial = write_dataset(corpus, target, small_config(), progress=False, stop_after_shards=2)
    assert not partial["complete"] and partial["splits"]["train"]["mixtures"] == 10
    # the kill happened while shard 2 was being written: a half temp file, and a torn shard
    (target / "train" / "shard-00002.pkl.abc.tmp").write_bytes(b"\x80\x05half")
    (target / "train" / "shard-00002.pkl").write_bytes(b"torn")
    first_shard = (target / "train" / "shard-00000.pkl").stat().st_mtime_ns
    final = write_dataset(corpus, target, small_config(), progress=False)
    assert final["splits"] == reference["splits"]  # same shards, same sha256, same counts
    assert not list(target.glob("*/*.tmp"))
    assert (target / "train" / "shard-00000.pkl").stat().st_mtime_ns == first_shard  # not rewritten
    ids = [r["id"] for s in ("train", "valid", "test") for r in iter_records(target, s)]
    assert len(ids) == 20


def test_other_config_in_same_folder_is_refused(corpus, tmp_path):
    write_dataset(corpus, tmp_path, small_config(), progress=False, stop_after_shards=1)
    before = (tmp_path / "index.json").read_bytes()
    with pytest.raises(ShardError, match="different config"):
        write_dataset(corpus, tmp_path, small_config(num_speakers=3), progress=False)
    assert (tmp_path / "index.json").read_bytes() == before  # nothing already written is touched


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(corpus, tmp_path):
    write_dataset(corpus, tmp_path, small_config(), progress=False)
    marker = tmp_path / "PWNED"
    payload = pickle.dumps([{"id": "x", "payload": _Exploit(marker)}])
    shard = tmp_path / "train" / "shard-00000.pkl"
    shard.write_bytes(payload)
    index = read_index(tmp_path)
    index["splits"]["train"]["shards"][0]["sha256"] = sha256_of(payload)  # checksum "fixed" by the attacker
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(ShardError, match=r"shard-00000\.pkl: refused to unpickle the global (posix|os)\.system"):
        list(iter_records(tmp_path, "train"))
    assert not marker.exists()
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        safe_loads(b"cbuiltins\neval\n(S'1+1'\ntR.", "inline")
    assert safe_loads(pickle.dumps({"a": [np.arange(3), np.float32(2)], "b": (1, "x")}))["b"] == (1, "x")


def test_checksum_mismatch_names_the_shard(corpus, tmp_path):
    write_dataset(corpus, tmp_path, small_config(), progress=False)
    shard = tmp_path / "valid" / "shard-00000.pkl"
    payload = bytearray(shard.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    shard.write_bytes(bytes(payload))
    with pytest.raises(ShardError, match=r"valid/shard-00000\.pkl: sha256 mismatch"):
        list(iter_records(tmp_path, "valid"))
    shard.write_bytes(b"\x80\x05garbage")
    with pytest.raises(ShardError, match=r"shard-00000\.pkl: not a valid shard pickle"):
        load_shard(shard)


def test_newer_format_version_is_refused(corpus, tmp_path):
    write_dataset(corpus, tmp_path, small_config(), progress=False)
    index = json.loads((tmp_path / "index.json").read_text())
    index["format_version"] = FORMAT_VERSION + 1
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(ShardError, match="newer speechsep"):
        list(iter_records(tmp_path, "train"))
    with pytest.raises(ShardError, match="not a speechsep dataset"):
        read_index(tmp_path / "train")


def test_shared_sample_dataset(timit_sample, tmp_path):
    corpus = discover_corpus(timit_sample)
    index = write_dataset(corpus, tmp_path, small_config(), progress=False)
    splits = split_speakers(corpus, seed=1)
    assert index["splits"]["test"]["speakers"] == splits["test"]
    for record in iter_records(tmp_path, "test"):
        assert set(record["speakers"]) <= set(splits["test"])
        assert np.isfinite(record["log_magnitude"]).all()


def test_dataset_from_before_a_new_config_field_still_resumes(corpus, tmp_path):
    write_dataset(corpus, tmp_path, small_config(), progress=False, stop_after_shards=1)
    index = json.loads((tmp_path / "index.json").read_text())
    del index["config"]["mixing"]["speed_range"]  # as written before that field existed
    (tmp_path / "index.json").write_text(json.dumps(index))
    final = write_dataset(corpus, tmp_path, small_config(), progress=False)
    assert final["complete"] and final["splits"]["train"]["mixtures"] == 12
