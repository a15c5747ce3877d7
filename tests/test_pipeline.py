"""tf.data batches: shapes, chunking, padding, normalisation, dynamic mixing, and the scripts."""

import numpy as np
import pytest

from conftest import load_script
from speechsep.data import pipeline
from speechsep.data.mixing import MixingConfig
from speechsep.data.shards import DatasetConfig, load_stats, write_dataset
from speechsep.data.toy import toy_corpus


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    config = DatasetConfig(mixtures={"train": 10, "valid": 3, "test": 3}, shard_size=4, mixing=MixingConfig(seed=2))
    write_dataset(toy_corpus(num_speakers=8, utterances_per_speaker=3), out, config, progress=False)
    return out


def fake_record(frames):
    rng = np.random.default_rng(frames)
    return {"log_magnitude": rng.standard_normal((frames, 129)).astype(np.float32),
            "ibm": rng.integers(0, 2, (frames, 129)).astype(np.int8),
            "active": rng.random((frames, 129)) > 0.3}


def test_chunking_drops_or_pads_the_remainder():
    record = fake_record(250)
    mean, std = np.zeros(129, np.float32), np.ones(129, np.float32)
    dropped = list(pipeline.chunk_record(record, mean, std, 100))
    assert len(dropped) == 2
    np.testing.assert_array_equal(dropped[1][0], record["log_magnitude"][100:200])
    padded = list(pipeline.chunk_record(record, mean, std, 100, pad_remainder=True))
    assert len(padded) == 3 and padded[2][0].shape == (100, 129)
    np.testing.assert_array_equal(padded[2][2][:50], record["active"][200:].astype(np.float32))
    assert not padded[2][2][50:].any()  # padding is inactive
    assert list(pipeline.chunk_record(fake_record(99), mean, std, 100)) == []


def test_batches_shapes_types_and_normalisation(dataset_dir):
    dataset = pipeline.make_dataset(dataset_dir, "train", batch_size=4, shuffle=False)
    batches = list(dataset)
    features, targets = batches[0]
    assert features.shape == (4, 100, 129) and features.dtype.name == "float32"
    assert targets["ibm"].shape == (4, 100, 129) and targets["ibm"].dtype.name == "int32"
    assert set(np.unique(targets["ibm"].numpy())) <= {0, 1}
    assert set(np.unique(targets["active"].numpy())) <= {0.0, 1.0}
    all_features = np.concatenate([f.numpy() for f, _ in batches]).reshape(-1, 129)
    assert abs(all_features.mean()) < 0.3 and 0.7 < all_features.std() < 1.3  # train-split normalised
    mean, _ = load_stats(dataset_dir)
    assert mean.shape == (129,)
    packed = pipeline.packed_targets(targets, 2)
    assert packed.shape == (4, 100, 129, 3)
    np.testing.assert_array_equal(packed[..., 1].numpy(), targets["ibm"].numpy())
    np.testing.assert_array_equal(packed[..., 2].numpy(), targets["active"].numpy())


def test_pad_mode_yields_more_chunks(dataset_dir):
    count = lambda pad: sum(int(f.shape[0]) for f, _ in  # noqa: E731
                            pipeline.make_dataset(dataset_dir, "valid", 8, pad_remainder=pad, shuffle=False))
    assert count(True) == count(False) + 3  # one padded chunk per valid mixture


def test_dynamic_mixing_draws_fresh_mixtures():
    corpus = toy_corpus(num_speakers=6, utterances_per_speaker=3)
    speakers = sorted(corpus.speakers)[:4]
    mean, std = pipeline.estimate_stats(corpus, speakers, MixingConfig(), mixtures=10)
    dataset = pipeline.make_dynamic_dataset(corpus, speakers, MixingConfig(), mean, std, batch_size=8)
    first, second = [f.numpy() for f, _ in dataset.take(2)]
    assert first.shape == (8, 100, 129) and not np.allclose(first, second)


def test_datagenerator_scripts_end_to_end(tmp_path, capsys):
    out = load_script("DataGenerator/datagenerator.py").main(
        ["--corpus", "toy", "--mixtures", "12", "--shard-size", "5", "--out", str(tmp_path / "d"), "--quiet"])
    assert (out / "index.json").is_file() and (out / "stats.json").is_file()
    shapes = load_script("DataGenerator/datagenerator2.py").main(["--data", str(out), "--batch-size", "4"])
    assert shapes[0] == {"features": (4, 100, 129), "ibm": (4, 100, 129), "active": (4, 100, 129)}
    printed = capsys.readouterr().out
    assert "NOT speech" in printed and "batch 0: features (4, 100, 129)" in printed


def test_datagenerator_bad_folder_exits_cleanly(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_script("DataGenerator/datagenerator.py").main(["--timit", str(tmp_path / "missing")])
    assert exit_info.value.code == 2
    assert f"{tmp_path / 'missing'} does not exist" in capsys.readouterr().err
