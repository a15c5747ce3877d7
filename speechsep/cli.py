"""Command-line plumbing shared by the scripts, ``python -m speechsep`` and the benchmarks.

Argument groups are defined once here; :func:`corpus_from_args`,
:func:`mixing_from_args` and :func:`dataset_config_from_args` turn parsed
arguments into the typed objects the library takes, so no library function
reads an ``argparse.Namespace``. :func:`run_guarded` turns the kit's user
errors into one ``error: ...`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

from speechsep.config import EMBEDDING_READOUTS
from speechsep.data.corpus import Corpus, CorpusError
from speechsep.data.mixing import MixingConfig
from speechsep.data.shards import DatasetConfig, ShardError, dataset_summary, read_index, write_dataset
from speechsep.data.sources import CORPUS_SOURCES, find_corpus


def cache_dir() -> Path:
    """Folder for auto-built datasets: ``$SPEECHSEP_CACHE``, else ``$XDG_CACHE_HOME/speechsep``, else ``~/.cache/speechsep``."""
    if os.environ.get("SPEECHSEP_CACHE"):
        return Path(os.environ["SPEECHSEP_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "speechsep"


# ----------------------------------------------------------------------------- argument groups


def add_corpus_arguments(parser: argparse.ArgumentParser, speakers: bool = True, seed: bool = True) -> None:
    """``--timit``, ``--corpus`` and (optionally) ``--seed`` and ``--speakers``."""
    group = parser.add_argument_group("corpus")
    group.add_argument("--timit", metavar="PATH", default=None,
                       help="TIMIT folder (LDC, NLTK-sample or <speaker>/*.wav layout); "
                            "default: $TIMIT_WAV, ./TIMIT_WAV, then the NLTK sample")
    group.add_argument("--corpus", choices=CORPUS_SOURCES, default=None,
                       help="force a corpus source; 'toy' is synthetic, NOT speech")
    if seed:
        group.add_argument("--seed", type=int, default=0, help="seed for splits, mixing and training (default 0)")
    if speakers:
        group.add_argument("--speakers", type=int, default=2, help="talkers per mixture (default 2)")


def add_clusterer_argument(parser, default=None, help_text: str = "how embeddings become masks") -> None:
    """``--clusterer kmeans|meanshift|pca_sign``."""
    parser.add_argument("--clusterer", choices=EMBEDDING_READOUTS, default=default,
                        help=f"{help_text} (default: {default or 'the run’s own'})")


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("mixtures")
    group.add_argument("--mixtures", type=int, default=1000,
                       help="total mixtures, split 80/10/10 into train/valid/test (default 1000)")
    group.add_argument("--level-range", type=float, nargs=2, default=(0.0, 5.0), metavar=("LOW", "HIGH"),
                       help="relative level between talkers in dB, uniform (default 0 5)")
    group.add_argument("--length", choices=("min", "max"), default="min",
                       help="mixture length: shortest source (min, default) or longest (max)")
    group.add_argument("--shard-size", type=int, default=100, help="mixtures per pickle shard (default 100)")


# ----------------------------------------------------------------------------- arguments -> typed objects


def corpus_from_args(args) -> Corpus:
    """The corpus named by ``--timit`` / ``--corpus`` (resolution order: :mod:`speechsep.data.sources`)."""
    return find_corpus(args.timit, args.corpus)


def mixing_from_args(args) -> MixingConfig:
    level_range = getattr(args, "level_range", None) or (0.0, 5.0)
    return MixingConfig(num_speakers=args.speakers, level_range_db=tuple(level_range),
                        length_mode=getattr(args, "length", None) or "min", seed=args.seed)


def dataset_config_from_args(args) -> DatasetConfig:
    """DataGenerator options; training scripts lack the mixing flags and get the generator defaults."""
    return DatasetConfig.from_total(args.mixtures, shard_size=getattr(args, "shard_size", None) or 100,
                                    mixing=mixing_from_args(args))


# ----------------------------------------------------------------------------- datasets


def default_data_dir(corpus: Corpus, config: DatasetConfig) -> Path:
    """``<cache>/datasets/<corpus>-<K>spk-<N>mix-seed<S>-<root hash>``: one folder per corpus and config."""
    total = sum(config.mixtures.values())
    root_hash = hashlib.sha256(corpus.root.encode()).hexdigest()[:8]
    name = f"{corpus.name}-{config.mixing.num_speakers}spk-{total}mix-seed{config.mixing.seed}-{root_hash}"
    return cache_dir() / "datasets" / name


def build_dataset(corpus: Corpus, config: DatasetConfig, out_dir, overwrite: bool = False,
                  progress: bool = True) -> Path:
    """Write the dataset (or finish an interrupted one); reuse a complete one. Returns its folder."""
    out_dir = Path(out_dir)
    print(f"Corpus: {describe_corpus(corpus)}", flush=True)
    index = None
    if (out_dir / "index.json").is_file() and not overwrite:
        index = read_index(out_dir)
    if index is not None and index.get("complete") and index["config"] == config.to_json() \
            and index["corpus"]["root"] == corpus.root:
        print(f"Reusing dataset {out_dir}", flush=True)
        return out_dir
    print(f"Writing {sum(config.mixtures.values())} mixtures to {out_dir} (resumes if interrupted)", flush=True)
    write_dataset(corpus, out_dir, config, overwrite=overwrite, progress=progress)
    if corpus.skipped:
        print(f"Skipped {len(corpus.skipped)} unusable file(s); listed in {out_dir / 'index.json'}")
    print(dataset_summary(out_dir))
    return out_dir


def describe_corpus(corpus: Corpus) -> str:
    """One sentence: name, folder, layout, speakers by sex, utterances, skipped files."""
    summary = corpus.summary()
    text = (f"{summary['name']} ({summary['layout']} layout, {summary['root']}): {summary['speakers']} speakers "
            f"({summary['female']} female, {summary['male']} male), {summary['utterances']} utterances")
    if summary["skipped"]:
        text += f", {summary['skipped']} unusable file(s) skipped"
    return text + (" [synthetic, NOT speech]" if summary["is_toy"] else "")


# ----------------------------------------------------------------------------- errors


USER_ERRORS = (CorpusError, ShardError, ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
               PermissionError)


def install_error_hook() -> None:
    """Make an uncaught user error (:data:`USER_ERRORS`) print one ``error: ...`` line instead of a traceback.

    For scripts run from a shell, whose steps run at module level; other
    exceptions keep the normal traceback. Interactive consoles are unaffected.
    """
    default_hook = sys.excepthook

    def hook(kind, error, traceback):
        if issubclass(kind, USER_ERRORS):
            print(f"error: {error}", file=sys.stderr)
        else:
            default_hook(kind, error, traceback)

    sys.excepthook = hook


def test_set_from_args(args, num_speakers: int = 2):
    """The :class:`~speechsep.data.testset.TestSet` named by ``--data`` or the corpus options and ``--seed``."""
    from speechsep.data import testset

    if getattr(args, "data", None):
        return testset.from_dataset(args.data, args.mixtures)
    return testset.from_corpus(corpus_from_args(args), args.mixtures, args.seed, num_speakers)


def run_guarded(function, *args):
    """Run ``function``; print a user error (bad corpus, shard or value) as one line and exit with status 2."""
    try:
        return function(*args)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
