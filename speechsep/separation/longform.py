"""The one separation path behind every entry point: recordings of any length, at their own sample rate.

``python -m speechsep separate``, ``pretrained.load(...).separate/separate_file`` and
``speechsep.separate`` all call :func:`separate_audio`, so they count the same way
(:func:`plan`) and return the same estimates.

What happens to a recording (mono ``audio`` at its rate R, any length):

1. **To 8 kHz.** The mixture is resampled to :data:`speechsep.signal.SAMPLE_RATE`
   (SciPy's polyphase filter, block by block: :func:`resampled`; a recording
   longer than :data:`SINGLE_PASS_SECONDS` goes to a temporary file at 8 kHz,
   :class:`DiskAudio`, read back window by window).
2. **Network and readout.** A recording of at most :data:`SINGLE_PASS_SECONDS`
   goes through :meth:`Separator.separate` as it always has (one network
   pass, :func:`~speechsep.separation.separator.read_masks`). A longer one is
   cut into windows of :data:`CHUNK_FRAMES` frames plus :data:`CONTEXT_FRAMES`
   of context each side, run :data:`BATCH_SIZE` windows at a time; each
   window's core embeddings go to a temporary file (float16) and a seeded
   random subsample of the active bins of the WHOLE recording (at most
   :data:`~speechsep.separation.cluster.MAX_FIT_POINTS`, the smallest random
   keys) is kept. The talkers are counted (``config.count_method``) and
   clustered once on that subsample: one set of centres for the whole
   recording, so each talker stays in its own estimate from start to end.
   Every bin of every frame is then assigned from its embedding (soft masks
   ``config.soft_mask_beta`` or the nearest centre).
3. **Full band at the output rate.** The masks [K, frames, 129] of the 8 kHz
   STFT are extended over an STFT at the output rate with the same 32 ms
   window and 8 ms hop (:func:`band_weights`): linearly interpolated in time
   and frequency up to 4 kHz; above 4 kHz each frame takes its mask's
   energy-weighted mean over 2-4 kHz (:data:`HIGH_BAND_HZ`), since a talker
   who dominates the upper speech band dominates what lies above it. The
   masked STFT is resynthesised by overlap-add block by block
   (:class:`OverlapAdd`) and handed to a sink (an array, or files on disk):
   memory stays flat however long the recording is. At 8 kHz (``rate=8000``)
   the masks apply to the 8 kHz STFT as they are: today's 8 kHz estimates.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from speechsep import signal
from speechsep.separation import cluster
from speechsep.separation.separator import (check_talker_limit, counts_talkers, embeddings_of, single_threaded_blas,
                                            split_batch)

SINGLE_PASS_SECONDS = 30.0
"""Recordings up to this long (at 8 kHz) take one network pass, :meth:`Separator.separate`'s path."""
CHUNK_FRAMES = 1000  # 8 s of 8 kHz frames: the core of each window whose embeddings are kept
CONTEXT_FRAMES = 100  # 0.8 s each side of the core: the BLSTM's context, computed and dropped
BATCH_SIZE = 1  # windows per network call: 2 took as long beside a training run and 0.08 GB more (1.07 GB)
BLOCK_FRAMES = 500  # 8 kHz frames resynthesised per block (4 s; 2000 took 0.13 GB more)
FILES_PER_BATCH = 8  # short recordings whose network passes share one call (python -m speechsep separate DIR)
SHORT_BATCH_FRAMES = 4000  # padded frames per such call at most (eight 4 s files, or one 30 s file)
PROGRESS_SECONDS = 60.0  # longer recordings get a progress bar on a terminal
HIGH_BAND_HZ = (2000.0, 4000.0)  # the band whose energy-weighted mask extends above 4 kHz
READ_BLOCK_SECONDS = 60.0  # audio read and resampled per block


# ----------------------------------------------------------------------------- audio sources


