"""Where the corpus comes from when a script is not told, in the order the README documents.

1. ``--timit PATH`` and every ``--corpus-root PATH`` (several folders are
   combined into one corpus, :func:`speechsep.data.corpus.combine_corpora`);
   else the ``TIMIT_WAV`` environment variable; else a ``TIMIT_WAV`` folder in
   the current working directory (the original convention). Any layout of
   :func:`speechsep.data.corpus.discover_corpus`.
2. The NLTK TIMIT sample, if NLTK has already downloaded it (no network
   access; ``--corpus nltk`` downloads it, about 18 MB, once).
3. LibriSpeech mini, shipped inside the package (:data:`EMBEDDED_LIBRISPEECH`):
   40 LibriSpeech speakers (20 female, 20 male), one utterance each, 8 kHz
   FLAC, CC BY 4.0 (see its ``ATTRIBUTION.md``). Real speech out of the box.
4. Only if that folder is missing (a stripped install), or with
   ``corpus="toy"``: the synthetic corpus of :mod:`speechsep.data.toy`,
   announced once per process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from speechsep.data.corpus import Corpus, CorpusError, combine_corpora, discover_corpus
from speechsep.data.toy import TOY_WARNING, toy_corpus

CORPUS_SOURCES = ("timit", "nltk", "librispeech-mini", "toy")  # the choices of every --corpus option
EMBEDDED_LIBRISPEECH = Path(__file__).resolve().parent / "librispeech-mini"
EMBEDDED_NOTE = (
    "Using LibriSpeech mini, the small real-speech sample built into speechsep: 40 speakers, one utterance "
    "each (LibriSpeech, CC BY 4.0, see {attribution}). Point --timit or --corpus-root at a corpus for real results."
)
_announced_toy = False
_announced_embedded = False


def announce_toy() -> None:
    """Print :data:`TOY_WARNING` to stderr, once per process."""
    global _announced_toy
    if not _announced_toy:
        print(TOY_WARNING, file=sys.stderr, flush=True)
        _announced_toy = True


def embedded_librispeech() -> Corpus:
    """The LibriSpeech mini corpus shipped in the package; says so once per process."""
    global _announced_embedded
    if not (EMBEDDED_LIBRISPEECH / "SPEAKERS.TXT").is_file():
        raise CorpusError(f"the built-in LibriSpeech mini folder {EMBEDDED_LIBRISPEECH} is missing "
                          "(an install without package data?)")
    corpus = discover_corpus(EMBEDDED_LIBRISPEECH, name="librispeech-mini")
    if not _announced_embedded:
        print(EMBEDDED_NOTE.format(attribution=EMBEDDED_LIBRISPEECH / "ATTRIBUTION.md"), flush=True)
        _announced_embedded = True
    return corpus


def discover_roots(roots) -> Corpus:
    """One corpus from one or several folders (:func:`~speechsep.data.corpus.combine_corpora`)."""
    return combine_corpora([discover_corpus(root) for root in roots])


def nltk_timit_sample(download: bool = True) -> Path:
    """Path of the NLTK TIMIT sample, downloading it (≈18 MB, once) if needed and ``download``.

    Raises :class:`CorpusError` with instructions when NLTK is missing, the
    sample is not downloaded (``download=False``) or the download fails.
    """
    how = (
        "Get data by one of: --timit PATH or --corpus-root PATH (a corpus folder), the TIMIT_WAV environment "
        "variable, a TIMIT_WAV folder in the current folder, `pip install nltk` and "
        "`python -m nltk.downloader timit` when online, or --corpus librispeech-mini for the built-in sample."
    )
    try:
        import nltk
    except ImportError:
        raise CorpusError(f"no corpus given and NLTK is not installed. {how}") from None
    try:
        return Path(nltk.data.find("corpora/timit"))
    except LookupError:
        if not download:
            raise CorpusError(f"the NLTK TIMIT sample is not downloaded. {how}") from None
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


def find_corpus(timit: str | os.PathLike | None = None, corpus: str | None = None, roots=()) -> Corpus:
    """Resolve the corpus in the documented order (see module docstring).

    ``timit`` and ``roots`` are explicit folders (``--timit``, ``--corpus-root``),
    combined into one corpus when there are several. ``corpus`` forces a
    source: "toy", "nltk" (downloads if needed), "librispeech-mini", or
    "timit" (an explicit folder, ``TIMIT_WAV`` or ``./TIMIT_WAV``; else an error).
    """
    if corpus is not None and corpus not in CORPUS_SOURCES:
        raise ValueError(f"unknown corpus {corpus!r}: use one of {', '.join(CORPUS_SOURCES)}")
    if corpus == "toy":
        announce_toy()
        return toy_corpus()
    if corpus == "librispeech-mini":
        return embedded_librispeech()
    if corpus == "nltk":
        return discover_corpus(nltk_timit_sample(), name="nltk-timit-sample")
    explicit = ([timit] if timit is not None else []) + list(roots or ())
    if explicit:
        return discover_roots(explicit)
    if os.environ.get("TIMIT_WAV"):
        return discover_corpus(os.environ["TIMIT_WAV"])
    default = Path.cwd() / "TIMIT_WAV"
    if default.is_dir():
        return discover_corpus(default)
    if corpus == "timit":
        raise CorpusError("no TIMIT folder: pass --timit PATH, set TIMIT_WAV, or create ./TIMIT_WAV")
    try:
        return discover_corpus(nltk_timit_sample(download=False), name="nltk-timit-sample")
    except CorpusError:
        pass
    try:
        return embedded_librispeech()
    except CorpusError as error:
        print(f"No real corpus available: {error}", flush=True)
        return find_corpus(corpus="toy")
