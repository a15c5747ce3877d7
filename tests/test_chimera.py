"""Chimera++ on a varying number of talkers: the mask head over Kmax sources, the count head, the frozen-stack
warm-up, loading a deep-clustering network's layers by name, and the readouts and counters that use the heads."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY_DC_ARGS, load_script
from speechsep.config import ExperimentConfig
from speechsep.data import pipeline
from speechsep.data.mixing import MixingConfig, make_mixture
from speechsep.data.toy import toy_corpus
from speechsep.nn.models import build_model, inference_function, load_shared_weights
from speechsep.separation import counting
from speechsep.separation.separator import match_masks, read_masks, select_masks
from speechsep.training.trainer import make_loss, make_loss_weights, make_packer


def counting_config(**changes) -> ExperimentConfig:
    settings = dict(hidden_units=8, num_layers=1, embedding_dim=4, talkers=(1, 2, 3), num_speakers=2,
                    mask_head=True, count_head=True)
    return ExperimentConfig(**{**settings, **changes})


def random_features(batch=2, frames=37, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, frames, 129)).astype(np.float32)


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize("changes, message", [
    (dict(talkers=None), "count_head needs a varying number of talkers"),
    (dict(mask_head=False, count_head=False, freeze_stack=True), "freeze_stack"),
    (dict(count_head=False, count_method="head"), "count_method 'head' needs"),
    (dict(mask_head=False, count_method="mask_energy"), "count_method 'mask_energy' needs"),
    (dict(mask_head=False, readout="blend"), "readout 'blend' needs"),
    (dict(count_loss_weight=0.0), "count_loss_weight"),
])
def test_config_refuses_heads_it_cannot_train(changes, message):
    with pytest.raises(ValueError, match=message):
        counting_config(**changes)


def test_config_with_the_new_heads_round_trips(tmp_path):
    config = counting_config(freeze_stack=True, count_method="head", readout="blend")
    assert ExperimentConfig.load(config.save(tmp_path / "config.json")) == config


# ----------------------------------------------------------------------------- the network


def test_heads_cover_the_largest_talker_count():
    outputs = build_model(counting_config())(random_features())
    assert set(outputs) == {"embedding", "mask", "count"}
    assert outputs["mask"].shape == (2, 37, 129, 3) and outputs["count"].shape == (2, 3)
    np.testing.assert_allclose(np.sum(outputs["count"], axis=-1), 1.0, atol=1e-5)
    only_count = build_model(counting_config(mask_head=False))(random_features())
    assert set(only_count) == {"embedding", "count"}


def test_count_head_ignores_the_padding_of_the_compiled_forward_pass():
    """The XLA pass pads T to a bucket and masks the padding: the pooled count must not see it."""
    model = build_model(counting_config())
    features = random_features(batch=1, frames=37)  # padded to 48 frames
    padded = inference_function(model, jit_compile=True)(features)
    exact = model(features, training=False)
    np.testing.assert_allclose(padded["count"], exact["count"].numpy(), atol=1e-4)
    assert padded["mask"].shape == (1, 37, 129, 3)
    # the padding would change the count if it were pooled: the pass over explicitly padded frames differs
    zero_padded = model(np.pad(features, ((0, 0), (0, 11), (0, 0))), training=False)["count"].numpy()
    assert not np.allclose(zero_padded, exact["count"].numpy(), atol=1e-4)


def test_shared_layers_load_by_name_and_the_heads_start_fresh():
    plain_config = ExperimentConfig(hidden_units=8, num_layers=1, embedding_dim=4, talkers=(1, 2, 3))
    plain = build_model(plain_config)
    chimera = build_model(counting_config())
    layers = load_shared_weights(chimera, plain)
    assert layers["loaded"] == ["blstm_1", "embedding"]
    assert sorted(layers["fresh"]) == ["count_hidden", "count_logits", "mask_logits"]
    features = random_features()
    np.testing.assert_allclose(chimera(features)["embedding"], plain(features), atol=1e-6)
    wider = build_model(counting_config(embedding_dim=6))
    with pytest.raises(ValueError, match="layer 'embedding'"):
        load_shared_weights(wider, plain)


def test_frozen_stack_trains_only_the_heads():
    config = counting_config(freeze_stack=True)
    model = build_model(config)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=make_loss(config),
                  loss_weights=make_loss_weights(config), jit_compile=False)
    record = make_mixture(toy_corpus(), ["FTOY0", "MTOY1", "FTOY2"], MixingConfig(num_speakers=3, seed=0),
                          np.random.default_rng(0))
    chunk = next(pipeline.chunk_record(record, np.zeros(129), np.ones(129), 40, mask_target="tpsa",
                                       num_sources=3))
    features = chunk[0][None]
    targets = {key: tf.constant(value[None]) for key, value in zip(pipeline.target_keys("tpsa"), chunk[1:])}
    _, packed = make_packer(config)(features, targets)
    before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers if layer.weights}
    model.train_on_batch(features, packed)
    for layer in model.layers:
        if layer.weights:
            moved = any(not np.array_equal(a, b) for a, b in zip(before[layer.name], layer.get_weights()))
            assert moved == (layer.name in ("mask_logits", "count_hidden", "count_logits")), layer.name


# ----------------------------------------------------------------------------- targets


def test_mask_targets_of_fewer_talkers_are_padded_with_silent_sources():
    record = make_mixture(toy_corpus(), ["FTOY0", "MTOY1"], MixingConfig(num_speakers=2, seed=0), np.random.default_rng(1))
    chunks = list(pipeline.chunk_record(record, np.zeros(129), np.ones(129), 50, mask_target="tpsa", num_sources=3))
    magnitude, targets = pipeline.mask_targets(record, "tpsa")
    assert all(c[4].shape == (50, 129, 3) for c in chunks)
    np.testing.assert_array_equal(chunks[0][4][..., :2], targets[:50])
    assert not any(c[4][..., 2].any() for c in chunks)  # the absent third talker: a silent target


def test_count_labels_are_the_talkers_holding_a_share_of_the_active_bins():
    ibm = np.zeros((3, 10, 129), np.int32)
    ibm[1, :5] = 1  # two talkers, half the bins each
    ibm[2, :5], ibm[2, 5:, :2] = 1, 2  # the third talker holds 10 of 1290 bins (0.8 %): below the 1 % share
    active = np.ones((3, 10, 129), np.float32)
    labels = pipeline.talker_counts(pipeline.packed_targets({"ibm": tf.constant(ibm), "active": tf.constant(active)},
                                                            3)).numpy()
    np.testing.assert_array_equal(labels, [1, 2, 2])
    active[2, :5] = 0  # now the third talker holds 10 of the 645 active bins (1.6 %)
    labels = pipeline.talker_counts(pipeline.packed_targets({"ibm": tf.constant(ibm), "active": tf.constant(active)},
                                                            3)).numpy()
    np.testing.assert_array_equal(labels, [1, 2, 2])  # talker 0 has no active bin left in item 2
    one_hot = pipeline.packed_count_targets(
        pipeline.packed_targets({"ibm": tf.constant(ibm), "active": tf.constant(active)}, 3)).numpy()
    np.testing.assert_array_equal(one_hot.argmax(axis=1) + 1, labels)


# ----------------------------------------------------------------------------- readouts and counters


def _blob_masks(rng, sources=3, frames=20):
    labels = rng.integers(0, sources, (frames, 129))
    masks = np.eye(sources)[labels].transpose(2, 0, 1) * 0.9 + 0.1 / sources  # [C, T, F], rows sum to 1
    return masks.astype(np.float32), labels


def test_select_masks_keeps_the_largest_and_renormalises():
    rng = np.random.default_rng(0)
    masks, _ = _blob_masks(rng)
    masks[1] *= 0.01  # an almost empty source
    masks /= masks.sum(axis=0, keepdims=True)
    active = np.ones(masks.shape[1:], bool)
    kept = select_masks(masks, active, 2)
    np.testing.assert_allclose(kept.sum(axis=0), 1.0, atol=1e-5)
    order = np.argsort([-(masks[0] * active).sum(), -(masks[2] * active).sum()])
    assert np.corrcoef(kept[0].ravel(), masks[0].ravel())[0, 1] > 0.99  # sources 0 and 2 kept, in order
    assert np.corrcoef(kept[1].ravel(), masks[2].ravel())[0, 1] > 0.99 and order.size == 2
    with pytest.raises(ValueError, match="predicts 3 sources, not 4"):
        select_masks(masks, active, 4)


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (1, 2, 0)])
def test_match_masks_undoes_any_permutation(order):
    masks, _ = _blob_masks(np.random.default_rng(3))
    active = np.ones(masks.shape[1:], bool)
    np.testing.assert_array_equal(match_masks(masks, masks[list(order)], active), masks)


def test_head_counters_read_the_heads():
    rng = np.random.default_rng(1)
    masks, _ = _blob_masks(rng, sources=3)
    output = {"embedding": rng.standard_normal((20, 129, 4)), "mask": np.moveaxis(masks, 0, -1),
              "count": np.array([0.1, 0.3, 0.6])}
    active = np.ones((20, 129), bool)
    assert counting.count_output(output, active, "head", (1, 2, 3)) == 3
    assert counting.count_output(output, active, "head", (1, 2)) == 2  # the most probable allowed count
    assert counting.count_output(output, active, "mask_energy", (1, 2, 3)) == 3
    assert counting.count_output(output, active, "mask_energy", (1, 2, 3), min_share=0.5) == 1
    with pytest.raises(ValueError, match="needs a network with a count head"):
        counting.count_output(output["embedding"], active, "head", (1, 2, 3))
    with pytest.raises(ValueError, match="no active bins"):
        counting.count_output(output, np.zeros_like(active), "head", (1, 2, 3))


def test_readouts_separate_the_counted_number_with_each_head():
    rng = np.random.default_rng(2)
    masks, labels = _blob_masks(rng, sources=3)
    directions = np.linalg.qr(rng.standard_normal((4, 4)))[0][:3]  # [3, D] orthonormal
    embeddings = directions[labels] + 0.05 * rng.standard_normal((20, 129, 4))
    output = {"embedding": embeddings / np.linalg.norm(embeddings, axis=-1, keepdims=True),
              "mask": np.moveaxis(masks[[2, 0, 1]], 0, -1), "count": np.array([0.05, 0.15, 0.8])}
    active = np.ones((20, 129), bool)
    for readout in ("mask_head", "blend", "kmeans"):
        config = counting_config(count_method="head", readout=readout)
        result = read_masks(output, active, config, estimate_count=True)
        assert result.n_found == 3 and result.masks.shape == (3, 20, 129), readout
        np.testing.assert_allclose(result.masks.sum(axis=0), 1.0, atol=1e-4)
        truth = np.eye(3)[labels]  # [T, F, 3]
        agreement = max((truth[..., list(p)].argmax(-1) == result.labels).mean()
                        for p in [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)])
        assert agreement > 0.99, readout


# ----------------------------------------------------------------------------- --init into a Chimera++ network


@pytest.mark.slow
def test_init_from_a_deep_clustering_run_names_the_fresh_heads(trained_runs, toy_dataset, tmp_path):
    script = load_script("Deep-clustering/train_deep_clustering.py")
    source = trained_runs / "deepclustering"
    out = tmp_path / "chimera"
    script.main(TINY_DC_ARGS + ["--data", str(toy_dataset), "--out", str(out), "--init", str(source),
                                "--mask-head", "--freeze-stack"])
    record = json.loads((out / "run.json").read_text())
    assert record["init"]["source"] == str(source) and record["init"]["fresh_layers"] == ["mask_logits"]
    from speechsep.nn.models import load_model, load_run_checkpoint

    adapted, original = load_run_checkpoint(out), load_run_checkpoint(source)
    features = random_features(1, 20)
    np.testing.assert_allclose(adapted(features)["embedding"], original(features), atol=1e-5)  # frozen stack


def write_untrained_run(folder, config: ExperimentConfig):
    """A run folder holding an untrained network of ``config`` (config.json, stats.json, best.keras)."""
    folder.mkdir(parents=True, exist_ok=True)
    build_model(config).save(folder / "best.keras")
    config.save(folder / "config.json")
    (folder / "stats.json").write_text(json.dumps({"mean": [0.0] * 129, "std": [1.0] * 129}))
    return folder


def test_bench_meanshift_scores_the_head_counters_of_a_chimera_network(tmp_path):
    from benchmarks.__main__ import main as bench_main

    run = write_untrained_run(tmp_path / "chimera", counting_config(jit_compile=False))
    result = bench_main(["meanshift", "--model", str(run), "--corpus", "toy", "--mixtures", "2",
                         "--bandwidths", "0.1", "--min-fractions", "0.1", "--min-shares", "0.05", "0.5"])
    assert {"head valid", "head test", "mask_energy valid", "mask_energy test"} <= set(result["confusions"])
    for key in ("head test", "mask_energy test"):
        matrix = np.asarray(result["confusions"][key]["matrix"])
        assert matrix.shape == (3, 3) and list(matrix.sum(axis=1)) == [2, 2, 2]
    settings = [(row["method"], row["params"]) for row in result["counting"]]
    assert ("mask_energy", {"min_share": 0.5}) in settings and ("head", {}) in settings
    # a share of at least 0.5 can be held by one mask only: every mixture is counted as one talker
    row = next(r for r in result["counting"] if r["params"] == {"min_share": 0.5})
    assert np.asarray(row["matrices"]["test"])[:, 1:].sum() == 0


def test_stress_mixtures_differ_from_validation_as_documented():
    from speechsep.data import testset

    corpus = toy_corpus()
    records = testset.stress_mixtures(corpus, sorted(corpus.speakers), talkers=(1, 2, 3), count=6, seed=0)
    assert [len(r["sources"]) for r in records] == [1] * 6 + [2] * 6 + [3] * 6
    seconds = np.array([len(r["mixture"]) / 8000 for r in records])
    assert seconds.min() >= testset.STRESS_SECONDS[0] - 1e-3 and seconds.max() <= testset.STRESS_SECONDS[1] + 1e-3
    assert np.ptp(seconds) > 1.0  # lengths vary
    for record in records:
        levels = np.asarray(record["levels_db"])
        assert levels[0] == 0 and np.all((levels[1:] <= 0) & (levels[1:] >= -testset.STRESS_LEVELS_DB[1]))
        energies = np.sum(np.asarray(record["sources"], np.float64) ** 2, axis=1)
        np.testing.assert_allclose(10 * np.log10(energies[1:] / energies[0]), levels[1:], atol=0.01)
    again = testset.stress_mixtures(corpus, sorted(corpus.speakers), talkers=(2,), count=6, seed=0)
    np.testing.assert_array_equal(again[0]["mixture"], records[6]["mixture"])  # the same set every time


def test_more_talkers_than_the_model_was_trained_for_are_refused_naming_the_limit():
    rng = np.random.default_rng(4)
    embeddings = rng.standard_normal((10, 129, 4))
    active = np.ones((10, 129), bool)
    output = {"embedding": embeddings, "mask": np.full((10, 129, 3), 1 / 3), "count": np.full(3, 1 / 3)}
    for readout in ("kmeans", "mask_head", "blend"):
        with pytest.raises(ValueError, match="4 talkers asked for, but this model separates at most 3"):
            read_masks(output, active, counting_config(readout=readout), num_sources=4)
    assert read_masks(output, active, counting_config(readout="kmeans"), num_sources=3).masks.shape[0] == 3
    # the study's two-talker network may still be asked for three clusters (it does not count)
    plain = ExperimentConfig(hidden_units=8, num_layers=1, embedding_dim=4)
    assert read_masks(embeddings, active, plain, num_sources=3).masks.shape[0] == 3


# ----------------------------------------------------------------------------- the waveform (SI-SDR) mask loss


def _disjoint_spectra(rng, batch=2, frames=12, sources=3, present=2):
    """Complex source spectra [B, T, F, C] each bin owned by one of the ``present`` sources (absent ones zero),
    their mixture [B, T, F] and the ideal binary masks [B, T, F, C]."""
    owner = rng.integers(0, present, (batch, frames, 129))
    ideal = np.eye(sources, dtype=np.float32)[owner]  # [B, T, F, C]
    mixture = (rng.standard_normal((batch, frames, 129)) + 1j * rng.standard_normal((batch, frames, 129)))
    return (mixture[..., None] * ideal).astype(np.complex64), mixture.astype(np.complex64), ideal


def test_waveform_loss_is_its_floor_for_ideal_masks_in_any_order_and_worse_otherwise():
    from speechsep.nn.losses import WAVEFORM_SNR_CAP_DB, waveform_mask_loss

    sources, mixture, ideal = _disjoint_spectra(np.random.default_rng(5))
    floor = waveform_mask_loss(ideal, mixture, sources).numpy()
    np.testing.assert_allclose(floor, -WAVEFORM_SNR_CAP_DB, atol=0.05)  # every source exact, the silent one silent
    swapped = waveform_mask_loss(ideal[..., [1, 2, 0]], mixture, sources).numpy()
    np.testing.assert_allclose(swapped, floor, atol=1e-4)  # permutation invariant
    uniform = waveform_mask_loss(np.full_like(ideal, 1 / 3), mixture, sources).numpy()
    assert np.all(uniform > floor + 10)
    leaky = ideal.copy()
    leaky[..., 2] = 0.1  # the absent talker's estimate takes a tenth of the mixture
    leaky[..., :2] *= 0.9
    # the present talkers stay exact (SI-SDR ignores their 0.9 scale); the silent one is 20 dB below the mixture
    expected = (-2 * WAVEFORM_SNR_CAP_DB + 10 * np.log10(0.1 ** 2 + 10 ** (-WAVEFORM_SNR_CAP_DB / 10))) / 3
    np.testing.assert_allclose(waveform_mask_loss(leaky, mixture, sources).numpy(), expected, atol=0.05)


def test_waveform_loss_trains_through_the_pipeline_and_the_keras_loss():
    from speechsep.nn.losses import WaveformMaskLoss

    config = counting_config(mask_loss="sisdr", count_head=False)
    record = make_mixture(toy_corpus(), ["FTOY0", "MTOY1"], MixingConfig(num_speakers=2, seed=0),
                          np.random.default_rng(2))
    chunk = next(pipeline.chunk_record(record, np.zeros(129), np.ones(129), 40, mask_target="sisdr", num_sources=3))
    assert chunk[3].shape == (40, 129, 2) and chunk[4].shape == (40, 129, 3, 2) and not chunk[4][:, :, 2].any()
    targets = {key: tf.constant(value[None]) for key, value in zip(pipeline.target_keys("sisdr"), chunk[1:])}
    features, packed = make_packer(config)(chunk[0][None], targets)
    assert packed["mask"].shape == (1, 40, 129, 8)
    # the packed spectra resynthesise the chunk: ideal ratio masks of the two talkers score far better than chance
    source_spectra = chunk[4][..., 0] + 1j * chunk[4][..., 1]  # [T, F, 3]
    ratio = np.abs(source_spectra) / np.maximum(np.abs(source_spectra).sum(-1, keepdims=True), 1e-9)
    loss = WaveformMaskLoss()
    assert float(loss(packed["mask"], ratio[None].astype(np.float32))) < float(
        loss(packed["mask"], np.full((1, 40, 129, 3), 1 / 3, np.float32))) - 5
    model = build_model(config)
    model.compile(optimizer="adam", loss=make_loss(config), loss_weights=make_loss_weights(config),
                  jit_compile=False)
    assert isinstance(make_loss(config)["mask"], WaveformMaskLoss)
    assert np.all(np.isfinite(model.train_on_batch(features, packed)))


# ----------------------------------------------------------------------------- same-sex pairs


def test_same_sex_share_draws_that_share_of_one_sex_mixtures():
    from speechsep.data.mixing import pair_type

    corpus = toy_corpus()
    speakers = sorted(corpus.speakers)

    def same_sex(share, count=60):
        rng = np.random.default_rng(0)
        mixing = MixingConfig(num_speakers=2, seed=0, same_sex_share=share)
        types = [pair_type(make_mixture(corpus, speakers, mixing, rng)["sexes"]) for _ in range(count)]
        return sum(t != "female-male" for t in types) / count

    assert same_sex(1.0) == 1.0
    assert 0.2 < same_sex(None) < 0.7  # 5 of 11 other speakers share a speaker's sex
    assert same_sex(1.0) > same_sex(0.5) > same_sex(None) - 0.1
    plain = make_mixture(corpus, speakers, MixingConfig(num_speakers=2, seed=0), np.random.default_rng(3))
    unset = make_mixture(corpus, speakers, MixingConfig(num_speakers=2, seed=0, same_sex_share=None),
                         np.random.default_rng(3))
    np.testing.assert_array_equal(plain["mixture"], unset["mixture"])  # off: the same random stream as before
    assert MixingConfig(same_sex_share=0.5).held_out().same_sex_share is None  # a training-only option
    with pytest.raises(ValueError, match="same_sex_share"):
        MixingConfig(same_sex_share=1.5)
