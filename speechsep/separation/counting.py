"""Counting the talkers of a mixture from its deep-clustering embeddings (NumPy only).

A network trained on mixtures of a varying number of talkers (``ExperimentConfig.talkers``,
e.g. ``(1, 2, 3)``) embeds the bins of one talker near one direction and those of
different talkers near orthogonal directions. Each method of :data:`COUNTERS`
is a function ``(points [N, D], k_max, seed=0, **params) -> K`` with
``1 <= K <= k_max``, on the unit-normalised embeddings of the active bins:

- ``"meanshift"``: the number of modes of the spherical mean-shift
  (:func:`speechsep.separation.cluster.spherical_mean_shift`, its bandwidth
  and minimum cluster size);
- ``"eigenvalues"``: the number of eigenvalues of the normalised Gram matrix
  ``VᵀV / N`` (whose eigenvalues sum to 1: for ideal embeddings they are the
  talkers' shares of the bins) above ``threshold``;
- ``"participation"``: the participation ratio ``1 / Σ λ²`` of the same
  spectrum, the number of directions the embeddings effectively fill: one
  for a lone voice, and ``directions_per_talker`` more for each further
  talker (a third talker whose bins spread over a few minor directions still
  adds to it, where the eigenvalue counter loses its share among them);
- ``"eigengap"``: the K with the largest gap ``log λ_K − log λ_{K+1}`` of
  the same spectrum (largest first);
- ``"silhouette"``: k-means for K = 2..k_max, the K of the best mean
  silhouette (cosine distance); K = 1 when no K reaches ``min_silhouette``
  (the silhouette is undefined for one cluster).

The parameters' defaults are starting points, to be chosen on validation
mixtures (``python -m benchmarks meanshift`` prints each method's
count-confusion matrix). :func:`count_talkers` applies a method to a
mixture's embeddings [T, F, D].
"""

from __future__ import annotations

import numpy as np

from speechsep.config import EMBEDDING_COUNT_METHODS
from speechsep.separation.cluster import MAX_FIT_POINTS, _unit_rows, fit_rows, kmeans, spherical_mean_shift


def _checked(points, k_max):
    """Unit rows [N, D] float32 and k_max capped at N; ``ValueError`` for no points or ``k_max < 1``."""
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[0] == 0:
        raise ValueError("no active bins: there is nothing to count (is the mixture silent?)")
    if int(k_max) < 1:
        raise ValueError(f"k_max must be >= 1, got {k_max}")
    return _unit_rows(points), min(int(k_max), points.shape[0])


def gram_spectrum(points) -> np.ndarray:
    """Eigenvalues of ``VᵀV / N`` for unit rows ``V`` [N, D], largest first [D] (they sum to 1)."""
    points = _unit_rows(points).astype(np.float64)
    values = np.linalg.eigvalsh(points.T @ points / len(points))  # [D], ascending
    return np.clip(values[::-1], 0.0, None)


def count_meanshift(points, k_max, seed=0, bandwidth=0.1, min_cluster_fraction=0.1) -> int:
    """The number of spherical mean-shift modes (clusters of at least ``min_cluster_fraction`` of the points).

    points : [N, D]; returns K in ``1..k_max`` (more modes are counted as ``k_max``).
    """
    points, k_max = _checked(points, k_max)
    _, centers = spherical_mean_shift(points, bandwidth=bandwidth, min_cluster_fraction=min_cluster_fraction,
                                      seed=seed)
    return int(np.clip(len(centers), 1, k_max))


def count_eigenvalues(points, k_max, seed=0, threshold=0.1) -> int:
    """The number of eigenvalues of ``VᵀV / N`` above ``threshold`` (a talker's share of the bins).

    points : [N, D]; returns K in ``1..k_max``. ``seed`` is unused (deterministic).
    """
    points, k_max = _checked(points, k_max)
    return int(np.clip(np.sum(gram_spectrum(points) > threshold), 1, k_max))


