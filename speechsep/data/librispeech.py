"""The LibriSpeech folder layout: finding the files, the speakers' sex and the official subsets.

Accepted roots (:func:`looks_like_librispeech`):

* a LibriSpeech folder holding subset folders ``train-clean-100``,
  ``dev-clean``, ``test-other``, ... (names ``(train|dev|test)-(clean|other)(-N)``);
  other folders next to them are ignored;
* one subset folder, ``<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac``
  (a folder with that inside but another name is accepted too: its speakers
  are then free for any split);
* a folder whose LibriSpeech content is a ``LibriSpeech`` child (what
  extracting the openslr tarballs gives).

Speaker sex comes from ``SPEAKERS.TXT`` (``ID | SEX | SUBSET | MINUTES | NAME``)
at the LibriSpeech folder or up to two parents above it. A speaker missing
from it, a line that does not parse, an unreadable or absent table: sex
``"?"``, counted in the :class:`DiscoveryReport` and announced by a single
warning, never an exception. Official subsets map to splits like TIMIT's
TRAIN/TEST (:func:`subset_split`): ``test-*`` speakers are the test split,
``dev-*`` speakers the validation split, so neither is ever trained on.

Discovery reads directory listings and, with ``probe="info"`` (the default),
each file's header through ``soundfile.info`` (which also gives its duration);
it never decodes audio. Files whose header does not parse are skipped and
listed; non-audio files (``*.trans.txt``, ...) are ignored. This module knows
nothing of :class:`speechsep.data.corpus.Corpus`; ``discover_corpus`` builds
one from what :func:`discover_librispeech` returns.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
import warnings
from pathlib import Path

from speechsep.data.audio import AUDIO_SUFFIXES, audio_header

SUBSET_PATTERN = re.compile(r"^(train|dev|test)-(clean|other)(-\d+)?$", re.IGNORECASE)
UTTERANCE_PATTERN = re.compile(r"^(\d+)-(\d+)-(\d+)\.(flac|wav)$", re.IGNORECASE)
SPEAKERS_FILE = "SPEAKERS.TXT"
PROBES = ("none", "magic", "info")  # names only / first 4 bytes / soundfile header (with duration)
_MAGIC = {".flac": (b"fLaC",), ".wav": (b"RIFF", b"RIFX", b"RF64", b"NIST")}


class LibriSpeechError(ValueError):
    """A root that cannot be used at all (the message names the folder)."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One LibriSpeech file found by :func:`discover_librispeech`."""

    path: str
    speaker: str  # the numeric reader id without leading zeros, e.g. "103"
    sex: str  # "F", "M" or "?"
    subset: str  # e.g. "train-clean-100"
    seconds: float | None  # from the header (probe="info"), else None


@dataclasses.dataclass
class DiscoveryReport:
    """What :func:`discover_librispeech` found, skipped and ignored, and the one warning it gave."""

    root: str
    layout: str  # "librispeech" (a folder of subsets) or "subset" (one subset folder)
    speakers_txt: str | None
    probe: str
    files: int = 0
    subsets: dict[str, dict] = dataclasses.field(default_factory=dict)  # name -> {split, files, speakers}
    speakers: dict[str, str] = dataclasses.field(default_factory=dict)  # id -> "F"/"M"/"?"
    unknown_sex: list[str] = dataclasses.field(default_factory=list)  # ids with sex "?"
    malformed_lines: list[tuple[int, str]] = dataclasses.field(default_factory=list)  # (line number, text)
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (path, reason)
    ignored: int = 0  # non-audio files and non-numeric folders
    seconds: float = 0.0  # wall time of the discovery
    warning: str | None = None  # the one warning issued, if any

    @property
    def female(self) -> int:
        return sum(1 for sex in self.speakers.values() if sex == "F")

    @property
    def male(self) -> int:
        return sum(1 for sex in self.speakers.values() if sex == "M")


def subset_split(subset: str | None) -> str | None:
    """Official split of a subset: ``test-*`` -> "test", ``dev-*`` -> "valid", anything else None (free)."""
    match = SUBSET_PATTERN.match(subset or "")
    if not match:
        return None
    return {"test": "test", "dev": "valid"}.get(match.group(1).lower())


# ----------------------------------------------------------------------------- SPEAKERS.TXT


