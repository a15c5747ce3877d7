"""tf.data input pipelines: pickle shards (or fresh dynamic mixtures) -> batches.

Every pipeline yields ``(features, targets)`` with

* ``features``: float32 [B, T, F], the mixture log-magnitude normalised per bin
  with the TRAINING split's mean/std (T = ``chunk_frames``, default 100; F = 129);
* ``targets``: a dict with ``"ibm"`` int32 [B, T, F] (dominant source index) and
  ``"active"`` float32 [B, T, F] (1 for bins within 40 dB of the mixture
  maximum, 0 for silent bins and for padding); with ``mask_target`` (``"msa"`` or
  ``"tpsa"``, for the Chimera++ mask head) also ``"mixture_magnitude"`` float32
  [B, T, F] (``|X|``) and ``"source_targets"`` float32 [B, T, F, C] (see
  :func:`mask_targets`); with ``mask_target`` ``"sisdr"`` instead
  ``"mixture_spectrum"`` [B, T, F, 2] and ``"source_spectra"`` [B, T, F, C, 2]
  (:func:`waveform_targets`). Without it the pipeline computes no extra STFT.

Each spectrogram is cut into consecutive ``chunk_frames``-frame chunks. Like
the original, the remainder is dropped by default; ``pad_remainder=True``
zero-pads the last chunk instead and marks the padding inactive.
:func:`packed_targets` turns the dict into the [B, T, F, C+1] tensor the Keras
losses take.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import tensorflow as tf

from speechsep import signal
from speechsep.config import MASK_LOSSES, ExperimentConfig  # MASK_LOSSES: the mask targets, one per mask-head loss
from speechsep.data.corpus import Corpus
from speechsep.data.mixing import MixingConfig, make_mixture
from speechsep.data.shards import ShardError, compute_stats, load_shard, load_stats, read_index, verify_shards
from speechsep.signal import N_BINS

CHUNK_FRAMES = ExperimentConfig.chunk_frames  # the config's default chunk length, in frames
SHUFFLE_BUFFER = 2048
_PIPELINE_ERRORS: list[ShardError] = []  # raised inside tf.data generators, for original_error()
TARGET_KEYS = ("ibm", "active", "mixture_magnitude", "source_targets")  # in the order chunk_record yields them
WAVEFORM_TARGET_KEYS = ("ibm", "active", "mixture_spectrum", "source_spectra")  # mask_target "sisdr"


def target_keys(mask_target: str | None) -> tuple[str, ...]:
    """The keys of the targets dict, in the order :func:`chunk_record` yields them (after the features)."""
    return WAVEFORM_TARGET_KEYS if mask_target == "sisdr" else TARGET_KEYS
MIXING_STREAMS = 4  # parallel mixture generators of make_dynamic_dataset


@dataclasses.dataclass(frozen=True)
class InputShard:
    """The part of the training input that one input pipeline (one worker) reads: ``index`` of ``count``.

    :func:`make_dataset` gives each shard every ``count``-th shard file;
    :func:`make_dynamic_dataset` gives each its own random stream (shard 0
    draws what a single process draws).
    """

    index: int = 0
    count: int = 1

    def __post_init__(self):
        if not 0 <= self.index < self.count:
            raise ValueError(f"input shard {self.index} of {self.count} does not exist")

    @classmethod
    def of(cls, context: tf.distribute.InputContext) -> "InputShard":
        """The shard of a ``tf.distribute`` input context (one per worker)."""
        return cls(context.input_pipeline_id, context.num_input_pipelines)


def mask_targets(record: dict, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Mixture magnitude ``|X|`` [N, F] and source targets [N, F, C] (float32) of one record.

    ``kind`` ``"msa"`` (magnitude spectrum approximation): ``|S_c|``;
    ``"tpsa"`` (truncated phase-sensitive approximation, Chimera++):
    ``|S_c|·cos(θ_c − θ_X)`` truncated to ``[0, |X|]``. Computed from the
    record's waveforms (``"mixture"`` [samples], ``"sources"`` [C, samples]).
    """
    if kind not in MASK_LOSSES or kind == "sisdr":
        raise ValueError(f"mask target must be msa or tpsa, got {kind!r} (sisdr: waveform_targets)")
    mixture = signal.stft(record["mixture"])  # [N, F] complex
    sources = signal.stft(record["sources"])  # [C, N, F] complex
    magnitude = np.abs(mixture)  # [N, F]
    if kind == "msa":
        targets = np.abs(sources)  # [C, N, F]
    else:
        in_phase = np.real(sources * np.conj(mixture)) / np.maximum(magnitude, 1e-12)  # |S_c| cos(θ_c − θ_X)
        targets = np.clip(in_phase, 0.0, magnitude)  # [C, N, F]
    return magnitude.astype(np.float32), np.moveaxis(targets, 0, -1).astype(np.float32)  # [N, F], [N, F, C]