def participation_ratio(points) -> float:
    """``1 / Σ λ²`` of the eigenvalues ``λ`` of ``VᵀV / N`` (they sum to 1) for unit rows ``V`` [N, D]: the number
    of directions the points effectively fill, between 1 (all along one direction) and D (spread evenly)."""
    return spectrum_participation(gram_spectrum(points))


def spectrum_participation(spectrum) -> float:
    """``1 / Σ λ²`` of a whole Gram spectrum [D] (:func:`gram_spectrum`), for a caller that already has it."""
    return float(1.0 / np.sum(np.asarray(spectrum, dtype=np.float64) ** 2))


def count_participation(points, k_max, seed=0, directions_per_talker=1.0) -> int:
    """``K = 1 + round((ratio − 1) / directions_per_talker)`` in ``1..k_max``, ``ratio`` the participation ratio.

    A lone voice's embeddings fill about one direction, and each further talker
    adds ``directions_per_talker``: 1 for ideal embeddings (K orthogonal
    talkers of equal share give a ratio of K; unequal shares lower it, e.g.
    0.5 / 0.3 / 0.2 give 2.6, still counted as 3). A trained network's mixed
    bins spread each further talker over more directions, so the parameter is
    chosen on validation. The boundary between K and K + 1 talkers lies at a
    ratio of ``1 + directions_per_talker * (K − 0.5)`` (a tie counts K + 1).
    points : [N, D]; ``seed`` is unused (deterministic).
    """
    points, k_max = _checked(points, k_max)
    if not directions_per_talker > 0:
        raise ValueError(f"directions_per_talker must be > 0, got {directions_per_talker}")
    found = 1 + np.floor((participation_ratio(points) - 1.0) / float(directions_per_talker) + 0.5)
    return int(np.clip(found, 1, k_max))


def count_eigengap(points, k_max, seed=0, floor=1e-4) -> int:
    """The largest eigengap on a log scale: ``argmax over K in 1..k_max of log λ_K − log λ_{K+1}``.

    The eigenvalues of ``VᵀV / N``, largest first, each at least ``floor``.
    On a log scale (the ratio ``λ_K / λ_{K+1}``) because a dominant talker's
    eigenvalue makes the first linear gap large whatever K is (shares 0.5,
    0.3, 0.2 have linear gaps 0.2, 0.1, 0.2). points : [N, D]; ``seed`` is
    unused (deterministic).
    """
    points, k_max = _checked(points, k_max)
    spectrum = np.concatenate([gram_spectrum(points), np.zeros(k_max + 1)])  # padded: D may be <= k_max
    logs = np.log(np.maximum(spectrum[:k_max + 1], floor))
    gaps = logs[:k_max] - logs[1:]  # [k_max]: the gap after the K-th eigenvalue
    return int(np.argmax(gaps)) + 1


