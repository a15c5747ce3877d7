"""From a trained network to masks, labels, waveforms and bin accuracies.

Readouts (``ExperimentConfig.readout``):

* ``mask``: the network's sigmoid mask m for source 1; masks are (m, 1 − m)
  (soft masks for resynthesis, labels = dominant mask);
* ``pca_sign``: sign of the first principal component of the embeddings of
  the active bins (the original "loss alone, no clustering" experiment);
* ``kmeans`` / ``meanshift``: clustering of the embeddings of the active bins
  (:mod:`speechsep.separation.cluster`), every bin assigned to its nearest centre (binary
  masks), or with ``config.soft_mask_beta`` soft masks from the posteriors
  ``p(c|v) ∝ exp(β·vᵀμ_c)`` (labels stay the nearest centre);
* ``mask_head``: the masks of a Chimera++ network's mask head (its
  embeddings still serve the clustering readouts); of its C masks, the K
  that take most of the active bins (:func:`select_masks`);
* ``blend``: the mean of the k-means masks and the mask head's masks,
  matched to each other by their overlap (:func:`match_masks`).

A Chimera++ network outputs a dict ``{"embedding": [T, F, D], "mask": [T, F, C],
"count": [C]}`` (the heads it has) per utterance; every other network one array.

Accuracy is the share of ACTIVE bins whose IBM label is right (silent bins are
weighted out), in two forms: with the fixed speaker order (as the original
did) and permutation-invariant (best label permutation per utterance).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from pathlib import Path

import numpy as np

from speechsep import signal
from speechsep.separation import cluster
from speechsep.config import ExperimentConfig


def bin_accuracy(labels: np.ndarray, ibm: np.ndarray, active: np.ndarray, permutation_invariant: bool,
                 num_sources: int = 2) -> float:
    """Share of active bins labelled right. labels, ibm, active: [..., T, F] for one utterance."""
    weight = active.astype(np.float64)
    total = weight.sum()
    if total == 0:
        return float("nan")
    if not permutation_invariant:
        return float((weight * (labels == ibm)).sum() / total)
    best = 0.0
    for permutation in itertools.permutations(range(max(num_sources, int(labels.max()) + 1))):
        relabelled = np.asarray(permutation)[labels]
        best = max(best, float((weight * (relabelled == ibm)).sum() / total))
    return best


def batch_accuracies(labels: np.ndarray, ibm: np.ndarray, active: np.ndarray, num_sources) -> tuple:
    """Mean fixed-order and permutation-invariant accuracy over items [B, T, F] (NaN items skipped).

    ``num_sources``: one count for every item, or one per item ([B]; a batch of
    mixtures of a varying number of talkers).
    """
    counts = [int(num_sources)] * len(labels) if np.ndim(num_sources) == 0 else [int(k) for k in num_sources]
    fixed = [bin_accuracy(l, i, a, False, k) for l, i, a, k in zip(labels, ibm, active, counts)]
    pit = [bin_accuracy(l, i, a, True, k) for l, i, a, k in zip(labels, ibm, active, counts)]
    return float(np.nanmean(fixed)), float(np.nanmean(pit))


def item_talkers(ibm: np.ndarray, active: np.ndarray) -> list[int]:
    """The talkers of each item [B, T, F]: how many sources dominate at least one active bin (at least 1)."""
    return [max(1, len(np.unique(i[a]))) for i, a in zip(np.asarray(ibm), np.asarray(active, dtype=bool))]


@dataclasses.dataclass
class Readout:
    """Masks [C, T, F], hard labels [T, F], and what produced them."""

    masks: np.ndarray
    labels: np.ndarray
    embeddings: np.ndarray | None = None
    n_found: int | None = None


def split_batch(outputs) -> list:
    """A batch of network outputs (array [B, ...] or dict of arrays [B, ...]) -> one output per item."""
    if isinstance(outputs, dict):
        arrays = {key: np.asarray(value) for key, value in outputs.items()}
        return [{key: value[index] for key, value in arrays.items()} for index in range(len(arrays["embedding"]))]
    return list(np.asarray(outputs))


def embeddings_of(output) -> np.ndarray:
    """The embeddings [T, F, D] (or mask [T, F]) of one utterance's output, whatever its heads."""
    return output["embedding"] if isinstance(output, dict) else output


