"""Separation metrics: SNR, SI-SDR, BSS Eval (SDR/SIR/SAR), STOI.

Everything here is plain numpy (plus ``fast_bss_eval`` and ``pystoi``); no
TensorFlow is imported, and nothing runs at import time.

Silent bins
-----------
Project convention: every metric states whether it weights out silent
time-frequency bins. **None of the metrics in this module does**
(:data:`WEIGHTS_OUT_SILENT_BINS` is ``False``): SNR, SI-SDR and BSS Eval are
computed on the whole waveform, silent stretches included. STOI follows its
standard definition (Taal et al. 2011), which drops whole *time frames* of the
clean reference more than 40 dB below its loudest frame before scoring; that
is a frame-level exclusion built into STOI, not a time-frequency-bin weighting.

Conventions
-----------
* All dB values are clipped to ``[-METRIC_CLIP_DB, +METRIC_CLIP_DB]`` =
  ``[-100, +100]`` dB, so a perfect estimate reports +100 dB rather than
  ``inf`` and nothing ever returns NaN or ``inf``.
* Energies are guarded by :data:`ENERGY_EPSILON` (the smallest normal
  float64, ~2.2e-308), added to numerator and denominator. It is far below
  the energy of any real signal, so it never biases a real measurement; it
  only decides the 0/0 and x/0 cases of :func:`snr`: a silent estimate gives
  SNR = 0 dB (exactly right for SNR), a silent reference with a non-silent
  estimate -100 dB, both silent 0 dB.
* SI-SDR and BSS Eval are undefined when the reference or the estimate is
  silent; such a pair is scored at the floor, -100 dB, so a silent output is
  never rewarded. STOI of a silent estimate is 0.
* Inputs are converted to float64. NaN or ``inf`` samples raise ``ValueError``.
* Permutations follow fast_bss_eval's convention: ``permutation[i]`` is the
  index of the estimate assigned to reference ``i``, so
  ``estimates[permutation]`` is aligned with ``references``.

Library notes (checked with fast-bss-eval 0.1.4, NumPy 2.x, no PyTorch)
-----------------------------------------------------------------------
* ``fast_bss_eval.si_sdr`` is not usable without PyTorch: its dispatcher
  evaluates ``torch.si_sdr`` on a dummy ``torch`` class and raises
  ``AttributeError: type object 'torch' has no attribute 'si_sdr'`` even for
  numpy input. :func:`si_sdr` is therefore implemented here directly.
* ``fast_bss_eval.bss_eval_sources`` on numpy arrays works without PyTorch
  with ``compute_permutation=True`` (checked against a brute-force BSS Eval
  projection in the tests). With ``compute_permutation=False`` it fails
  under NumPy >= 2 (``np.linalg.solve`` no longer treats a ``[..., M]``
  right-hand side as a stack of vectors), so :func:`bss_eval` always lets the
  library solve the permutation.
* fast_bss_eval returns ``inf`` for a perfect estimate, raises for an
  all-zero reference or estimate, and overflows to ``inf`` in float32;
  :func:`bss_eval` works in float64, clamps to ±100 dB and replaces silent
  rows (see its docstring).

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
"""The metrics in this module are computed on the waveform and do NOT weight
out silent time-frequency bins (STOI's own silent-frame removal aside)."""

METRIC_CLIP_DB = 100.0
"""Every dB metric is clipped to ``[-METRIC_CLIP_DB, METRIC_CLIP_DB]``."""

ENERGY_EPSILON = float(np.finfo(np.float64).tiny)
"""Added to both energies of every dB ratio so 0/0 and x/0 never give NaN/inf."""

BSS_EVAL_FILTER_LENGTH = 512
"""Default BSS Eval distortion-filter length in taps (64 ms at 8 kHz), as in
fast_bss_eval and the original BSS Eval toolbox."""

SILENCE_RELATIVE_NORM = 1e-8
"""Silence threshold (-160 dB). In :func:`bss_eval` a row whose L2 norm is at
most this fraction of the loudest row of both arrays counts as silent; in
:func:`si_sdr` a signal whose zero-mean norm is at most this fraction of its
raw norm (all zero or constant) counts as silent."""

MAX_PERMUTATION_SOURCES = 8
""":func:`best_permutation` searches all C! permutations; C is capped here."""

SUPPORTED_METRICS = ("snr", "si_sdr", "sdr", "sir", "sar", "stoi")
DEFAULT_METRICS = SUPPORTED_METRICS
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
    """Trim or zero-pad the last axis of ``signals`` to ``num_samples``.

    Extra samples at the end are dropped; missing samples are appended as
    zeros at the end (an STFT/iSTFT round trip typically returns a few
    samples too many or too few).

    Parameters
    ----------
    signals : array_like [..., T']
        Signals to fit.
    num_samples : int
        Target length T.

    Returns
    -------
    numpy.ndarray [..., T], float64
    """
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
    """Plain signal-to-noise ratio in dB, with no scaling of the estimate.

    ``10 log10(||s||^2 / ||s - s_hat||^2)``, the SNR of the original
    comparison. Not scale-invariant: ``0.5 * s`` scores 6.02 dB. Computed on
    the waveform; silent time-frequency bins are not weighted out.

    Guards: both energies get :data:`ENERGY_EPSILON` added and the result is
    clipped to ±:data:`METRIC_CLIP_DB` (a perfect estimate gives +100 dB; a
    silent estimate gives 0 dB; a silent reference with a non-silent estimate
    gives -100 dB; both silent give 0 dB). Never NaN or inf.

    Parameters
    ----------
    reference : array_like [T] or [..., T]
        Clean source(s).
    estimate : array_like, same shape as ``reference``
        Estimated source(s).

    Returns
    -------
    float or numpy.ndarray [...]
        SNR in dB; a Python float for 1-D input, else one value per leading index.

    Raises
    ------
    ValueError
        If the shapes differ, an input is empty, or contains NaN/inf.
    """
    reference = _as_float_array(reference, "reference")
    estimate = _as_float_array(estimate, "estimate")
    _check_same_shape(reference, estimate)
    signal_energy = np.sum(reference**2, axis=-1)
    noise_energy = np.sum((reference - estimate) ** 2, axis=-1)
    return _scalar_or_array(_ratio_db(signal_energy, noise_energy))


def si_sdr(reference, estimate):
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019).

    Both signals are made zero-mean, then with ``alpha = <s_hat, s> / ||s||^2``
    the result is ``10 log10(||alpha s||^2 / ||alpha s - s_hat||^2)``.
    Invariant to rescaling the estimate by any positive factor. Computed on the
    waveform; silent time-frequency bins are not weighted out.

    Guards: energies get :data:`ENERGY_EPSILON` and the result is clipped to
    ±:data:`METRIC_CLIP_DB` (an exact scaled copy ``c * s``, c > 0, gives
    +100 dB). SI-SDR is undefined when either zero-mean signal is silent
    (all zero, or constant); that case is scored at the floor, -100 dB, so a
    silent output is never rewarded (the bare epsilon rule would give 0 dB).
    Never NaN or inf.

    ``fast_bss_eval.si_sdr`` is deliberately not used: it raises
    ``AttributeError`` when PyTorch is not installed.

    Parameters
    ----------
    reference : array_like [T] or [..., T]
        Clean source(s).
    estimate : array_like, same shape as ``reference``
        Estimated source(s).

    Returns
    -------
    float or numpy.ndarray [...]
        SI-SDR in dB; a Python float for 1-D input, else one value per leading index.

    Raises
    ------
    ValueError
        If the shapes differ, an input is empty, or contains NaN/inf.
    """
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
    """SI-SDR of every (reference i, estimate j) pair: [C, T] x [C, T] -> [C, C]."""
    num_sources = references.shape[0]
    pair_shape = (num_sources, num_sources, references.shape[-1])
    reference_pairs = np.broadcast_to(references[:, None, :], pair_shape)
    estimate_pairs = np.broadcast_to(estimates[None, :, :], pair_shape)
    return np.asarray(si_sdr(reference_pairs, estimate_pairs))


def best_permutation(references, estimates):
    """Assignment of estimates to references maximising the mean SI-SDR.

    All C! permutations are tried (C <= :data:`MAX_PERMUTATION_SOURCES`); ties
    go to the first permutation in lexicographic order, so identical estimates
    keep the identity order.

    Parameters
    ----------
    references : array_like [C, T]
        Clean sources.
    estimates : array_like [C, T]
        Estimated sources, in any order.

    Returns
    -------
    list of int [C]
        ``permutation[i]`` is the index of the estimate assigned to reference
        ``i``; ``estimates[permutation]`` is aligned with ``references``.

    Raises
    ------
    ValueError
        On mismatched shapes or source counts, or C > MAX_PERMUTATION_SOURCES.
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
    """BSS Eval SDR, SIR and SAR in dB via ``fast_bss_eval.bss_eval_sources``.

    The estimates are assigned to references by fast_bss_eval's own
    permutation solver (the assignment maximising the SIR). The distortion
    filter has ``filter_length`` taps (default 512, 64 ms at 8 kHz, as in the
    original BSS Eval v3 / mir_eval). Computed on the waveform; silent
    time-frequency bins are not weighted out.

    Robustness (BSS Eval is undefined for an all-zero signal, and
    fast_bss_eval raises on one):

    * inputs are cast to float64 and every row is normalised to unit norm
      (BSS Eval is invariant to rescaling any reference or estimate);
    * a row that is silent (norm <= :data:`SILENCE_RELATIVE_NORM` times the
      loudest row, or all zero) is replaced by fixed-seed unit-norm white
      noise so that fast_bss_eval can run and solve the permutation; then
      SDR, SIR and SAR of every pair involving a silent reference or a
      silent estimate are set to the floor, -:data:`METRIC_CLIP_DB`, and a
      ``RuntimeWarning`` names the silent rows;
    * results are clamped to ±:data:`METRIC_CLIP_DB` (fast_bss_eval would
      return ``inf`` for a perfect estimate). Note that an estimate lying
      exactly in the span of the filtered references, such as the unprocessed
      mixture, has no artifacts: its SAR is +inf in theory, reported as ~+100.

    Parameters
    ----------
    references : array_like [C, T]
        Clean sources.
    estimates : array_like [C, T]
        Estimated sources, in any order.
    filter_length : int, optional
        BSS Eval distortion-filter length in taps; must be smaller than T.

    Returns
    -------
    sdr : numpy.ndarray [C], float64
        Signal-to-distortion ratio of reference ``i`` and its estimate.
    sir : numpy.ndarray [C], float64
        Signal-to-interference ratio.
    sar : numpy.ndarray [C], float64
        Signal-to-artifacts ratio.
    permutation : numpy.ndarray [C], int64
        ``permutation[i]`` is the index of the estimate assigned to reference ``i``.

    Raises
    ------
    ValueError
        On mismatched shapes or source counts, NaN/inf samples, or
        ``filter_length`` not in ``[1, T)``.
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
            compute_permutation=True,
        )
    permutation = np.asarray(permutation, dtype=np.int64)
    sdr, sir, sar = _clip_db(sdr), _clip_db(sir), _clip_db(sar)
    if any_silent:
        silent_pairs = silent_references | silent_estimates[permutation]
        for values in (sdr, sir, sar):
            values[silent_pairs] = -METRIC_CLIP_DB
    return sdr, sir, sar, permutation


def stoi_score(reference, estimate, sample_rate):
    """Short-time objective intelligibility via ``pystoi.stoi`` (extended=False).

    pystoi resamples both signals to 10 kHz internally and, per the STOI
    definition, drops frames of the reference more than 40 dB below its
    loudest frame (time frames, not time-frequency bins). It needs about
    0.4 s of non-silent speech (30 frames); with less it warns and returns
    1e-5. A silent estimate scores 0.

    Parameters
    ----------
    reference : array_like [T]
        Clean source.
    estimate : array_like [T]
        Estimated source.
    sample_rate : int
        Sample rate of both signals in Hz.

    Returns
    -------
    float
        STOI, nominally in [0, 1] (higher is more intelligible).

    Raises
    ------
    ValueError
        If the inputs are not 1-D of equal length, contain NaN/inf, or the
        sample rate is not a positive integer.
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