def find_speakers_txt(folder: Path, levels: int = 2) -> Path | None:
    """``SPEAKERS.TXT`` (any case) in ``folder`` or up to ``levels`` parents above it."""
    for _ in range(levels + 1):
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.upper() == SPEAKERS_FILE and entry.is_file():
                        return Path(entry.path)
        except OSError:
            pass
        if folder.parent == folder:
            break
        folder = folder.parent
    return None


def read_speakers_txt(path: Path) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """({speaker id: "F"/"M"/"?"}, malformed (line number, text)).

    Lines starting with ';' and blank lines are comments. NAME may itself
    contain '|' (speaker 60 is ``|CBW|Simon``), so only ID and SEX are relied
    on. A line whose ID is not a number or whose SEX is not F/M is malformed;
    a speaker listed twice with different sexes becomes "?" and the second
    line counts as malformed. Undecodable bytes are replaced, not fatal.
    """
    table: dict[str, str] = {}
    malformed: list[tuple[int, str]] = []
    text = path.read_bytes().decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(";"):
            continue
        fields = [field.strip() for field in stripped.split("|", 4)]
        if len(fields) < 2 or not _numeric(fields[0]) or fields[1].upper() not in ("F", "M"):
            malformed.append((number, line[:120]))
            continue
        speaker, sex = str(int(fields[0])), fields[1].upper()
        if table.get(speaker, sex) != sex:
            malformed.append((number, line[:120]))
            sex = "?"
        table[speaker] = sex
    return table, malformed


# ----------------------------------------------------------------------------- layout


def _numeric(name: str) -> bool:
    return name.isascii() and name.isdigit()


def _subdirs(folder: str) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return [entry for entry in entries if entry.is_dir()]


def _has_utterance_tree(folder: str, max_speakers: int = 3) -> bool:
    """Whether one of the first numeric folders holds ``<chapter>/<speaker>-<chapter>-<utt>.flac``."""
    try:
        speakers = [entry for entry in _subdirs(folder) if _numeric(entry.name)][:max_speakers]
        for speaker in speakers:
            for chapter in [entry for entry in _subdirs(speaker.path) if _numeric(entry.name)][:2]:
                with os.scandir(chapter.path) as entries:
                    for entry in entries:
                        match = UTTERANCE_PATTERN.match(entry.name)
                        if (match and int(match.group(1)) == int(speaker.name)
                                and int(match.group(2)) == int(chapter.name)):
                            return True
    except OSError:
        return False
    return False


def _resolve(root: Path) -> tuple[str, list[tuple[str, str]]] | None:
    """(layout, [(subset name, folder)]) or None when ``root`` does not look like LibriSpeech."""
    try:
        children = _subdirs(str(root))
    except OSError:
        return None
    subsets = sorted((entry.name, entry.path) for entry in children if SUBSET_PATTERN.match(entry.name))
    if subsets:
        return "librispeech", subsets
    if any(_numeric(entry.name) for entry in children) and (
        SUBSET_PATTERN.match(root.name) or _has_utterance_tree(str(root))
    ):
        return "subset", [(root.name, str(root))]
    for entry in children:
        if entry.name.lower() == "librispeech":
            inner = _resolve(Path(entry.path))
            if inner and inner[0] == "librispeech":
                return inner
    return None


def looks_like_librispeech(root) -> bool:
    """Cheap layout check (a few directory listings, no file reads)."""
    root = Path(root).expanduser()
    return root.is_dir() and _resolve(root) is not None


# ----------------------------------------------------------------------------- discovery


