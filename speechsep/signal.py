"""Signal conventions used everywhere in the kit, and the time-frequency helpers.

Conventions (fixed for the whole project; the README's "Signal conventions" section):

* audio at :data:`SAMPLE_RATE` = 8 kHz;
* STFT with a 256-point FFT (32 ms), a 64-sample hop (8 ms) and a sqrt-Hann
  window, giving :data:`N_BINS` = 129 frequency bins;
* a bin is *active* when its mixture magnitude is within
  :data:`SILENCE_THRESHOLD_DB` = 40 dB of the mixture's maximum. Silent bins
  are weighted out of the deep-clustering loss and of the bin accuracies.

The STFT is a plain numpy/scipy implementation (no TensorFlow), so the data
generator never imports TensorFlow. A periodic sqrt-Hann window at hop N/4
satisfies the weighted overlap-add condition, so :func:`istft` of :func:`stft`
reproduces the signal up to float rounding (tested). Frame ``t`` is centred
on sample ``t * HOP_LENGTH``.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

SAMPLE_RATE = 8000
N_FFT = 256
HOP_LENGTH = 64
N_BINS = N_FFT // 2 + 1  # 129
SILENCE_THRESHOLD_DB = 40.0
LOG_FLOOR = 1e-7  # added to magnitudes before the log: silence gives log(1e-7), never -inf


def analysis_window() -> np.ndarray:
    """Periodic sqrt-Hann window of length :data:`N_FFT`, float64 [N_FFT]."""
    return np.sqrt(scipy.signal.get_window("hann", N_FFT, fftbins=True))


def num_frames(num_samples: int) -> int:
    """Number of STFT frames for a signal of ``num_samples`` samples: ``ceil(samples / hop) + 1``."""
    return int(np.ceil(num_samples / HOP_LENGTH)) + 1


def stft(waveform: np.ndarray) -> np.ndarray:
    """Complex centred STFT.

    Parameters
    ----------
    waveform : array [..., samples]

    Returns
    -------
    complex64 array [..., frames, N_BINS], ``frames = num_frames(samples)``.
    Frame ``t`` is centred on sample ``t * HOP_LENGTH`` (the signal is
    zero-padded by ``N_FFT // 2`` on the left and enough on the right).
    """
    waveform = np.asarray(waveform, dtype=np.float64)
    num_samples = waveform.shape[-1]
    if num_samples == 0:
        raise ValueError("stft: the waveform has no samples")
    frames = num_frames(num_samples)
    padded_length = (frames - 1) * HOP_LENGTH + N_FFT
    pad_left = N_FFT // 2
    pad_right = padded_length - num_samples - pad_left
    padding = [(0, 0)] * (waveform.ndim - 1) + [(pad_left, pad_right)]
    padded = np.pad(waveform, padding)  # [..., padded_length]
    windows = np.lib.stride_tricks.sliding_window_view(padded, N_FFT, axis=-1)[..., ::HOP_LENGTH, :]
    # windows: [..., frames, N_FFT]
    return np.fft.rfft(windows * analysis_window(), axis=-1).astype(np.complex64)  # [..., frames, bins]


def istft(spectrum: np.ndarray, length: int) -> np.ndarray:
    """Inverse of :func:`stft` by weighted overlap-add (divides by the summed squared window).

    spectrum : complex [..., frames, N_BINS]; length : output samples.
    Returns float32 [..., length].
    """
    spectrum = np.asarray(spectrum)
    if spectrum.ndim < 2 or spectrum.shape[-1] != N_BINS:
        raise ValueError(f"istft: expected [..., frames, {N_BINS}], got shape {spectrum.shape}")
    window = analysis_window()
    frames = spectrum.shape[-2]
    segments = np.fft.irfft(spectrum, n=N_FFT, axis=-1) * window  # [..., frames, N_FFT]
    padded_length = (frames - 1) * HOP_LENGTH + N_FFT
    output = np.zeros(spectrum.shape[:-2] + (padded_length,))
    window_sum = np.zeros(padded_length)
    for frame in range(frames):
        start = frame * HOP_LENGTH
        output[..., start : start + N_FFT] += segments[..., frame, :]
        window_sum[start : start + N_FFT] += window**2
    output /= np.maximum(window_sum, 1e-8)
    output = output[..., N_FFT // 2 :]
    if output.shape[-1] < length:
        output = np.pad(output, [(0, 0)] * (output.ndim - 1) + [(0, length - output.shape[-1])])
    return output[..., :length].astype(np.float32)


def log_magnitude(spectrum: np.ndarray) -> np.ndarray:
    """Natural-log magnitude with a floor, float32, same shape as ``spectrum``."""
    return np.log(np.abs(spectrum) + LOG_FLOOR).astype(np.float32)


def active_bins(mixture_spectrum: np.ndarray, threshold_db: float = SILENCE_THRESHOLD_DB) -> np.ndarray:
    """Bins within ``threshold_db`` of the mixture's maximum magnitude.

    mixture_spectrum : complex [frames, bins] (or any shape). Returns bool, same
    shape. An all-zero mixture has no active bin (and never a NaN).
    """
    magnitude = np.abs(mixture_spectrum)
    peak = float(magnitude.max()) if magnitude.size else 0.0
    if peak <= 0.0:
        return np.zeros(magnitude.shape, dtype=bool)
    return magnitude >= peak * 10.0 ** (-threshold_db / 20.0)


def ideal_binary_mask(source_spectra: np.ndarray) -> np.ndarray:
    """Dominant source per bin.

    source_spectra : complex [C, frames, bins]. Returns int8 labels
    [frames, bins] in ``0..C-1`` (ties, e.g. silence, go to source 0).
    """
    return np.argmax(np.abs(source_spectra), axis=0).astype(np.int8)


def ideal_ratio_mask(source_spectra: np.ndarray) -> np.ndarray:
    """Magnitude ratio mask |S_c| / sum_c |S_c|, float32 [C, frames, bins]."""
    magnitude = np.abs(source_spectra)
    total = magnitude.sum(axis=0, keepdims=True)
    return (magnitude / np.maximum(total, 1e-12)).astype(np.float32)


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """labels int [...] -> float32 one-hot [..., num_classes]."""
    return np.eye(num_classes, dtype=np.float32)[labels]


def apply_masks(mixture_spectrum: np.ndarray, masks: np.ndarray, length: int) -> np.ndarray:
    """Mask the mixture STFT and resynthesise with the mixture phase.

    mixture_spectrum : complex [frames, bins]; masks : [C, frames, bins] in [0, 1];
    returns float32 waveforms [C, length].
    """
    masks = np.asarray(masks, dtype=np.float32)
    if masks.shape[1:] != mixture_spectrum.shape:
        raise ValueError(
            f"apply_masks: masks {masks.shape} do not match the mixture STFT {mixture_spectrum.shape}"
        )
    return istft(masks * mixture_spectrum[None], length)  # [C, length]


def masks_from_labels(labels: np.ndarray, num_sources: int) -> np.ndarray:
    """Binary masks [C, frames, bins] from per-bin labels [frames, bins]."""
    return np.moveaxis(one_hot(labels, num_sources), -1, 0)