class ArrayAudio:
    """Mono audio in memory, float64 [samples] at ``rate``; :meth:`read` pads zeros outside it."""

    def __init__(self, mono, rate: int, name: str = "waveform"):
        self.mono, self.rate, self.name = np.asarray(mono, dtype=np.float64), int(rate), name
        self.length = len(self.mono)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples [stop - start] float64 from ``start`` (may be < 0) to ``stop`` (may pass the end), zeros outside."""
        out = np.zeros(stop - start)
        lo, hi = max(start, 0), min(stop, self.length)
        if hi > lo:
            out[lo - start:hi - start] = self.mono[lo:hi]
        return out

    def close(self) -> None:
        pass


class FileAudio(ArrayAudio):
    """Mono audio streamed from a file (channels averaged), read block by block; errors name the file.

    Non-finite samples raise :class:`~speechsep.data.audio.AudioFileError` when the block holding them is read.
    """

    def __init__(self, path):
        import soundfile

        from speechsep.data.audio import AudioFileError

        self.path = Path(path)
        self.name = str(path)
        try:
            self.handle = soundfile.SoundFile(str(path))
        except (soundfile.LibsndfileError, RuntimeError, TypeError, OSError) as error:
            raise AudioFileError(path, f"not a readable audio file ({error})") from None
        self.rate, self.length = int(self.handle.samplerate), int(self.handle.frames)

    def read(self, start: int, stop: int) -> np.ndarray:
        import soundfile

        from speechsep.data.audio import AudioFileError

        out = np.zeros(stop - start)
        lo, hi = max(start, 0), min(stop, self.length)
        if hi > lo:
            try:
                self.handle.seek(lo)
                data = self.handle.read(hi - lo, dtype="float64", always_2d=True)  # [samples, channels]
            except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
                raise AudioFileError(self.path, f"cannot read samples {lo}-{hi} ({error})") from None
            if len(data) < hi - lo:
                raise AudioFileError(self.path, f"truncated: {len(data)} of {hi - lo} samples from {lo} could be read")
            if not np.all(np.isfinite(data)):
                bad = int(np.count_nonzero(~np.isfinite(data)))
                raise AudioFileError(self.path, f"{bad} NaN or infinite sample(s): not a valid recording")
            out[lo - start:hi - start] = data.mean(axis=1)
        return out

    def close(self) -> None:
        self.handle.close()


class DiskAudio(ArrayAudio):
    """Mono float32 audio in a raw file (``path``), read block by block: a long 8 kHz mixture kept off the heap."""

    def __init__(self, path, rate: int, length: int):
        self.path, self.rate, self.length, self.name = Path(path), int(rate), int(length), str(path)
        self.handle = open(self.path, "rb")

    def read(self, start: int, stop: int) -> np.ndarray:
        out = np.zeros(stop - start)
        lo, hi = max(start, 0), min(stop, self.length)
        if hi > lo:
            self.handle.seek(lo * 4)
            out[lo - start:hi - start] = np.fromfile(self.handle, np.float32, hi - lo)
        return out

    def close(self) -> None:
        self.handle.close()


def resampled(audio, to_rate: int, block_seconds: float = READ_BLOCK_SECONDS, path=None):
    """All of ``audio`` (:class:`ArrayAudio` or :class:`FileAudio`) at ``to_rate`` Hz, float32 [samples];
    with ``path``, written there block by block and returned as a :class:`DiskAudio`.

    Resampled block by block with SciPy's ``resample_poly``, each block with a
    margin of input either side that covers the filter, so the result equals
    one ``resample_poly`` of the whole recording (up to float rounding) with
    only a block in float64 at a time.
    """
    import scipy.signal

    if audio.rate == to_rate:
        up = down = 1
    else:
        divisor = math.gcd(audio.rate, int(to_rate))
        up, down = int(to_rate) // divisor, audio.rate // divisor
    total = -(-audio.length * up // down)  # resample_poly's output length
    out = np.empty(total, np.float32) if path is None else None
    disk = open(path, "wb") if path is not None else None
    block = down * max(1, int(block_seconds * audio.rate) // down)  # input samples, a multiple of down
    margin = down * (-(-(10 * max(up, down) // up + 2) // down))  # >= the filter's half length, a multiple of down
    for start in range(0, audio.length, block):
        first = start * up // down
        count = min(block * up // down, total - first)
        if up == down:
            piece = audio.read(start, start + count)
        else:
            segment = scipy.signal.resample_poly(audio.read(start - margin, start + block + margin), up, down)
            offset = margin * up // down
            piece = segment[offset:offset + count]
        if disk is None:
            out[first:first + count] = piece
        else:
            disk.write(piece.astype(np.float32).tobytes())
    if disk is None:
        return out
    disk.close()
    return DiskAudio(path, to_rate, total)


# ----------------------------------------------------------------------------- STFT at any rate


@dataclasses.dataclass(frozen=True)
class Grid:
    """The STFT at ``rate``: the kit's 32 ms sqrt-Hann window and 8 ms hop, in samples of that rate.

    ``hop = round(64 · rate / 8000)`` and ``n_fft = 4 · hop`` (a periodic
    sqrt-Hann window at hop N/4 adds up to a constant); at 8 kHz this is
    :mod:`speechsep.signal`'s 256/64 STFT. Frame ``t`` is centred on sample
    ``t · hop``; a recording of N samples has ``ceil(N / hop) + 1`` frames.
    """

    rate: int

    @property
    def hop(self) -> int:
        return max(1, round(signal.HOP_LENGTH * self.rate / signal.SAMPLE_RATE))

    @property
    def n_fft(self) -> int:
        return 4 * self.hop

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    def frames(self, samples: int) -> int:
        return -(-int(samples) // self.hop) + 1

    def window(self) -> np.ndarray:
        import scipy.signal

        return np.sqrt(scipy.signal.get_window("hann", self.n_fft, fftbins=True))


def stft_frames(audio, grid: Grid, first: int, stop: int) -> np.ndarray:
    """Frames ``first..stop-1`` of the centred STFT of ``audio`` on ``grid``: complex64 [stop - first, bins].

    Equal to those rows of :func:`speechsep.signal.stft` of the whole recording (8 kHz grid), computed from the
    samples they cover only.
    """
    half = grid.n_fft // 2
    samples = audio.read(first * grid.hop - half, (stop - 1) * grid.hop + half)  # [(frames - 1) * hop + n_fft]
    windows = np.lib.stride_tricks.sliding_window_view(samples, grid.n_fft)[::grid.hop]  # [frames, n_fft]
    return np.fft.rfft(windows * grid.window(), axis=-1).astype(np.complex64)


class OverlapAdd:
    """Streaming inverse of :func:`stft_frames`: feed frame blocks in order, get finished samples back.

    ``push(first, spectra [C, frames, bins])`` returns the samples [C, n] that
    no later frame touches; ``finish()`` the rest, up to ``length`` samples in
    all. The result equals :func:`speechsep.signal.istft` of all the frames at
    once (weighted overlap-add, divided by the summed squared window).
    """

    def __init__(self, grid: Grid, channels: int, length: int):
        self.grid, self.length, self.total_frames = grid, int(length), grid.frames(length)
        self.window = grid.window()
        self.acc = np.zeros((channels, 0))
        self.weight = np.zeros(0)
        self.base = 0  # padded-coordinate index of acc[:, 0]; output sample n is padded index n + n_fft / 2
        self.emitted = 0

    def push(self, first: int, spectra: np.ndarray) -> np.ndarray:
        grid = self.grid
        segments = np.fft.irfft(spectra, n=grid.n_fft, axis=-1) * self.window  # [C, frames, n_fft]
        frames = segments.shape[1]
        end = (first + frames - 1) * grid.hop + grid.n_fft  # padded index after the last frame's last sample
        grow = end - self.base - self.acc.shape[1]
        if grow > 0:
            self.acc = np.pad(self.acc, ((0, 0), (0, grow)))
            self.weight = np.pad(self.weight, (0, grow))
        for index in range(frames):
            start = (first + index) * grid.hop - self.base
            self.acc[:, start:start + grid.n_fft] += segments[:, index]
            self.weight[start:start + grid.n_fft] += self.window ** 2
        done = (first + frames) * grid.hop if first + frames < self.total_frames else end  # no later frame reaches
        return self._emit(done)

    def finish(self) -> np.ndarray:
        return self._emit(self.base + self.acc.shape[1], final=True)

    def _emit(self, done: int, final: bool = False) -> np.ndarray:
        count = done - self.base
        samples = self.acc[:, :count] / np.maximum(self.weight[:count], 1e-8)
        self.acc, self.weight, self.base = self.acc[:, count:], self.weight[count:], done
        half = self.grid.n_fft // 2
        lo = max(0, half - (done - count))  # padded indices below n_fft / 2 precede the recording
        out = samples[:, lo:]
        out = out[:, :max(0, self.length - self.emitted)]
        self.emitted += out.shape[1]
        if final and self.emitted < self.length:  # frames end before the last samples: zeros, as istft pads
            out = np.pad(out, ((0, 0), (0, self.length - self.emitted)))
            self.emitted = self.length
        return out.astype(np.float32)


def band_weights(grid: Grid) -> np.ndarray:
    """[130, grid.bins]: each bin of ``grid`` as a mix of the 129 8 kHz mask bins and the high-band mask (row 129).

    A bin at f ≤ 4 kHz interpolates linearly between the two 8 kHz bins around
    f; a bin above 4 kHz takes the high-band mask (:data:`HIGH_BAND_HZ`).
    Each column sums to 1, so masks that sum to 1 over the talkers still do.
    """
    weights = np.zeros((signal.N_BINS + 1, grid.bins))
    position = np.arange(grid.bins) * (grid.rate / grid.n_fft) / (signal.SAMPLE_RATE / signal.N_FFT)  # in 8 kHz bins
    for column, p in enumerate(position):
        if p > signal.N_BINS - 1 + 1e-9:
            weights[signal.N_BINS, column] = 1.0
            continue
        low = min(int(np.floor(p)), signal.N_BINS - 1)
        high = min(low + 1, signal.N_BINS - 1)
        weights[low, column] += 1.0 - (p - low)
        weights[high, column] += p - low
    return weights


def high_band_masks(masks: np.ndarray, spectrum: np.ndarray) -> np.ndarray:
    """masks [K, T, 129], mixture spectrum [T, 129] -> each frame's mask over :data:`HIGH_BAND_HZ`,
    weighted by the mixture's energy there: [K, T] (the mean mask where a frame is silent)."""
    low, high = (int(round(hz / (signal.SAMPLE_RATE / signal.N_FFT))) for hz in HIGH_BAND_HZ)
    energy = np.abs(spectrum[:, low:high + 1]) ** 2  # [T, B]
    total = energy.sum(axis=1)  # [T]
    weighted = (masks[:, :, low:high + 1] * energy).sum(axis=2) / np.maximum(total, 1e-20)
    return np.where(total > 1e-20, weighted, masks[:, :, low:high + 1].mean(axis=2)).astype(np.float32)


