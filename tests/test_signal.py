import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from speechsep import signal


def test_analysis_window_is_periodic_sqrt_hann():
    window = signal.analysis_window()
    assert np.allclose(window**2, np.hanning(257)[:-1], atol=1e-12)  # periodic Hann, squared


@settings(max_examples=25, deadline=None)
@given(length=st.integers(1, 3000), seed=st.integers(0, 10_000))
def test_stft_istft_reproduces_signal(length, seed):
    waveform = np.random.default_rng(seed).standard_normal(length)
    spectrum = signal.stft(waveform)
    assert spectrum.shape == (signal.num_frames(length), signal.N_BINS)
    np.testing.assert_allclose(signal.istft(spectrum, length), waveform, atol=1e-5)


def test_stft_batched_and_empty():
    batch = np.random.default_rng(0).standard_normal((3, 2, 500))
    assert signal.stft(batch).shape == (3, 2, signal.num_frames(500), 129)
    with pytest.raises(ValueError, match="no samples"):
        signal.stft(np.zeros(0))


def test_active_bins_threshold_and_silence():
    spectrum = np.array([[1.0, 0.011, 0.009, 0.0]])  # 0 dB, -39.2 dB, -40.9 dB, silent
    np.testing.assert_array_equal(signal.active_bins(spectrum), [[True, True, False, False]])
    silent = signal.stft(np.zeros(1000))
    assert not signal.active_bins(silent).any()
    assert np.isfinite(signal.log_magnitude(silent)).all()


def test_ibm_is_dominant_source_and_masks_resynthesise():
    rng = np.random.default_rng(1)
    sources = rng.standard_normal((2, 4000)) * np.array([[1.0], [0.3]])
    spectra = signal.stft(sources)
    ibm = signal.ideal_binary_mask(spectra)
    assert ibm.dtype == np.int8
    np.testing.assert_array_equal(ibm == 1, np.abs(spectra[1]) > np.abs(spectra[0]))
    mixture = sources.sum(0)
    # the IRM-like "true ratio" masks applied to the mixture give the sources back exactly
    ratio = spectra / np.where(np.abs(spectra.sum(0)) > 0, spectra.sum(0), 1)
    estimates = signal.istft(ratio * signal.stft(mixture)[None], 4000)
    np.testing.assert_allclose(estimates, sources, atol=1e-4)
    masks = signal.masks_from_labels(ibm, 2)
    assert masks.shape == (2,) + ibm.shape and np.all(masks.sum(0) == 1)
    with pytest.raises(ValueError, match="do not match"):
        signal.apply_masks(signal.stft(mixture), masks[:, :10], 4000)
