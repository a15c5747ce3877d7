"""Which recordings a ``separate`` run takes, and where each one's estimates go.

``python -m speechsep separate`` takes files and folders. A folder is walked
recursively for audio files (:data:`speechsep.data.audio.AUDIO_SUFFIXES`),
in sorted order, and its tree is mirrored under ``--out``; a file given by
name goes straight into ``--out`` (or beside itself without ``--out``).
:func:`shard_of` keeps every N-th job, so the tasks of a job array
(Slurm, Kubernetes Jobs) split a corpus with no coordination.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from speechsep.data.audio import AUDIO_SUFFIXES

ESTIMATE_NAME = re.compile(r"^(?P<stem>.+)_s\d+\.wav$")
"""The name of an estimate ``separate`` wrote (``<stem>_s<k>.wav``)."""


@dataclasses.dataclass(frozen=True)
class Job:
    """One recording: ``path``, the ``folder`` its estimates go to, and whether it was found in a folder
    (``walked``: skipped when done, unless ``--overwrite``) or named on the command line."""

    path: Path
    folder: Path
    walked: bool


def is_folder_input(path) -> bool:
    """A folder to walk: a directory whose name is not that of an audio file (``x.wav/`` stays a bad file)."""
    path = Path(path)
    return path.is_dir() and path.suffix.lower() not in AUDIO_SUFFIXES


def _is_estimate(path: Path) -> bool:
    """An estimate written beside its mixture (``talk_s1.wav`` next to ``talk.wav`` or ``talk.flac``)."""
    match = ESTIMATE_NAME.match(path.name)
    return bool(match) and any((path.parent / (match["stem"] + suffix)).is_file() for suffix in AUDIO_SUFFIXES)


def walk(folder: Path, skip: Path | None = None) -> list[Path]:
    """The audio files under ``folder``, sorted; none under ``skip`` (the output folder), no earlier estimates."""
    found = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in AUDIO_SUFFIXES or path.is_dir() or path.name.startswith("."):
            continue
        if skip is not None and (skip == path.parent or skip in path.parents):
            continue
        if _is_estimate(path):
            continue
        found.append(path)
    return found


def jobs(inputs, out=None) -> list[Job]:
    """The recordings named by ``inputs`` (files and folders), each with its output folder.

    A file goes to ``out`` (default: its own folder); a folder's files go to
    ``out`` / their path relative to the folder (default: beside
    themselves). Two inputs whose estimates would land on the same names
    are a ``ValueError`` naming both.
    """
    out = Path(out) if out is not None else None
    resolved_out = out.expanduser().resolve() if out is not None else None
    listed, seen = [], {}
    for given in inputs:
        given = Path(given)
        if is_folder_input(given):
            for path in walk(given, resolved_out):
                folder = path.parent if out is None else out / path.parent.relative_to(given)
                listed.append(Job(path, folder, True))
        else:
            listed.append(Job(given, given.parent if out is None else out, False))
    for job in listed:
        key = (str(Path(job.folder).expanduser().resolve()), job.path.stem)
        if key in seen and seen[key] != job.path:
            raise ValueError(f"{job.path} and {seen[key]} would both write {job.folder / job.path.stem}_s1.wav; "
                             "separate them into different --out folders")
        seen[key] = job.path
    return listed


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with ``0 <= I < N`` (a job array's task index, counted from 0); ``ValueError`` else."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match:
        raise ValueError(f"--shard {text!r}: expected I/N, e.g. 0/4 for the first of 4 shards")
    index, count = int(match[1]), int(match[2])
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text}: I must be in 0..N-1 and N at least 1 (e.g. $SLURM_ARRAY_TASK_ID/4)")
    return index, count


def shard_of(items: list, index: int, count: int) -> list:
    """Every ``count``-th item from ``index``: shards 0..count-1 together take each item exactly once."""
    return items[index::count]
