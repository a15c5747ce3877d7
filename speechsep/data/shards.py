"""Pickle shards, made safe: the on-disk dataset format.

Layout of a dataset folder ``DIR``::

    DIR/index.json          format_version, config, corpus summary, per split: speakers,
                            mixture count and the list of shards with their sha256
    DIR/manifest.json       the speaker-disjoint split (speakers, sex, utterance counts) and which
                            corpora it came from (speakers and minutes of audio per corpus and split)
    DIR/stats.json          per-bin mean/std of the log-magnitude, TRAIN split only
    DIR/<split>/shard-NNNNN.pkl   a pickled list of records

Record schema (``FORMAT_VERSION`` 1); the only place it is defined. C = number
of talkers, T = samples at 8 kHz, N = STFT frames, F = 129 bins:

==================  ==================  =========================================
key                 type                meaning
==================  ==================  =========================================
``id``              str                 "<spk>/<utt>+<spk>/<utt>"
``sample_rate``     int                 8000
``mixture``         float32 [T]         sum of ``sources`` (exactly)
``sources``         float32 [C, T]      scaled source waveforms
``log_magnitude``   float32 [N, F]      log(|STFT(mixture)| + 1e-7)
``ibm``             int8 [N, F]         index of the dominant source per bin
``active``          bool [N, F]         bin within 40 dB of the mixture maximum
``speakers``        list[str] (C)       speaker ids
``sexes``           list[str] (C)       "F", "M" or "?"
``utterances``      list[str] (C)       utterance keys
``levels_db``       list[float] (C)     energy of each source relative to source 0
==================  ==================  =========================================

Safety: :func:`load_shard` checks the shard's sha256 against the index and
unpickles with :class:`speechsep.io.RestrictedUnpickler`, which admits only numpy arrays,
dtypes and scalars and builtin containers. Any other global (``os.system``,
``builtins.eval``...) is refused before anything runs.

Robustness: every shard and the index are written to a temporary file and
renamed into place (atomic on POSIX). Mixture ``i`` of a split is drawn from a
random generator seeded by ``(seed, split, i)``, so a rerun after an
interruption regenerates exactly the missing shards and nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from speechsep.data.corpus import Corpus
from speechsep.data.mixing import SPLITS, MixingConfig, make_mixture, split_composition, split_speakers
from speechsep.io import UnsafePickleError, atomic_write_bytes, atomic_write_json, safe_loads, sha256_of
from speechsep.signal import N_BINS

FORMAT_VERSION = 1
INDEX_NAME = "index.json"


class ShardError(ValueError):
    """A shard or dataset folder that cannot be trusted (the message names the file)."""


# ----------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
    """Everything that determines a dataset's content (saved in ``index.json``).

    The training-only options of ``mixing`` (``crop_seconds``, ``speed_range``)
    apply to the train split; valid and test use :meth:`MixingConfig.held_out`.
    """

    mixtures: dict = dataclasses.field(default_factory=lambda: {"train": 800, "valid": 100, "test": 100})
    shard_size: int = 100
    mixing: MixingConfig = MixingConfig()
    valid_fraction: float = 0.15
    test_fraction: float = 0.3

    @classmethod
    def from_total(cls, total: int, **kwargs) -> "DatasetConfig":
        """Split ``total`` mixtures 80/10/10 (at least one each)."""
        if total < 3:
            raise ValueError(f"--mixtures must be at least 3 (one per split), got {total}")
        held_out = max(1, total // 10)
        return cls(mixtures={"train": total - 2 * held_out, "valid": held_out, "test": held_out}, **kwargs)

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["mixing"]["level_range_db"] = list(self.mixing.level_range_db)
        data["mixing"]["speed_range"] = list(self.mixing.speed_range)
        data["mixing"]["talkers"] = list(self.mixing.talkers)
        data["mixing"]["talker_weights"] = list(self.mixing.talker_weights)
        return data

    @classmethod
    def from_json(cls, data: dict) -> "DatasetConfig":
        mixing = dict(data["mixing"])
        mixing["level_range_db"] = tuple(mixing["level_range_db"])
        mixing["speed_range"] = tuple(mixing.get("speed_range", (1.0, 1.0)))
        return cls(**{**data, "mixing": MixingConfig(**mixing)})


# ----------------------------------------------------------------------------- reading


def read_index(data_dir) -> dict:
    """Load and validate ``DIR/index.json`` (format_version, required keys)."""
    path = Path(data_dir) / INDEX_NAME
    if not path.is_file():
        raise ShardError(f"{path} does not exist: {data_dir} is not a speechsep dataset folder")
    try:
        index = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ShardError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(index, dict):
        raise ShardError(f"{path}: not a dataset index (expected a JSON object)")
    version = index.get("format_version")
    if not isinstance(version, int):
        raise ShardError(f"{path}: missing or invalid format_version")
    if version > FORMAT_VERSION:
        raise ShardError(
            f"{path}: written by a newer speechsep (format_version {version}; this one reads up to "
            f"{FORMAT_VERSION}). Upgrade speechsep or regenerate the dataset."
        )
    _check_index_layout(index, path)
    return index


def _check_index_layout(index: dict, path: Path) -> None:
    """Raise :class:`ShardError` unless ``index`` has a config and, per split, a list of shard entries."""
    splits = index.get("splits")
    if not isinstance(index.get("config"), dict) or not isinstance(splits, dict):
        raise ShardError(f"{path}: damaged index (no 'config' or 'splits'); regenerate the dataset")
    for name, split in splits.items():
        shards = split.get("shards") if isinstance(split, dict) else None
        if not isinstance(shards, list) or not all(
                isinstance(s, dict) and isinstance(s.get("file"), str) and isinstance(s.get("sha256"), str)
                and not Path(s["file"]).is_absolute() and ".." not in Path(s["file"]).parts for s in shards):
            raise ShardError(f"{path}: damaged index (split {name!r} has no valid shard list); "
                             "regenerate the dataset")


def load_shard(path, expected_sha256: str | None = None) -> list[dict]:
    """Verify and safely unpickle one shard. Raises :class:`ShardError` naming the file."""
    path = Path(path)
    try:
        payload = path.read_bytes()
    except OSError as error:
        raise ShardError(f"{path}: cannot read shard ({error})") from None
    if expected_sha256 is not None and sha256_of(payload) != expected_sha256:
        raise ShardError(f"{path}: sha256 mismatch (the shard is corrupt, truncated or was modified; "
                         "rerun the dataset generator with the same options to rewrite it)")
    try:
        records = safe_loads(payload, str(path))
    except UnsafePickleError as error:
        raise ShardError(str(error)) from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ShardError(f"{path}: expected a list of record dicts")
    return records


def shard_paths(data_dir, split: str) -> list[tuple[Path, str]]:
    """(path, sha256) of every completed shard of ``split``, in order."""
    index = read_index(data_dir)
    if split not in index["splits"]:
        raise ShardError(f"{data_dir}: no split {split!r} (has {sorted(index['splits'])})")
    return [(Path(data_dir) / s["file"], s["sha256"]) for s in index["splits"][split]["shards"]]


def verify_shards(data_dir, split: str) -> list[tuple[Path, str, list[int]]]:
    """Check every shard of ``split`` against the index; (path, sha256, frames of each record) per shard.

    Reads each shard once: a missing, unreadable, truncated or modified shard
    is a :class:`ShardError` naming it, raised before any pipeline is built.
    Frame counts come from the index (``frames``) or, for datasets written
    before the index stored them, from the shard itself.
    """
    index = read_index(data_dir)
    if split not in index["splits"]:
        raise ShardError(f"{data_dir}: no split {split!r} (has {sorted(index['splits'])})")
    verified = []
    for entry in index["splits"][split]["shards"]:
        path = Path(data_dir) / entry["file"]
        if not path.is_file():
            raise ShardError(f"{path}: missing (listed in {Path(data_dir) / INDEX_NAME}); "
                             "rerun the dataset generator with the same options to rewrite it")
        status = path.stat()
        key = (str(path.resolve()), status.st_size, status.st_mtime_ns, entry["sha256"])
        if key in _VERIFIED:  # checked earlier in this process and unchanged since
            verified.append((path, entry["sha256"], _VERIFIED[key]))
            continue
        frames = entry.get("frames")
        if isinstance(frames, list) and len(frames) == entry.get("count"):
            try:
                payload = path.read_bytes()
            except OSError as error:
                raise ShardError(f"{path}: cannot read shard ({error})") from None
            if sha256_of(payload) != entry["sha256"]:
                load_shard(path, entry["sha256"])  # raises the sha256 error
        else:
            frames = [int(record["log_magnitude"].shape[0]) for record in load_shard(path, entry["sha256"])]
        _VERIFIED[key] = [int(f) for f in frames]
        verified.append((path, entry["sha256"], _VERIFIED[key]))
    return verified


_VERIFIED: dict[tuple, list[int]] = {}  # (path, size, mtime, sha256) -> frames, for verify_shards


def verify_dataset(data_dir) -> dict:
    """Check a whole dataset folder (index, statistics, every shard of every split); returns the index.

    Cheap to call again: :func:`verify_shards` remembers the shards it checked.
    Raises :class:`ShardError` naming the first bad file.
    """
    index = read_index(data_dir)
    load_stats(data_dir)
    for split in index["splits"]:
        verify_shards(data_dir, split)
    return index


def iter_records(data_dir, split: str) -> Iterator[dict]:
    """Every record of ``split``, shard by shard (bounded memory)."""
    for path, digest in shard_paths(data_dir, split):
        yield from load_shard(path, digest)


def load_stats(data_dir) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin (mean [F], std [F]) of the training log-magnitudes."""
    path = Path(data_dir) / "stats.json"
    if not path.is_file():
        raise ShardError(f"{path} does not exist (dataset build did not finish? rerun the generator)")
    try:
        stats = json.loads(path.read_text())
        mean, std = np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32)
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, KeyError, ValueError) as error:
        raise ShardError(f"{path}: damaged normalisation statistics ({type(error).__name__}: {error}); "
                         "delete it and rerun the generator") from None
    if mean.shape != (N_BINS,) or std.shape != (N_BINS,):
        raise ShardError(f"{path}: damaged normalisation statistics (expected {N_BINS} bins)")
    return mean, std


