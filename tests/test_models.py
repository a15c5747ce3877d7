"""Model registry shapes, save/load round trips, config JSON, accuracies and readouts."""

import json

import keras
import numpy as np
import pytest

from conftest import TINY_SIZES
from speechsep.config import MODEL_KINDS, ExperimentConfig
from speechsep.nn.models import MODELS, build_model, inference_function, load_model, padded_length
from speechsep.separation.separator import Separator, batch_accuracies, bin_accuracy, read_masks
from speechsep.training.distribute import make_strategy
from speechsep.training.trainer import make_loss


def tiny(model, **changes):
    loss = "dc" if model == "dc" else "mse"
    readout = "kmeans" if model == "dc" else "mask"
    return ExperimentConfig(model=model, loss=loss, readout=readout, **{**TINY_SIZES, **changes})


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_shapes_for_every_model_kind(kind):
    assert set(MODELS) == set(MODEL_KINDS)  # every model kind a config accepts has a builder
    model = build_model(tiny(kind))
    for frames in (100, 37):  # trained on 100-frame chunks, run on whole utterances
        features = np.random.default_rng(frames).standard_normal((2, frames, 129)).astype(np.float32)
        output = np.asarray(model(features))
        if kind == "dc":
            assert output.shape == (2, frames, 129, TINY_SIZES["embedding_dim"])
            np.testing.assert_allclose(np.linalg.norm(output, axis=-1), 1.0, atol=1e-5)  # unit norm per bin
        else:
            assert output.shape == (2, frames, 129)
            assert output.min() >= 0 and output.max() <= 1


@pytest.mark.parametrize("changes", [dict(model="dc", mask_head=True), dict(model="lstm"),
                                     dict(model="dc", recurrent="keras")])
def test_xla_forward_pads_to_a_bucket_and_equals_the_graph_forward(changes):
    keras.utils.set_random_seed(0)
    model = build_model(tiny(**changes))
    graph, xla = inference_function(model, jit_compile=False), inference_function(model, jit_compile=True)
    for batch, frames in ((1, 37), (2, 301)):  # padded to 40 and 320 frames, the rest masked
        features = np.random.default_rng(frames).standard_normal((batch, frames, 129)).astype(np.float32)
        expected, got = graph(features), xla(features)
        for key in (expected if isinstance(expected, dict) else [None]):
            want, have = (expected[key], got[key]) if key else (expected, got)
            assert have.shape == want.shape and have.shape[:2] == (batch, frames)
            np.testing.assert_allclose(have, want, atol=1e-4)  # unit-normalising D = 4 amplifies rounding


def test_padded_length_buckets():
    lengths = np.arange(1, 3000)
    padded = np.array([padded_length(int(n)) for n in lengths])
    assert (padded >= lengths).all() and (padded - lengths < np.maximum(0.25 * lengths, 16)).all()
    assert len(set(padded[(lengths >= 250) & (lengths <= 750)])) <= 8  # 2 to 6 s compile a handful of shapes
    assert padded_length(375) == 384 and padded_length(384) == 384
    with pytest.raises(ValueError, match="n_frames"):
        padded_length(0)


@pytest.mark.parametrize("kind", ["feedforward", "blstm", "dc"])
def test_save_load_round_trip(kind, tmp_path):
    config = tiny(kind)
    model = build_model(config)
    model.compile(optimizer="adam", loss=make_loss(config))
    features = np.random.default_rng(0).standard_normal((1, 50, 129)).astype(np.float32)
    model.save(tmp_path / "best.keras")
    config.save(tmp_path / "config.json")
    restored = load_model(tmp_path / "best.keras")
    np.testing.assert_allclose(np.asarray(restored(features)), np.asarray(model(features)), atol=1e-6)
    assert ExperimentConfig.load(tmp_path / "config.json") == config


def test_config_validation_and_unknown_fields(tmp_path):
    with pytest.raises(ValueError, match="does not fit model"):
        ExperimentConfig(model="blstm", loss="dc", readout="mask")
    with pytest.raises(ValueError, match="exactly 2 speakers"):
        ExperimentConfig(model="lstm", loss="pit", readout="mask", num_speakers=3)
    with pytest.raises(ValueError, match="config.model must be one of"):
        ExperimentConfig(model="transformer")
    (tmp_path / "config.json").write_text('{"model": "dc", "future_field": 1}')
    with pytest.raises(ValueError, match="future_field"):
        ExperimentConfig.load(tmp_path / "config.json")
    with pytest.raises(ValueError, match="unknown --strategy"):
        make_strategy("tpu-pod")


def test_bin_accuracy_fixed_vs_permutation_invariant():
    ibm = np.array([[0, 0, 1, 1]])
    active = np.array([[True, True, True, False]])
    swapped = 1 - ibm
    assert bin_accuracy(ibm, ibm, active, False) == 1.0
    assert bin_accuracy(swapped, ibm, active, False) == 0.0
    assert bin_accuracy(swapped, ibm, active, True) == 1.0  # permutation problem removed
    assert bin_accuracy(np.array([[0, 1, 1, 0]]), ibm, active, False) == pytest.approx(2 / 3)  # silent bin ignored
    fixed, pit = batch_accuracies(np.stack([ibm, swapped]), np.stack([ibm, ibm]), np.stack([active, active]), 2)
    assert (fixed, pit) == (0.5, 1.0)


def test_readouts():
    config = tiny("dc")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (30, 129))
    directions = np.eye(5)[[0, 3]]
    embeddings = directions[labels] + 0.05 * rng.standard_normal((30, 129, 5))
    active = np.ones((30, 129), bool)
    for readout in ("kmeans", "meanshift", "pca_sign"):
        result = read_masks(embeddings, active, config, readout=readout)
        assert bin_accuracy(result.labels, labels, active, True) > 0.99, readout
        assert result.masks.shape == (2, 30, 129)
    mask_result = read_masks(np.full((4, 129), 0.8), active[:4], tiny("blstm"))
    np.testing.assert_allclose(mask_result.masks.sum(0), 1.0)
    assert (mask_result.labels == 0).all()


def test_separator_from_run_dir_errors(tmp_path):
    with pytest.raises(ValueError, match="not a training run folder"):
        Separator.from_run_dir(tmp_path)


def test_config_written_before_the_recurrent_field_means_stock_layers(tmp_path):
    from speechsep.config import ExperimentConfig

    legacy = ExperimentConfig().to_json()
    del legacy["recurrent"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(legacy))
    assert ExperimentConfig.load(path).recurrent == "keras"
    ExperimentConfig().save(path)  # a file written now keeps its own value
    assert ExperimentConfig.load(path).recurrent == ExperimentConfig().recurrent
