"""tf.data input pipelines: pickle shards (or fresh dynamic mixtures) -> batches.

Every pipeline yields ``(features, targets)`` with

* ``features``: float32 [B, T, F], the mixture log-magnitude normalised per bin
  with the TRAINING split's mean/std (T = ``chunk_frames``, default 100; F = 129);
* ``targets``: a dict with ``"ibm"`` int32 [B, T, F] (dominant source index) and
  ``"active"`` float32 [B, T, F] (1 for bins within 40 dB of the mixture
  maximum, 0 for silent bins and for padding).

Each spectrogram is cut into consecutive ``chunk_frames``-frame chunks. Like
the original, the remainder is dropped by default; ``pad_remainder=True``
zero-pads the last chunk instead and marks the padding inactive.
:func:`packed_targets` turns the dict into the [B, T, F, C+1] tensor the Keras
losses take.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import tensorflow as tf

from speechsep.data.corpus import Corpus
from speechsep.data.mixing import MixingConfig, make_mixture
from speechsep.data.shards import compute_stats, load_shard, load_stats, read_index, shard_paths
from speechsep.signal import N_BINS

CHUNK_FRAMES = 100
SHUFFLE_BUFFER = 2048


def chunk_record(
    record: dict, mean: np.ndarray, std: np.ndarray, chunk_frames: int = CHUNK_FRAMES,
    pad_remainder: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (features [T, F] float32, ibm [T, F] int32, active [T, F] float32) chunks."""
    features = ((record["log_magnitude"] - mean) / std).astype(np.float32)  # [N, F]
    ibm = record["ibm"].astype(np.int32)  # [N, F]
    active = record["active"].astype(np.float32)  # [N, F]
    frames = features.shape[0]
    full = frames // chunk_frames
    for start in range(0, full * chunk_frames, chunk_frames):
        stop = start + chunk_frames
        yield features[start:stop], ibm[start:stop], active[start:stop]
    if pad_remainder and frames % chunk_frames:
        start = full * chunk_frames
        padding = ((0, chunk_frames - (frames - start)), (0, 0))
        yield (np.pad(features[start:], padding), np.pad(ibm[start:], padding),
               np.pad(active[start:], padding))


def _signature(chunk_frames: int):
    spec = lambda dtype: tf.TensorSpec((chunk_frames, N_BINS), dtype)  # noqa: E731
    return (spec(tf.float32), spec(tf.int32), spec(tf.float32))


def _finish(
    dataset: tf.data.Dataset, batch_size: int, shuffle: bool, seed: int, buffer: int = SHUFFLE_BUFFER
) -> tf.data.Dataset:
    if shuffle:
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    dataset = dataset.map(lambda f, i, a: (f, {"ibm": i, "active": a}))
    return dataset.prefetch(tf.data.AUTOTUNE)


def make_dataset(
    data_dir, split: str, batch_size: int = 32, chunk_frames: int = CHUNK_FRAMES,
    shuffle: bool = True, pad_remainder: bool = False, seed: int = 0,
) -> tf.data.Dataset:
    """Batches from the pickle shards of ``split`` in ``data_dir`` (see module docstring)."""
    if batch_size < 1 or chunk_frames < 1:
        raise ValueError(f"batch_size and chunk_frames must be positive, got {batch_size}, {chunk_frames}")
    mean, std = load_stats(data_dir)
    entries = shard_paths(data_dir, split)
    if not entries:
        raise ValueError(f"{data_dir}: split {split!r} has no shards")
    paths = [str(p) for p, _ in entries]
    digests = [d for _, d in entries]

    def generate(path, digest):
        for record in load_shard(path.decode(), digest.decode()):
            yield from chunk_record(record, mean, std, chunk_frames, pad_remainder)

    shards = tf.data.Dataset.from_tensor_slices((paths, digests))
    if shuffle:
        shards = shards.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    dataset = shards.interleave(
        lambda p, d: tf.data.Dataset.from_generator(generate, args=(p, d), output_signature=_signature(chunk_frames)),
        cycle_length=min(4, len(paths)), block_length=8,
    )
    return _finish(dataset, batch_size, shuffle, seed)


def estimate_stats(corpus: Corpus, speakers: list[str], mixing: MixingConfig, mixtures: int = 200) -> tuple:
    """Per-bin (mean, std) from ``mixtures`` random training mixtures (for dynamic mixing)."""
    rng = np.random.default_rng([mixing.seed, 4242])
    by_speaker = {s: corpus.utterances_of(s) for s in speakers}
    stats = compute_stats(make_mixture(corpus, speakers, mixing, rng, by_speaker) for _ in range(mixtures))
    return np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32)


def make_dynamic_dataset(
    corpus: Corpus, speakers: list[str], mixing: MixingConfig, mean: np.ndarray, std: np.ndarray,
    batch_size: int = 32, chunk_frames: int = CHUNK_FRAMES, seed: int = 0,
) -> tf.data.Dataset:
    """An endless stream of fresh random mixtures of ``speakers`` (nothing written to disk).

    Use with ``steps_per_epoch``; every epoch sees new mixtures. Deterministic from ``seed``.
    """

    def generate():
        rng = np.random.default_rng([seed, mixing.seed, 31337])
        by_speaker = {s: corpus.utterances_of(s) for s in speakers}
        while True:
            record = make_mixture(corpus, speakers, mixing, rng, by_speaker)
            yield from chunk_record(record, mean, std, chunk_frames)

    dataset = tf.data.Dataset.from_generator(generate, output_signature=_signature(chunk_frames))
    # fresh mixtures are already random: a small buffer only decorrelates chunks of one utterance
    return _finish(dataset, batch_size, shuffle=True, seed=seed, buffer=256)


def packed_targets(targets: dict, num_sources: int) -> tf.Tensor:
    """{"ibm", "active"} -> float32 [B, T, F, C+1]: one-hot IBM channels, then the active weight."""
    one_hot = tf.one_hot(targets["ibm"], num_sources, dtype=tf.float32)  # [B, T, F, C]
    return tf.concat([one_hot, targets["active"][..., None]], axis=-1)  # [B, T, F, C+1]


def describe(data_dir) -> dict:
    """Counts for printing: mixtures and speakers per split, talkers, source corpus."""
    index = read_index(data_dir)
    return {
        "num_sources": index["config"]["mixing"]["num_speakers"],
        "splits": {k: v["mixtures"] for k, v in index["splits"].items()},
        "corpus": index["corpus"]["name"],
        "path": str(Path(data_dir)),
    }
