"""A speech corpus as a list of utterances, and the folder layouts it is discovered from.

Accepted layouts (:func:`discover_corpus`), matched case-insensitively:

* full LDC TIMIT: ``TRAIN|TEST/DR1..DR8/<SPEAKER>/<UTT>.WAV`` (NIST SPHERE or
  RIFF; soundfile reads both). TEST speakers form the test split;
* the NLTK sample: ``drN-<speaker>/<utt>.wav``;
* LibriSpeech: ``<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac``,
  the root being the LibriSpeech folder or one subset folder
  (:mod:`speechsep.data.librispeech`). ``test-*`` speakers form the test split,
  ``dev-*`` speakers the validation split;
* generic: ``<root>/<speaker>/**/*.wav|flac``.

Speaker sex comes from the TIMIT speaker id (``F…``/``M…``) or LibriSpeech's
``SPEAKERS.TXT`` where there is one, else it is "?". Durations come from the
file headers. Several corpora become one with :func:`combine_corpora`.
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

from speechsep.data.audio import AUDIO_SUFFIXES, AudioFileError, audio_header, load_audio_cached
from speechsep.data.librispeech import LibriSpeechError, discover_librispeech, looks_like_librispeech, subset_split

__all__ = ["AudioFileError", "Corpus", "CorpusError", "Utterance", "combine_corpora", "discover_corpus", "speaker_sex"]


class CorpusError(ValueError):
    """A corpus folder that cannot be used (the message names the folder)."""


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One recording. ``key`` is unique in the corpus ("<speaker>/<utt>")."""

    key: str
    speaker: str
    sex: str  # "F", "M" or "?"
    path: str  # file path, or "toy:<...>" for synthetic utterances
    official_split: str | None = None  # "train"/"test" for the LDC layout; "test"/"valid" for LibriSpeech
    seconds: float | None = None  # duration from the file header, when known


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
    parts: list["Corpus"] = dataclasses.field(default_factory=list)  # the corpora of a combined corpus

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
            "unknown_sex": sum(1 for s in sexes.values() if s not in ("F", "M")),
            "utterances": len(self.utterances),
            "skipped": len(self.skipped),
            "is_toy": self.is_toy,
            **({"parts": [part.summary() for part in self.parts]} if self.parts else {}),
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


UNSUPPORTED_AUDIO_SUFFIXES = (".mp3", ".m4a", ".aac", ".ogg", ".opus", ".wma", ".aif", ".aiff", ".au", ".sph",
                              ".mp4", ".webm")


def _unsupported_audio(root: Path) -> str:
    """Audio files of formats the kit does not read under ``root``, counted: "6 .mp3 files" ("" if none)."""
    counts: dict[str, int] = {}
    for path in root.rglob("*"):
        suffix = path.suffix.lower()
        if suffix in UNSUPPORTED_AUDIO_SUFFIXES and path.is_file():
            counts[suffix] = counts.get(suffix, 0) + 1
    parts = [f"{count} {suffix} file{'s' if count > 1 else ''}" for suffix, count in sorted(counts.items())]
    return " and ".join(parts)


