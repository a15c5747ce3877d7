"""The deep-clustering recipe: whitened DC loss, Chimera++ mask head and loss, soft masks, learning-rate
schedule, chunk curriculum, their config fields and flags, and the recipe-candidate rows of `bench quality`."""

import itertools
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import load_script
from speechsep import signal
from benchmarks import quality
from speechsep.config import ExperimentConfig
from speechsep.data import pipeline
from speechsep.data.mixing import MixingConfig, make_mixture
from speechsep.data.toy import toy_corpus
from speechsep.experiments import EXPERIMENTS, comparison_rows, is_candidate, study_order
from speechsep.nn.losses import (MaskInferenceLoss, WhitenedDeepClusteringLoss, mask_inference_loss,
                                 whitened_deep_clustering_loss)
from speechsep.nn.models import build_model, load_model
from speechsep.separation import cluster
from speechsep.separation.separator import Separator, bin_accuracy, read_masks
from speechsep.training.runner import ExperimentRun
from speechsep.training.trainer import (ChunkCurriculum, LearningRateSchedule, make_loss, make_loss_weights,
                                        make_packer)


def chimera_config(**changes) -> ExperimentConfig:
    return ExperimentConfig(hidden_units=8, num_layers=1, embedding_dim=4, mask_head=True, readout="mask_head",
                            **changes)


# ----------------------------------------------------------------------------- whitened deep clustering loss


def _numpy_whitened(v, y, w, epsilon=1e-3):
    """D - tr((VᵀV/n + εI)⁻¹ VᵀY/n (YᵀY/n + εI)⁻¹ YᵀV/n), rows weighted by sqrt(w), n = sum w."""
    losses = []
    for v_b, y_b, w_b in zip(v, y, w):
        n = w_b.sum()
        vw, yw = v_b * np.sqrt(w_b)[:, None], y_b * np.sqrt(w_b)[:, None]
        vv = vw.T @ vw / n + epsilon * np.eye(v.shape[-1])
        yy = yw.T @ yw / n + epsilon * np.eye(y.shape[-1])
        vy = vw.T @ yw / n
        losses.append(v.shape[-1] - np.trace(np.linalg.inv(vv) @ vy @ np.linalg.inv(yy) @ vy.T))
    return np.array(losses)


def test_whitened_loss_is_minimal_for_ideal_embeddings_and_ignores_silent_bins():
    rng = np.random.default_rng(0)
    batch, bins, sources, dim = 3, 400, 2, 6
    assignments = np.eye(sources)[rng.integers(0, sources, (batch, bins))]  # [B, N, C]
    rotation = np.linalg.qr(rng.standard_normal((dim, dim)))[0][:sources]  # [C, D], orthonormal rows
    ideal = assignments @ rotation  # [B, N, D]: unit rows spanning the assignments' subspace
    weights = (rng.random((batch, bins)) < 0.7).astype(np.float64)
    for w in (None, weights):
        loss = whitened_deep_clustering_loss(ideal, assignments, w).numpy()
        np.testing.assert_allclose(loss, dim - sources, atol=0.02)  # the minimum, D - C
    noisy = ideal.copy()
    noisy[weights == 0] = rng.standard_normal((int((weights == 0).sum()), dim))  # only silent bins change
    np.testing.assert_allclose(whitened_deep_clustering_loss(noisy, assignments, weights).numpy(),
                               whitened_deep_clustering_loss(ideal, assignments, weights).numpy(), rtol=1e-9)
    random = rng.standard_normal((batch, bins, dim))
    random /= np.linalg.norm(random, axis=-1, keepdims=True)
    assert np.all(whitened_deep_clustering_loss(random, assignments, weights).numpy() > dim - sources + 0.5)
    silent = whitened_deep_clustering_loss(random, assignments, np.zeros((batch, bins))).numpy()
    np.testing.assert_array_equal(silent, 0.0)  # all-silent items give 0