def evaluate_separation(mixture, references, estimates, sample_rate, metrics=DEFAULT_METRICS):
    """Score one separated mixture against its references, with the mixture baseline.

    For each requested metric ``m`` the result holds the per-source score of
    the estimates, the per-source score of the unprocessed mixture used as the
    estimate of every source (the baseline), and the improvement
    ``estimate - mixture``; the flat keys hold their means over sources.

    Lengths: ``references`` define the length T. ``estimates`` and
    ``mixture`` are trimmed at the end, or zero-padded at the end, to T.

    Permutation: solved once, by maximising the mean SI-SDR over all C!
    assignments (:func:`best_permutation`); SNR, SI-SDR and STOI are computed
    on ``estimates[permutation]``. BSS Eval (SDR/SIR/SAR) uses
    fast_bss_eval's own SIR-maximising assignment, because its fixed-order
    path is broken under NumPy >= 2; both assignments are reported
    (``permutation``, ``bss_eval_permutation``, ``permutations_agree``) and
    coincide for any reasonable separation. Per-source lists are always
    indexed by reference.

    Caveats: the mixture lies in the span of the filtered references, so its
    BSS Eval SAR is +inf in theory (clamped to ~+100 dB) and ``sar_improvement``
    is therefore not meaningful; read ``sar`` itself. No metric weights out
    silent time-frequency bins (:data:`WEIGHTS_OUT_SILENT_BINS`).

    Parameters
    ----------
    mixture : array_like [T_mix]
        Unprocessed single-channel mixture.
    references : array_like [C, T]
        Clean sources.
    estimates : array_like [C, T_est]
        Separated sources, in any order.
    sample_rate : int
        Sample rate in Hz (used by STOI).
    metrics : sequence of str, optional
        Subset of ``("snr", "si_sdr", "sdr", "sir", "sar", "stoi")``; default all.

    Returns
    -------
    dict
        JSON-serialisable (Python floats, ints, lists, bools) with keys:

        * ``"<m>"``, ``"<m>_mixture"``, ``"<m>_improvement"`` for each
          requested metric ``m``: means over sources (float; dB, STOI in [0, 1]);
        * ``"per_source"``: dict with the same keys, each a list of C floats
          indexed by reference;
        * ``"permutation"``: list of C ints, SI-SDR assignment
          (``estimates[permutation]`` aligns with ``references``);
        * ``"bss_eval_permutation"`` and ``"permutations_agree"``: only when
          an SDR/SIR/SAR metric is requested;
        * ``"metrics"``, ``"num_sources"``, ``"num_samples"``,
          ``"sample_rate"``, ``"weights_out_silent_bins"`` (always False).

    Raises
    ------
    ValueError
        On wrong ranks, mismatched source counts, NaN/inf samples, an unknown
        or empty metric list, or a bad sample rate.
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