# ----------------------------------------------------------------------------- counting and readout


def plan(config, num_speakers=None, readout=None, talkers=None) -> tuple[str | None, bool]:
    """(readout, estimate_count) for a separation request: how every entry point decides whether to count.

    A model trained on a varying number of talkers (``config.talkers``) counts
    them with a clustering readout unless ``num_speakers`` forces K;
    mean-shift without ``num_speakers`` keeps the clusters it finds. A mask
    network ignores a clustering readout. ``ValueError`` for ``num_speakers``
    below 1 or ``talkers`` outside what the model was trained for.
    """
    from speechsep.config import format_talkers

    if config.model != "dc" and readout not in (None, "mask"):
        readout = None
    if num_speakers is not None and int(num_speakers) < 1:
        raise ValueError(f"--speakers must be at least 1, got {num_speakers}")
    if talkers is not None and not set(talkers) <= set(config.talker_set):
        raise ValueError(f"--talkers {format_talkers(talkers)} is outside what the model was trained for: "
                         f"{format_talkers(config.talker_set)} talkers (--speakers K forces a count)")
    counting = num_speakers is None and counts_talkers(config, readout)
    return readout, counting or ((readout or config.readout) == "meanshift" and num_speakers is None)


@dataclasses.dataclass
class Separation:
    """What :func:`separate_audio` found: ``sources`` estimates (K), ``n_found`` the count or the clusters
    mean-shift found (None when K was given), ``counted`` whether K is the model's count, ``rate`` the
    estimates' sample rate, ``samples`` their length, ``chunks`` the network windows (1: one pass)."""

    sources: int
    n_found: int | None
    counted: bool
    rate: int
    samples: int
    chunks: int = 1