# ----------------------------------------------------------------------------- writing


def compute_stats(records: Iterator[dict]) -> dict:
    """Per-bin mean and std of ``log_magnitude`` over all frames of ``records`` (float64 sums)."""
    count, total, total_squares = 0, np.zeros(N_BINS), np.zeros(N_BINS)
    for record in records:
        features = record["log_magnitude"].astype(np.float64)  # [N, F]
        count += features.shape[0]
        total += features.sum(axis=0)
        total_squares += (features**2).sum(axis=0)
    if count == 0:
        raise ValueError("cannot compute normalisation statistics from zero frames")
    mean = total / count
    std = np.sqrt(np.maximum(total_squares / count - mean**2, 0.0)) + 1e-5
    return {"mean": mean.tolist(), "std": std.tolist(), "frames": int(count), "split": "train"}


def _normalised(stored_config: dict, index_path: Path) -> dict:
    """A stored config as this version writes it (fields added since then take their defaults)."""
    try:
        return DatasetConfig.from_json(stored_config).to_json()
    except (TypeError, KeyError, ValueError) as error:
        raise ShardError(f"{index_path}: unreadable dataset config ({error})") from None


def built_with(index: dict, config: DatasetConfig, corpus_root: str, index_path) -> bool:
    """Whether the dataset of ``index`` was built from ``corpus_root`` with ``config`` (normalised)."""
    return (_normalised(index["config"], Path(index_path)) == config.to_json()
            and (index.get("corpus") or {}).get("root") == corpus_root)


