"""Tests of speechsep.separation.cluster (k-means, spherical mean-shift, PCA sign split)."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from speechsep.config import EMBEDDING_READOUTS

from speechsep.separation.cluster import (
    CLUSTERERS,
    ClusteringResult,
    cluster_embeddings,
    kmeans,
    principal_component_sign,
    spherical_mean_shift,
)

DIM = 40


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _sphere_blobs(sizes, spread=0.25, dim=DIM, seed=0, centers=None):
    """Unit vectors around random unit centres, ~``spread`` rad from their centre.

    Returns points [N, D] float32, labels [N], centers [K, D].
    """
    rng = np.random.default_rng(seed)
    if centers is None:
        centers = _unit(rng.standard_normal((len(sizes), dim)))
    points, labels = [], []
    for k, size in enumerate(sizes):
        noise = rng.standard_normal((size, dim)) * spread / np.sqrt(dim)
        points.append(_unit(centers[k] + noise))
        labels.append(np.full(size, k))
    order = rng.permutation(sum(sizes))
    return np.concatenate(points)[order].astype(np.float32), np.concatenate(labels)[order], centers


@pytest.mark.parametrize("sizes", [(600, 400), (500, 300, 200)])
def test_kmeans_recovers_blobs(sizes):
    points, truth, _ = _sphere_blobs(sizes, seed=len(sizes))
    labels, centers = kmeans(points, len(sizes))
    assert centers.shape == (len(sizes), DIM)
    assert adjusted_rand_score(truth, labels) > 0.95


@pytest.mark.parametrize("sizes", [(1200, 800), (1000, 600, 400), (3000, 2000)])
@pytest.mark.parametrize("spread", [0.2, 0.3])
def test_spherical_mean_shift_counts_and_recovers_blobs(sizes, spread):
    points, truth, true_centers = _sphere_blobs(sizes, spread=spread, seed=sum(sizes))
    labels, centers = spherical_mean_shift(points)
    assert len(centers) == len(sizes)
    assert adjusted_rand_score(truth, labels) > 0.95
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 1.0, rtol=1e-5)
    # Each found mode sits close to one true centre; clusters ordered by size.
    assert np.all(np.max(centers @ true_centers.T, axis=1) > 0.97)
    counts = np.bincount(labels)
    assert np.all(np.diff(counts) <= 0)


def test_spherical_mean_shift_drops_tiny_clusters():
    points, _, _ = _sphere_blobs((1000, 900, 60), seed=11)  # the third holds 3% of points
    every_point_seeds = len(points)  # so the tiny blob surely gets a seed of its own
    labels, centers = spherical_mean_shift(points, n_seeds=every_point_seeds, min_cluster_fraction=0.05)
    assert len(centers) == 2 and set(np.unique(labels)) == {0, 1}
    labels, centers = spherical_mean_shift(points, n_seeds=every_point_seeds, min_cluster_fraction=0.0)
    assert len(centers) == 3 and np.bincount(labels)[2] == 60


def test_spherical_mean_shift_rejects_bad_bandwidth():
    with pytest.raises(ValueError, match="bandwidth"):
        spherical_mean_shift(np.eye(3), bandwidth=0.0)


def _as_spectrogram(points, n_frames):
    return points.reshape(n_frames, -1, points.shape[-1])


def test_registry_and_argument_checks():
    assert set(CLUSTERERS) | {"pca_sign"} == set(EMBEDDING_READOUTS)  # every --clusterer choice is implemented
    embeddings = np.ones((2, 3, 4))
    active = np.ones((2, 3), dtype=bool)
    with pytest.raises(ValueError, match="n_clusters"):
        cluster_embeddings(embeddings, active, method="kmeans")
    with pytest.raises(ValueError, match="Unknown clustering method"):
        cluster_embeddings(embeddings, active, method="spectral", n_clusters=2)
    with pytest.raises(ValueError, match="active"):
        cluster_embeddings(embeddings, active[:1], n_clusters=2)


@pytest.mark.parametrize("method", ["kmeans", "meanshift"])
def test_cluster_embeddings_uses_only_active_bins_and_labels_every_bin(method):
    n_frames, n_freqs = 20, 129
    n_bins = n_frames * n_freqs
    rng = np.random.default_rng(3)
    points, truth, _ = _sphere_blobs((n_bins * 6 // 10, n_bins - n_bins * 6 // 10), seed=3)
    active = rng.random(n_bins) < 0.5
    garbage_direction = _unit(rng.standard_normal(DIM))
    garbage = points.copy()
    garbage[~active] = 5.0 * _unit(garbage_direction + 0.05 * rng.standard_normal((np.sum(~active), DIM)))

    clean = cluster_embeddings(_as_spectrogram(points, n_frames), active.reshape(n_frames, n_freqs),
                               method=method, n_clusters=2)
    dirty = cluster_embeddings(_as_spectrogram(garbage, n_frames), active.reshape(n_frames, n_freqs),
                               method=method, n_clusters=2)
    assert isinstance(dirty, ClusteringResult)
    np.testing.assert_allclose(dirty.centers, clean.centers, atol=1e-5)
    assert dirty.n_found == 2
    assert dirty.labels.shape == (n_frames, n_freqs)
    # Active bins are clustered correctly; inactive bins go to their nearest centre.
    flat = dirty.labels.reshape(-1)
    assert adjusted_rand_score(truth[active], flat[active]) > 0.95
    nearest = np.argmax(_unit(garbage) @ dirty.centers.T, axis=1)
    np.testing.assert_array_equal(flat, nearest)
    # Clustering all bins instead would have found the garbage as a third cluster.
    everything = cluster_embeddings(_as_spectrogram(garbage, n_frames), np.ones((n_frames, n_freqs), bool),
                                    method="meanshift")
    assert everything.n_found == 3


def test_cluster_embeddings_meanshift_merges_down_to_n_clusters():
    points, truth, _ = _sphere_blobs((1200, 900, 300), seed=5)
    embeddings = _as_spectrogram(points, 20)
    active = np.ones(embeddings.shape[:2], dtype=bool)
    free = cluster_embeddings(embeddings, active, method="meanshift")
    assert free.n_found == 3 and len(np.unique(free.labels)) == 3
    merged = cluster_embeddings(embeddings, active, method="meanshift", n_clusters=2)
    assert merged.n_found == 3
    assert merged.centers.shape == (2, DIM)
    assert len(np.unique(merged.labels)) == 2
    # The two largest blobs stay apart; the smallest is absorbed.
    flat = merged.labels.reshape(-1)
    assert flat[truth == 0][0] != flat[truth == 1][0]
    assert np.mean(flat[truth == 0] == flat[truth == 0][0]) == 1.0
    # Asking for more clusters than found: the estimate is still reported, and K clusters are given.
    more = cluster_embeddings(embeddings, active, method="meanshift", n_clusters=5)
    assert more.n_found == 3 and more.centers.shape == (5, DIM)
    assert len(np.unique(more.labels)) == 5
    assert cluster_embeddings(embeddings, active, method="meanshift").centers.shape == (3, DIM)


@pytest.mark.parametrize("method", ["kmeans", "meanshift"])
def test_cluster_embeddings_fallbacks_for_silent_input(method):
    embeddings = np.random.default_rng(0).standard_normal((4, 5, DIM))
    silent = cluster_embeddings(embeddings, np.zeros((4, 5), bool), method=method, n_clusters=2)
    np.testing.assert_array_equal(silent.labels, 0)
    assert silent.n_found == 0 and silent.centers.shape == (0, DIM)
    one_active = np.zeros((4, 5), bool)
    one_active[2, 3] = True
    single = cluster_embeddings(embeddings, one_active, method=method, n_clusters=2)
    assert single.n_found == 1 and single.labels.shape == (4, 5)
    np.testing.assert_array_equal(single.labels, 0)


def test_principal_component_sign_separates_antipodal_blobs():
    rng = np.random.default_rng(9)
    direction = _unit(rng.standard_normal(DIM))
    points, truth, _ = _sphere_blobs((700, 500), spread=0.4, seed=9, centers=np.stack([direction, -direction]))
    embeddings = _as_spectrogram(points, 12)
    active = np.ones(embeddings.shape[:2], dtype=bool)
    labels = principal_component_sign(embeddings, active)
    assert labels.shape == (12, 100) and set(np.unique(labels)) == {0, 1}
    assert adjusted_rand_score(truth, labels.reshape(-1)) > 0.95
    # Inactive bins do not steer the component.
    active.reshape(-1)[:200] = False
    garbage = embeddings.copy()
    garbage.reshape(-1, DIM)[:200] = 10.0 * rng.standard_normal((200, DIM))
    partial = principal_component_sign(garbage, active).reshape(-1)
    assert adjusted_rand_score(truth[200:], partial[200:]) > 0.95


def test_the_readout_runs_numpy_blas_on_one_thread_and_restores_it():
    from threadpoolctl import threadpool_info

    from speechsep.separation.separator import single_threaded_blas

    def blas_threads():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = blas_threads()
    assert before, "NumPy's BLAS is not visible to threadpoolctl"
    with single_threaded_blas():
        assert blas_threads() == [1] * len(before)
    assert blas_threads() == before
