"""Command-line plumbing shared by the scripts, ``python -m speechsep`` and the benchmarks.

Argument groups are defined once here; :func:`corpus_from_args`,
:func:`mixing_from_args` and :func:`dataset_config_from_args` turn parsed
arguments into the typed objects the library takes, so no library function
reads an ``argparse.Namespace``.

What changes the whole process is done here, and only when an entry point
asks: :func:`program_start` (quiet TensorFlow start-up, and for a script run
from a shell the error hook), :func:`run_guarded` (a user error becomes one
``error: ...`` line and exit status 2) and :func:`install_error_hook`.
Importing the library does none of it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

from speechsep import _quiet
from speechsep.config import DC_READOUTS, parse_talkers
from speechsep.data.corpus import Corpus, CorpusError
from speechsep.data.mixing import MixingConfig
from speechsep.data.shards import (DatasetConfig, ShardError, built_with, dataset_summary, read_index,
                                   verify_dataset, write_dataset)
from speechsep.data.sources import CORPUS_SOURCES, find_corpus
from speechsep.errors import LOST_PEER_STATUS, PeerLostError

DEFAULT_CROP_SECONDS = 4.0  # training mixtures: random crops of this length (--crop-seconds)


def cache_dir() -> Path:
    """Folder for auto-built datasets: ``$SPEECHSEP_CACHE``, else ``$XDG_CACHE_HOME/speechsep``, else ``~/.cache/speechsep``."""
    if os.environ.get("SPEECHSEP_CACHE"):
        return Path(os.environ["SPEECHSEP_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "speechsep"


# ----------------------------------------------------------------------------- entry points


def program_start(script_file=None) -> None:
    """What an entry point does first (a script, ``python -m speechsep``, the benchmarks); never the library.

    Quietens TensorFlow's start-up (:mod:`speechsep._quiet`: environment
    defaults the user can override, and a filter on the first ``import
    tensorflow``). With ``script_file`` (a script's ``__file__``), when that
    script is the program run from a shell (not an interactive console),
    also installs :func:`install_error_hook`, so that a user error in a
    module-level cell prints one line.
    """
    _quiet.install()
    if is_program(script_file) and not hasattr(sys, "ps1"):
        install_error_hook()


def is_program(script_file) -> bool:
    """Whether ``script_file`` is the program being run (a shell, or Spyder's F5), not an import."""
    if script_file is None or not sys.argv or not sys.argv[0]:
        return False
    return Path(sys.argv[0]).resolve() == Path(script_file).resolve()


# ----------------------------------------------------------------------------- argument groups


def add_corpus_arguments(parser: argparse.ArgumentParser, speakers: bool = True, seed: bool = True) -> None:
    """``--timit``, ``--corpus-root``, ``--corpus`` and (optionally) ``--seed`` and ``--num-speakers``
    (alias ``--speakers``; dest ``num_speakers``, as the config field)."""
    group = parser.add_argument_group("corpus")
    group.add_argument("--timit", metavar="PATH", default=None,
                       help="TIMIT folder (LDC, NLTK-sample, LibriSpeech or <speaker>/*.wav layout); "
                            "default: $TIMIT_WAV, ./TIMIT_WAV, the NLTK sample if downloaded, "
                            "then the built-in LibriSpeech mini")
    group.add_argument("--corpus-root", metavar="PATH", action="append", default=None,
                       help="a corpus folder of any layout; repeat to combine corpora (with --timit too): "
                            "speaker ids become <corpus>:<id>, each corpus is split on its own")
    group.add_argument("--corpus", choices=CORPUS_SOURCES, default=None,
                       help="force a corpus source; 'librispeech-mini' is the built-in sample, "
                            "'toy' is synthetic, NOT speech")
    if seed:
        group.add_argument("--seed", type=int, default=0,
                           help="seed for splits, mixing and training (default %(default)s)")
    if speakers:
        group.add_argument("--num-speakers", "--speakers", dest="num_speakers", type=int, default=2,
                           help="talkers per mixture (default %(default)s)")


def add_clusterer_argument(parser, default=None, help_text: str = "how embeddings become masks",
                           dest: str = "clusterer") -> None:
    """``--readout kmeans|meanshift|pca_sign|mask_head`` (``mask_head``: a Chimera++ network's own masks),
    alias ``--clusterer`` (the study's word); ``dest``: the attribute the parsed value goes to."""
    parser.add_argument("--readout", "--clusterer", dest=dest, choices=DC_READOUTS, default=default,
                        help=f"{help_text} (default: {default or 'the run’s own'})")


class TalkersAction(argparse.Action):
    """``--talkers 1-3`` / ``--talkers 1 2 3`` -> the sorted tuple (1, 2, 3); a bad value is a usage error."""

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            setattr(namespace, self.dest, parse_talkers(values, option_string or "--talkers"))
        except ValueError as error:
            parser.error(str(error))


def add_talkers_arguments(group, talkers=None, talker_weights=None) -> None:
    """``--talkers K [K ...]`` (ranges allowed: ``1-3``) and ``--talker-weights W [W ...]`` (config fields
    ``talkers``, ``talker_weights``), defaulting to the given values (None: the fixed ``--num-speakers``)."""
    group.add_argument("--talkers", nargs="+", action=TalkersAction, default=talkers, metavar="K",
                       help="train on mixtures of a varying number of talkers, K drawn per mixture from this set "
                            "(e.g. 1-3 or 1 2 3; a one-talker mixture is that talker alone); the model then "
                            "counts talkers at test time (default: always --num-speakers)")
    group.add_argument("--talker-weights", nargs="+", type=float, default=talker_weights, metavar="W",
                       help="with --talkers: the probability of each talker count, in the set's order "
                            "(default: equal)")


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("mixtures")
    add_talkers_arguments(group)
    group.add_argument("--mixtures", type=int, default=1000,
                       help="total mixtures, split 80/10/10 into train/valid/test (default 1000)")
    group.add_argument("--level-range", type=float, nargs=2, default=(0.0, 5.0), metavar=("LOW", "HIGH"),
                       help="relative level between talkers in dB, uniform (default 0 5)")
    group.add_argument("--length", choices=("min", "max"), default="min",
                       help="mixture length: shortest source (min, default) or longest (max)")
    group.add_argument("--shard-size", type=int, default=100, help="mixtures per pickle shard (default 100)")
    add_crop_argument(group)


def add_crop_argument(group) -> None:
    """``--crop-seconds``: random crops of a fixed length for training mixtures."""
    group.add_argument("--crop-seconds", type=float, default=DEFAULT_CROP_SECONDS, metavar="S",
                       help="training mixtures are random S-second crops of each source, drawn afresh by "
                            f"dynamic mixing (default {DEFAULT_CROP_SECONDS:g}; 0 = off: the shorter source); "
                            "validation and test mixtures are never cropped")


# ----------------------------------------------------------------------------- arguments -> typed objects


def corpus_from_args(args) -> Corpus:
    """The corpus named by ``--timit`` / ``--corpus-root`` / ``--corpus`` (order: :mod:`speechsep.data.sources`)."""
    return find_corpus(args.timit, args.corpus, getattr(args, "corpus_root", None) or ())


def mixing_from_args(args) -> MixingConfig:
    """Training-mixture options; ``--crop-seconds`` only where the command has it (0 = off)."""
    level_range = getattr(args, "level_range", None) or (0.0, 5.0)
    talkers = tuple(getattr(args, "talkers", None) or ())
    weights = tuple(getattr(args, "talker_weights", None) or ())
    if weights and len(talkers) < 2:
        raise ValueError("--talker-weights needs --talkers with more than one talker count")
    if len(talkers) < 2:  # a single count is a fixed --num-speakers
        talkers = ()
    return MixingConfig(num_speakers=max(talkers) if talkers else args.num_speakers,
                        level_range_db=tuple(level_range),
                        length_mode=getattr(args, "length", None) or "min", seed=args.seed,
                        crop_seconds=getattr(args, "crop_seconds", None) or None,
                        talkers=talkers, talker_weights=weights)


def dataset_config_from_args(args) -> DatasetConfig:
    """DataGenerator options; training scripts lack the mixing flags and get the generator defaults."""
    return DatasetConfig.from_total(args.mixtures, shard_size=getattr(args, "shard_size", None) or 100,
                                    mixing=mixing_from_args(args))


# ----------------------------------------------------------------------------- datasets


def dataset_name(corpus: Corpus, config: DatasetConfig) -> str:
    """``<corpus>-<K>spk-<N>mix-seed<S>[-crop<C>s]``: the default name of a dataset folder
    (``1+2+3spk[-w<W1>+<W2>+<W3>]`` for a varying number of talkers)."""
    total = sum(config.mixtures.values())
    crop = f"-crop{config.mixing.crop_seconds:g}s" if config.mixing.crop_seconds else ""
    mixing = config.mixing
    talkers = "+".join(str(k) for k in mixing.talker_set)
    if mixing.talker_weights:
        talkers += "-w" + "+".join(f"{w:g}" for w in mixing.talker_weights)
    return f"{corpus.name}-{talkers}spk-{total}mix-seed{config.mixing.seed}{crop}"


def default_data_dir(corpus: Corpus, config: DatasetConfig) -> Path:
    """``<cache>/datasets/<dataset name>-<root hash>``: one folder per corpus and config."""
    root_hash = hashlib.sha256(corpus.root.encode()).hexdigest()[:8]
    return cache_dir() / "datasets" / f"{dataset_name(corpus, config)}-{root_hash}"


def build_dataset(corpus: Corpus, config: DatasetConfig, out_dir, overwrite: bool = False,
                  progress: bool = True) -> Path:
    """Write the dataset (or finish an interrupted one); reuse a complete one. Returns its folder."""
    out_dir = Path(out_dir)
    print(f"Corpus: {describe_corpus(corpus)}", flush=True)
    index = None
    if (out_dir / "index.json").is_file() and not overwrite:
        index = read_index(out_dir)
    if index is not None and index.get("complete") and built_with(index, config, corpus.root,
                                                                  out_dir / "index.json"):
        try:
            verify_dataset(out_dir)
            print(f"Reusing dataset {out_dir}", flush=True)
            return out_dir
        except ShardError as error:
            print(f"Repairing dataset {out_dir}: {error}", flush=True)
    else:
        check_out_dir(out_dir, what="dataset folder")
        print(f"Writing {sum(config.mixtures.values())} mixtures to {out_dir} (resumes if interrupted)",
              flush=True)
    write_dataset(corpus, out_dir, config, overwrite=overwrite, progress=progress)
    if corpus.skipped:
        print(f"Skipped {len(corpus.skipped)} unusable file(s); listed in {out_dir / 'index.json'}")
    print(dataset_summary(out_dir))
    return out_dir


def describe_corpus(corpus: Corpus) -> str:
    """One sentence: name, folder, layout, speakers by sex, utterances, skipped files (and each combined part)."""
    if corpus.parts:
        return (f"{corpus.name}, {len(corpus.parts)} corpora combined, {len(corpus.speakers)} speakers: "
                + "; ".join(describe_corpus(part) for part in corpus.parts))
    summary = corpus.summary()
    unknown = f", {summary['unknown_sex']} unknown" if summary["unknown_sex"] else ""
    text = (f"{summary['name']} ({summary['layout']} layout, {summary['root']}): {summary['speakers']} speakers "
            f"({summary['female']} female, {summary['male']} male{unknown}), {summary['utterances']} utterances")
    if summary["skipped"]:
        text += f", {summary['skipped']} unusable file(s) skipped"
    return text + (" [synthetic, NOT speech]" if summary["is_toy"] else "")


def check_out_dir(out, dataset=None, what: str = "--out") -> Path:
    """``out`` resolved, if it can become an output folder; else a one-line ``ValueError``. Creates nothing.

    Refused: an existing file, a folder that cannot be written, and a folder
    inside (or equal to) the ``dataset`` folder. ``what`` names the folder in the message.
    """
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise ValueError(f"{what} {out}: is a file, not a folder")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{what} {out}: {existing} is a file, not a folder")
    try:  # the real test: os.access says yes to root on read-only file systems
        os.rmdir(tempfile.mkdtemp(prefix=".speechsep-probe-", dir=existing))
    except OSError as error:
        raise ValueError(f"{what} {out}: cannot write in {existing} ({error.strerror})") from None
    if dataset is not None:
        dataset = Path(dataset).expanduser().resolve()
        if out == dataset or dataset in out.parents:
            raise ValueError(f"{what} {out}: lies inside the dataset folder {dataset}; choose a folder outside it")
    return out


# ----------------------------------------------------------------------------- errors


USER_ERRORS = (CorpusError, ShardError, ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
               PermissionError)


def user_error(error: BaseException) -> BaseException | None:
    """``error`` itself if it is a user error (:data:`USER_ERRORS`), the user error a tf.data
    pipeline wrapped in a TensorFlow error, else None."""
    if isinstance(error, USER_ERRORS):
        return error
    pipeline = sys.modules.get("speechsep.data.pipeline")  # loaded only if TensorFlow is
    return pipeline.original_error(error) if pipeline is not None else None


def _release_frames(traceback) -> None:
    """Drop the locals of a finished traceback's frames now, while the interpreter still runs.

    A tf.data iterator left alive until interpreter shutdown waits forever for
    its worker threads there; releasing it here lets the process exit.
    """
    import traceback as traceback_module

    try:
        traceback_module.clear_frames(traceback)
    except RuntimeError:  # a frame still executing
        pass


def install_error_hook() -> None:
    """Make an uncaught user error (:func:`user_error`) print one ``error: ...`` line instead of a traceback.

    For scripts run from a shell, whose steps run at module level; Ctrl+C
    also prints one line, other exceptions keep the normal traceback. Either
    way the frames are released so that the process exits (see
    :func:`_release_frames`). Interactive consoles are unaffected.
    """
    default_hook = sys.excepthook

    def hook(kind, error, traceback):
        if isinstance(error, PeerLostError):
            exit_lost_peer(error)
        original = user_error(error)
        if original is not None:
            print(f"error: {original}", file=sys.stderr)
        elif issubclass(kind, KeyboardInterrupt):
            print("interrupted (a training run resumes when rerun with the same options)", file=sys.stderr)
        else:
            default_hook(kind, error, traceback)
        _release_frames(traceback)

    sys.excepthook = hook


def test_set_from_args(args, num_speakers: int = 2):
    """The :class:`~speechsep.data.testset.TestSet` named by ``--data`` or the corpus options and ``--seed``."""
    from speechsep.data import testset

    if getattr(args, "data", None):
        return testset.from_dataset(args.data, args.mixtures)
    return testset.from_corpus(corpus_from_args(args), args.mixtures, args.seed, num_speakers)


def exit_lost_peer(error: PeerLostError) -> None:
    """Print ``error: ...`` and end the process at once with :data:`LOST_PEER_STATUS` (no interpreter
    shutdown: after a lost peer TensorFlow may take minutes to shut down)."""
    print(f"error: {error}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(LOST_PEER_STATUS)


def run_guarded(function, *args):
    """Run ``function``; print a user error (bad corpus, shard or value) as one line and exit with status 2.

    For entry points only. A :class:`~speechsep.errors.PeerLostError`
    ends the process with :func:`exit_lost_peer`.
    """
    try:
        return function(*args)
    except PeerLostError as error:
        exit_lost_peer(error)
    except Exception as error:
        original = user_error(error)
        if original is None:
            raise
        message = str(original)
        _release_frames(error.__traceback__)
        del error, original
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)
