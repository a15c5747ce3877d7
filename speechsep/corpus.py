"""Finding and reading a speech corpus.

Resolution order (:func:`find_corpus`), documented in the README:

1. ``--timit PATH``, else the ``TIMIT_WAV`` environment variable, else
   ``./TIMIT_WAV`` at the repository root (the original convention). Accepted
   layouts, matched case-insensitively:

   * full LDC TIMIT: ``TRAIN|TEST/DR1..DR8/<SPEAKER>/<UTT>.WAV`` (NIST SPHERE
     or RIFF; soundfile reads both). TEST speakers form the test split;
   * the NLTK sample: ``drN-<speaker>/<utt>.wav``;
   * generic: ``<root>/<speaker>/**/*.wav|flac``.

   Speaker sex comes from the TIMIT speaker id (``F…``/``M…``) where there is one.
2. The NLTK TIMIT sample through NLTK's downloader (about 18 MB, once).
3. When neither is available (offline, no NLTK), or with ``corpus="toy"``: a synthetic corpus of harmonic "voices" (see :mod:`speechsep.toy`),
   for tests and offline demos only, always announced with a warning.

Bad files never crash a run halfway: files that cannot be opened as audio,
zero-length files and (when first read) all-zero files are skipped, and the
skips are counted and listed in :attr:`Corpus.skipped` and in the dataset
index. A missing or empty folder, or a corpus with fewer than two speakers,
is a :class:`CorpusError` naming the folder.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.signal
import soundfile

from speechsep.signal import SAMPLE_RATE

AUDIO_SUFFIXES = (".wav", ".flac")
REPO_ROOT = Path(__file__).resolve().parent.parent
TOY_WARNING = (
    "WARNING: using the built-in synthetic TOY corpus. It is NOT speech: numbers and "
    "sounds from it say nothing about real speech separation. Point --timit at a TIMIT "
    "folder (or set TIMIT_WAV) for real results."
)


class CorpusError(ValueError):
    """A corpus folder that cannot be used (the message names the folder)."""


class AudioFileError(ValueError):
    """One audio file that cannot be used (the message names the file)."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


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


# ----------------------------------------------------------------------------- audio


def load_audio(path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read any soundfile-readable file, downmix to mono, resample, float32 [samples].

    Handles RIFF/NIST SPHERE/FLAC, any channel count, any sample rate and bit
    depth. Raises :class:`AudioFileError` (naming the file) for a missing,
    unreadable, non-audio or zero-length file.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(path, "no such file")
    try:
        data, file_rate = soundfile.read(str(path), dtype="float64", always_2d=True)  # [samples, channels]
    except PermissionError:
        raise AudioFileError(path, "permission denied (unreadable file)") from None
    except (soundfile.LibsndfileError, RuntimeError, TypeError, OSError) as error:
        raise AudioFileError(path, f"not a readable audio file ({error})") from None
    if data.shape[0] == 0:
        raise AudioFileError(path, "zero-length audio (no samples)")
    mono = data.mean(axis=1)  # [samples]
    if file_rate != sample_rate:
        divisor = math.gcd(int(file_rate), int(sample_rate))
        mono = scipy.signal.resample_poly(mono, sample_rate // divisor, int(file_rate) // divisor)
    mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
    return mono.astype(np.float32)


@functools.lru_cache(maxsize=1024)
def load_audio_cached(path: str) -> np.ndarray:
    """:func:`load_audio` with a bounded LRU cache (≈100 MB for 1024 TIMIT utterances)."""
    audio = load_audio(path)
    audio.setflags(write=False)
    return audio


def probe_audio(path) -> str | None:
    """Cheap header check. Returns None when usable, else the reason to skip it."""
    try:
        info = soundfile.info(str(path))
    except PermissionError:
        return "permission denied (unreadable file)"
    except (soundfile.LibsndfileError, RuntimeError, TypeError, OSError) as error:
        return f"not a readable audio file ({str(error).strip()[:120]})"
    if info.frames == 0:
        return "zero-length audio (no samples)"
    if not os.access(path, os.R_OK):
        return "permission denied (unreadable file)"
    return None


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


# ----------------------------------------------------------------------------- resolution


def nltk_timit_sample() -> Path:
    """Path of the NLTK TIMIT sample, downloading it (≈18 MB, once) if needed.

    Raises :class:`CorpusError` with instructions when NLTK is missing or offline.
    """
    how = (
        "Get data by one of: --timit PATH (a TIMIT folder), the TIMIT_WAV environment "
        "variable, a TIMIT_WAV folder at the repository root, `pip install nltk` and "
        "`python -m nltk.downloader timit` when online, or --corpus toy for a synthetic demo."
    )
    try:
        import nltk
    except ImportError:
        raise CorpusError(f"no corpus given and NLTK is not installed. {how}") from None
    try:
        return Path(nltk.data.find("corpora/timit"))
    except LookupError:
        pass
    print("Downloading the NLTK TIMIT sample (about 18 MB, once)...", flush=True)
    try:
        ok = nltk.download("timit", quiet=True, raise_on_error=True)
    except Exception as error:  # network errors come in many types
        raise CorpusError(f"could not download the NLTK TIMIT sample ({error}). {how}") from None
    if not ok:
        raise CorpusError(f"could not download the NLTK TIMIT sample (offline?). {how}")
    try:
        return Path(nltk.data.find("corpora/timit"))
    except LookupError:
        raise CorpusError(f"NLTK reported success but corpora/timit is missing. {how}") from None


def find_corpus(timit: str | os.PathLike | None = None, corpus: str | None = None) -> Corpus:
    """Resolve the corpus in the documented order (see module docstring).

    ``corpus="toy"`` forces the synthetic corpus; ``corpus="nltk"`` forces the
    NLTK sample; ``timit`` is an explicit folder.
    """
    if corpus not in (None, "timit", "toy", "nltk"):
        raise ValueError(f"unknown corpus {corpus!r}: use 'timit', 'nltk' or 'toy'")
    if corpus == "toy":
        from speechsep.toy import toy_corpus

        print(TOY_WARNING, flush=True)
        warnings.warn(TOY_WARNING, stacklevel=2)
        return toy_corpus()
    if corpus != "nltk":
        if timit is not None:
            return discover_corpus(timit)
        if os.environ.get("TIMIT_WAV"):
            return discover_corpus(os.environ["TIMIT_WAV"])
        default = REPO_ROOT / "TIMIT_WAV"
        if default.is_dir():
            return discover_corpus(default)
        if corpus == "timit":
            raise CorpusError(
                "no TIMIT folder: pass --timit PATH, set TIMIT_WAV, or create ./TIMIT_WAV"
            )
    try:
        return discover_corpus(nltk_timit_sample(), name="nltk-timit-sample")
    except CorpusError as error:
        if corpus == "nltk":
            raise
        print(f"No real corpus available: {error}", flush=True)
        return find_corpus(corpus="toy")