def silhouette(points, labels) -> float:
    """Mean silhouette of a labelling of unit rows [N, D] with cosine distance ``1 − cos`` (NumPy).

    ``s_i = (b_i − a_i) / max(a_i, b_i)`` with ``a_i`` the mean distance to
    the other points of its cluster and ``b_i`` the smallest mean distance to
    another cluster; 0 for a point alone in its cluster (as scikit-learn's
    ``silhouette_score``). Needs at least 2 clusters.
    """
    points = _unit_rows(points).astype(np.float64)
    labels = np.asarray(labels)
    clusters = np.unique(labels)
    if len(clusters) < 2:
        raise ValueError("the silhouette needs at least 2 clusters")
    distances = 1.0 - points @ points.T  # [N, N]
    one_hot = (labels[:, None] == clusters[None, :]).astype(np.float64)  # [N, C]
    sizes = one_hot.sum(axis=0)  # [C]
    sums = distances @ one_hot  # [N, C]: summed distance of each point to each cluster
    own = np.searchsorted(clusters, labels)  # [N]
    own_size = sizes[own]
    a = np.where(own_size > 1, sums[np.arange(len(points)), own] / np.maximum(own_size - 1, 1), 0.0)
    means = sums / sizes  # [N, C]
    means[np.arange(len(points)), own] = np.inf
    b = means.min(axis=1)
    s = np.where(own_size > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(s.mean())


def count_silhouette(points, k_max, seed=0, min_silhouette=0.3, max_points=1000, n_init=3) -> int:
    """k-means for K = 2..k_max, the K of the largest mean silhouette; 1 when none reaches ``min_silhouette``.

    points : [N, D]; at most ``max_points`` of them (a random subset drawn
    with ``seed``) are clustered and scored (the silhouette is O(N²)).
    k-means keeps the best of ``n_init`` runs: one run's local optimum (two
    talkers in one cluster, one split in two) scores a low silhouette and
    so a wrong count.
    """
    points, k_max = _checked(points, k_max)
    if len(points) > max_points:
        points = points[np.sort(np.random.default_rng(seed).choice(len(points), max_points, replace=False))]
    best, best_score = 1, -np.inf
    for k in range(2, k_max + 1):
        labels, _ = kmeans(points, k, seed=seed, n_init=n_init)
        if len(np.unique(labels)) < 2:
            continue
        score = silhouette(points, labels)
        if score > best_score:
            best, best_score = k, score
    return best if best_score >= min_silhouette else 1


COUNTERS = {"meanshift": count_meanshift, "eigenvalues": count_eigenvalues, "participation": count_participation,
            "eigengap": count_eigengap, "silhouette": count_silhouette}
"""The counting methods by name (``ExperimentConfig.count_method``): ``(points [N, D], k_max, seed, **params) -> K``."""
assert tuple(COUNTERS) == EMBEDDING_COUNT_METHODS, \
    "speechsep.config.EMBEDDING_COUNT_METHODS must list the counters of this module"

THRESHOLDS = {"meanshift": "bandwidth", "eigenvalues": "threshold", "participation": "directions_per_talker",
              "silhouette": "min_silhouette", "mask_energy": "min_share"}
"""Each method's one tuned parameter, the one ``ExperimentConfig.count_threshold`` sets (eigengap and head have
none)."""


def config_params(config) -> dict:
    """The keyword arguments of ``config.count_method`` that ``config`` sets (for :func:`count_talkers`).

    ``config.count_threshold`` sets the method's :data:`THRESHOLDS` parameter;
    mean-shift without it counts with ``config.meanshift_bandwidth`` (the
    bandwidth its clustering uses). ``{}``: the method's own defaults.
    """
    value = config.count_threshold
    if value is None and config.count_method == "meanshift":
        value = config.meanshift_bandwidth
    name = THRESHOLDS.get(config.count_method)
    return {name: float(value)} if name and value is not None else {}


def count_talkers(embeddings, active, method: str, talkers, seed: int = 0, max_fit_points=MAX_FIT_POINTS,
                  **params) -> int:
    """The number of talkers of one mixture, one of ``talkers``.

    embeddings : [T, F, D]; active : bool [T, F]. The active bins'
    embeddings (at most ``max_fit_points``, a random subset drawn with
    ``seed``, as :func:`speechsep.separation.cluster.cluster_embeddings`
    does) go to ``COUNTERS[method]`` with ``k_max = max(talkers)``; a count
    outside ``talkers`` becomes the nearest count in it (the smaller on a
    tie). ``params`` go to the method (e.g. ``bandwidth`` for mean-shift).
    No active bin is a ``ValueError`` ("no active bins").
    """
    _checked_request(method, talkers)  # before the shapes: a bad method or set is named first
    embeddings, active = np.asarray(embeddings), np.asarray(active, dtype=bool)
    if embeddings.ndim != 3 or active.shape != embeddings.shape[:2]:
        raise ValueError(f"count_talkers expects embeddings [T, F, D] and active [T, F]; "
                         f"got {embeddings.shape} and {active.shape}")
    rows = fit_rows(active, seed, max_fit_points)  # [N]
    if rows.size == 0:
        raise ValueError("no active bins: the mixture is silent, there is nothing to count or separate")
    return count_points(embeddings.reshape(-1, embeddings.shape[-1])[rows], method, talkers, seed, **params)


def count_points(points, method: str, talkers, seed: int = 0, **params) -> int:
    """:func:`count_talkers` on the embeddings it counts, points [N, D] (the active bins it draws)."""
    talkers = _checked_request(method, talkers)
    return nearest_count(COUNTERS[method](points, talkers[-1], seed=seed, **params), talkers)


def nearest_count(found: int, talkers) -> int:
    """The count of ``talkers`` nearest ``found`` (the smaller on a tie)."""
    return min(sorted({int(k) for k in talkers}), key=lambda k: (abs(k - found), k))


def _checked_request(method: str, talkers) -> list[int]:
    """``talkers`` sorted without repeats; ``ValueError`` for an unknown method or a count below 1."""
    if method not in COUNTERS:
        raise ValueError(f"unknown counting method {method!r}; choose from {sorted(COUNTERS)}")
    talkers = sorted({int(k) for k in talkers})
    if not talkers or talkers[0] < 1:
        raise ValueError(f"talkers must be counts >= 1, got {talkers}")
    return talkers


# ----------------------------------------------------------------------------- counters that read other heads


def count_from_head(probabilities, talkers) -> int:
    """The most probable count of a count head's softmax [C] (index k-1: k talkers), among ``talkers``."""
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    talkers = [k for k in sorted({int(k) for k in talkers}) if 1 <= k <= probabilities.size]
    if not talkers:
        raise ValueError(f"the count head predicts 1..{probabilities.size} talkers, none of {sorted(talkers)}")
    return max(talkers, key=lambda k: probabilities[k - 1])


def mask_shares(masks, active) -> np.ndarray:
    """Each mask's share of the active bins: masks [T, F, C], active bool [T, F] -> [C] (sums to 1)."""
    masks, active = np.asarray(masks, dtype=np.float64), np.asarray(active, dtype=bool)
    if not active.any():
        raise ValueError("no active bins: the mixture is silent, there is nothing to count or separate")
    mass = masks[active].sum(axis=0)  # [C]
    return mass / mass.sum()


def count_mask_energy(masks, active, talkers, min_share=0.05) -> int:
    """The number of mask-head masks [T, F, C] that take at least ``min_share`` of the active bins, nearest
    count in ``talkers`` (the smaller on a tie)."""
    return count_shares(mask_shares(masks, active), talkers, min_share)


def count_shares(shares, talkers, min_share=0.05) -> int:
    """The number of masks whose share of the active bins (:func:`mask_shares`, [C]) is at least ``min_share``,
    nearest count in ``talkers`` (the smaller on a tie)."""
    return nearest_count(max(1, int(np.sum(np.asarray(shares) >= min_share))), talkers)


def count_output(output, active, method: str, talkers, seed: int = 0, **params) -> int:
    """The number of talkers of one mixture from one network output, one of ``talkers``.

    ``output``: embeddings [T, F, D] or the dict ``{"embedding", "mask", "count"}``
    of a Chimera++ network; active : bool [T, F]. ``method`` ``"head"`` reads
    the count head, ``"mask_energy"`` the mask head (:func:`count_mask_energy`),
    any other the embeddings (:func:`count_talkers`).
    """
    heads = output if isinstance(output, dict) else {"embedding": output}
    if method in ("head", "mask_energy"):
        needed = "count" if method == "head" else "mask"
        if needed not in heads:
            raise ValueError(f"counting method {method!r} needs a network with a {needed} head")
        if not np.asarray(active, dtype=bool).any():
            raise ValueError("no active bins: the mixture is silent, there is nothing to count or separate")
        if method == "head":
            return count_from_head(heads["count"], talkers)
        return count_mask_energy(heads["mask"], active, talkers, **params)
    return count_talkers(heads["embedding"], active, method, talkers, seed=seed, **params)