def waveform_targets(record: dict) -> tuple[np.ndarray, np.ndarray]:
    """Mixture STFT [N, F, 2] and source STFTs [N, F, C, 2] (real, imaginary; float32) of one record: the
    targets of the ``sisdr`` mask loss, which resynthesises both in the graph."""
    mixture = signal.stft(record["mixture"])  # [N, F] complex
    sources = np.moveaxis(signal.stft(record["sources"]), 0, -1)  # [N, F, C] complex
    return (np.stack([mixture.real, mixture.imag], axis=-1).astype(np.float32),
            np.stack([sources.real, sources.imag], axis=-1).astype(np.float32))


def chunk_record(
    record: dict, mean: np.ndarray, std: np.ndarray, chunk_frames: int = CHUNK_FRAMES,
    pad_remainder: bool = False, mask_target: str | None = None, num_sources: int | None = None,
) -> Iterator[tuple[np.ndarray, ...]]:
    """Yield (features [T, F] float32, ibm [T, F] int32, active [T, F] float32) chunks.

    With ``mask_target`` each chunk also carries the mixture magnitude [T, F]
    and the source targets [T, F, C] of :func:`mask_targets` (zero padding),
    with C = ``num_sources`` (default: the record's talkers): the targets of
    talkers a mixture of fewer talkers lacks are silent (all zero).
    """
    features = ((record["log_magnitude"] - mean) / std).astype(np.float32)  # [N, F]
    arrays = [features, record["ibm"].astype(np.int32), record["active"].astype(np.float32)]  # [N, F] each
    if mask_target == "sisdr":
        mixture, sources = waveform_targets(record)  # [N, F, 2], [N, F, K, 2]
        missing = (num_sources or sources.shape[2]) - sources.shape[2]
        arrays.extend([mixture, np.pad(sources, ((0, 0), (0, 0), (0, max(0, missing)), (0, 0)))])  # [N, F, C, 2]
    elif mask_target is not None:
        magnitude, targets = mask_targets(record, mask_target)  # [N, F], [N, F, K]
        missing = (num_sources or targets.shape[-1]) - targets.shape[-1]
        arrays.extend([magnitude, np.pad(targets, ((0, 0), (0, 0), (0, max(0, missing))))])  # [N, F], [N, F, C]
    frames = features.shape[0]
    full = frames // chunk_frames
    for start in range(0, full * chunk_frames, chunk_frames):
        stop = start + chunk_frames
        yield tuple(array[start:stop] for array in arrays)
    if pad_remainder and frames % chunk_frames:
        start = full * chunk_frames
        length = chunk_frames - (frames - start)
        yield tuple(np.pad(array[start:], ((0, length),) + ((0, 0),) * (array.ndim - 1)) for array in arrays)


def _signature(chunk_frames: int, mask_target: str | None = None, num_sources: int = 2):
    spec = lambda dtype: tf.TensorSpec((chunk_frames, N_BINS), dtype)  # noqa: E731
    if mask_target is None:
        return (spec(tf.float32), spec(tf.int32), spec(tf.float32))
    if mask_target == "sisdr":
        return (spec(tf.float32), spec(tf.int32), spec(tf.float32),
                tf.TensorSpec((chunk_frames, N_BINS, 2), tf.float32),
                tf.TensorSpec((chunk_frames, N_BINS, num_sources, 2), tf.float32))
    return (spec(tf.float32), spec(tf.int32), spec(tf.float32), spec(tf.float32),
            tf.TensorSpec((chunk_frames, N_BINS, num_sources), tf.float32))


def _finish(
    dataset: tf.data.Dataset, batch_size: int, shuffle: bool, seed: int, buffer: int = SHUFFLE_BUFFER,
    mask_target: str | None = None,
) -> tf.data.Dataset:
    if shuffle:
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    keys = target_keys(mask_target)
    dataset = dataset.map(lambda features, *targets: (features, dict(zip(keys, targets))))
    return dataset.prefetch(tf.data.AUTOTUNE)


