"""Tests for speechsep.eval.metrics (numpy only; each test runs in well under a second)."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechsep.eval import metrics

SAMPLE_RATE = 8000


def speech_like(seconds, fundamental_hz, syllable_rate_hz, phase=0.0, sample_rate=SAMPLE_RATE):
    """Amplitude-modulated harmonic signal: a crude voiced-speech stand-in."""
    time = np.arange(int(seconds * sample_rate)) / sample_rate
    harmonics = sum(
        np.sin(2 * np.pi * fundamental_hz * k * time + k * phase) / k
        for k in range(1, int(3800 / fundamental_hz))
    )
    envelope = (0.5 + 0.5 * np.sin(2 * np.pi * syllable_rate_hz * time + phase)) ** 2
    signal = harmonics * envelope
    return 0.1 * signal / np.std(signal)


@pytest.fixture(scope="module")
def two_talkers():
    """references [2, 16000] (2 s at 8 kHz), their mixture [16000], a decent estimate [2, 16000]."""
    references = np.stack([speech_like(2.0, 120.0, 3.7), speech_like(2.0, 210.0, 5.3, phase=1.0)])
    mixture = references.sum(axis=0)
    rng = np.random.default_rng(0)
    estimates = references + 0.2 * references[::-1] + 0.005 * rng.standard_normal(references.shape)
    return mixture, references, estimates


def zero_mean_orthogonal_noise(reference, energy_ratio, seed=0):
    """Zero-mean noise orthogonal to the zero-mean ``reference`` with ||e||^2 = energy_ratio * ||s||^2."""
    noise = np.random.default_rng(seed).standard_normal(reference.shape)
    noise -= noise.mean()
    noise -= (noise @ reference) / (reference @ reference) * reference
    return noise * np.sqrt(energy_ratio * (reference @ reference) / (noise @ noise))


def all_finite(value):
    if isinstance(value, dict):
        return all(all_finite(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return all(all_finite(item) for item in value)
    if isinstance(value, (bool, str)):
        return True
    return bool(np.all(np.isfinite(value)))


# --------------------------------------------------------------------------
# Known values
# --------------------------------------------------------------------------


def test_orthogonal_error_at_minus_ten_db_gives_ten_db_snr_and_si_sdr():
    reference = speech_like(1.0, 150.0, 4.0)
    reference -= reference.mean()
    error = zero_mean_orthogonal_noise(reference, 0.1)
    assert metrics.snr(reference, reference + error) == pytest.approx(10.0, abs=1e-9)
    assert metrics.si_sdr(reference, reference + error) == pytest.approx(10.0, abs=1e-9)


def test_half_scaled_reference_gives_6_0206_db_snr_and_clipped_si_sdr():
    reference = speech_like(1.0, 150.0, 4.0)
    assert metrics.snr(reference, 0.5 * reference) == pytest.approx(20 * np.log10(2), abs=1e-9)
    assert metrics.snr(reference, 0.5 * reference) == pytest.approx(6.0206, abs=1e-4)
    assert metrics.si_sdr(reference, 0.5 * reference) == metrics.METRIC_CLIP_DB


def test_scaled_reference_plus_orthogonal_error_known_values():
    # s_hat = 0.5 s + e, ||e||^2 = ||s||^2 / 10:
    # alpha = 0.5, SI-SDR = 10 log10(0.25 / 0.1); SNR = 10 log10(1 / (0.25 + 0.1)).
    reference = speech_like(1.0, 150.0, 4.0)
    reference -= reference.mean()
    estimate = 0.5 * reference + zero_mean_orthogonal_noise(reference, 0.1, seed=3)
    assert metrics.si_sdr(reference, estimate) == pytest.approx(10 * np.log10(2.5), abs=1e-9)
    assert metrics.snr(reference, estimate) == pytest.approx(10 * np.log10(1 / 0.35), abs=1e-9)


def test_si_sdr_removes_the_mean_but_snr_does_not():
    reference = speech_like(1.0, 150.0, 4.0)
    assert metrics.si_sdr(reference, reference + 0.3) == metrics.METRIC_CLIP_DB
    assert metrics.snr(reference, reference + 0.3) < 0.0


def test_batched_inputs_match_per_row_values():
    rng = np.random.default_rng(1)
    references = rng.standard_normal((2, 3, 400))
    estimates = references + rng.standard_normal((2, 3, 400))
    batched_snr = metrics.snr(references, estimates)
    batched_si_sdr = metrics.si_sdr(references, estimates)
    assert batched_snr.shape == (2, 3) and batched_si_sdr.shape == (2, 3)
    for index in np.ndindex(2, 3):
        assert batched_snr[index] == pytest.approx(metrics.snr(references[index], estimates[index]))
        assert batched_si_sdr[index] == pytest.approx(metrics.si_sdr(references[index], estimates[index]))
    assert isinstance(metrics.snr(references[0, 0], estimates[0, 0]), float)


# --------------------------------------------------------------------------
# Scale behaviour and perfect estimates
# --------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.3, 7.0])
def test_scaling_the_estimate_keeps_si_sdr_and_changes_snr(two_talkers, scale):
    _, references, estimates = two_talkers
    assert metrics.si_sdr(references, scale * estimates) == pytest.approx(
        metrics.si_sdr(references, estimates), abs=1e-9
    )
    assert np.all(np.abs(metrics.snr(references, scale * estimates) - metrics.snr(references, estimates)) > 1.0)


@settings(max_examples=30, deadline=None)
@given(scale=st.floats(min_value=1e-3, max_value=1e3), seed=st.integers(0, 2**16))
def test_si_sdr_is_invariant_to_any_positive_scale(scale, seed):
    rng = np.random.default_rng(seed)
    reference = rng.standard_normal(256)
    estimate = reference + rng.standard_normal(256)
    assert metrics.si_sdr(reference, scale * estimate) == pytest.approx(
        metrics.si_sdr(reference, estimate), abs=1e-7
    )


def test_perfect_estimate_scores_at_the_clip(two_talkers):
    mixture, references, _ = two_talkers
    result = metrics.evaluate_separation(mixture, references, references.copy(), SAMPLE_RATE)
    assert result["snr"] == metrics.METRIC_CLIP_DB
    assert result["si_sdr"] == metrics.METRIC_CLIP_DB
    # fast_bss_eval clamps at 100 dB through a coherence epsilon: 99.9999996 dB.
    for name in ("sdr", "sir", "sar"):
        assert result[name] > 99.0, name
        assert result[name] <= metrics.METRIC_CLIP_DB, name
    assert result["stoi"] == pytest.approx(1.0, abs=1e-6)
    assert result["sdr_improvement"] > 90.0


def test_bss_eval_perfect_float32_input_is_finite(two_talkers):
    _, references, _ = two_talkers
    references = references.astype(np.float32)
    sdr, sir, sar, permutation = metrics.bss_eval(references, references.copy())
    assert np.all(sdr > 99.0) and np.all(sir > 99.0) and np.all(sar > 99.0)
    assert permutation.tolist() == [0, 1]


def test_bss_eval_is_invariant_to_scaling_the_estimate(two_talkers):
    _, references, estimates = two_talkers
    plain = metrics.bss_eval(references, estimates)
    scaled = metrics.bss_eval(references, 7.0 * estimates)
    for a, b in zip(plain, scaled):
        np.testing.assert_allclose(a, b, atol=1e-6)


# --------------------------------------------------------------------------
# BSS Eval against a brute-force projection (guards fast_bss_eval on NumPy 2)
# --------------------------------------------------------------------------


def brute_force_bss_eval(references, estimates, filter_length):
    """BSS Eval v3 by explicit least-squares projections on delayed references (same pairing)."""
    num_sources, num_samples = references.shape

    def delayed(signal):
        columns = [np.concatenate([np.zeros(d), signal[: num_samples - d]]) for d in range(filter_length)]
        return np.stack(columns, axis=1)

    def project(basis, signal):
        coefficients, *_ = np.linalg.lstsq(basis, signal, rcond=None)
        return basis @ coefficients

    all_references = np.hstack([delayed(reference) for reference in references])
    scores = []
    for reference, estimate in zip(references, estimates):
        target = project(delayed(reference), estimate)
        in_span = project(all_references, estimate)
        interference, artifacts = in_span - target, estimate - in_span
        energy = lambda x: float(x @ x)  # noqa: E731
        scores.append((
            10 * np.log10(energy(target) / energy(estimate - target)),
            10 * np.log10(energy(target) / energy(interference)),
            10 * np.log10(energy(in_span) / energy(artifacts)),
        ))
    return np.array(scores).T


def test_bss_eval_matches_a_brute_force_projection():
    rng = np.random.default_rng(2)
    references = rng.standard_normal((2, 4000))
    estimates = np.array([[1.0, 0.3], [0.2, 1.0]]) @ references + 0.2 * rng.standard_normal((2, 4000))
    sdr, sir, sar, permutation = metrics.bss_eval(references, estimates, filter_length=16)
    expected = brute_force_bss_eval(references, estimates, filter_length=16)
    assert permutation.tolist() == [0, 1]
    np.testing.assert_allclose(np.stack([sdr, sir, sar]), expected, atol=0.01)
    # Sanity: these are ordinary mid-range values, not clipped ones.
    assert np.all((expected > 5.0) & (expected < 20.0))


# --------------------------------------------------------------------------
# Permutations
# --------------------------------------------------------------------------


def test_best_permutation_and_bss_eval_share_the_convention():
    rng = np.random.default_rng(3)
    references = rng.standard_normal((3, 3000))
    # estimate 0 is source 2, estimate 1 is source 0, estimate 2 is source 1
    estimates = references[[2, 0, 1]] + 0.1 * rng.standard_normal((3, 3000))
    permutation = metrics.best_permutation(references, estimates)
    assert permutation == [1, 2, 0]
    np.testing.assert_allclose(estimates[permutation], references, atol=0.5)
    assert metrics.bss_eval(references, estimates)[3].tolist() == [1, 2, 0]


def test_swapping_the_estimates_does_not_change_the_evaluation(two_talkers):
    mixture, references, estimates = two_talkers
    in_order = metrics.evaluate_separation(mixture, references, estimates, SAMPLE_RATE)
    swapped = metrics.evaluate_separation(mixture, references, estimates[::-1], SAMPLE_RATE)
    assert in_order["permutation"] == [0, 1]
    assert swapped["permutation"] == [1, 0]
    assert swapped["bss_eval_permutation"] == [1, 0]
    assert swapped["permutations_agree"] and in_order["permutations_agree"]
    for name in metrics.SUPPORTED_METRICS:
        for key in (name, f"{name}_mixture", f"{name}_improvement"):
            assert swapped[key] == pytest.approx(in_order[key], abs=1e-9), key
            np.testing.assert_allclose(swapped["per_source"][key], in_order["per_source"][key], atol=1e-9)
    # and the separation is real: clear improvements over the mixture
    assert in_order["si_sdr_improvement"] > 10.0
    assert in_order["sdr_improvement"] > 10.0
    assert in_order["stoi_improvement"] > 0.05


# --------------------------------------------------------------------------
# The mixture baseline
# --------------------------------------------------------------------------


def test_mixture_as_estimate_has_zero_improvement_for_every_metric(two_talkers):
    mixture, references, _ = two_talkers
    result = metrics.evaluate_separation(mixture, references, np.stack([mixture, mixture]), SAMPLE_RATE)
    for name in metrics.SUPPORTED_METRICS:
        assert result[f"{name}_improvement"] == pytest.approx(0.0, abs=1e-6), name
        assert result["per_source"][f"{name}_improvement"] == pytest.approx([0.0, 0.0], abs=1e-6), name
        assert result[name] == pytest.approx(result[f"{name}_mixture"], abs=1e-6), name
    # Equal-power two-talker mixture: every source sits near 0 dB in the mixture.
    assert result["snr_mixture"] == pytest.approx(0.0, abs=0.5)
    assert result["si_sdr_mixture"] == pytest.approx(0.0, abs=0.5)
    assert 0.3 < result["stoi_mixture"] < 0.95


def test_result_is_json_serialisable_with_documented_keys(two_talkers):
    mixture, references, estimates = two_talkers
    result = metrics.evaluate_separation(mixture, references, estimates, SAMPLE_RATE)
    decoded = json.loads(json.dumps(result))
    assert decoded == result
    for name in metrics.SUPPORTED_METRICS:
        for key in (name, f"{name}_mixture", f"{name}_improvement"):
            assert type(result[key]) is float
            assert len(result["per_source"][key]) == 2
            assert all(type(value) is float for value in result["per_source"][key])
    assert result["num_sources"] == 2 and result["num_samples"] == references.shape[1]
    assert result["sample_rate"] == SAMPLE_RATE
    assert result["weights_out_silent_bins"] is False


def test_metric_subset_only_reports_those_metrics(two_talkers):
    mixture, references, estimates = two_talkers
    result = metrics.evaluate_separation(mixture, references, estimates, SAMPLE_RATE, metrics=("si_sdr",))
    assert set(result["per_source"]) == {"si_sdr", "si_sdr_mixture", "si_sdr_improvement"}
    assert "snr" not in result and "bss_eval_permutation" not in result
    assert result["metrics"] == ["si_sdr"]


def test_estimates_are_trimmed_or_zero_padded_to_the_reference_length(two_talkers):
    mixture, references, estimates = two_talkers
    garbage = np.random.default_rng(4).standard_normal((2, 37))
    longer = metrics.evaluate_separation(
        mixture, references, np.concatenate([references, garbage], axis=1), SAMPLE_RATE, metrics=("snr", "si_sdr")
    )
    assert longer["snr"] == metrics.METRIC_CLIP_DB and longer["si_sdr"] == metrics.METRIC_CLIP_DB
    shorter = metrics.evaluate_separation(mixture, references, estimates[:, :-25], SAMPLE_RATE, metrics=("snr",))
    padded = np.concatenate([estimates[:, :-25], np.zeros((2, 25))], axis=1)
    assert shorter["per_source"]["snr"] == pytest.approx(metrics.snr(references, padded).tolist(), abs=1e-12)


# --------------------------------------------------------------------------
# Silence: never NaN or inf
# --------------------------------------------------------------------------


def test_silent_signals_give_documented_finite_values():
    reference = speech_like(1.0, 150.0, 4.0)
    silence = np.zeros_like(reference)
    assert metrics.snr(reference, silence) == 0.0
    assert metrics.snr(silence, reference) == -metrics.METRIC_CLIP_DB
    assert metrics.snr(silence, silence) == 0.0
    assert metrics.si_sdr(reference, silence) == -metrics.METRIC_CLIP_DB
    assert metrics.si_sdr(silence, reference) == -metrics.METRIC_CLIP_DB
    assert metrics.si_sdr(silence, silence) == -metrics.METRIC_CLIP_DB
    assert metrics.si_sdr(reference, np.full_like(reference, 0.25)) == -metrics.METRIC_CLIP_DB
    assert metrics.stoi_score(reference, silence, SAMPLE_RATE) == pytest.approx(0.0, abs=1e-6)


def test_bss_eval_with_a_silent_estimate_or_reference_warns_and_stays_finite(two_talkers):
    _, references, estimates = two_talkers
    silent_estimate = estimates.copy()
    silent_estimate[1] = 0.0
    with pytest.warns(RuntimeWarning, match="silent"):
        sdr, sir, sar, permutation = metrics.bss_eval(references, silent_estimate)
    assert permutation.tolist() == [0, 1]
    assert sdr[1] == sir[1] == sar[1] == -metrics.METRIC_CLIP_DB
    assert 10.0 < sdr[0] < 99.0
    silent_reference = references.copy()
    silent_reference[0] = 0.0
    with pytest.warns(RuntimeWarning, match="silent"):
        scores = metrics.bss_eval(silent_reference, estimates)
    assert all(np.all(np.isfinite(values)) for values in scores)
    with pytest.warns(RuntimeWarning, match="silent"):
        scores = metrics.bss_eval(np.zeros_like(references), np.zeros_like(references))
    assert all(np.all(np.isfinite(values)) for values in scores)


def test_evaluate_separation_with_silent_estimates_or_reference_has_no_nan(two_talkers):
    mixture, references, _ = two_talkers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        silent_output = metrics.evaluate_separation(mixture, references, np.zeros_like(references), SAMPLE_RATE)
        silent_reference = references.copy()
        silent_reference[1] = 0.0
        silent_source = metrics.evaluate_separation(
            mixture, silent_reference, np.stack([references[0], mixture]), SAMPLE_RATE
        )
    assert all_finite(silent_output) and all_finite(silent_source)
    # a silent output is never rewarded over the mixture on the scale-invariant metrics
    assert silent_output["si_sdr_improvement"] < 0.0
    assert silent_output["sdr_improvement"] < 0.0
    assert silent_output["stoi_improvement"] < 0.0


# --------------------------------------------------------------------------
# STOI
# --------------------------------------------------------------------------


def test_stoi_is_one_for_a_perfect_estimate_and_drops_with_noise():
    reference = speech_like(2.0, 130.0, 4.0)
    rng = np.random.default_rng(5)
    noise = rng.standard_normal(reference.shape) * np.std(reference)
    perfect = metrics.stoi_score(reference, reference, SAMPLE_RATE)
    mild = metrics.stoi_score(reference, reference + 0.3 * noise, SAMPLE_RATE)
    heavy = metrics.stoi_score(reference, reference + 3.0 * noise, SAMPLE_RATE)
    assert perfect == pytest.approx(1.0, abs=1e-6)
    assert 0.0 < heavy < mild < 0.99
    assert isinstance(perfect, float)


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


@given(position=st.integers(0, 2), swap=st.booleans())
@settings(max_examples=12, deadline=None)
def test_match_count_drops_the_extra_estimate_wherever_it_is(two_talkers, position, swap):
    mixture, references, estimates = two_talkers
    kept = estimates[::-1] if swap else estimates
    junk = 0.1 * np.random.default_rng(position).standard_normal(references.shape[-1])
    three = np.insert(kept, position, junk, axis=0)  # [3, T]: a talker too many
    np.testing.assert_allclose(metrics.match_count(mixture, references, three), kept)


def test_match_count_gives_a_missed_talker_the_mixture_and_zero_improvement(two_talkers):
    mixture, references, estimates = two_talkers
    matched = metrics.match_count(mixture, references, estimates[1:])  # the count found one talker
    np.testing.assert_allclose(matched, [estimates[1], mixture])
    result = metrics.evaluate_separation(mixture, references, matched, SAMPLE_RATE, metrics=("si_sdr", "sdr"))
    assert result["permutation"] == [1, 0]
    assert result["per_source"]["si_sdr_improvement"][0] == pytest.approx(0.0, abs=1e-6)  # the missed talker
    assert result["per_source"]["si_sdr_improvement"][1] > 10.0
    alone = metrics.match_count(mixture, references, mixture[None, :-100])  # one estimate, shorter: padded
    assert alone.shape == references.shape
    assert metrics.evaluate_separation(mixture, references, alone, SAMPLE_RATE,
                                       metrics=("sdr",))["sdr_improvement"] == pytest.approx(0.0, abs=0.05)


def test_mismatched_source_counts_raise_with_the_shapes(two_talkers):
    mixture, references, _ = two_talkers
    three = np.stack([references[0], references[1], mixture])
    with pytest.raises(ValueError, match=r"\(2, 16000\).*\(3, 16000\)"):
        metrics.evaluate_separation(mixture, references, three, SAMPLE_RATE)
    with pytest.raises(ValueError, match=r"same number of sources.*\(2, 16000\).*\(3, 16000\)"):
        metrics.bss_eval(references, three)
    with pytest.raises(ValueError, match=r"\(2, 16000\).*\(3, 16000\)"):
        metrics.best_permutation(references, three)


def test_other_bad_inputs_raise_value_error(two_talkers):
    mixture, references, estimates = two_talkers
    with pytest.raises(ValueError, match=r"\(100,\).*\(99,\)"):
        metrics.snr(np.ones(100), np.ones(99))
    with pytest.raises(ValueError, match=r"\(100,\).*\(99,\)"):
        metrics.si_sdr(np.ones(100), np.ones(99))
    with pytest.raises(ValueError, match="NaN"):
        metrics.snr(references, np.full_like(references, np.nan))
    with pytest.raises(ValueError, match="Unknown metric"):
        metrics.evaluate_separation(mixture, references, estimates, SAMPLE_RATE, metrics=("pesq",))
    with pytest.raises(ValueError, match="sample_rate"):
        metrics.evaluate_separation(mixture, references, estimates, 0)
    with pytest.raises(ValueError, match="2 dimension"):
        metrics.evaluate_separation(mixture, references[0], estimates, SAMPLE_RATE)
    with pytest.raises(ValueError, match="filter_length"):
        metrics.bss_eval(references[:, :300], estimates[:, :300])
    with pytest.raises(ValueError, match="same shape"):
        metrics.stoi_score(references[0], references[0, :-1], SAMPLE_RATE)


# --------------------------------------------------------------------------
# Import hygiene
# --------------------------------------------------------------------------


def test_importing_metrics_pulls_in_no_tensorflow_and_no_metric_backends():
    code = (
        "import sys, speechsep.eval.metrics; "
        "loaded = [m for m in ('tensorflow', 'keras', 'fast_bss_eval', 'pystoi') if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
