"""Training on a varying number of talkers, and counting them: config, mixing, padded losses, counting, separate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY_DC_ARGS, TINY_SIZES, load_script, voice, write_audio
from speechsep.config import COUNT_METHODS, EMBEDDING_COUNT_METHODS, ExperimentConfig, parse_talkers
from speechsep.data.mixing import MixingConfig, make_mixture
from speechsep.data.pipeline import packed_targets
from speechsep.data.shards import DatasetConfig, built_with
from speechsep.data.toy import toy_corpus
from speechsep.experiments import EXPERIMENTS
from speechsep.nn.losses import (DeepClusteringLoss, WhitenedDeepClusteringLoss, _embedding_loss_inputs,
                                 deep_clustering_loss, whitened_deep_clustering_loss)
from speechsep.separation import counting
from speechsep.separation.separator import batch_accuracies, counts_talkers, item_talkers, read_masks
from speechsep.training.runner import ExperimentRun
from speechsep.training.script_args import build_parser, config_from_args
from speechsep.training.trainer import RESUMABLE_FIELDS, make_packer


# ----------------------------------------------------------------------------- config and options


@pytest.mark.parametrize("value, expected", [("1-3", (1, 2, 3)), (["1", "2", "3"], (1, 2, 3)), ("3,1", (1, 3)),
                                             (["1-2", "4"], (1, 2, 4)), ((2, 1, 2), (1, 2)), (2, (2,))])
def test_parse_talkers_reads_ranges_lists_and_tuples(value, expected):
    assert parse_talkers(value) == expected


@pytest.mark.parametrize("value", ["0-2", "3-1", "a", "1-7", [], "1.5"])
def test_parse_talkers_refuses_bad_sets_naming_the_option(value):
    with pytest.raises(ValueError, match="--talkers"):
        parse_talkers(value)


def test_config_talker_fields_validate_and_round_trip(tmp_path):
    config = ExperimentConfig.for_experiment("meanshift", talkers=[3, 1, 2], talker_weights=[1, 2, 1],
                                             count_method="eigengap")
    assert (config.talkers, config.talker_weights, config.max_talkers, config.counts_talkers) == \
        ((1, 2, 3), (1.0, 2.0, 1.0), 3, True)
    assert ExperimentConfig.load(config.save(tmp_path / "config.json")) == config  # lists in JSON, tuples back
    # the fixed count spelled as a set is the config without the field (a rerun can resume it)
    assert ExperimentConfig(talkers=(2,)) == ExperimentConfig()
    for changes, message in [({"talkers": (1, 3)}, "num_speakers"), ({"talker_weights": (1.0,)}, "needs"),
                             ({"talkers": (1, 2), "talker_weights": (1.0,)}, "talker_weights"),
                             ({"count_method": "guess"}, "count_method")]:
        with pytest.raises(ValueError, match=message):
            ExperimentConfig(**changes)
    with pytest.raises(ValueError, match="only the dc model"):
        ExperimentConfig.for_experiment("feedforward", talkers=(1, 2))
    assert "count_method" in RESUMABLE_FIELDS  # a test-time choice


def test_a_config_json_without_the_talker_fields_loads_as_the_fixed_count(tmp_path):
    data = ExperimentConfig.for_experiment("meanshift").to_json()
    for field in ("talkers", "talker_weights", "count_method"):
        del data[field]
    (tmp_path / "config.json").write_text(json.dumps(data))
    config = ExperimentConfig.load(tmp_path / "config.json")
    assert config == ExperimentConfig.for_experiment("meanshift")
    assert (config.talker_set, config.max_talkers, config.counts_talkers) == ((2,), 2, False)


@pytest.mark.parametrize("flags", [["--talkers", "1-3"], ["--talkers", "1", "2", "3"], ["--talkers", "1-2", "3"]])
def test_training_scripts_take_talkers_weights_and_count_method(flags):
    experiment = EXPERIMENTS["meanshift"]
    args = build_parser(experiment, "").parse_args(flags + ["--talker-weights", "1", "2", "1",
                                                            "--count-method", "silhouette"])
    config = config_from_args(experiment, args)
    assert (config.talkers, config.talker_weights, config.count_method) == ((1, 2, 3), (1.0, 2.0, 1.0), "silhouette")
    default = config_from_args(experiment, build_parser(experiment, "").parse_args([]))
    assert default == ExperimentConfig.for_experiment("meanshift") and default.talkers is None


def test_a_bad_talkers_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        build_parser(EXPERIMENTS["deepclustering"], "").parse_args(["--talkers", "0-2"])
    assert "--talkers" in capsys.readouterr().err


# ----------------------------------------------------------------------------- mixing


def test_mixtures_draw_their_talker_count_from_the_set():
    corpus = toy_corpus()
    speakers = sorted(corpus.speakers)
    mixing = MixingConfig(num_speakers=3, talkers=(1, 2, 3), talker_weights=(1.0, 0.0, 1.0), seed=0)
    rng = np.random.default_rng(0)
    counts = []
    for _ in range(12):
        record = make_mixture(corpus, speakers, mixing, rng)
        count = record["sources"].shape[0]
        counts.append(count)
        assert len(record["speakers"]) == len(set(record["speakers"])) == count
        assert record["ibm"].max() < count
        if count == 1:  # one talker alone: the mixture is that talker
            np.testing.assert_allclose(record["mixture"], record["sources"][0], atol=1e-6)
    assert set(counts) == {1, 3}  # weight 0: never 2 talkers


def test_a_fixed_talker_count_draws_nothing_more_from_the_generator():
    rng = np.random.default_rng(5)
    state = rng.bit_generator.state
    assert MixingConfig(num_speakers=2).draw_talkers(rng) == 2
    assert rng.bit_generator.state == state  # the mixtures of a fixed count are the ones drawn before the option
    with pytest.raises(ValueError, match="ending with num_speakers"):
        MixingConfig(num_speakers=2, talkers=(1, 2, 3))


def test_dataset_configs_keep_the_talker_set_and_old_indexes_still_match():
    config = DatasetConfig.from_total(30, mixing=MixingConfig(num_speakers=3, talkers=(1, 2, 3),
                                                              talker_weights=(2.0, 1.0, 1.0)))
    assert DatasetConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    legacy = DatasetConfig.from_total(30)
    stored = legacy.to_json()
    for field in ("talkers", "talker_weights"):  # an index written before the fields existed
        del stored["mixing"][field]
    assert built_with({"config": stored, "corpus": {"root": "/c"}}, legacy, "/c", "index.json")


def test_the_data_generator_draws_talker_counts_and_a_run_refuses_other_counts(tmp_path):
    from speechsep.data.shards import iter_records, read_index
    from speechsep.training.experiment_data import check_dataset_talkers

    out = tmp_path / "data"
    load_script("DataGenerator/datagenerator.py").main(
        ["--corpus", "toy", "--mixtures", "12", "--shard-size", "6", "--talkers", "1-2", "--out", str(out), "--quiet"])
    mixing = read_index(out)["config"]["mixing"]
    assert (mixing["num_speakers"], mixing["talkers"]) == (2, [1, 2])
    counts = {record["sources"].shape[0] for split in ("train", "valid", "test") for record in iter_records(out, split)}
    assert counts <= {1, 2} and 1 in counts
    check_dataset_talkers(out, ExperimentConfig(talkers=(1, 2)))  # the same set: fine
    for config in (ExperimentConfig(), ExperimentConfig(talkers=(1, 2, 3))):
        with pytest.raises(ValueError, match=r"\{1, 2\} talkers, this run trains on"):
            check_dataset_talkers(out, config)


# ----------------------------------------------------------------------------- losses


def _dc_loss_as_of_7fb0b7f(embeddings, assignments, weights):
    """deep_clustering_loss as committed in 7fb0b7f (before talker counts): the 2-talker reference."""
    embeddings, assignments, weights = _embedding_loss_inputs(embeddings, assignments, weights, "reference")
    root_weights = tf.sqrt(tf.maximum(weights, 0.0))[..., tf.newaxis]
    weighted_embeddings, weighted_assignments = embeddings * root_weights, assignments * root_weights
    embedding_gram = tf.einsum("bnd,bne->bde", weighted_embeddings, weighted_embeddings)
    cross_gram = tf.einsum("bnd,bnc->bdc", weighted_embeddings, weighted_assignments)
    target_gram = tf.einsum("bnc,bnk->bck", weighted_assignments, weighted_assignments)
    cost = (tf.reduce_sum(tf.square(embedding_gram), axis=[1, 2])
            - 2.0 * tf.reduce_sum(tf.square(cross_gram), axis=[1, 2])
            + tf.reduce_sum(tf.square(target_gram), axis=[1, 2]))
    return tf.math.divide_no_nan(tf.maximum(cost, 0.0), tf.square(tf.reduce_sum(weights, axis=1)))


def _whitened_loss_as_of_7fb0b7f(embeddings, assignments, weights, epsilon=1e-3):
    """whitened_deep_clustering_loss as committed in 7fb0b7f: the 2-talker reference."""
    embeddings, assignments, weights = _embedding_loss_inputs(embeddings, assignments, weights, "reference")
    dtype = embeddings.dtype
    weights = tf.maximum(weights, 0.0)
    total = tf.reduce_sum(weights, axis=1)
    root_weights = tf.sqrt(weights)[..., tf.newaxis]
    weighted_embeddings, weighted_assignments = embeddings * root_weights, assignments * root_weights
    scale = tf.math.divide_no_nan(tf.ones_like(total), total)[:, tf.newaxis, tf.newaxis]
    embedding_gram = scale * tf.einsum("bnd,bne->bde", weighted_embeddings, weighted_embeddings)
    cross_gram = scale * tf.einsum("bnd,bnc->bdc", weighted_embeddings, weighted_assignments)
    target_gram = scale * tf.einsum("bnc,bnk->bck", weighted_assignments, weighted_assignments)
    embedding_dim, n_sources = tf.shape(embedding_gram)[-1], tf.shape(target_gram)[-1]
    whitened_cross = tf.linalg.solve(embedding_gram + epsilon * tf.eye(embedding_dim, dtype=dtype), cross_gram)
    projected = tf.linalg.solve(target_gram + epsilon * tf.eye(n_sources, dtype=dtype),
                                tf.transpose(cross_gram, [0, 2, 1]))
    loss = tf.cast(embedding_dim, dtype) - tf.einsum("bdc,bcd->b", whitened_cross, projected)
    return tf.where(total > 0, loss, tf.zeros_like(loss))


def _batch(talkers, k_max, bins=300, dim=6, seed=0, silent_fraction=0.2):
    """Unit embeddings [B, N, D], dominant-source indices [B, N] (item b: talkers[b] sources), weights [B, N]."""
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(len(talkers), bins, dim)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=-1, keepdims=True)
    labels = np.stack([rng.integers(0, k, size=bins) for k in talkers]).astype(np.int32)
    weights = (rng.random((len(talkers), bins)) > silent_fraction).astype(np.float32)
    return embeddings, labels, weights


@pytest.mark.parametrize("loss", [deep_clustering_loss, whitened_deep_clustering_loss])
def test_a_padded_item_has_the_loss_of_the_same_item_unpadded_at_every_talker_count(loss):
    talkers = (1, 2, 3, 1, 3, 2)
    embeddings, labels, weights = _batch(talkers, 3)
    padded = loss(embeddings, tf.one_hot(labels, 3), weights).numpy()  # [B]: every item with Kmax = 3 channels
    assert np.all(np.isfinite(padded))
    for index, k in enumerate(talkers):
        alone = loss(embeddings[index:index + 1], tf.one_hot(labels[index:index + 1], k), weights[index:index + 1])
        np.testing.assert_allclose(padded[index], alone.numpy()[0], rtol=1e-6, atol=1e-7)
    # and it is not the loss of another talker count: padding changes nothing, a real source does
    wrong = loss(embeddings[:1], tf.one_hot(np.minimum(labels[:1] + np.arange(300) % 2, 2), 3), weights[:1])
    assert not np.isclose(wrong.numpy()[0], padded[0])


@pytest.mark.parametrize("loss_class", [DeepClusteringLoss, WhitenedDeepClusteringLoss])
def test_the_keras_losses_weight_the_padding_out_of_packed_targets(loss_class):
    talkers = (1, 2, 3, 2)
    embeddings, labels, weights = _batch(talkers, 3, bins=4 * 10, dim=5, seed=1)
    y_pred = embeddings.reshape(len(talkers), 4, 10, 5)  # [B, T, F, D]
    targets = {"ibm": labels.reshape(len(talkers), 4, 10), "active": weights.reshape(len(talkers), 4, 10)}
    config = ExperimentConfig(talkers=(1, 2, 3), dc_loss="dc_whitened" if loss_class is WhitenedDeepClusteringLoss
                              else "dc")
    _, y_true = make_packer(config)(None, targets)
    assert y_true.shape[-1] == 3 + 1  # Kmax IBM channels, then the weight
    per_item = loss_class().call(y_true, y_pred).numpy()  # [B]
    for index, k in enumerate(talkers):
        alone = loss_class().call(packed_targets({key: value[index:index + 1] for key, value in targets.items()}, k),
                                  y_pred[index:index + 1]).numpy()[0]
        np.testing.assert_allclose(per_item[index], alone, rtol=1e-6, atol=1e-7)


def test_a_talker_silent_throughout_a_chunk_keeps_the_whitened_loss_finite():
    embeddings, labels, weights = _batch((3,), 3, seed=2)
    labels[labels == 1] = 0  # source 1 dominates no bin: an empty source inside the real ones
    value = whitened_deep_clustering_loss(embeddings, tf.one_hot(labels, 3), weights).numpy()[0]
    alone = whitened_deep_clustering_loss(embeddings, tf.one_hot(np.where(labels == 2, 1, 0), 2), weights).numpy()[0]
    assert np.isfinite(value)
    np.testing.assert_allclose(value, alone, rtol=1e-6)


def test_two_talker_losses_are_bit_identical_to_the_losses_before_talker_counts():
    embeddings, labels, weights = _batch((2,) * 5, 2, seed=3)
    targets = {"ibm": labels.reshape(5, 10, 30), "active": weights.reshape(5, 10, 30)}
    for dc_loss, loss_class, reference in [("dc", DeepClusteringLoss, _dc_loss_as_of_7fb0b7f),
                                           ("dc_whitened", WhitenedDeepClusteringLoss, _whitened_loss_as_of_7fb0b7f)]:
        config = ExperimentConfig.for_experiment("deepclustering", dc_loss=dc_loss)
        _, y_true = make_packer(config)(None, targets)
        np.testing.assert_array_equal(y_true.numpy(), packed_targets(targets, 2).numpy())  # as before
        now = loss_class().call(y_true, embeddings.reshape(5, 10, 30, -1)).numpy()
        before = reference(embeddings, tf.one_hot(labels, 2), weights).numpy()
        np.testing.assert_array_equal(now, before)


# ----------------------------------------------------------------------------- accuracies


def test_accuracies_score_each_item_with_its_own_talker_count():
    ibm = np.zeros((2, 3, 4), np.int64)
    ibm[1, :, 2:] = 1  # item 0: one talker; item 1: two
    active = np.ones_like(ibm, dtype=bool)
    assert item_talkers(ibm, active) == [1, 2]
    labels = np.stack([np.zeros((3, 4), np.int64), 1 - ibm[1]])  # both right up to a permutation
    fixed, pit = batch_accuracies(labels, ibm, active, item_talkers(ibm, active))
    assert (fixed, pit) == (0.5, 1.0)  # item 1's labels are swapped: fixed order 0, PIT 1


# ----------------------------------------------------------------------------- counting


def blobs(k: int, points: int = 2000, dim: int = 20, spread: float = 0.4, seed: int = 0) -> np.ndarray:
    """Unit vectors [N, D] around k orthonormal directions, shares 100 % / 60-40 % / 50-30-20 %."""
    rng = np.random.default_rng(seed)
    centres = np.linalg.qr(rng.normal(size=(dim, dim)))[0][:k]
    shares = {1: [1.0], 2: [0.6, 0.4], 3: [0.5, 0.3, 0.2]}[k]
    parts = [centre + spread / np.sqrt(dim) * rng.normal(size=(int(share * points), dim))
             for centre, share in zip(centres, shares)]
    cloud = np.concatenate(parts)
    return cloud / np.linalg.norm(cloud, axis=1, keepdims=True)


def test_the_counting_registry_is_the_configs_list():
    assert tuple(counting.COUNTERS) == EMBEDDING_COUNT_METHODS


@pytest.mark.parametrize("method", EMBEDDING_COUNT_METHODS)
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("spread", [0.3, 0.6])
def test_each_counting_method_counts_blobs_on_the_sphere(method, k, spread):
    params = {}
    if method == "participation":  # chosen as on validation: wider blobs add more directions per talker
        params = {"directions_per_talker": {0.3: 1.1, 0.6: 1.9}[spread]}
    assert counting.COUNTERS[method](blobs(k, spread=spread, seed=k), 3, **params) == k


@pytest.mark.parametrize("method", EMBEDDING_COUNT_METHODS)
def test_counts_stay_within_k_max_and_an_empty_input_is_no_active_bins(method):
    assert counting.COUNTERS[method](blobs(3, seed=4), 2) <= 2
    assert counting.COUNTERS[method](blobs(2, seed=4), 1) == 1
    with pytest.raises(ValueError, match="no active bins"):
        counting.COUNTERS[method](np.zeros((0, 20)), 3)


def test_the_participation_ratio_counts_the_directions_and_its_parameter_the_directions_per_talker():
    axes = np.eye(12)
    assert counting.participation_ratio(np.repeat(axes[:1], 50, axis=0)) == pytest.approx(1.0)
    shares = np.repeat(axes[:3], [50, 30, 20], axis=0)  # three orthogonal talkers, shares 0.5 / 0.3 / 0.2
    assert counting.participation_ratio(shares) == pytest.approx(1 / (0.5 ** 2 + 0.3 ** 2 + 0.2 ** 2))
    assert counting.count_participation(shares, 3) == 3  # a ratio of 2.63 rounds to 3 directions
    for directions in range(1, 8):  # spread evenly over that many orthogonal directions: a ratio of that many
        spread = np.repeat(axes[:directions], 10, axis=0)
        assert counting.participation_ratio(spread) == pytest.approx(directions)
        assert counting.count_participation(spread, 12) == directions  # one direction per talker
        # the first talker one direction, each further one 2: ratios 1 | 2-3 | 4+ are 1 | 2 | 3 talkers
        assert counting.count_participation(spread, 3, directions_per_talker=2.0) == min(3, 1 + directions // 2)
    with pytest.raises(ValueError, match="directions_per_talker"):
        counting.count_participation(shares, 3, directions_per_talker=0.0)


def test_count_talkers_uses_the_active_bins_and_keeps_to_the_allowed_counts():
    cloud = blobs(3, points=3000, seed=6)  # [N, D]
    embeddings = cloud.reshape(30, 100, 20)
    active = np.ones((30, 100), bool)
    assert counting.count_talkers(embeddings, active, "eigenvalues", (1, 2, 3)) == 3
    assert counting.count_talkers(embeddings, active, "eigenvalues", (1, 2)) == 2  # the nearest allowed count
    only_first = active.copy()
    only_first.reshape(-1)[1500:] = False  # the first 1500 points: the first talker's
    assert counting.count_talkers(embeddings, only_first, "eigengap", (1, 2, 3)) == 1
    with pytest.raises(ValueError, match="no active bins"):
        counting.count_talkers(embeddings, np.zeros_like(active), "meanshift", (1, 2, 3))


def test_the_silhouette_equals_scikit_learns_with_cosine_distance():
    metrics = pytest.importorskip("sklearn.metrics")
    cloud = blobs(3, points=300, seed=7)
    labels = np.repeat([0, 1, 2], [150, 90, 60])
    labels[:3] = 2  # some wrong labels
    assert counting.silhouette(cloud, labels) == pytest.approx(metrics.silhouette_score(cloud, labels, metric="cosine"),
                                                               abs=1e-6)


@pytest.mark.parametrize("readout", ["kmeans", "meanshift"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_read_masks_of_a_counting_model_gives_one_mask_per_counted_talker(readout, k):
    config = ExperimentConfig.for_experiment("meanshift", talkers=(1, 2, 3), count_method="eigenvalues",
                                             readout=readout)
    embeddings = blobs(k, points=3000, seed=8).reshape(30, 100, 20)
    result = read_masks(embeddings, np.ones((30, 100), bool), config, estimate_count=True)
    assert result.n_found == k and len(result.masks) == k
    np.testing.assert_allclose(result.masks.sum(axis=0), 1.0, atol=1e-5)
    assert counts_talkers(config, readout) and not counts_talkers(config, "pca_sign")  # PCA sign splits in two
    assert not counts_talkers(ExperimentConfig.for_experiment("meanshift"))  # trained on 2 talkers: no count


def test_the_configs_count_threshold_sets_the_counting_methods_parameter():
    embeddings = blobs(3, points=3000, seed=9).reshape(30, 100, 20)  # shares 50 / 30 / 20 %
    active = np.ones((30, 100), bool)
    counts = {}
    for threshold in (None, 0.25, 0.4):
        config = ExperimentConfig.for_experiment("meanshift", talkers=(1, 2, 3), count_method="eigenvalues",
                                                 count_threshold=threshold, readout="kmeans")
        counts[threshold] = read_masks(embeddings, active, config, estimate_count=True).n_found
    assert counts == {None: 3, 0.25: 2, 0.4: 1}  # eigenvalues above the share: 3 at the default 0.1
    meanshift = ExperimentConfig.for_experiment("meanshift", talkers=(1, 2), meanshift_bandwidth=0.3)
    assert counting.config_params(meanshift) == {"bandwidth": 0.3}  # the clustering's bandwidth, unless set
    assert counting.config_params(meanshift.replace(count_threshold=0.2)) == {"bandwidth": 0.2}
    assert counting.config_params(meanshift.replace(count_method="eigengap", count_threshold=0.2)) == {}
    assert set(counting.THRESHOLDS) <= set(COUNT_METHODS)
    with pytest.raises(ValueError, match="count_threshold"):
        ExperimentConfig(count_threshold=0.0)
    assert "count_threshold" in RESUMABLE_FIELDS  # a test-time choice


# ----------------------------------------------------------------------------- separate


def _constant_embedding_run(folder):
    """A run folder of a tiny dc network trained for talkers {1, 2} whose every bin has the same embedding."""
    from speechsep.io import atomic_save_model, atomic_write_json
    from speechsep.nn.models import build_model
    from speechsep.signal import N_BINS

    config = ExperimentConfig.for_experiment("meanshift", talkers=(1, 2), count_method="eigengap", readout="kmeans",
                                             jit_compile=False, **TINY_SIZES)
    model = build_model(config)
    layer = model.get_layer("embedding")
    kernel, bias = layer.get_weights()
    layer.set_weights([np.zeros_like(kernel), np.tile(np.eye(config.embedding_dim)[0], N_BINS).astype(bias.dtype)])
    folder.mkdir(parents=True)
    config.save(folder / "config.json")
    atomic_write_json(folder / "stats.json", {"mean": [0.0] * N_BINS, "std": [1.0] * N_BINS, "split": "train"})
    atomic_save_model(model, folder / "best.keras")
    return folder


def test_separate_gives_a_lone_voice_back_as_one_file_and_says_so(tmp_path, capsys):
    from speechsep.__main__ import main

    run = _constant_embedding_run(tmp_path / "run")
    voice_path = write_audio(tmp_path / "in" / "solo.wav", voice(0, seconds=1.5))
    assert main(["separate", "--model", str(run), "--out", str(tmp_path / "out"), str(voice_path)]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["solo_s1.wav"]
    assert "found 1 talker" in capsys.readouterr().out
    # --speakers still forces the count
    assert main(["separate", "--model", str(run), "--out", str(tmp_path / "two"), "--speakers", "2",
                 str(voice_path)]) == 0
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["solo_s1.wav", "solo_s2.wav"]


def test_separate_refuses_bad_counts_and_silence_with_one_line(tmp_path, capsys):
    from speechsep.__main__ import main

    run = _constant_embedding_run(tmp_path / "run")
    voice_path = write_audio(tmp_path / "solo.wav", voice(0))
    silent = write_audio(tmp_path / "silent.wav", np.zeros(8000, np.float32))
    with pytest.raises(SystemExit):
        main(["separate", "--model", str(run), "--talkers", "1-3", str(voice_path)])
    err = capsys.readouterr().err
    assert "--talkers {1, 2, 3}" in err and "trained for: {1, 2} talkers" in err  # both sets named
    with pytest.raises(SystemExit):
        main(["separate", "--model", str(run), "--speakers", "0", str(voice_path)])
    assert "--speakers must be at least 1" in capsys.readouterr().err
    assert main(["separate", "--model", str(run), "--out", str(tmp_path / "out"), str(silent)]) == 1
    err = capsys.readouterr().err
    assert "no active bins" in err and "nan" not in err.lower()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    tiny = write_audio(tmp_path / "click.wav", np.r_[np.zeros(400), 0.5, np.zeros(400)].astype(np.float32))
    assert main(["separate", "--model", str(run), "--speakers", "2000", str(tiny)]) == 1
    assert "2000 speakers asked for, but the recording has only" in capsys.readouterr().err


def test_evaluate_counted_scores_what_separate_gives(tmp_path, trained_runs, capsys):
    """A model that counts every mixture as one talker gives the mixture back: 0 dB SDRi, the count never right."""
    from speechsep.__main__ import main

    run = _constant_embedding_run(tmp_path / "run")
    summary = evaluate_command_summary(main, ["evaluate", "--model", str(run), "--corpus", "toy", "--mixtures", "2",
                                              "--speakers", "2", "--counted", "--out", str(tmp_path / "eval")])
    overall = summary["overall"]
    assert overall["speaker_count_accuracy"] == 0.0
    assert overall["sdr_improvement"]["mean"] == pytest.approx(0.0, abs=0.05)
    assert summary["method"].endswith("kmeans-counted")
    with pytest.raises(SystemExit):  # a two-talker model cannot count
        main(["evaluate", "--model", str(trained_runs / "deepclustering"), "--corpus", "toy", "--mixtures", "2",
              "--counted", "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert "needs a model trained on several talker counts" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()


def evaluate_command_summary(main, argv) -> dict:
    """Run ``python -m speechsep evaluate`` and read back the summary it wrote."""
    assert main(argv) == 0
    return json.loads((Path(argv[argv.index("--out") + 1]) / "evaluation.json").read_text())


# ----------------------------------------------------------------------------- training


@pytest.mark.slow  # trains a tiny network for a few seconds
def test_a_tiny_run_trains_on_one_and_two_talkers(tmp_path):
    experiment = EXPERIMENTS["meanshift"]
    out = tmp_path / "run"
    args = list(TINY_DC_ARGS) + ["--dynamic-mixing", "--steps-per-epoch", "2", "--talkers", "1-2",
                                        "--count-method", "eigengap", "--out", str(out)]
    run = ExperimentRun(experiment.name, None, None, args)
    assert run.config.talkers == (1, 2) and run.config.num_speakers == 2
    results = run.run_all()
    history = json.loads((out / "run.json").read_text())["history"]
    assert np.all(np.isfinite(history["loss"])) and np.all(np.isfinite(history["val_loss"]))
    assert "val_acc_pit" in history and results["overall"]["mixtures"] == 2
    assert "speaker_count_accuracy" in results["overall"]  # the eigengap count of each test mixture, scored
    assert ExperimentConfig.load(out / "config.json").talkers == (1, 2)


def test_bench_separate_times_the_count_of_a_counting_model(tmp_path, capsys):
    from benchmarks.__main__ import main as bench_main

    run = _constant_embedding_run(tmp_path / "run")
    rows = bench_main(["separate", "--model", str(run), "--corpus", "toy", "--repeats", "1"])
    assert [row["readout"] for row in rows] == ["kmeans", "meanshift", "kmeans + eigengap count",
                                                "meanshift + eigengap count"]
    assert all(row["seconds"] > 0 for row in rows)