def make_dataset(
    data_dir, split: str, batch_size: int = 32, chunk_frames: int = CHUNK_FRAMES,
    shuffle: bool = True, pad_remainder: bool = False, seed: int = 0, mask_target: str | None = None,
    shard: InputShard | None = None, stats: tuple | None = None,
) -> tf.data.Dataset:
    """Batches from the pickle shards of ``split`` in ``data_dir`` (see module docstring).

    Features are normalised with the dataset's ``stats.json``, or with
    ``stats`` = (mean [F], std [F]) when given (a run that starts from another
    model's weights keeps that model's normalisation).

    With ``shard`` only every ``shard.count``-th shard file, from
    ``shard.index`` on, is read (multi-worker training shards by file); a
    split of fewer files than workers is read whole by every worker, which
    keeps every ``shard.count``-th chunk.
    """
    if batch_size < 1 or chunk_frames < 1:
        raise ValueError(f"batch_size and chunk_frames must be positive, got {batch_size}, {chunk_frames}")
    mean, std = stats if stats is not None else load_stats(data_dir)
    entries = verify_shards(data_dir, split)  # every shard checked before TensorFlow sees it
    if not entries:
        raise ValueError(f"{data_dir}: split {split!r} has no shards")
    by_chunk = shard is not None and 1 < shard.count and len(entries) < shard.count
    if shard is not None and shard.count > 1 and not by_chunk:
        entries = entries[shard.index::shard.count]
    paths = [str(p) for p, _, _ in entries]
    digests = [d for _, d, _ in entries]
    chunks = sum(chunk_count(frames, chunk_frames, pad_remainder) for _, _, shard in entries for frames in shard)
    if chunks == 0:
        raise ValueError(f"{data_dir}: no mixture of split {split!r} is {chunk_frames} frames long "
                         "(lower chunk_frames or pad the remainder)")

    def generate(path, digest):
        try:
            records = load_shard(path.decode(), digest.decode())
        except ShardError as error:  # changed since it was verified: keep it for original_error()
            _PIPELINE_ERRORS.append(error)
            raise
        for record in records:
            yield from chunk_record(record, mean, std, chunk_frames, pad_remainder, mask_target, num_sources)

    num_sources = read_index(data_dir)["config"]["mixing"]["num_speakers"]
    signature = _signature(chunk_frames, mask_target, num_sources)
    shards = tf.data.Dataset.from_tensor_slices((paths, digests))
    if shuffle:
        shards = shards.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    dataset = shards.interleave(
        lambda p, d: tf.data.Dataset.from_generator(generate, args=(p, d), output_signature=signature),
        cycle_length=min(4, len(paths)), block_length=8,
    )
    if by_chunk:  # the same file order on every worker (same seed): disjoint chunks
        dataset = dataset.shard(shard.count, shard.index)
        chunks = len(range(shard.index, chunks, shard.count))
        if chunks == 0:
            raise ValueError(f"{data_dir}: split {split!r} has fewer chunks than the {shard.count} workers")
    # a known length: Keras shows n/N progress and no "ran out of data" warning
    return _finish(dataset, batch_size, shuffle, seed, mask_target=mask_target).apply(
        tf.data.experimental.assert_cardinality(-(-chunks // batch_size)))


def chunk_count(frames: int, chunk_frames: int = CHUNK_FRAMES, pad_remainder: bool = False) -> int:
    """Chunks :func:`chunk_record` cuts from a spectrogram of ``frames`` frames."""
    return -(-frames // chunk_frames) if pad_remainder else frames // chunk_frames


def original_error(error: BaseException) -> BaseException | None:
    """The :class:`ShardError` behind a TensorFlow error raised by a shard pipeline, else None."""
    if isinstance(error, tf.errors.OpError):
        for failure in reversed(_PIPELINE_ERRORS):
            if str(failure) in str(error):
                return failure
    return None


def estimate_stats(corpus: Corpus, speakers: list[str], mixing: MixingConfig, mixtures: int = 200) -> tuple:
    """Per-bin (mean, std) from ``mixtures`` random training mixtures (for dynamic mixing)."""
    rng = np.random.default_rng([mixing.seed, 4242])
    by_speaker = {s: corpus.utterances_of(s) for s in speakers}
    stats = compute_stats(make_mixture(corpus, speakers, mixing, rng, by_speaker) for _ in range(mixtures))
    return np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32)


def make_dynamic_dataset(
    corpus: Corpus, speakers: list[str], mixing: MixingConfig, mean: np.ndarray, std: np.ndarray,
    batch_size: int = 32, chunk_frames: int = CHUNK_FRAMES, seed: int = 0, mask_target: str | None = None,
    pad_remainder: bool = False, shard: InputShard | None = None,
) -> tf.data.Dataset:
    """An endless stream of fresh random mixtures of ``speakers`` (nothing written to disk).

    Use with ``steps_per_epoch``; every epoch sees new mixtures. Deterministic from ``seed``
    and ``shard`` (each input shard of multi-worker training draws its own mixtures).
    ``mask_target`` and ``pad_remainder`` as in :func:`make_dataset`.
    """

    def generate(stream):
        worker = [shard.index] if shard is not None and shard.index else []  # shard 0: the single-process stream
        streams = [shard.index if shard is not None else 0, int(stream)] if stream else []  # stream 0 as before
        rng = np.random.default_rng([seed, mixing.seed, 31337, *worker, *streams])
        by_speaker = {s: corpus.utterances_of(s) for s in speakers}
        while True:
            record = make_mixture(corpus, speakers, mixing, rng, by_speaker)
            yield from chunk_record(record, mean, std, chunk_frames, pad_remainder, mask_target,
                                    mixing.num_speakers)

    signature = _signature(chunk_frames, mask_target, mixing.num_speakers)
    # MIXING_STREAMS independent generators (decode, resample, crop, mix, STFT) run in parallel threads while
    # the model trains; deterministic=True takes their chunks in a fixed round-robin order (same seed, same
    # batches). .repeat(): the generators never end; an infinite cardinality gives .take(n) a known length
    dataset = tf.data.Dataset.range(MIXING_STREAMS).interleave(
        lambda stream: tf.data.Dataset.from_generator(generate, args=(stream,), output_signature=signature),
        cycle_length=MIXING_STREAMS, block_length=1, num_parallel_calls=MIXING_STREAMS,
        deterministic=True).repeat()
    # fresh mixtures are already random: a small buffer only decorrelates chunks of one utterance
    return _finish(dataset, batch_size, shuffle=True, seed=seed, buffer=256, mask_target=mask_target)


def switch_datasets(datasets: list[tf.data.Dataset], stage: Callable[[], int]) -> tf.data.Dataset:
    """Batches from ``datasets[stage()]``, with ``stage()`` called before every batch.

    A curriculum on chunk length: the datasets yield the same structure and
    may differ in the length of their chunks (the result's T is unknown).
    The dataset ends when the chosen one does.
    """
    def stages():
        while True:
            yield stage()

    choice = tf.data.Dataset.from_generator(stages, output_signature=tf.TensorSpec((), tf.int64))
    options = tf.data.Options()
    options.experimental_optimization.inject_prefetch = False  # read stage() when a batch is taken, not ahead
    return tf.data.Dataset.choose_from_datasets(datasets, choice).with_options(options)


def packed_targets(targets: dict, num_sources: int) -> tf.Tensor:
    """{"ibm", "active"} -> float32 [B, T, F, C+1]: one-hot IBM channels, then the active weight."""
    one_hot = tf.one_hot(targets["ibm"], num_sources, dtype=tf.float32)  # [B, T, F, C]
    return tf.concat([one_hot, targets["active"][..., None]], axis=-1)  # [B, T, F, C+1]


def packed_mask_targets(targets: dict) -> tf.Tensor:
    """{"source_targets", "mixture_magnitude"} -> float32 [B, T, F, C+1]: the C targets, then |X|; or (the
    ``sisdr`` loss) {"source_spectra" [B, T, F, C, 2], "mixture_spectrum" [B, T, F, 2]} -> [B, T, F, 2C+2]: the
    real parts of the C source STFTs, their imaginary parts, then the mixture STFT's real and imaginary part."""
    if "source_spectra" in targets:
        sources = targets["source_spectra"]
        return tf.concat([sources[..., 0], sources[..., 1], targets["mixture_spectrum"]], axis=-1)
    return tf.concat([targets["source_targets"], targets["mixture_magnitude"][..., None]], axis=-1)


COUNT_LABEL_SHARE = 0.01
"""A talker counts in a training chunk's label when it dominates at least this share of the chunk's active bins."""


def talker_counts(packed: tf.Tensor, share: float = COUNT_LABEL_SHARE) -> tf.Tensor:
    """Packed IBM targets [B, T, F, C+1] (:func:`packed_targets`) -> int32 [B]: the talkers of each chunk, at
    least 1.

    A talker counts when it dominates at least ``share`` of the chunk's active
    bins (:data:`COUNT_LABEL_SHARE`), so a talker who only ends or begins in
    the chunk with a few bins is not asked of the count head.
    """
    active = packed[..., -1:]  # [B, T, F, 1]
    bins = tf.reduce_sum(packed[..., :-1] * active, axis=[1, 2])  # [B, C]
    total = tf.reduce_sum(active, axis=[1, 2, 3])[:, None]  # [B, 1]
    present = tf.cast(bins > share * total, tf.int32)  # [B, C]
    return tf.maximum(tf.reduce_sum(present, axis=1), 1)  # [B]


def packed_count_targets(packed: tf.Tensor) -> tf.Tensor:
    """Packed IBM targets [B, T, F, C+1] -> float32 [B, C]: one-hot of each chunk's talkers
    (:func:`talker_counts`), index k-1."""
    return tf.one_hot(talker_counts(packed) - 1, packed.shape[-1] - 1, dtype=tf.float32)  # [B, C]


def describe(data_dir) -> dict:
    """Counts for printing: mixtures and speakers per split, talkers, source corpus."""
    index = read_index(data_dir)
    return {
        "num_sources": index["config"]["mixing"]["num_speakers"],
        "splits": {k: v["mixtures"] for k, v in index["splits"].items()},
        "corpus": index["corpus"]["name"],
        "path": str(Path(data_dir)),
    }