def select_masks(masks: np.ndarray, active: np.ndarray, num_sources: int) -> np.ndarray:
    """The ``num_sources`` masks [C, T, F] that take most of the active bins, renormalised to sum to 1 per bin.

    A mask head predicts C = the most talkers it was trained on; a mixture of
    K < C talkers leaves C − K masks near zero, and these are the ones dropped.
    """
    if masks.shape[0] < num_sources:
        raise ValueError(f"the mask head predicts {masks.shape[0]} sources, not {num_sources}; "
                         "use a clustering readout (--clusterer kmeans) for another number of speakers")
    if masks.shape[0] == num_sources:
        return masks
    weight = np.asarray(active, dtype=bool)
    mass = masks[:, weight].sum(axis=1) if weight.any() else masks.reshape(len(masks), -1).sum(axis=1)  # [C]
    kept = masks[np.sort(np.argsort(-mass, kind="stable")[:num_sources])]  # [K, T, F], in the head's order
    return kept / np.maximum(kept.sum(axis=0, keepdims=True), 1e-8)


def _mask_head_readout(output, active: np.ndarray, num_sources: int) -> Readout:
    if not isinstance(output, dict) or "mask" not in output:
        raise ValueError("readout 'mask_head' needs a network trained with a mask head (config.mask_head)")
    masks = np.moveaxis(np.asarray(output["mask"], dtype=np.float32), -1, 0)  # [C, T, F]
    masks = select_masks(masks, active, num_sources)  # [K, T, F]
    return Readout(masks, np.argmax(masks, axis=0).astype(np.int64), output["embedding"], masks.shape[0])


def match_masks(reference: np.ndarray, masks: np.ndarray, active: np.ndarray) -> np.ndarray:
    """``masks`` [K, T, F] reordered to best overlap ``reference`` [K, T, F] on the active bins (a permutation)."""
    weight = np.asarray(active, dtype=np.float64)
    overlap = np.einsum("itf,jtf,tf->ij", reference, masks, weight)  # [K, K]
    best = max(itertools.permutations(range(len(masks))),
               key=lambda order: sum(overlap[i, j] for i, j in enumerate(order)))
    return masks[list(best)]


def _blend_readout(output, active: np.ndarray, config: ExperimentConfig, num_sources: int, seed: int) -> Readout:
    """The mean of the k-means masks of the embeddings and the mask head's masks, matched by overlap."""
    clustered = read_masks(output, active, config, num_sources, "kmeans", seed)
    head = _mask_head_readout(output, active, num_sources)
    masks = 0.5 * (clustered.masks[:num_sources] + match_masks(clustered.masks[:num_sources], head.masks, active))
    return Readout(masks, np.argmax(masks, axis=0).astype(np.int64), clustered.embeddings, num_sources)


COUNTING_READOUTS = ("kmeans", "meanshift", "mask_head", "blend")  # the readouts that separate any number of sources


def counts_talkers(config: ExperimentConfig, readout: str | None = None) -> bool:
    """Whether ``config``'s model counts talkers with ``readout`` (default: its own): it was trained on a
    varying number of talkers and the readout separates any number of sources (not PCA sign, not a mask)."""
    return config.counts_talkers and (readout or config.readout) in COUNTING_READOUTS


def check_talker_limit(config: ExperimentConfig, num_sources: int, readout: str | None = None) -> None:
    """``ValueError`` naming the limit when ``num_sources`` exceeds the most talkers a model can separate: the
    largest count a counting model (``config.talkers``) trained on, or the mask head's sources."""
    readout = readout or config.readout
    if (config.counts_talkers or readout in ("mask_head", "blend")) and num_sources > config.max_talkers:
        raise ValueError(f"{num_sources} talkers asked for, but this model separates at most {config.max_talkers} "
                         f"(it was trained on mixtures of {', '.join(map(str, config.talker_set))} talkers)")


