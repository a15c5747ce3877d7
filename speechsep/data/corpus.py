"""A speech corpus as a list of utterances, and the folder layouts it is discovered from.

Accepted layouts (:func:`discover_corpus`), matched case-insensitively:

* full LDC TIMIT: ``TRAIN|TEST/DR1..DR8/<SPEAKER>/<UTT>.WAV`` (NIST SPHERE or
  RIFF; soundfile reads both). TEST speakers form the test split;
* the NLTK sample: ``drN-<speaker>/<utt>.wav``;
* generic: ``<root>/<speaker>/**/*.wav|flac``.

Speaker sex comes from the TIMIT speaker id (``F…``/``M…``) where there is one.
Where a corpus comes from when none is given is :mod:`speechsep.data.sources`.

Bad files never crash a run halfway: files that cannot be opened as audio and
zero-length files are skipped at discovery, all-zero files when first drawn;
the skips are counted and listed in :attr:`Corpus.skipped` and in the dataset
index. A missing or empty folder, or a corpus with fewer than two speakers, is
a :class:`CorpusError` naming the folder.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from speechsep.data.audio import AUDIO_SUFFIXES, AudioFileError, load_audio_cached, probe_audio

__all__ = ["AudioFileError", "Corpus", "CorpusError", "Utterance", "discover_corpus", "speaker_sex"]


class CorpusError(ValueError):
    """A corpus folder that cannot be used (the message names the folder)."""


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One recording. ``key`` is unique in the corpus ("<speaker>/<utt>")."""

    key: str
    speaker: str
    sex: str  # "F", "M" or "?"
    path: str  # file path, or "toy:<...>" for synthetic utterances
    official_split: str | None = None  # "train"/"test" for the LDC layout


@dataclasses.dataclass
class Corpus:
    """A list of utterances plus the way to load them at :data:`SAMPLE_RATE`."""

    name: str
    root: str
    layout: str
    utterances: list[Utterance]
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    loader: Callable[[Utterance], np.ndarray] | None = None
    is_toy: bool = False

    @property
    def speakers(self) -> dict[str, str]:
        """speaker id -> sex."""
        return {u.speaker: u.sex for u in self.utterances}

    def utterances_of(self, speaker: str) -> list[Utterance]:
        return [u for u in self.utterances if u.speaker == speaker]

    def load(self, utterance: Utterance) -> np.ndarray:
        """float32 mono waveform at 8 kHz. Raises :class:`AudioFileError`."""
        if self.loader is not None:
            return self.loader(utterance)
        return load_audio_cached(utterance.path)

    def summary(self) -> dict:
        sexes = self.speakers
        return {
            "name": self.name,
            "root": self.root,
            "layout": self.layout,
            "speakers": len(sexes),
            "female": sum(1 for s in sexes.values() if s == "F"),
            "male": sum(1 for s in sexes.values() if s == "M"),
            "utterances": len(self.utterances),
            "skipped": len(self.skipped),
            "is_toy": self.is_toy,
        }


# ----------------------------------------------------------------------------- layouts

_TIMIT_SPEAKER = re.compile(r"^([fm])[a-z]{2,3}\d$", re.IGNORECASE)
_NLTK_SPEAKER_DIR = re.compile(r"^dr\d-([fm][a-z]{2,3}\d)$", re.IGNORECASE)


def speaker_sex(speaker: str) -> str:
    """"F"/"M" from a TIMIT speaker id (e.g. FCJF0, mdab0), else "?"."""
    match = _TIMIT_SPEAKER.match(speaker)
    return match.group(1).upper() if match else "?"


def _audio_files(folder: Path, recursive: bool) -> list[Path]:
    pattern = "**/*" if recursive else "*"
    return sorted(
        p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
    )


def _children(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _discover_ldc(root: Path) -> list[tuple[Path, str, str | None]] | None:
    split_dirs = [p for p in _children(root) if p.name.lower() in ("train", "test")]
    if not split_dirs:
        return None
    found = []
    for split_dir in split_dirs:
        for region in _children(split_dir):
            if not region.name.lower().startswith("dr"):
                continue
            for speaker_dir in _children(region):
                for path in _audio_files(speaker_dir, recursive=False):
                    found.append((path, speaker_dir.name.upper(), split_dir.name.lower()))
    return found


def _discover_nltk(root: Path) -> list[tuple[Path, str, str | None]] | None:
    speaker_dirs = [p for p in _children(root) if _NLTK_SPEAKER_DIR.match(p.name)]
    if not speaker_dirs:
        return None
    found = []
    for speaker_dir in speaker_dirs:
        speaker = _NLTK_SPEAKER_DIR.match(speaker_dir.name).group(1).upper()
        for path in _audio_files(speaker_dir, recursive=False):
            found.append((path, speaker, None))
    return found


def _discover_generic(root: Path) -> list[tuple[Path, str, str | None]]:
    found = []
    for speaker_dir in _children(root):
        for path in _audio_files(speaker_dir, recursive=True):
            found.append((path, speaker_dir.name, None))
    return found


def discover_corpus(root, name: str | None = None, check_files: bool = True) -> Corpus:
    """Scan ``root`` for one of the accepted layouts (LDC, NLTK sample, generic).

    Unusable files (not audio, zero length, unreadable) are skipped and listed
    in ``Corpus.skipped`` with the reason; a warning gives the count.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise CorpusError(f"corpus folder {root} does not exist")
    if not root.is_dir():
        raise CorpusError(f"corpus path {root} is not a folder")
    for layout, discover in (("ldc", _discover_ldc), ("nltk-sample", _discover_nltk)):
        found = discover(root)
        if found:
            break
    else:
        layout, found = "generic", _discover_generic(root)
    if not found:
        raise CorpusError(
            f"no audio files found in {root}: expected TRAIN|TEST/DR*/<SPEAKER>/*.WAV, "
            "drN-<speaker>/*.wav or <speaker>/**/*.wav|flac"
        )
    utterances, skipped = [], []
    for path, speaker, split in found:
        reason = probe_audio(path) if check_files else None
        if reason is not None:
            skipped.append((str(path), reason))
            continue
        stem = path.stem.lower()
        key = f"{speaker}/{stem}" if split is None else f"{split}/{speaker}/{stem}"
        utterances.append(Utterance(key, speaker, speaker_sex(speaker), str(path), split))
    if skipped:
        warnings.warn(
            f"{root}: skipped {len(skipped)} unusable file(s), e.g. {skipped[0][0]}: {skipped[0][1]}",
            stacklevel=2,
        )
    corpus = Corpus(name or root.name, str(root), layout, utterances, skipped)
    speakers = corpus.speakers
    if len(speakers) < 2:
        raise CorpusError(
            f"{root} holds {len(speakers)} usable speaker(s) ({', '.join(speakers) or 'none'}); "
            "mixing needs at least 2 different speakers"
        )
    return corpus