def write_dataset(
    corpus: Corpus, out_dir, config: DatasetConfig, overwrite: bool = False, progress: bool = True,
    stop_after_shards: int | None = None,
) -> dict:
    """Generate (or resume generating) a sharded dataset. Returns the final index.

    ``stop_after_shards`` stops after writing that many new shards (used to
    simulate an interruption in tests).
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index_path = out_dir / INDEX_NAME
    existing = read_index(out_dir) if index_path.exists() and not overwrite else None
    if existing is not None and not built_with(existing, config, corpus.root, index_path):
        raise ShardError(
            f"{index_path}: the folder holds a dataset built with a different config or corpus; "
            "use --overwrite or another --out"
        )
    splits = split_speakers(
        corpus, seed=config.mixing.seed, valid_fraction=config.valid_fraction,
        test_fraction=config.test_fraction, min_speakers=config.mixing.num_speakers,
    )
    fresh = {
        "format_version": FORMAT_VERSION,
        "config": config.to_json(),
        "corpus": corpus.summary(),
        "splits": {name: {"speakers": splits[name], "mixtures": 0, "shards": []} for name in SPLITS},
        "complete": False,
    }
    index = existing if existing is not None else fresh
    for stray in out_dir.glob("*/*.tmp"):
        stray.unlink()  # half-written shards of an interrupted run
    composition = split_composition(corpus, splits)
    index["corpora"] = composition
    atomic_write_json(out_dir / "manifest.json", {
        "format_version": FORMAT_VERSION,
        "seed": config.mixing.seed,
        **composition,  # "corpora" and "per_split": speakers and minutes per split and corpus
        "splits": {
            name: [{"speaker": s, "sex": corpus.speakers[s], "utterances": len(corpus.utterances_of(s))}
                   for s in speakers]
            for name, speakers in splits.items()
        },
    })
    written = 0
    for split_number, split in enumerate(SPLITS):
        total = int(config.mixtures[split])
        speakers = splits[split]
        mixing = config.mixing if split == "train" else config.mixing.held_out()
        by_speaker = {s: corpus.utterances_of(s) for s in speakers}
        done = {s["file"]: s for s in index["splits"][split]["shards"]}
        shard_count = -(-total // config.shard_size)
        bar = tqdm(total=total, desc=f"{split:5s} mixtures", disable=None if progress else True, unit="mix")  # None: no bar when not a terminal
        for shard_number in range(shard_count):
            relative = f"{split}/shard-{shard_number:05d}.pkl"
            first = shard_number * config.shard_size
            count = min(config.shard_size, total - first)
            known = done.get(relative)
            if known is not None and (out_dir / relative).is_file():
                if sha256_of((out_dir / relative).read_bytes()) == known["sha256"]:
                    bar.update(count)
                    continue
            if stop_after_shards is not None and written >= stop_after_shards:
                bar.close()
                return index
            records = [
                make_mixture(corpus, speakers, mixing,
                             np.random.default_rng([config.mixing.seed, split_number, first + i]), by_speaker)
                for i in range(count)
            ]
            payload = pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL)
            atomic_write_bytes(out_dir / relative, payload)
            done[relative] = {"file": relative, "count": count, "sha256": sha256_of(payload),
                              "frames": [int(r["log_magnitude"].shape[0]) for r in records]}
            index["splits"][split]["shards"] = [done[k] for k in sorted(done)]
            index["splits"][split]["mixtures"] = sum(s["count"] for s in done.values())
            index["skipped_files"] = [list(s) for s in corpus.skipped]
            atomic_write_json(index_path, index)
            written += 1
            bar.update(count)
            del records, payload
        bar.close()
    atomic_write_json(out_dir / "stats.json", compute_stats(iter_records(out_dir, "train")))
    index["complete"] = True
    index["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    index["skipped_files"] = [list(s) for s in corpus.skipped]
    atomic_write_json(index_path, index)
    return index


def dataset_summary(data_dir) -> str:
    """One line describing a dataset folder."""
    index = read_index(data_dir)
    parts = [f"{name}: {index['splits'][name]['mixtures']} mixtures / "
             f"{len(index['splits'][name]['speakers'])} speakers" for name in SPLITS]
    corpus = index["corpus"]
    return (f"{data_dir} [{corpus['name']}, {index['config']['mixing']['num_speakers']} talkers, "
            f"format v{index['format_version']}{'' if index.get('complete') else ', INCOMPLETE'}] "
            + "; ".join(parts))