class _Masks:
    """Masks of any range of 8 kHz frames: [K, stop - first, 129] (and the mixture's 8 kHz spectrum for them)."""

    def __init__(self, mixture8, n_frames, sources, of):
        self.audio8, self.n_frames, self.sources, self.of = mixture8, n_frames, sources, of

    def spectrum(self, first, stop):
        return stft_frames(self.audio8, Grid(signal.SAMPLE_RATE), first, stop)


def _single_pass(separator, mixture8: np.ndarray, num_speakers, readout, estimate_count, talkers, seed, output=None):
    _, result = separator.separate(mixture8, num_speakers, readout, seed=seed, estimate_count=estimate_count,
                                   talkers=talkers, check_active=True, output=output)
    masks = np.asarray(result.masks, np.float32)  # [K, T, 129]
    return _Masks(ArrayAudio(mixture8, signal.SAMPLE_RATE), masks.shape[1], len(masks),
                  lambda first, stop: masks[:, first:stop]), result.n_found, 1


def _windows(n_frames: int) -> list[tuple[int, int, int]]:
    """(window start, core start, core stop) of every network window; every window CHUNK + 2·CONTEXT frames."""
    width = CHUNK_FRAMES + 2 * CONTEXT_FRAMES
    out = []
    for core in range(0, n_frames, CHUNK_FRAMES):
        start = max(0, min(core - CONTEXT_FRAMES, n_frames - width))
        out.append((start, core, min(core + CHUNK_FRAMES, n_frames)))
    return out