def read_masks(output, active: np.ndarray, config: ExperimentConfig, num_sources: int | None = None,
               readout: str | None = None, seed: int = 0, estimate_count: bool = False,
               talkers=None) -> Readout:
    """Turn one utterance's network output into masks.

    output : [T, F] mask (mask models), [T, F, D] embeddings (dc) or the dict
    ``{"embedding", "mask"}`` of a Chimera++ network;
    active : [T, F] bool. With ``estimate_count`` the number of sources is
    estimated (``Readout.n_found``): by a model trained on a varying number
    of talkers (``config.counts_talkers``) with ``config.count_method``
    (:func:`speechsep.separation.counting.count_talkers`), one of ``talkers``
    (default: the trained set ``config.talkers``), and the readout then
    clusters ``num_sources`` sources when given (an evaluation that knows K
    and scores the count apart), else the estimate; otherwise (mean-shift
    only) the masks are the clusters mean-shift finds.
    """
    readout = readout or config.readout
    if estimate_count and counts_talkers(config, readout):
        from speechsep.separation import counting

        count = counting.count_output(output, active, config.count_method, talkers or config.talker_set,
                                      seed=seed, **counting.config_params(config))
        result = read_masks(output, active, config, num_sources or count, readout, seed)
        return dataclasses.replace(result, n_found=count)
    num_sources = num_sources or config.num_speakers
    check_talker_limit(config, num_sources, readout)
    if readout == "mask_head":
        return _mask_head_readout(output, active, num_sources)
    if readout == "blend":
        return _blend_readout(output, active, config, num_sources, seed)
    output = embeddings_of(output)
    if readout == "mask":
        first = np.clip(output, 0.0, 1.0)  # [T, F]
        labels = (first <= 0.5).astype(np.int64)  # source 1 (label 0) where its mask dominates
        return Readout(np.stack([first, 1.0 - first]), labels)
    if output.ndim != 3:
        raise ValueError(f"readout {readout!r} needs embeddings [T, F, D], got shape {output.shape}")
    if readout == "pca_sign":
        labels = cluster.principal_component_sign(output, active)
        return Readout(signal.masks_from_labels(labels, 2), labels, output, 2)
    kwargs = {}
    if readout == "meanshift" and config.meanshift_bandwidth is not None:
        kwargs["bandwidth"] = config.meanshift_bandwidth
    if estimate_count and readout != "meanshift":
        raise ValueError(f"only mean-shift estimates the number of speakers, not {readout!r}")
    result = cluster.cluster_embeddings(output, active, method=readout, seed=seed,
                                        n_clusters=None if estimate_count else num_sources, **kwargs)
    count = int(result.labels.max()) + 1 if estimate_count else max(num_sources, int(result.labels.max()) + 1)
    if config.soft_mask_beta is not None and len(result.centers):
        masks = cluster.soft_masks(output, result.centers, config.soft_mask_beta)  # [K, T, F]
        missing = max(0, count - len(masks))  # k-means found fewer distinct clusters than sources
        masks = np.concatenate([masks, np.zeros((missing,) + masks.shape[1:], np.float32)])  # [max(K, count), T, F]
    else:
        masks = signal.masks_from_labels(result.labels, count)
    return Readout(masks, result.labels, output, result.n_found)


@functools.lru_cache(maxsize=None)
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()  # scans the loaded libraries once


def single_threaded_blas():
    """A context in which NumPy's BLAS runs on one thread.

    The readout's matrix products are small ([4000, D] × [D, K]); a threaded
    OpenBLAS gains nothing on them, and its worker threads keep spinning after
    each call, taking the cores from TensorFlow's next forward pass (on 2
    cores that doubled the time of ``separate``; README, "Separation speed").
    """
    return _blas_controller().limit(limits=1, user_api="blas")