def test_whitened_loss_matches_numpy_and_keras_class_and_has_finite_gradients():
    rng = np.random.default_rng(1)
    embeddings = rng.standard_normal((2, 3, 5, 4))  # [B, T, F, D]
    labels = rng.integers(0, 2, (2, 3, 5))
    labels[1] = 0  # the second item has one source only: (YᵀY) is singular without the ridge
    weights = (rng.random((2, 3, 5)) < 0.8).astype(np.float64)
    flat_v, flat_y, flat_w = embeddings.reshape(2, 15, 4), np.eye(2)[labels].reshape(2, 15, 2), weights.reshape(2, 15)
    expected = _numpy_whitened(flat_v, flat_y, flat_w)
    np.testing.assert_allclose(whitened_deep_clustering_loss(flat_v, flat_y, flat_w).numpy(), expected, rtol=1e-8)
    packed = np.concatenate([np.eye(2)[labels], weights[..., None]], axis=-1).astype(np.float32)  # [B, T, F, 3]
    keras_loss = WhitenedDeepClusteringLoss()(packed, embeddings.astype(np.float32))
    np.testing.assert_allclose(float(keras_loss), expected.mean(), rtol=1e-4)
    variable = tf.Variable(flat_v.astype(np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(whitened_deep_clustering_loss(variable, flat_y, flat_w))
    gradient = tape.gradient(loss, variable).numpy()
    assert np.all(np.isfinite(gradient)) and np.abs(gradient).max() > 0


# ----------------------------------------------------------------------------- Chimera++ mask loss and targets


def _numpy_mask_loss(masks, magnitude, targets):
    """min over permutations of sum |m·|X| - T_perm| / sum |X|, brute force."""
    losses = []
    for m, x, t in zip(masks, magnitude, targets):
        costs = [np.abs(m * x[:, None] - t[:, list(p)]).sum() for p in itertools.permutations(range(t.shape[-1]))]
        losses.append(min(costs) / x.sum() if x.sum() > 0 else 0.0)
    return np.array(losses)


@pytest.mark.parametrize("sources", [2, 3])
def test_mask_inference_loss_is_permutation_invariant_and_matches_brute_force(sources):
    rng = np.random.default_rng(sources)
    magnitude = rng.random((3, 40))  # [B, N]
    magnitude[2] = 0.0  # an all-padding chunk
    ratios = rng.dirichlet(np.ones(sources), size=(3, 40))  # [B, N, C], sum to 1
    targets = ratios * magnitude[..., None]
    masks = rng.dirichlet(np.ones(sources), size=(3, 40))
    np.testing.assert_allclose(mask_inference_loss(masks, magnitude, targets).numpy(),
                               _numpy_mask_loss(masks, magnitude, targets), rtol=1e-9)
    reordered = targets[..., ::-1]
    np.testing.assert_allclose(mask_inference_loss(ratios, magnitude, reordered).numpy(), 0.0, atol=1e-12)
    assert np.all(mask_inference_loss(masks, magnitude, targets).numpy()[:2] > 0.05)
    packed = np.concatenate([targets, magnitude[..., None]], axis=-1).reshape(3, 4, 10, sources + 1)
    keras_loss = MaskInferenceLoss()(packed.astype(np.float32), masks.reshape(3, 4, 10, sources).astype(np.float32))
    np.testing.assert_allclose(float(keras_loss), _numpy_mask_loss(masks, magnitude, targets).mean(), rtol=1e-4)


def _toy_record(seed=0) -> dict:
    """One two-talker mixture record of the toy corpus."""
    corpus = toy_corpus(num_speakers=4, utterances_per_speaker=2)
    return make_mixture(corpus, sorted(corpus.speakers), MixingConfig(seed=seed), np.random.default_rng(seed))


def test_mask_targets_msa_and_truncated_psa():
    record = _toy_record()
    magnitude, msa = pipeline.mask_targets(record, "msa")
    _, tpsa = pipeline.mask_targets(record, "tpsa")
    frames = record["log_magnitude"].shape[0]
    assert magnitude.shape == (frames, 129) and msa.shape == tpsa.shape == (frames, 129, 2)
    np.testing.assert_allclose(magnitude, np.abs(signal.stft(record["mixture"])), rtol=1e-5)
    np.testing.assert_allclose(msa[..., 1], np.abs(signal.stft(record["sources"][1])), rtol=1e-5, atol=1e-6)
    assert np.all(tpsa >= 0) and np.all(tpsa <= magnitude[..., None] + 1e-6)
    # two sources: the phase-sensitive targets add up to |X| exactly (Re(S1 X*) + Re(S2 X*) = |X|²), truncated too
    np.testing.assert_allclose(tpsa.sum(-1), magnitude, atol=1e-4 * magnitude.max())
    with pytest.raises(ValueError, match="mask target"):
        pipeline.mask_targets(record, "psa")


def test_chunks_carry_mask_targets_only_when_asked():
    record = _toy_record(1)
    mean, std = np.zeros(129, np.float32), np.ones(129, np.float32)
    plain = list(pipeline.chunk_record(record, mean, std, 50))
    assert all(len(chunk) == 3 for chunk in plain)
    chunks = list(pipeline.chunk_record(record, mean, std, 50, pad_remainder=True, mask_target="tpsa"))
    magnitude, targets = pipeline.mask_targets(record, "tpsa")
    frames = magnitude.shape[0]
    assert len(chunks) == -(-frames // 50)
    np.testing.assert_array_equal(chunks[1][3], magnitude[50:100])
    np.testing.assert_array_equal(chunks[1][4], targets[50:100])
    assert chunks[-1][4].shape == (50, 129, 2) and not chunks[-1][3][frames % 50:].any()  # zero padding


def test_pipeline_batches_and_packing_for_the_mask_head(toy_dataset):
    config = chimera_config(batch_size=4)
    dataset = pipeline.make_dataset(toy_dataset, "valid", 4, 100, shuffle=False, mask_target="msa")
    features, targets = next(iter(dataset))
    assert set(targets) == {"ibm", "active", "mixture_magnitude", "source_targets"}
    assert targets["source_targets"].shape[1:] == (100, 129, 2) and targets["mixture_magnitude"].shape[1:] == (100, 129)
    _, packed = make_packer(config)(features, targets)
    assert packed["embedding"].shape[-1] == 3 and packed["mask"].shape[-1] == 3
    np.testing.assert_array_equal(packed["mask"][..., 2], targets["mixture_magnitude"])
    plain_features, plain_targets = next(iter(pipeline.make_dataset(toy_dataset, "valid", 4, 100, shuffle=False)))
    assert set(plain_targets) == {"ibm", "active"}  # no mask head: nothing extra computed
    np.testing.assert_array_equal(plain_features, features)


# ----------------------------------------------------------------------------- the model and its readouts


def test_chimera_model_outputs_embeddings_and_masks():
    model = build_model(chimera_config())
    outputs = model(np.random.default_rng(0).standard_normal((2, 37, 129)).astype(np.float32))
    assert set(outputs) == {"embedding", "mask"}
    assert outputs["embedding"].shape == (2, 37, 129, 4) and outputs["mask"].shape == (2, 37, 129, 2)
    np.testing.assert_allclose(np.linalg.norm(outputs["embedding"], axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.sum(outputs["mask"], axis=-1), 1.0, atol=1e-5)
    assert not isinstance(build_model(ExperimentConfig(hidden_units=8, embedding_dim=4))(np.zeros((1, 5, 129))),
                          dict)  # without the head: the study's single output


def test_chimera_round_trip_through_save_load_and_separate(tmp_path):
    config = chimera_config()
    model = build_model(config)
    model.compile(optimizer="adam", loss=make_loss(config), loss_weights=make_loss_weights(config))
    model.save(tmp_path / "best.keras")
    config.save(tmp_path / "config.json")
    (tmp_path / "stats.json").write_text(json.dumps({"mean": [0.0] * 129, "std": [1.0] * 129}))
    mixture = _toy_record(2)["mixture"]
    before = Separator(model, config, np.zeros(129, np.float32), np.ones(129, np.float32))
    after = Separator.from_run_dir(tmp_path)
    assert isinstance(load_model(tmp_path / "best.keras")(np.zeros((1, 3, 129), np.float32)), dict)
    for readout in ("mask_head", "kmeans"):
        estimates, result = before.separate(mixture, readout=readout)
        restored, restored_result = after.separate(mixture, readout=readout)
        np.testing.assert_allclose(restored, estimates, atol=1e-5)
        np.testing.assert_array_equal(restored_result.labels, result.labels)
        assert estimates.shape == (2, len(mixture))
    _, head = after.separate(mixture)  # the run's own readout: the mask head's soft masks
    np.testing.assert_allclose(head.masks.sum(0), 1.0, atol=1e-5)
    assert 0 < head.masks.min() and head.masks.max() < 1


def test_mask_head_readout_needs_a_mask_head():
    embeddings = np.random.default_rng(0).standard_normal((5, 129, 4))
    active = np.ones((5, 129), bool)
    with pytest.raises(ValueError, match="mask head"):
        read_masks(embeddings, active, ExperimentConfig(embedding_dim=4), readout="mask_head")
    output = {"embedding": embeddings, "mask": np.full((5, 129, 2), 0.5)}
    with pytest.raises(ValueError, match="separates at most 2"):
        read_masks(output, active, chimera_config(), num_sources=3)
    assert read_masks(output, active, chimera_config(), readout="kmeans").masks.shape == (2, 5, 129)


# ----------------------------------------------------------------------------- soft masks from clustering


def test_soft_masks_sum_to_one_and_approach_the_hard_masks():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, (20, 129))
    directions = np.linalg.qr(rng.standard_normal((6, 6)))[0][:3]
    embeddings = directions[labels] + 0.3 * rng.standard_normal((20, 129, 6))
    result = cluster.cluster_embeddings(embeddings, np.ones((20, 129), bool), "kmeans", n_clusters=3)
    hard = signal.masks_from_labels(result.labels, 3)
    for beta in (1.0, 10.0, 1e4):
        soft = cluster.soft_masks(embeddings, result.centers, beta)
        assert soft.shape == (3, 20, 129)
        np.testing.assert_allclose(soft.sum(0), 1.0, atol=1e-5)
        np.testing.assert_array_equal(np.argmax(soft, axis=0), result.labels)  # labels stay the nearest centre
    gaps = [np.abs(cluster.soft_masks(embeddings, result.centers, beta) - hard).mean() for beta in (1, 10, 100, 1e4)]
    assert all(a > b for a, b in zip(gaps, gaps[1:])) and gaps[-1] < 1e-3  # -> the binary masks as beta grows
    np.testing.assert_allclose(cluster.soft_masks(embeddings, result.centers, 1e-6), 1 / 3, atol=1e-4)
    with pytest.raises(ValueError, match="beta"):
        cluster.soft_masks(embeddings, result.centers, 0.0)


def test_read_masks_gives_soft_masks_with_soft_mask_beta():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, (30, 129))
    embeddings = np.eye(5)[[0, 3]][labels] + 0.2 * rng.standard_normal((30, 129, 5))
    active = np.ones((30, 129), bool)
    hard = read_masks(embeddings, active, ExperimentConfig(embedding_dim=5))
    for readout in ("kmeans", "meanshift"):
        soft = read_masks(embeddings, active, ExperimentConfig(embedding_dim=5, soft_mask_beta=10.0), readout=readout)
        np.testing.assert_allclose(soft.masks.sum(0), 1.0, atol=1e-5)
        assert 0.0 < soft.masks.min() and soft.masks.max() < 1.0  # soft, not binary
        assert bin_accuracy(soft.labels, labels, active, True) > 0.99
    assert set(np.unique(hard.masks)) == {0.0, 1.0}


# ----------------------------------------------------------------------------- schedule and curriculum


def test_learning_rate_schedule_values():
    cosine = LearningRateSchedule(ExperimentConfig(learning_rate=1e-3, lr_schedule="cosine", warmup_steps=10))
    assert cosine.value(0, 0.0) == pytest.approx(1e-4)  # warm-up: (step + 1) / warmup_steps
    assert cosine.value(9, 0.0) == pytest.approx(1e-3)
    assert cosine.value(100, 0.5) == pytest.approx(5e-4)
    assert cosine.value(100, 1.0) == pytest.approx(0.0, abs=1e-12)
    constant = LearningRateSchedule(ExperimentConfig(learning_rate=1e-3, warmup_steps=4))
    assert [constant.value(step, 0.9) for step in (0, 3, 50)] == pytest.approx([2.5e-4, 1e-3, 1e-3])


def test_learning_rate_schedule_drives_the_optimizer_in_fit():
    config = ExperimentConfig(learning_rate=0.1, lr_schedule="cosine", epochs=4, steps_per_epoch=3)
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(config.learning_rate), loss="mse")
    data = tf.data.Dataset.from_tensor_slices((np.ones((6, 2), np.float32), np.ones((6, 1), np.float32))).batch(2)
    history = model.fit(data.repeat(), epochs=4, steps_per_epoch=3, verbose=0, shuffle=False,
                        callbacks=[LearningRateSchedule(config)]).history
    expected = [0.1 * 0.5 * (1 + np.cos(np.pi * (epoch + 2 / 3) / 4)) for epoch in range(4)]  # last batch's rate
    np.testing.assert_allclose(history["learning_rate"], expected, rtol=1e-5)


def test_chunk_curriculum_switches_the_training_data():
    config = ExperimentConfig(batch_size=32, long_chunk_frames=400, curriculum_epoch=2)
    curriculum = ChunkCurriculum(config)
    short = tf.data.Dataset.from_tensors(np.zeros((4, 100, 129), np.float32)).repeat()
    long = tf.data.Dataset.from_tensors(np.zeros((1, 400, 129), np.float32)).repeat()
    iterator = iter(pipeline.switch_datasets([short, long], lambda: curriculum.stage))
    shapes = []
    for epoch in range(4):
        curriculum.on_epoch_begin(epoch)
        shapes.append(tuple(next(iterator).shape))
    assert shapes == [(4, 100, 129)] * 2 + [(1, 400, 129)] * 2
    assert not ExperimentConfig().trains_long_chunks(5)  # no curriculum: short chunks in every epoch
    assert config.long_batch_size == 8  # as many frames per batch


# ----------------------------------------------------------------------------- config, flags and rows


def test_recipe_config_validation_and_old_configs_load(tmp_path):
    for changes, field in ((dict(dc_loss="dc_w"), "dc_loss"), (dict(mask_loss="psa"), "mask_loss"),
                           (dict(readout="mask_head"), "readout"), (dict(mask_loss_weight=1.5), "mask_loss_weight"),
                           (dict(soft_mask_beta=-1.0), "soft_mask_beta"), (dict(lr_schedule="step"), "lr_schedule"),
                           (dict(warmup_steps=-2), "warmup_steps"), (dict(long_chunk_frames=400), "curriculum_epoch"),
                           (dict(long_chunk_frames=50, curriculum_epoch=1), "long_chunk_frames")):
        with pytest.raises(ValueError, match=f"config.{field}"):
            ExperimentConfig(**changes)
    with pytest.raises(ValueError, match="dc model only"):
        ExperimentConfig(model="blstm", loss="mse", readout="mask", mask_head=True)
    old = {key: value for key, value in ExperimentConfig().to_json().items()
           if key not in ("dc_loss", "mask_head", "mask_loss", "mask_loss_weight", "soft_mask_beta", "lr_schedule",
                          "warmup_steps", "long_chunk_frames", "curriculum_epoch")}
    (tmp_path / "config.json").write_text(json.dumps(old))  # a run folder written before the recipe fields
    assert ExperimentConfig.load(tmp_path / "config.json") == ExperimentConfig(**old)
    assert ExperimentConfig.load(tmp_path / "config.json").mask_target is None


def test_recipe_flags_set_the_config(tmp_path):
    argv = ["--dc-loss", "dc_whitened", "--mask-head", "--mask-loss", "msa", "--mask-loss-weight", "0.3",
            "--soft-mask-beta", "12", "--lr-schedule", "cosine", "--warmup-steps", "20", "--clip-norm", "1",
            "--long-chunk-frames", "400", "--curriculum-epoch", "3", "--clusterer", "mask_head",
            "--level-range", "0", "10", "--out", str(tmp_path)]
    run = ExperimentRun("deepclustering", None, None, argv)
    config = run.config
    assert (config.dc_loss, config.mask_head, config.mask_loss, config.mask_loss_weight) == ("dc_whitened", True,
                                                                                           "msa", 0.3)
    assert (config.soft_mask_beta, config.lr_schedule, config.warmup_steps, config.clip_norm) == (12, "cosine", 20, 1)
    assert (config.long_chunk_frames, config.curriculum_epoch, config.readout) == (400, 3, "mask_head")
    assert run.args.train_level_range == [0.0, 10.0]
    recipe = EXPERIMENTS["deepclustering"].defaults  # the measured recipe choices
    assert recipe == {"dc_loss": "dc_whitened", "soft_mask_beta": 5.0} and EXPERIMENTS["meanshift"].defaults == recipe
    assert ExperimentRun("deepclustering", None, None, ["--out", str(tmp_path)]).config == ExperimentConfig(
        steps_per_epoch=None, **recipe)  # no flag: the study's defaults and the measured recipe
    meanshift = ExperimentRun("meanshift", None, None, []).config
    assert (meanshift.dc_loss, meanshift.soft_mask_beta) == ("dc_whitened", 5.0)
    paper = ExperimentRun("deepclustering", None, None, ["--soft-mask-beta", "0", "--dc-loss", "dc"]).config
    assert (paper.soft_mask_beta, paper.dc_loss) == (None, "dc")
    original = ExperimentRun("bidiloss", None, None, []).config  # the original study's DC loss, PCA sign
    assert (original.soft_mask_beta, original.dc_loss) == (None, "dc")
    with pytest.raises(SystemExit):  # the recipe flags belong to the deep-clustering scripts only
        ExperimentRun("bidirnn", None, None, ["--mask-head"])


def test_curriculum_events_mark_the_first_long_chunk_epoch():
    from speechsep.training.outputs import curriculum_events

    curriculum = ExperimentConfig(long_chunk_frames=400, curriculum_epoch=1)
    assert curriculum_events(curriculum, epochs=6) == [(1.5, "training on 400-frame chunks from here")]
    assert curriculum_events(curriculum, epochs=1) == []  # the run ended before the switch
    assert curriculum_events(ExperimentConfig(), epochs=6) == []


def test_candidate_rows_build_and_stay_out_of_the_study():
    study, every = comparison_rows(), comparison_rows(candidates=True)
    candidates = [name for name in every if name not in study]
    assert candidates and all(is_candidate(name) for name in candidates)
    assert not any(is_candidate(name) for name in study)
    baseline = ExperimentRun("deepclustering", None, None, []).config
    for name in candidates:
        experiment, changes = every[name]
        run = ExperimentRun(experiment.name, None, changes, [])  # every setting is a known option
        assert run.config != baseline or vars(run.args) != vars(ExperimentRun("deepclustering", None, None,
                                                                             []).args), name
    assert study_order(["oracle ibm", "dc-unwhitened", "deepclustering"]) == ["deepclustering", "dc-unwhitened",
                                                                           "oracle ibm"]
    assert quality.network_source("dc-binary") == "deepclustering"  # a readout change reuses the network
    assert quality.network_source("dc-unwhitened") == "bidiloss"  # the original study's DC-loss network
    assert quality.network_source("dc-chimera-kmeans") == "dc-chimera"
    assert quality.network_source("dc-d20") is None and quality.network_source("dc-chimera") is None
    assert quality.row_dir(quality.Path("q"), "dc-binary") == quality.Path("q/candidates/dc-binary")
    assert set(EXPERIMENTS["deepclustering"].candidates) == set(candidates)


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_deep_clustering_script_with_the_recipe_flags(toy_dataset, tmp_path):
    from conftest import TINY_DC_ARGS

    script = load_script(EXPERIMENTS["deepclustering"].script)
    argv = TINY_DC_ARGS + ["--epochs", "2", "--mask-head", "--clusterer", "mask_head", "--dc-loss", "dc_whitened",
                           "--lr-schedule", "cosine", "--warmup-steps", "2", "--long-chunk-frames", "200",
                           "--curriculum-epoch", "1", "--data", str(toy_dataset), "--out", str(tmp_path)]
    results = script.main(argv)
    assert np.isfinite(results["overall"]["sdr_improvement"]["mean"])
    config = ExperimentConfig.load(tmp_path / "config.json")
    assert config.mask_head and config.dc_loss == "dc_whitened" and config.long_chunk_frames == 200
    history = json.loads((tmp_path / "run.json").read_text())["history"]
    assert {"embedding_loss", "mask_loss", "val_loss", "learning_rate"} <= set(history)
    assert len(history["learning_rate"]) == 2 and history["learning_rate"][1] < history["learning_rate"][0]
    separator = Separator.from_run_dir(tmp_path)
    _, readout = separator.separate(_toy_record(3)["mixture"])
    np.testing.assert_allclose(readout.masks.sum(0), 1.0, atol=1e-5)
