"""Separation metrics: SNR, SI-SDR, BSS Eval (SDR/SIR/SAR), STOI.

Plain numpy; ``fast_bss_eval`` and ``pystoi`` are imported on first use, and
TensorFlow never is.

Conventions
-----------
* Signals are ``[T]`` or ``[C, T]`` (sources, samples) and are converted to
  float64; NaN or ``inf`` samples raise ``ValueError``.
* Every dB value is clipped to ±:data:`METRIC_CLIP_DB` (100 dB): a perfect
  estimate reports +100 dB, and nothing returns NaN or ``inf``.
* Silent signals: a silent estimate has SNR 0 dB; SI-SDR and BSS Eval of a
  pair with a silent reference or a silent estimate are -100 dB (a silent
  output is never rewarded); STOI of a silent estimate is 0.
* No metric here weights out silent time-frequency bins
  (:data:`WEIGHTS_OUT_SILENT_BINS` is ``False``): all are computed on the
  whole waveform. STOI drops silent *frames* of the reference, by its definition.
* ``permutation[i]`` is the index of the estimate assigned to reference ``i``,
  so ``estimates[permutation]`` is aligned with ``references``.

References
----------
- J. Le Roux, S. Wisdom, H. Erdogan, J. R. Hershey, "SDR - half-baked or well
  done?", ICASSP 2019 (SI-SDR).
- E. Vincent, R. Gribonval, C. Fevotte, "Performance measurement in blind
  audio source separation", IEEE TASLP 2006 (BSS Eval SDR/SIR/SAR).
- R. Scheibler, "SDR - Medium rare with fast computations", ICASSP 2022
  (fast_bss_eval).
- C. H. Taal, R. C. Hendriks, R. Heusdens, J. Jensen, "An algorithm for
  intelligibility prediction of time-frequency weighted noisy speech",
  IEEE TASLP 2011 (STOI).
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np

WEIGHTS_OUT_SILENT_BINS = False
"""The metrics are waveform metrics: none weights out silent time-frequency bins."""

METRIC_CLIP_DB = 100.0
"""Every dB metric is clipped to ``[-METRIC_CLIP_DB, METRIC_CLIP_DB]``."""

ENERGY_EPSILON = float(np.finfo(np.float64).tiny)
"""Added to both energies of every dB ratio so 0/0 and x/0 never give NaN/inf."""

BSS_EVAL_FILTER_LENGTH = 512
"""BSS Eval distortion-filter length in taps (64 ms at 8 kHz, as in BSS Eval v3)."""

SILENCE_RELATIVE_NORM = 1e-8
"""A signal counts as silent when its norm is at most this fraction (-160 dB) of
the loudest row (:func:`bss_eval`) or of its own raw norm after mean removal
(:func:`si_sdr`: all zero or constant)."""

MAX_PERMUTATION_SOURCES = 8
""":func:`best_permutation` tries all C! permutations, for C up to this."""

SUPPORTED_METRICS = ("snr", "si_sdr", "sdr", "sir", "sar", "stoi")
BSS_EVAL_METRICS = ("sdr", "sir", "sar")

_DITHER_SEED = 0


# --------------------------------------------------------------------------
# Input checking helpers
# --------------------------------------------------------------------------


def _as_float_array(values, name, min_ndim=1, exact_ndim=None):
    """Convert to a finite float64 array and check its rank."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`{name}` must be a numeric array; got {type(values).__name__}.") from error
    if exact_ndim is not None and array.ndim != exact_ndim:
        raise ValueError(f"`{name}` must have {exact_ndim} dimension(s); got shape {array.shape}.")
    if array.ndim < min_ndim:
        raise ValueError(f"`{name}` must have at least {min_ndim} dimension(s); got shape {array.shape}.")
    if array.shape[-1] == 0:
        raise ValueError(f"`{name}` has no samples (shape {array.shape}).")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` contains NaN or inf samples.")
    return array


def _check_same_shape(reference, estimate, reference_name="reference", estimate_name="estimate"):
    if reference.shape != estimate.shape:
        raise ValueError(
            f"`{reference_name}` and `{estimate_name}` must have the same shape; "
            f"got {reference_name} {reference.shape} and {estimate_name} {estimate.shape}."
        )


def _check_sources(references, estimates):
    """Check [C, T] references against [C', T'] estimates: C must equal C'."""
    if references.shape[0] != estimates.shape[0]:
        raise ValueError(
            "`references` and `estimates` must have the same number of sources; "
            f"got references {references.shape} and estimates {estimates.shape} ([sources, samples])."
        )


def _ratio_db(numerator_energy, denominator_energy):
    """10*log10(num/den) with both energies guarded by ENERGY_EPSILON, clipped to ±METRIC_CLIP_DB."""
    ratio_db = 10.0 * (
        np.log10(numerator_energy + ENERGY_EPSILON) - np.log10(denominator_energy + ENERGY_EPSILON)
    )
    return np.clip(ratio_db, -METRIC_CLIP_DB, METRIC_CLIP_DB)


def _scalar_or_array(values):
    values = np.asarray(values, dtype=np.float64)
    return float(values) if values.ndim == 0 else values


def fit_to_length(signals, num_samples):
    """Trim, or zero-pad at the end, the last axis of ``signals``: [..., T'] -> [..., T] float64."""
    signals = np.asarray(signals, dtype=np.float64)
    num_samples = int(num_samples)
    if num_samples <= 0:
        raise ValueError(f"`num_samples` must be positive; got {num_samples}.")
    current = signals.shape[-1]
    if current >= num_samples:
        return signals[..., :num_samples]
    padding = [(0, 0)] * (signals.ndim - 1) + [(0, num_samples - current)]
    return np.pad(signals, padding)


# --------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------


def snr(reference, estimate):
    """Plain signal-to-noise ratio ``10 log10(|s|^2 / |s - ŝ|^2)`` in dB, the SNR of the original comparison.

    ``reference`` and ``estimate`` are ``[..., T]`` of the same shape; the
    result is a float for 1-D input, else ``[...]``. Not scale-invariant
    (``0.5 * s`` scores 6.02 dB). A silent estimate gives 0 dB, a silent
    reference with a non-silent estimate -100 dB, both silent 0 dB.
    """
    reference = _as_float_array(reference, "reference")
    estimate = _as_float_array(estimate, "estimate")
    _check_same_shape(reference, estimate)
    signal_energy = np.sum(reference**2, axis=-1)
    noise_energy = np.sum((reference - estimate) ** 2, axis=-1)
    return _scalar_or_array(_ratio_db(signal_energy, noise_energy))


def si_sdr(reference, estimate):
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019).

    Both signals are made zero-mean; with ``alpha = <ŝ, s> / |s|^2`` it is
    ``10 log10(|alpha s|^2 / |alpha s - ŝ|^2)``, unchanged by any positive
    scaling of the estimate. Shapes as in :func:`snr`. A silent (all-zero or
    constant) reference or estimate scores -100 dB.
    """
    # Implemented here: fast_bss_eval.si_sdr needs PyTorch (README, benchmark notes).
    reference = _as_float_array(reference, "reference")
    estimate = _as_float_array(estimate, "estimate")
    _check_same_shape(reference, estimate)
    # A signal is silent when nothing is left after mean removal (all zero or
    # constant, up to rounding): zero-mean energy <= -160 dB of its raw energy.
    silence_floor = SILENCE_RELATIVE_NORM**2
    reference_raw_energy = np.sum(reference**2, axis=-1)
    estimate_raw_energy = np.sum(estimate**2, axis=-1)
    reference = reference - np.mean(reference, axis=-1, keepdims=True)
    estimate = estimate - np.mean(estimate, axis=-1, keepdims=True)
    reference_energy = np.sum(reference**2, axis=-1, keepdims=True)
    scale = np.sum(estimate * reference, axis=-1, keepdims=True) / (reference_energy + ENERGY_EPSILON)
    target = scale * reference
    distortion = target - estimate
    ratio_db = _ratio_db(np.sum(target**2, axis=-1), np.sum(distortion**2, axis=-1))
    estimate_energy = np.sum(estimate**2, axis=-1)
    silent = (reference_energy[..., 0] <= silence_floor * reference_raw_energy + ENERGY_EPSILON) | (
        estimate_energy <= silence_floor * estimate_raw_energy + ENERGY_EPSILON
    )
    return _scalar_or_array(np.where(silent, -METRIC_CLIP_DB, ratio_db))


def _pairwise_si_sdr(references, estimates):
    """SI-SDR of every (reference i, estimate j) pair: [C, T] x [E, T] -> [C, E]."""
    pair_shape = (references.shape[0], estimates.shape[0], references.shape[-1])
    reference_pairs = np.broadcast_to(references[:, None, :], pair_shape)
    estimate_pairs = np.broadcast_to(estimates[None, :, :], pair_shape)
    return np.asarray(si_sdr(reference_pairs, estimate_pairs))


def best_permutation(references, estimates):
    """The assignment of estimates [C, T] to references [C, T] with the highest mean SI-SDR.

    Tries all C! permutations (C <= :data:`MAX_PERMUTATION_SOURCES`); ties go
    to the first in lexicographic order, so identical estimates keep their
    order. Returns a list of C ints, ``permutation[i]`` being the estimate
    assigned to reference ``i``.
    """
    references = _as_float_array(references, "references", exact_ndim=2)
    estimates = _as_float_array(estimates, "estimates", exact_ndim=2)
    _check_sources(references, estimates)
    _check_same_shape(references, estimates, "references", "estimates")
    num_sources = references.shape[0]
    if num_sources > MAX_PERMUTATION_SOURCES:
        raise ValueError(
            f"best_permutation searches all C! permutations and supports at most "
            f"{MAX_PERMUTATION_SOURCES} sources; got {num_sources} (shape {references.shape})."
        )
    pair_scores = _pairwise_si_sdr(references, estimates)
    source_index = np.arange(num_sources)
    best, best_score = None, -np.inf
    for candidate in itertools.permutations(range(num_sources)):
        score = float(np.mean(pair_scores[source_index, list(candidate)]))
        if score > best_score:
            best, best_score = list(candidate), score
    return best


def match_count(mixture, references, estimates):
    """A separation into a counted number of sources, made to match the true count for scoring.

    references [C, T]; estimates [E, T] (trimmed or zero-padded to T);
    mixture [T'']. With E > C, the C estimates of the assignment with the
    highest mean SI-SDR are kept (a talker split in two loses what went to the
    dropped part). With E < C, each talker the count missed gets the mixture
    itself, which is what a listener has for it (it scores 0 dB improvement;
    a silent estimate would score the -100 dB floor). Returns [C, T], in
    the estimates' order with the missed talkers' mixtures last.
    """
    from scipy.optimize import linear_sum_assignment

    references = _as_float_array(references, "references", exact_ndim=2)
    estimates = fit_to_length(_as_float_array(estimates, "estimates", exact_ndim=2), references.shape[-1])
    count, found = references.shape[0], estimates.shape[0]
    if found > count:
        _, columns = linear_sum_assignment(_pairwise_si_sdr(references, estimates), maximize=True)
        return estimates[np.sort(columns)]
    mixture = fit_to_length(_as_float_array(mixture, "mixture", exact_ndim=1)[None], references.shape[-1])
    return np.concatenate([estimates, np.repeat(mixture, count - found, axis=0)])


def _clip_db(values):
    """Clip dB values to ±METRIC_CLIP_DB; a NaN (never expected) becomes the floor."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-METRIC_CLIP_DB)
    return np.clip(values, -METRIC_CLIP_DB, METRIC_CLIP_DB)


def _replace_silent_rows(signals, silent_rows, generator):
    """Replace silent rows by unit-norm white noise (BSS Eval is per-row scale invariant)."""
    signals = signals.copy()
    for row in np.flatnonzero(silent_rows):
        noise = generator.standard_normal(signals.shape[-1])
        signals[row] = noise / np.linalg.norm(noise)
    return signals


def bss_eval(references, estimates, filter_length=BSS_EVAL_FILTER_LENGTH):
    """BSS Eval SDR, SIR and SAR in dB (Vincent et al. 2006), via ``fast_bss_eval.bss_eval_sources``.

    Estimates are assigned to references by fast_bss_eval's SIR-maximising
    permutation. Every row is normalised to unit norm (BSS Eval is scale
    invariant). A silent row (norm at most :data:`SILENCE_RELATIVE_NORM` times
    the loudest row) is replaced by fixed-seed noise so the permutation can be
    solved; its pairs then score -100 dB and a ``RuntimeWarning`` names it.
    The unprocessed mixture has no artifacts: its SAR, +inf in theory, reads ~+100.

    Parameters
    ----------
    references : array_like [C, T]
    estimates : array_like [C, T]
        In any order.
    filter_length : int
        Distortion-filter taps, in ``[1, T)``.

    Returns
    -------
    sdr, sir, sar : numpy.ndarray [C], float64
        Of reference ``i`` and the estimate assigned to it.
    permutation : numpy.ndarray [C], int64
    """
    import fast_bss_eval  # imported lazily: nothing heavy at module import

    references = _as_float_array(references, "references", exact_ndim=2)
    estimates = _as_float_array(estimates, "estimates", exact_ndim=2)
    _check_sources(references, estimates)
    _check_same_shape(references, estimates, "references", "estimates")
    filter_length = int(filter_length)
    num_samples = references.shape[-1]
    if not 1 <= filter_length < num_samples:
        raise ValueError(
            f"`filter_length` must be in [1, {num_samples}) for signals of {num_samples} samples; "
            f"got {filter_length}."
        )

    reference_norms = np.linalg.norm(references, axis=-1)
    estimate_norms = np.linalg.norm(estimates, axis=-1)
    loudest = max(float(np.max(reference_norms)), float(np.max(estimate_norms)))
    silence_norm = SILENCE_RELATIVE_NORM * loudest
    silent_references = reference_norms <= silence_norm
    silent_estimates = estimate_norms <= silence_norm
    references = references / np.where(silent_references, 1.0, reference_norms)[:, None]
    estimates = estimates / np.where(silent_estimates, 1.0, estimate_norms)[:, None]
    any_silent = bool(np.any(silent_references) or np.any(silent_estimates))
    if any_silent:
        warnings.warn(
            "bss_eval: BSS Eval is undefined for silent signals "
            f"(references {np.flatnonzero(silent_references).tolist()}, "
            f"estimates {np.flatnonzero(silent_estimates).tolist()}); "
            f"their pairs are scored at -{METRIC_CLIP_DB:g} dB.",
            RuntimeWarning,
            stacklevel=2,
        )
        generator = np.random.default_rng(_DITHER_SEED)
        references = _replace_silent_rows(references, silent_references, generator)
        estimates = _replace_silent_rows(estimates, silent_estimates, generator)

    with np.errstate(divide="ignore", invalid="ignore"):
        sdr, sir, sar, permutation = fast_bss_eval.bss_eval_sources(
            references,
            estimates,
            filter_length=filter_length,
            clamp_db=METRIC_CLIP_DB,
            compute_permutation=True,  # False breaks under NumPy >= 2 (README, benchmark notes)
        )
    permutation = np.asarray(permutation, dtype=np.int64)
    sdr, sir, sar = _clip_db(sdr), _clip_db(sir), _clip_db(sar)
    if any_silent:
        silent_pairs = silent_references | silent_estimates[permutation]
        for values in (sdr, sir, sar):
            values[silent_pairs] = -METRIC_CLIP_DB
    return sdr, sir, sar, permutation


def stoi_score(reference, estimate, sample_rate):
    """Short-time objective intelligibility of ``estimate`` [T] against ``reference`` [T] (``pystoi``).

    Nominally in [0, 1]. STOI needs about 0.4 s of non-silent reference
    speech (30 frames); with less, pystoi warns and returns 1e-5. A silent
    estimate scores 0.
    """
    from pystoi import stoi  # imported lazily: nothing heavy at module import

    reference = _as_float_array(reference, "reference", exact_ndim=1)
    estimate = _as_float_array(estimate, "estimate", exact_ndim=1)
    _check_same_shape(reference, estimate)
    sample_rate = _check_sample_rate(sample_rate)
    return float(stoi(reference, estimate, sample_rate, extended=False))


def _check_sample_rate(sample_rate):
    try:
        is_positive_integer = (
            not isinstance(sample_rate, bool) and int(sample_rate) == sample_rate and sample_rate > 0
        )
    except (TypeError, ValueError):
        is_positive_integer = False
    if not is_positive_integer:
        raise ValueError(f"`sample_rate` must be a positive integer (Hz); got {sample_rate!r}.")
    return int(sample_rate)


# --------------------------------------------------------------------------
# Full evaluation of one separated mixture
# --------------------------------------------------------------------------


def evaluate_separation(mixture, references, estimates, sample_rate, metrics=SUPPORTED_METRICS):
    """Score one separated mixture against its references, with the mixture as the baseline.

    ``references`` [C, T] set the length; ``estimates`` [C, T'] (any order) and
    ``mixture`` [T''] are trimmed or zero-padded at the end to T. The
    permutation is solved once, by mean SI-SDR (:func:`best_permutation`), and
    used for SNR, SI-SDR and STOI; SDR/SIR/SAR use BSS Eval's own assignment.
    Both are reported and agree for any reasonable separation. The mixture's
    SAR is ~+100 dB (see :func:`bss_eval`), so read ``sar``, not
    ``sar_improvement``.

    Parameters
    ----------
    mixture : array_like [T'']
    references : array_like [C, T]
    estimates : array_like [C, T']
    sample_rate : int
        In Hz (used by STOI).
    metrics : sequence of str
        A subset of :data:`SUPPORTED_METRICS`; default all.

    Returns
    -------
    dict
        JSON-serialisable:

        * ``"<m>"``, ``"<m>_mixture"``, ``"<m>_improvement"`` for each metric
          ``m``: means over sources (dB; STOI in [0, 1]);
        * ``"per_source"``: the same keys, each a list of C values indexed by reference;
        * ``"permutation"``: C ints, the SI-SDR assignment;
        * ``"bss_eval_permutation"`` and ``"permutations_agree"`` when SDR, SIR or SAR is asked for;
        * ``"metrics"``, ``"num_sources"``, ``"num_samples"``, ``"sample_rate"``,
          ``"weights_out_silent_bins"`` (always ``False``).
    """
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = tuple(dict.fromkeys(metrics))
    if not metrics:
        raise ValueError(f"`metrics` is empty; choose from {SUPPORTED_METRICS}.")
    unknown = [name for name in metrics if name not in SUPPORTED_METRICS]
    if unknown:
        raise ValueError(f"Unknown metric(s) {unknown}; supported metrics are {SUPPORTED_METRICS}.")
    sample_rate = _check_sample_rate(sample_rate)

    mixture = _as_float_array(mixture, "mixture", exact_ndim=1)
    references = _as_float_array(references, "references", exact_ndim=2)
    estimates = _as_float_array(estimates, "estimates", exact_ndim=2)
    _check_sources(references, estimates)
    num_sources, num_samples = references.shape
    estimates = fit_to_length(estimates, num_samples)
    mixture = fit_to_length(mixture, num_samples)
    mixture_estimates = np.repeat(mixture[None, :], num_sources, axis=0)

    permutation = best_permutation(references, estimates)
    aligned_estimates = estimates[permutation]

    per_source = {}
    result = {}

    def record(name, estimate_scores, mixture_scores):
        estimate_scores = np.asarray(estimate_scores, dtype=np.float64)
        mixture_scores = np.asarray(mixture_scores, dtype=np.float64)
        improvement = estimate_scores - mixture_scores
        for key, values in ((name, estimate_scores), (f"{name}_mixture", mixture_scores),
                            (f"{name}_improvement", improvement)):
            per_source[key] = [float(value) for value in values]
            result[key] = float(np.mean(values))

    if any(name in BSS_EVAL_METRICS for name in metrics):
        estimate_bss = bss_eval(references, estimates)
        mixture_bss = bss_eval(references, mixture_estimates)
        bss_permutation = [int(index) for index in estimate_bss[3]]
        result["bss_eval_permutation"] = bss_permutation
        result["permutations_agree"] = bss_permutation == permutation
        bss_scores = dict(zip(BSS_EVAL_METRICS, zip(estimate_bss[:3], mixture_bss[:3])))

    for name in metrics:
        if name == "snr":
            record(name, snr(references, aligned_estimates), snr(references, mixture_estimates))
        elif name == "si_sdr":
            record(name, si_sdr(references, aligned_estimates), si_sdr(references, mixture_estimates))
        elif name in BSS_EVAL_METRICS:
            record(name, *bss_scores[name])
        elif name == "stoi":
            record(
                name,
                [stoi_score(r, e, sample_rate) for r, e in zip(references, aligned_estimates)],
                [stoi_score(r, mixture, sample_rate) for r in references],
            )

    result["per_source"] = per_source
    result["permutation"] = [int(index) for index in permutation]
    result["metrics"] = list(metrics)
    result["num_sources"] = int(num_sources)
    result["num_samples"] = int(num_samples)
    result["sample_rate"] = sample_rate
    result["weights_out_silent_bins"] = WEIGHTS_OUT_SILENT_BINS
    return result


# ----------------------------------------------------------------------------- counting talkers


def confusion_matrix(pairs, k_max: int):
    """Counts ``[k_max, k_max]`` of ``(true K, estimated K)`` pairs (1-based; row: true, column: estimated)."""
    matrix = np.zeros((k_max, k_max), dtype=np.int64)
    for true, estimated in pairs:
        matrix[int(true) - 1, int(estimated) - 1] += 1
    return matrix


def format_confusion(matrix, title: str) -> str:
    """The matrix as text: one row per true K with its share counted right."""
    k_max = len(matrix)
    lines = [title, f"{'true K':>8} |" + "".join(f"{'est ' + str(k):>7}" for k in range(1, k_max + 1))
             + f"{'right':>8}"]
    for k in range(1, k_max + 1):
        row = matrix[k - 1]
        if row.sum() == 0:
            continue
        lines.append(f"{k:>8} |" + "".join(f"{int(n):>7}" for n in row) + f"{row[k - 1] / row.sum():>8.0%}")
    return "\n".join(lines)
