"""Throughput helpers: FLOP counting, prefetching, bounded clustering, parallel dynamic mixing."""

import numpy as np
import pytest

from speechsep.config import ExperimentConfig


@pytest.mark.parametrize("recurrent", ["fast", "keras"])
def test_train_step_flops_counts_every_matmul(recurrent):
    from benchmarks.train import train_step_flops
    from speechsep.nn.models import build_model

    config = ExperimentConfig(hidden_units=5, num_layers=2, embedding_dim=3, recurrent=recurrent)
    batch, frames, units, bins, dim = 2, 7, 5, 129, 3
    rows = batch * frames
    lstm = 2 * (2.0 * rows * (bins + units) * 4 * units) + 2 * (2.0 * rows * (2 * units + units) * 4 * units)
    dense = 2.0 * rows * 2 * units * bins * dim
    loss = 2.0 * rows * bins * (dim * dim + dim * 2 + 4)
    assert train_step_flops(build_model(config), batch, frames) == pytest.approx(3 * (lstm + dense + loss))


def test_train_step_flops_counts_the_chimera_heads_and_a_timed_step_runs():
    from benchmarks.train import _fixed_batch, train_step_flops
    from speechsep.nn.models import build_model
    from speechsep.training.trainer import make_loss

    config = ExperimentConfig(hidden_units=5, num_layers=1, embedding_dim=3, talkers=(1, 2, 3), mask_head=True,
                              count_head=True, jit_compile=False)
    plain = config.replace(mask_head=False, count_head=False)
    batch, frames, units, bins = 2, 7, 5, 129
    rows = batch * frames
    mask = 2.0 * rows * 2 * units * bins * 3  # the mask head: per frame, C = 3 masks per bin
    count = 2.0 * batch * (4 * units * 64 + 64 * 3)  # the count head: once per item, on mean + max pooling
    extra = train_step_flops(build_model(config), batch, frames, 3) - train_step_flops(build_model(plain), batch,
                                                                                        frames, 3)
    assert extra == pytest.approx(3 * (mask + count))
    features, targets = _fixed_batch(config)
    model = build_model(config)
    model.compile(optimizer="adam", loss=make_loss(config))
    assert set(targets) == {"embedding", "mask", "count"} and np.isfinite(model.train_on_batch(features, targets)[0])


def test_prefetched_keeps_order_and_reports_each_failure():
    from speechsep.separation.separator import prefetched

    def load(item):
        if item == 2:
            raise ValueError("bad file")
        return item * 10

    seen = []
    for item, future in prefetched(load, range(5)):
        try:
            seen.append((item, future.result()))
        except ValueError as error:
            seen.append((item, str(error)))
    assert seen == [(0, 0), (1, 10), (2, "bad file"), (3, 30), (4, 40)]


def test_clustering_a_subset_labels_every_bin_like_clustering_all():
    from speechsep.separation.cluster import cluster_embeddings

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, (60, 129))  # [T, F]
    centres = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    embeddings = centres[truth] + 0.2 * rng.standard_normal((60, 129, 3))
    active = np.ones(truth.shape, bool)
    subset = cluster_embeddings(embeddings, active, "kmeans", 2, max_fit_points=500)
    full = cluster_embeddings(embeddings, active, "kmeans", 2, max_fit_points=None)
    agreement = max(np.mean(subset.labels == full.labels), np.mean(subset.labels != full.labels))
    assert agreement > 0.99
    assert max(np.mean(subset.labels == truth), np.mean(subset.labels != truth)) > 0.95


def test_kmeans_finds_separated_clusters_and_is_seeded():
    from speechsep.separation.cluster import kmeans

    rng = np.random.default_rng(1)
    points = np.concatenate([rng.normal(-3, 0.3, (50, 2)), rng.normal(3, 0.3, (70, 2))])
    labels, centers = kmeans(points, 2, seed=4)
    assert sorted(np.bincount(labels)) == [50, 70]
    np.testing.assert_allclose(np.sort(centers[:, 0]), [-3, 3], atol=0.2)
    again, _ = kmeans(points, 2, seed=4)
    np.testing.assert_array_equal(labels, again)


@pytest.mark.slow
def test_parallel_dynamic_mixing_is_deterministic_from_the_seed():
    from speechsep.data.mixing import MixingConfig
    from speechsep.data.pipeline import MIXING_STREAMS, make_dynamic_dataset
    from speechsep.data.toy import toy_corpus

    corpus = toy_corpus(num_speakers=4, utterances_per_speaker=2)
    speakers = list(corpus.speakers)
    mean, std = np.zeros(129, np.float32), np.ones(129, np.float32)

    def first_batches(seed):
        dataset = make_dynamic_dataset(corpus, speakers, MixingConfig(), mean, std, batch_size=4,
                                       chunk_frames=10, seed=seed)
        return [features.numpy() for features, _ in dataset.take(MIXING_STREAMS)]

    one, two, other = first_batches(0), first_batches(0), first_batches(1)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(one, other))


def test_recurrence_time_reports_its_matmul_rate():
    from benchmarks.train import recurrence_time

    result = recurrence_time(units=8, batch=4, frames=5, repeats=3)
    flops = 3 * 2.0 * 5 * 2 * 4 * 8 * 32  # forward loop, backward loop and dU of 2 directions
    assert result["seconds"] > 0 and result["gflops"] == pytest.approx(flops / result["seconds"] / 1e9)