def discover_corpus(root, name: str | None = None, check_files: bool = True) -> Corpus:
    """Scan ``root`` for one of the accepted layouts (LDC, NLTK sample, LibriSpeech, generic).

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
        if looks_like_librispeech(root):
            return _require_speakers(_librispeech_corpus(root, name, check_files))
        layout, found = "generic", _discover_generic(root)
    if not found:
        unsupported = _unsupported_audio(root)
        raise CorpusError(
            f"no audio files found in {root}: "
            + (f"{unsupported}: unsupported, convert to wav or flac" if unsupported else
               "expected TRAIN|TEST/DR*/<SPEAKER>/*.WAV, drN-<speaker>/*.wav, "
               "<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac or <speaker>/**/*.wav|flac")
        )
    utterances, skipped = [], []
    for path, speaker, split in found:
        reason, seconds = audio_header(path) if check_files else (None, None)
        if reason is not None:
            skipped.append((str(path), reason))
            continue
        stem = path.stem.lower()
        key = f"{speaker}/{stem}" if split is None else f"{split}/{speaker}/{stem}"
        utterances.append(Utterance(key, speaker, speaker_sex(speaker), str(path), split, seconds))
    if skipped:
        warnings.warn(
            f"{root}: skipped {len(skipped)} unusable file(s), e.g. {skipped[0][0]}: {skipped[0][1]}",
            stacklevel=2,
        )
    return _require_speakers(Corpus(name or root.name, str(root), layout, utterances, skipped))


def _require_speakers(corpus: Corpus) -> Corpus:
    speakers = corpus.speakers
    if len(speakers) < 2:
        raise CorpusError(
            f"{corpus.root} holds {len(speakers)} usable speaker(s) ({', '.join(speakers) or 'none'}); "
            "mixing needs at least 2 different speakers"
        )
    return corpus


def _librispeech_corpus(root: Path, name: str | None, check_files: bool) -> Corpus:
    """The corpus of a LibriSpeech folder or subset folder (one warning for every problem found)."""
    try:
        entries, report = discover_librispeech(root, probe="info" if check_files else "none", warn=False)
    except LibriSpeechError as error:
        raise CorpusError(str(error)) from None
    if report.warning:
        warnings.warn(report.warning, stacklevel=3)
    utterances = [
        Utterance(f"{entry.speaker}/{Path(entry.path).stem}", entry.speaker, entry.sex, entry.path,
                  subset_split(entry.subset), entry.seconds)
        for entry in entries
    ]
    return Corpus(name or root.name, str(root), "librispeech", utterances, list(report.skipped))


# ----------------------------------------------------------------------------- several corpora

NAMESPACE_SEPARATOR = ":"  # combined speaker ids are "<corpus name>:<speaker id>"


def qualified_speaker(speaker: str, corpus_name: str | None) -> str:
    """``"<corpus name>:<id>"`` for a speaker id of the corpus ``corpus_name``; combined ids are already so.

    The one form in which the speakers of a single corpus and of a combined
    one compare (``FALK0`` of ``timit-sample`` is ``timit-sample:FALK0`` in
    any combination).
    """
    if NAMESPACE_SEPARATOR in speaker or not corpus_name:
        return speaker
    return f"{corpus_name}{NAMESPACE_SEPARATOR}{speaker}"


def combine_corpora(corpora: list[Corpus]) -> Corpus:
    """One corpus made of several: speaker ids and utterance keys become ``"<corpus name>:<id>"``.

    The same speaker id in two corpora (``1`` in two LibriSpeech copies, say)
    thus stays two speakers. Parts with the same name are renamed
    ``<name>-2``, ``<name>-3``...; the parts, with their own ids, are kept in
    :attr:`Corpus.parts` so that :func:`speechsep.data.mixing.split_speakers`
    splits each by its own rule. A single corpus is returned unchanged.
    Raises :class:`CorpusError` naming the folder when two parts come from
    the same folder.
    """
    parts = [part for corpus in corpora for part in (corpus.parts or [corpus])]
    if not parts:
        raise CorpusError("no corpus to combine")
    if len(parts) == 1:
        return parts[0]
    seen: dict[str, str] = {}
    for part in parts:
        where = str(Path(part.root).resolve()) if not part.is_toy else part.root
        if where in seen:
            raise CorpusError(f"{part.root} is given twice (same folder as {seen[where]}): "
                              "give every corpus root once")
        seen[where] = part.root
    names: dict[str, int] = {}
    renamed = []
    for part in parts:
        names[part.name] = names.get(part.name, 0) + 1
        unique = part.name if names[part.name] == 1 else f"{part.name}-{names[part.name]}"
        renamed.append(part if unique == part.name else dataclasses.replace(part, name=unique))
    utterances, originals = [], {}
    for part in renamed:
        for utterance in part.utterances:
            combined = dataclasses.replace(utterance,
                                           key=f"{part.name}{NAMESPACE_SEPARATOR}{utterance.key}",
                                           speaker=f"{part.name}{NAMESPACE_SEPARATOR}{utterance.speaker}")
            utterances.append(combined)
            originals[combined.key] = (part, utterance)
    loader = None
    if any(part.loader is not None for part in renamed):
        def loader(utterance: Utterance) -> np.ndarray:
            part, original = originals[utterance.key]
            return part.load(original)
    return Corpus("+".join(part.name for part in renamed), " + ".join(part.root for part in renamed),
                  "combined", utterances, [item for part in renamed for item in part.skipped], loader,
                  is_toy=any(part.is_toy for part in renamed), parts=renamed)