def _chunked(separator, audio8, num_speakers, readout, estimate_count, talkers, seed, workdir,
             progress):
    """The long path: batched windows, embeddings to disk, one count and one clustering on a subsample."""
    from speechsep.separation import counting

    config = separator.config
    readout = readout or config.readout
    if readout not in ("kmeans", "meanshift", "mask"):
        raise ValueError(f"readout {readout!r} separates recordings of up to {SINGLE_PASS_SECONDS:g} s; "
                         "use kmeans or meanshift for longer ones")
    grid = Grid(signal.SAMPLE_RATE)
    n_frames = grid.frames(audio8.length)
    peak = 0.0
    for first in range(0, n_frames, BLOCK_FRAMES):  # the mixture's peak: bins 40 dB below it are silent
        peak = max(peak, float(np.abs(stft_frames(audio8, grid, first, min(first + BLOCK_FRAMES, n_frames))).max()))
    if peak <= 0.0:
        raise ValueError("no active bins: the recording is silent, there is nothing to separate")
    floor = peak * 10.0 ** (-signal.SILENCE_THRESHOLD_DB / 20.0)
    windows = _windows(n_frames)
    width = CHUNK_FRAMES + 2 * CONTEXT_FRAMES
    store = open(Path(workdir) / "outputs.bin", "w+b")
    rng = np.random.default_rng(seed)
    keep = cluster.MAX_FIT_POINTS
    kept_keys, kept_points = np.zeros(0), None
    active_total, row_shape = 0, None
    bar = _progress(len(windows), "network", progress)
    for batch_start in range(0, len(windows), BATCH_SIZE):
        batch = windows[batch_start:batch_start + BATCH_SIZE]
        spectra = [stft_frames(audio8, grid, start, start + width) for start, _, _ in batch]
        outputs = split_batch(separator._forward(np.stack([separator.features(s) for s in spectra])))
        for (start, core, stop), spectrum, output in zip(batch, spectra, outputs):
            values = np.asarray(embeddings_of(output))[core - start:stop - start]  # [n, 129(, D)]
            if row_shape is None:
                row_shape = values.shape[1:]
            store.write(values.astype(np.float16).tobytes())
            active = np.abs(spectrum[core - start:stop - start]) >= floor  # [n, 129]
            active_total += int(active.sum())
            if values.ndim == 3 and active.any():  # the subsample: the smallest random keys of all active bins
                points = values[active]  # [n_active, D]
                keys = rng.random(len(points))
                if len(points) > keep:
                    chosen = np.argpartition(keys, keep)[:keep]
                    points, keys = points[chosen], keys[chosen]
                kept_keys = np.concatenate([kept_keys, keys])
                kept_points = points if kept_points is None else np.concatenate([kept_points, points])
                if len(kept_keys) > keep:
                    chosen = np.argpartition(kept_keys, keep)[:keep]
                    kept_keys, kept_points = kept_keys[chosen], kept_points[chosen]
        bar.update(len(batch))
    bar.close()
    if num_speakers is not None and num_speakers > active_total:
        raise ValueError(f"{num_speakers} speakers asked for, but the recording has only {active_total} active "
                         "time-frequency bins")
    item = int(np.prod(row_shape)) * 2  # bytes of one frame's outputs
    store.flush()

    def stored(first, stop):
        store.seek(first * item)
        return np.fromfile(store, np.float16, (stop - first) * item // 2).reshape((stop - first,) + row_shape)

    if readout == "mask":  # a mask network: (m, 1 − m) per frame, as read_masks does
        def of(first, stop):
            first_mask = np.clip(stored(first, stop).astype(np.float32), 0.0, 1.0)
            return np.stack([first_mask, 1.0 - first_mask])
        return _Masks(audio8, n_frames, 2, of), None, len(windows)

    points = kept_points.astype(np.float32)  # [N, D], at most MAX_FIT_POINTS
    with single_threaded_blas():
        count = None
        if estimate_count and counts_talkers(config, readout):
            if config.count_method not in counting.COUNTERS:
                raise ValueError(f"counting method {config.count_method!r} reads a network head; recordings longer "
                                 f"than {SINGLE_PASS_SECONDS:g} s are counted from the embeddings only")
            count = counting.count_points(cluster._unit_rows(points), config.count_method,
                                          talkers or config.talker_set, seed, **counting.config_params(config))
        kwargs = {"bandwidth": config.meanshift_bandwidth} if readout == "meanshift" and config.meanshift_bandwidth \
            else {}
        mean_shift_count = estimate_count and count is None  # mean-shift keeps the clusters it finds
        fitted = cluster.cluster_embeddings(points[:, None, :], np.ones((len(points), 1), bool), method=readout,
                                            n_clusters=None if mean_shift_count else (num_speakers or count
                                                                                      or config.num_speakers),
                                            seed=seed, **kwargs)
    centers = fitted.centers  # [K', D]
    if not mean_shift_count:
        check_talker_limit(config, num_speakers or count or config.num_speakers, readout)
    sources = len(centers) if mean_shift_count else max(num_speakers or count or config.num_speakers, len(centers))
    n_found = count if count is not None else (fitted.n_found if mean_shift_count else None)

    def of(first, stop):
        embeddings = stored(first, stop).astype(np.float32)  # [n, 129, D]
        with single_threaded_blas():
            if config.soft_mask_beta is not None:
                masks = cluster.soft_masks(embeddings, centers, config.soft_mask_beta)  # [K', n, 129]
            else:
                points_ = embeddings.reshape(-1, embeddings.shape[-1])
                labels = np.argmax(points_ @ centers.T.astype(np.float32), axis=1).reshape(embeddings.shape[:2])
                masks = signal.masks_from_labels(labels, len(centers))
        missing = sources - len(masks)  # k-means found fewer distinct clusters than sources
        return np.concatenate([masks, np.zeros((missing,) + masks.shape[1:], np.float32)]) if missing else masks

    return _Masks(audio8, n_frames, sources, of), n_found, len(windows)


def _progress(total: int, unit: str, show: bool):
    """A tqdm bar on stderr when ``show``, else an object with the same update/close that does nothing."""
    if show:
        from tqdm import tqdm

        return tqdm(total=total, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)

    class Silent:
        def update(self, n=1):
            pass

        def close(self):
            pass

    return Silent()


# ----------------------------------------------------------------------------- the path


def is_short(audio) -> bool:
    """Whether ``audio`` takes one network pass (:data:`SINGLE_PASS_SECONDS` or less)."""
    return audio.length / audio.rate <= SINGLE_PASS_SECONDS


def network_outputs(separator, audios) -> list:
    """(8 kHz mixture, network output) of each short recording of ``audios``, the network run once for all.

    The features are right-padded to the longest (then to its XLA bucket)
    and a mask [B, T] marks each one's frames; the fast LSTM layers start each
    row's backward direction at its last valid frame, so each output equals
    that of the recording alone (to float rounding). Several short files
    fill the two cores where one at batch 1 does not. A network that is not
    XLA-compiled (``config.jit_compile`` off) runs them one by one.
    """
    mixtures = [resampled(audio, signal.SAMPLE_RATE) for audio in audios]
    spectra = [signal.stft(m) for m in mixtures]
    if not separator.config.jit_compile:
        return [(m, separator.network_output(s)) for m, s in zip(mixtures, spectra)]
    features = [separator.features(s) for s in spectra]
    budget = SHORT_BATCH_FRAMES
    outputs, batch = [], []
    for item in features + [None]:  # calls of at most `budget` padded frames
        if batch and (item is None or (len(batch) + 1) * max(len(f) for f in batch + [item]) > budget):
            outputs += separator._forward(batch)  # a list: each file's output, as that file alone gives it
            batch = []
        if item is not None:
            batch.append(item)
    return list(zip(mixtures, outputs))


class ArraySink:
    """Collects the estimates in memory: ``open(K, rate, samples)``, then ``write`` blocks [K, n]; ``.estimates``."""

    def open(self, sources: int, rate: int, samples: int) -> None:
        self.estimates, self.filled = np.zeros((sources, samples), np.float32), 0

    def write(self, block: np.ndarray) -> None:
        self.estimates[:, self.filled:self.filled + block.shape[1]] = block
        self.filled += block.shape[1]


class FileSink:
    """Writes estimate k to ``folder/<stem>_s<k>.wav`` (16-bit PCM at the estimates' rate) under a temporary
    name, renamed only by :meth:`commit`: a killed run leaves no half-written file under a final name.

    ``<stem>_s1.wav`` is renamed last, so its presence means the recording is done (:func:`is_done`). A
    recording of at most :data:`SINGLE_PASS_SECONDS` is kept in memory and scaled down together if its peak
    passes 1 (as ``separate`` always did); a longer one is streamed to disk, clipped at ±1 (``clipped``
    counts the samples).
    """

    def __init__(self, folder, stem: str):
        self.folder, self.stem = Path(folder), stem
        self.files, self.buffer, self.clipped, self.written = [], None, 0, []

    def target(self, index: int) -> Path:
        return self.folder / f"{self.stem}_s{index + 1}.wav"

    def open(self, sources: int, rate: int, samples: int) -> None:
        import soundfile

        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob(f".{self.stem}_s*.wav.part*"):  # left by a killed run
            stale.unlink(missing_ok=True)
        self.rate, self.sources = rate, sources
        self.temps = [self.folder / f".{self.target(k).name}.part{os.getpid()}" for k in range(sources)]
        self.files = [soundfile.SoundFile(str(t), "w", rate, 1, subtype="PCM_16", format="WAV") for t in self.temps]
        self.buffer = ArraySink() if samples <= SINGLE_PASS_SECONDS * rate else None
        if self.buffer is not None:
            self.buffer.open(sources, rate, samples)

    def write(self, block: np.ndarray) -> None:
        if self.buffer is not None:
            self.buffer.write(block)
            return
        self.clipped += int(np.count_nonzero(np.abs(block) > 1.0))
        for handle, row in zip(self.files, np.clip(block, -1.0, 1.0)):
            handle.write(row)

    def commit(self) -> list[Path]:
        """Close the files and give them their final names (``<stem>_s1.wav`` last); later indices of an earlier
        run with more talkers are removed first. Returns the final paths."""
        if self.buffer is not None:
            estimates = self.buffer.estimates
            peak = max(float(np.max(np.abs(estimates))), 1e-9)
            for handle, row in zip(self.files, estimates / max(peak, 1.0)):
                handle.write(row)
        for handle in self.files:
            handle.close()
        index = self.sources
        while self.target(index).exists():  # an earlier run found more talkers: its extra files would mislead
            self.target(index).unlink()
            index += 1
        for k in reversed(range(self.sources)):
            os.replace(self.temps[k], self.target(k))
        self.written = [self.target(k) for k in range(self.sources)]
        return self.written

    def abort(self) -> None:
        """Close and delete the temporary files (nothing under a final name changes)."""
        for handle in self.files:
            handle.close()
        for temp in getattr(self, "temps", []):
            temp.unlink(missing_ok=True)


def is_done(folder, stem: str) -> bool:
    """Whether :class:`FileSink` finished ``stem`` in ``folder`` (its ``<stem>_s1.wav``, renamed last, exists)."""
    return (Path(folder) / f"{stem}_s1.wav").is_file()


def open_audio(path):
    """A recording to separate: :class:`FileAudio` (streamed) when its header says it lasts more than
    :data:`SINGLE_PASS_SECONDS`, else read whole with :func:`speechsep.data.audio.read_audio`, which names every
    problem of the file (missing, a folder, not audio, empty, truncated, NaN) before any work."""
    from speechsep.data.audio import audio_header, read_audio

    path = Path(path)
    if path.is_file():
        reason, duration = audio_header(path)
        if reason is None and duration is not None and duration > SINGLE_PASS_SECONDS:
            return FileAudio(path)
    data, rate = read_audio(path, non_finite="error")
    return ArrayAudio(data.mean(axis=1), rate, str(path))


def separate_audio(separator, audio, num_speakers=None, readout=None, talkers=None, rate=None, seed: int = 0,
                   sink=None, progress=None, prepared=None) -> tuple[object, Separation]:
    """Separate mono ``audio`` (:class:`ArrayAudio` or :class:`FileAudio`) into its talkers at ``rate``.

    ``rate`` (default: the audio's own) is the estimates' sample rate; 8000
    gives the 8 kHz band as the network sees it. ``num_speakers``,
    ``readout``, ``talkers``: see :func:`plan`. ``sink`` (default an
    :class:`ArraySink`) receives ``open(K, rate, samples)`` and then the
    estimates block by block [K, n]. ``progress`` (default: recordings over
    :data:`PROGRESS_SECONDS` when stderr is a terminal) shows a tqdm bar.
    A silent recording, or one with fewer active bins than ``num_speakers``,
    is a ``ValueError``. ``prepared``: (the 8 kHz mixture, the network's
    output) of a short recording from :func:`network_outputs`. Returns (the
    sink, :class:`Separation`).
    """
    rate = int(rate or audio.rate)
    if rate < 1:
        raise ValueError(f"the output rate must be a positive number of Hz, got {rate}")
    readout, estimate_count = plan(separator.config, num_speakers, readout, talkers)
    seconds = audio.length / audio.rate
    if progress is None:
        progress = seconds > PROGRESS_SECONDS and sys.stderr.isatty()
    with tempfile.TemporaryDirectory(prefix="speechsep-") as workdir:
        precomputed = None
        if prepared is not None:
            mixture8, precomputed = prepared
        elif audio.length / audio.rate <= SINGLE_PASS_SECONDS:  # one pass, in memory, as it always was
            mixture8 = resampled(audio, signal.SAMPLE_RATE)  # [samples at 8 kHz] float32
        else:  # a long recording at 8 kHz stays off the heap (115 MB an hour)
            mixture8 = resampled(audio, signal.SAMPLE_RATE, path=Path(workdir) / "mixture8.f32")
        if isinstance(mixture8, np.ndarray) and len(mixture8) <= SINGLE_PASS_SECONDS * signal.SAMPLE_RATE:
            masks, n_found, chunks = _single_pass(separator, mixture8, num_speakers, readout, estimate_count,
                                                  talkers, seed, precomputed)
        else:
            audio8 = mixture8 if isinstance(mixture8, ArrayAudio) else ArrayAudio(mixture8, signal.SAMPLE_RATE)
            masks, n_found, chunks = _chunked(separator, audio8, num_speakers, readout, estimate_count, talkers,
                                              seed, workdir, progress)
        output = audio if rate == audio.rate else (
            masks.audio8 if rate == signal.SAMPLE_RATE else ArrayAudio(resampled(audio, rate), rate))
        samples = output.length
        sink = ArraySink() if sink is None else sink
        sink.open(masks.sources, rate, samples)
        _synthesise(masks, output, rate, sink, progress)
        masks.audio8.close()
    counted = estimate_count and counts_talkers(separator.config, readout)
    return sink, Separation(masks.sources, n_found, counted, rate, samples, chunks)


def _synthesise(masks: _Masks, output, rate: int, sink, progress: bool) -> None:
    """Mask ``output``'s STFT on the grid of ``rate`` block by block and overlap-add into ``sink``."""
    grid = Grid(rate)
    ola = OverlapAdd(grid, masks.sources, output.length)
    total = grid.frames(output.length)
    same = grid == Grid(signal.SAMPLE_RATE)
    weights = None if same else band_weights(grid).astype(np.float32)  # [130, bins]
    step = max(1, round(BLOCK_FRAMES * signal.HOP_LENGTH / signal.SAMPLE_RATE * rate / grid.hop))
    bar = _progress(total, "frame", progress)
    for first in range(0, total, step):
        stop = min(first + step, total)
        spectrum = stft_frames(output, grid, first, stop)  # [n, bins]
        if same:
            block = masks.of(first, min(stop, masks.n_frames))
        else:  # each frame's time in 8 kHz frames, interpolated linearly between the two around it
            position = np.arange(first, stop) * grid.hop / rate * signal.SAMPLE_RATE / signal.HOP_LENGTH
            low = np.clip(np.floor(position).astype(int), 0, masks.n_frames - 1)
            high = np.minimum(low + 1, masks.n_frames - 1)
            frac = np.clip(position - low, 0.0, 1.0).astype(np.float32)[None, :, None]
            lo8, hi8 = int(low.min()), int(high.max()) + 1
            masks8 = masks.of(lo8, hi8)  # [K, m, 129]
            extended = np.concatenate([masks8, high_band_masks(masks8, masks.spectrum(lo8, hi8))[..., None]], axis=2)
            timed = (1 - frac) * extended[:, low - lo8] + frac * extended[:, high - lo8]  # [K, n, 130]
            block = timed @ weights  # [K, n, bins]
        if block.shape[1] < spectrum.shape[0]:  # 8 kHz frames end before the output's (rounding): last mask holds
            block = np.concatenate([block, np.repeat(block[:, -1:], spectrum.shape[0] - block.shape[1], axis=1)], 1)
        sink.write(ola.push(first, block * spectrum[None]))
        bar.update(stop - first)
    sink.write(ola.finish())
    bar.close()