def _check_file(path: str, suffix: str, probe: str) -> tuple[str | None, float | None]:
    """(reason to skip the file or None, duration in seconds or None)."""
    if probe == "none":
        return None, None
    if probe == "info":
        return audio_header(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as error:
        return f"unreadable ({error.strerror or error})", None
    if not head:
        return "empty file", None
    if not head.startswith(_MAGIC[suffix]):
        return f"not a {suffix[1:].upper()} file (starts with {head!r})", None
    return None, None


def discover_librispeech(root, probe: str = "info", warn: bool = True) -> tuple[list[Entry], DiscoveryReport]:
    """Scan a LibriSpeech folder or one subset folder.

    Returns ``(entries, report)``: the usable files as :class:`Entry` (subset,
    speaker, chapter and file names in sorted order) and a :class:`DiscoveryReport`. ``probe``: "info" (header via
    ``soundfile.info``, gives durations), "magic" (first 4 bytes) or "none"
    (names only). Problems with the speaker table or the files produce one
    warning in all (``warn=False`` keeps it in ``report.warning`` only).
    Raises :class:`LibriSpeechError` only when ``root`` is missing or has no
    LibriSpeech layout.
    """
    if probe not in PROBES:
        raise ValueError(f"probe must be one of {PROBES}, got {probe!r}")
    start = time.perf_counter()
    root = Path(root).expanduser()
    if not root.is_dir():
        raise LibriSpeechError(f"LibriSpeech folder {root} does not exist or is not a folder")
    resolved = _resolve(root)
    if resolved is None:
        raise LibriSpeechError(
            f"{root} does not look like LibriSpeech: expected subset folders such as "
            "train-clean-100/ or <speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac"
        )
    layout, subsets = resolved
    # The table sits in the LibriSpeech folder: the subsets' parent, or above a subset root.
    table_start = Path(subsets[0][1]).parent if layout == "librispeech" else root
    speakers_txt = find_speakers_txt(table_start)
    table, malformed, table_error = {}, [], None
    if speakers_txt is not None:
        try:
            table, malformed = read_speakers_txt(speakers_txt)
        except OSError as error:
            table_error = f"cannot read {speakers_txt} ({error.strerror or error}): sex unknown for all speakers"
    report = DiscoveryReport(str(root), layout, str(speakers_txt) if speakers_txt else None, probe,
                             malformed_lines=malformed)

    def listing(folder: str, want_dirs: bool) -> list[tuple[str, str]]:
        """Sorted (name, path) of the sub-folders (or of the other entries) of ``folder``."""
        try:
            with os.scandir(folder) as found:
                return sorted((entry.name, entry.path) for entry in found if entry.is_dir() == want_dirs)
        except OSError as error:  # an unreadable folder is skipped and counted
            report.skipped.append((folder, f"unreadable folder ({error.strerror or error})"))
            return []

    entries: list[Entry] = []
    for subset, subset_path in subsets:
        files_before, subset_speakers = len(entries), set()
        for speaker_name, speaker_path in listing(subset_path, want_dirs=True):
            if not _numeric(speaker_name):
                report.ignored += 1
                continue
            speaker = str(int(speaker_name))
            sex = table.get(speaker, "?")
            for _, chapter_path in listing(speaker_path, want_dirs=True):
                for name, path in listing(chapter_path, want_dirs=False):
                    suffix = os.path.splitext(name)[1].lower()
                    if suffix not in AUDIO_SUFFIXES:
                        report.ignored += 1
                        continue
                    reason, seconds = _check_file(path, suffix, probe)
                    if reason is not None:
                        report.skipped.append((path, reason))
                        continue
                    entries.append(Entry(path, speaker, sex, subset, seconds))
                    subset_speakers.add(speaker)
                    report.speakers[speaker] = sex
        report.subsets[subset] = {"split": subset_split(subset), "files": len(entries) - files_before,
                                  "speakers": len(subset_speakers)}
    report.files = len(entries)
    report.unknown_sex = sorted((s for s, sex in report.speakers.items() if sex == "?"), key=int)

    problems = []
    if table_error:
        problems.append(table_error)
    elif speakers_txt is None:
        problems.append(f"no {SPEAKERS_FILE} in {table_start} or its 2 parents: sex unknown for all speakers")
    else:
        if malformed:
            problems.append(f"{len(malformed)} malformed line(s) in {speakers_txt} "
                            f"(e.g. line {malformed[0][0]}: {malformed[0][1]!r})")
        if report.unknown_sex:
            shown = ", ".join(report.unknown_sex[:5]) + (", ..." if len(report.unknown_sex) > 5 else "")
            problems.append(f"{len(report.unknown_sex)} speaker(s) with unknown sex ({shown})")
    if report.skipped:
        problems.append(f"skipped {len(report.skipped)} unusable file(s), e.g. "
                        f"{report.skipped[0][0]}: {report.skipped[0][1]}")
    if problems:
        report.warning = f"LibriSpeech {root}: " + "; ".join(problems)
        if warn:
            warnings.warn(report.warning, stacklevel=2)
    report.seconds = time.perf_counter() - start
    return entries, report