def prefetched(load, items, ahead: int = 2):
    """Yield ``(item, future)`` in order, with ``load(item)`` running in a thread up to ``ahead`` items early.

    ``future.result()`` returns ``load(item)`` or raises its exception, so one
    bad file does not stop the others. Decoding and resampling the next files
    overlap the network's pass over the current one (NumPy, soundfile and
    TensorFlow release the GIL).
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    items = list(items)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = deque()
        for index, item in enumerate(items):
            while len(pending) <= ahead and index + len(pending) < len(items):
                pending.append(pool.submit(load, items[index + len(pending)]))
            yield item, pending.popleft()


class Separator:
    """A trained run folder, ready to separate waveforms.

    Loads ``config.json``, ``stats.json`` (normalisation) and ``best.keras``
    (falls back to ``last.keras``) from ``run_dir``.
    """

    def __init__(self, model, config: ExperimentConfig, mean: np.ndarray, std: np.ndarray):
        from speechsep.nn.models import inference_function

        self.model, self.config, self.mean, self.std = model, config, mean, std
        self._forward = inference_function(model, config.jit_compile)

    @classmethod
    def from_run_dir(cls, run_dir) -> "Separator":
        from speechsep.nn.models import load_run_checkpoint
        from speechsep.data.shards import load_stats

        run_dir = Path(run_dir)
        config_path = run_dir / "config.json"
        if not config_path.is_file():
            raise ValueError(f"{run_dir} is not a training run folder (no config.json)")
        config = ExperimentConfig.load(config_path)
        model = load_run_checkpoint(run_dir)
        mean, std = load_stats(run_dir)
        return cls(model, config, mean, std)

    def features(self, mixture_spectrum: np.ndarray) -> np.ndarray:
        """Normalised log-magnitude [T, F] float32."""
        return ((signal.log_magnitude(mixture_spectrum) - self.mean) / self.std).astype(np.float32)

    def network_output(self, mixture_spectrum: np.ndarray):
        """Run the network on one whole utterance: [T, F], [T, F, D] or (Chimera++) {"embedding", "mask"}."""
        features = self.features(mixture_spectrum)[None]  # [1, T, F]
        return split_batch(self._forward(features))[0]

    def separate(self, mixture: np.ndarray, num_sources: int | None = None, readout: str | None = None,
                 seed: int = 0, estimate_count: bool = False, talkers=None,
                 check_active: bool = False, output=None) -> tuple[np.ndarray, Readout]:
        """mixture [T] at 8 kHz -> estimates [C, T] float32 (mixture phase) and the readout.

        ``estimate_count`` and ``talkers``: see :func:`read_masks`. With
        ``check_active`` (``python -m speechsep separate``) a mixture without
        active bins (digital silence), or with fewer active bins than
        ``num_sources``, is a ``ValueError`` instead of silent or missing
        estimates. ``output``: the network's output for this mixture when the
        caller already ran it (several files in one batch,
        :func:`speechsep.separation.longform.network_outputs`).
        """
        mixture = np.asarray(mixture, dtype=np.float32)
        if mixture.ndim != 1 or mixture.size == 0:
            raise ValueError(f"separate expects a non-empty mono waveform, got shape {mixture.shape}")
        if num_sources is not None and int(num_sources) < 1:
            raise ValueError(f"the number of speakers must be at least 1, got {num_sources}")
        spectrum = signal.stft(mixture)  # [N, F]
        active = signal.active_bins(spectrum)
        if check_active:
            found = int(active.sum())
            if found == 0:
                raise ValueError("no active bins: the recording is silent, there is nothing to separate")
            if num_sources is not None and num_sources > found:
                raise ValueError(f"{num_sources} speakers asked for, but the recording has only {found} active "
                                 "time-frequency bins")
        output = self.network_output(spectrum) if output is None else output
        with single_threaded_blas():
            result = read_masks(output, active, self.config, num_sources, readout, seed, estimate_count, talkers)
            return signal.apply_masks(spectrum, result.masks, len(mixture)), result
