"""``python -m benchmarks BENCHMARK``: see :mod:`benchmarks`."""

from __future__ import annotations

import argparse
import sys

from benchmarks import QUALITY_DIR, SHARED_LIBRISPEECH, SHARED_SAMPLE
from speechsep.pretrained import DEFAULT_MODEL
from speechsep.cli import TalkersAction, add_corpus_arguments, program_start, run_guarded


def _corpus(parser) -> None:
    add_corpus_arguments(parser, speakers=False, seed=False)
    parser.set_defaults(default_corpus=SHARED_SAMPLE)  # only when no corpus option is given: see parse_args


def parse_args(argv=None) -> argparse.Namespace:
    """The parsed command line of a benchmark; with no ``--timit``, ``--corpus-root`` or ``--corpus`` the
    corpus is the shared TIMIT sample (``--corpus-root X`` alone is X alone, not X beside the sample)."""
    args = build_parser().parse_args(argv)
    default = getattr(args, "default_corpus", None)
    if default and args.timit is None and not getattr(args, "corpus_root", None) and args.corpus is None:
        args.timit = default
    return args


def build_parser() -> argparse.ArgumentParser:
    """The command line of every benchmark (``python -m benchmarks BENCHMARK --help``)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description="Benchmarks: each prints a table of what it measured.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="BENCHMARK",
                                     help="python -m benchmarks BENCHMARK --help lists its options")
    data = commands.add_parser("data", help="dataset generation speed and memory")
    _corpus(data)
    data.add_argument("--mixtures", type=int, default=2000, help="mixtures to write (default 2000)")
    data.add_argument("--shard-size", type=int, default=100, help="mixtures per shard (default 100)")
    data.add_argument("--scratch", default=None, help="folder for the temporary dataset (deleted after)")
    data.add_argument("--quiet", action="store_true", help="no progress bars")
    discovery = commands.add_parser("discovery", help="corpus discovery time on a LibriSpeech-sized folder")
    discovery.add_argument("--files", type=int, default=30_000,
                           help="FLAC files in the synthetic LibriSpeech tree (default 30000)")
    discovery.add_argument("--root", default=None, help="time this corpus folder instead of a synthetic tree")
    discovery.add_argument("--repeats", type=int, default=3, help="timed runs; the median is reported")
    discovery.add_argument("--scratch", default=None, help="folder for the synthetic tree (deleted after)")
    discovery.add_argument("--keep", action="store_true", help="keep the synthetic tree")
    separate = commands.add_parser("separate", help="separation real-time factor on a 3 s mixture")
    separate.add_argument("--model", default=DEFAULT_MODEL,
                          help=f"a shipped model or a training run folder (default: the shipped {DEFAULT_MODEL})")
    separate.add_argument("--reference", action="store_true",
                          help="time an untrained network of the default (reference) size instead of --model")
    _corpus(separate)
    separate.add_argument("--repeats", type=int, default=7, help="timed repeats; the median is reported")
    meanshift = commands.add_parser("meanshift", help="speaker counting: count-confusion matrix per method, "
                                                      "mean-shift per bandwidth")
    meanshift.add_argument("--model", default=f"{QUALITY_DIR}/deepclustering",
                           help="a deep-clustering run folder or a shipped model (e.g. dc-librispeech)")
    _corpus(meanshift)
    meanshift.add_argument("--mixtures", type=int, default=50, help="mixtures per set (default 50)")
    meanshift.add_argument("--talkers", nargs="+", action=TalkersAction, default=None, metavar="K",
                           help="talker counts of the validation and test sets (default: those the run was trained "
                                "on, or 1-3 for a run trained on a fixed count)")
    meanshift.add_argument("--bandwidths", type=float, nargs="+", default=[0.05, 0.1, 0.15, 0.2],
                           help="bandwidths to try")
    meanshift.add_argument("--min-fractions", type=float, nargs="+", default=[0.05, 0.1, 0.15],
                           help="minimum cluster sizes to try, as a fraction of the active bins")
    meanshift.add_argument("--eigen-thresholds", type=float, nargs="+", default=[0.05, 0.1, 0.15, 0.2],
                           help="eigenvalue counting: thresholds to try (shares of the Gram matrix's trace)")
    meanshift.add_argument("--directions-per-talker", type=float, nargs="+", default=[1.0, 1.5, 2.0, 2.5, 3.0],
                           help="participation-ratio counting: directions one talker's embeddings fill, to try")
    meanshift.add_argument("--min-silhouettes", type=float, nargs="+", default=[0.2, 0.3, 0.4],
                           help="silhouette counting: the silhouettes below which one talker is counted, to try")
    meanshift.add_argument("--min-shares", type=float, nargs="+", default=[0.02, 0.05, 0.1, 0.15],
                           help="mask-energy counting (a Chimera++ mask head): the least share of the active bins "
                                "a mask must take to count as a talker, to try")
    softmask = commands.add_parser("softmask", help="binary against soft clustering masks per beta (validation)")
    softmask.add_argument("--model", default=f"{QUALITY_DIR}/deepclustering",
                          help="a deep-clustering run folder or a shipped model (e.g. dc-librispeech)")
    _corpus(softmask)
    softmask.add_argument("--split", choices=("valid", "test"), default="valid",
                          help="whose speakers are mixed: tune on valid (default), report on test")
    softmask.add_argument("--mixtures", type=int, default=100, help="mixtures (default 100)")
    softmask.add_argument("--betas", type=float, nargs="+", default=[2.0, 5.0, 10.0, 20.0, 40.0],
                          help="soft-mask sharpness values to try (binary masks are always the first row)")
    quality = commands.add_parser("quality", help="train all experiments, evaluate with the oracles")
    quality.add_argument("--timit", default=SHARED_SAMPLE,
                         help=f"corpus folder; its test speakers give the table's test mixtures (default {SHARED_SAMPLE})")
    quality.add_argument("--corpus-root", metavar="PATH", action="append", default=None,
                         help="more training corpora (repeatable; e.g. ../shared/data/librispeech-sample): every row "
                              "trains on the training speakers of --timit and of these; the table stays on --timit's "
                              "test mixtures")
    quality.add_argument("--out", default=QUALITY_DIR, help=f"folder of the run folders (default {QUALITY_DIR})")
    quality.add_argument("--dc-minutes", type=float, default=30.0, help="budget of the deep-clustering network")
    quality.add_argument("--dc-steps", type=int, default=None, metavar="STEPS",
                         help="train the deep-clustering rows for this many optimizer steps (whole epochs of "
                              "--steps-per-epoch, rounded up) instead of --dc-minutes: rows comparable across hosts")
    quality.add_argument("--mask-minutes", type=float, default=4.0, help="budget of each mask network")
    quality.add_argument("--steps-per-epoch", type=int, default=150, help="batches per epoch (default 150)")
    quality.add_argument("--test-mixtures", type=int, default=100, help="test mixtures (default 100)")
    quality.add_argument("--seed", type=int, default=0, help="split, mixing and training seed (default 0)")
    quality.add_argument("--only", nargs="*", default=None,
                         help="rows to train now (others are reported if their results.json exists); "
                              "recipe candidates may be named too")
    quality.add_argument("--candidates", action="store_true",
                         help="also train the deep-clustering recipe candidates (speechsep/experiments.py) into "
                              "OUT/candidates/ and write their table there; never part of the study's table")
    quality.add_argument("--retrain", action="store_true", help="retrain even if results.json exists")
    workers = commands.add_parser("workers", help="training steps/s with 1 and N local workers; lost-peer timing")
    workers.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                         help="worker counts of the multiworker rows (default 1 2)")
    workers.add_argument("--steps", type=int, default=30, help="steps per epoch (default 30)")
    workers.add_argument("--epochs", type=int, default=4, help="epochs; the first is not timed (default 4)")
    workers.add_argument("--batch-size", type=int, default=16, help="global batch in chunks (default 16)")
    workers.add_argument("--frames", type=int, default=100, help="frames per chunk (default 100)")
    workers.add_argument("--hidden-units", type=int, default=64, help="BLSTM units (default 64)")
    workers.add_argument("--join-timeout", type=float, default=10.0,
                         help="seconds the unreachable-peer row waits for its peer (default 10)")
    workers.add_argument("--timeout", type=float, default=600.0, help="limit per row in seconds (default 600)")
    train = commands.add_parser("train", help="training steps/s and GFLOP/s against the sgemm ceiling; input wait")
    _corpus(train)
    train.set_defaults(default_corpus=None)  # input-wait rows default to the TIMIT + LibriSpeech samples (see bench.train)
    train.add_argument("--variants", default=None,
                       help="comma-separated rows: keras, keras +jit, fast, fast +jit, fast +jit bf16 (default all)")
    train.add_argument("--steps", type=int, default=10, help="timed steps per variant (default 10)")
    train.add_argument("--input-steps", type=int, default=20,
                       help="steps of the input-wait rows (default 20; 0 = skip them)")
    train.add_argument("--crop-seconds", type=float, default=4.0, help="dynamic-mixing crops (default 4 s)")
    train.add_argument("--intra-op", type=int, default=0, help="TensorFlow intra-op threads (default 0: all)")
    train.add_argument("--inter-op", type=int, default=0, help="TensorFlow inter-op threads (default 0: all)")
    train.add_argument("--no-ceiling", action="store_true", help="skip the matmul ceiling")
    train.add_argument("--scratch", default=None, help="folder for the temporary shard dataset (deleted after)")
    longform = commands.add_parser("longform", help="a long two-talker recording: peak memory, RTF, talker "
                                                    "continuity, whole-file against 4 s clip SI-SDRi, full band")
    longform.add_argument("--model", default=DEFAULT_MODEL, help=f"a shipped model (default {DEFAULT_MODEL})")
    longform.add_argument("--corpus-root", default=SHARED_LIBRISPEECH,
                          help=f"a LibriSpeech folder with SPEAKERS.TXT (default {SHARED_LIBRISPEECH})")
    longform.add_argument("--minutes", type=float, default=60.0, help="length of the recording (default 60)")
    longform.add_argument("--rate", type=int, default=16000, help="its sample rate (default 16000)")
    longform.add_argument("--clips", type=int, default=40, help="4 s clips separated one by one (default 40)")
    longform.add_argument("--seed", type=int, default=0, help="pauses and clip positions (default 0)")
    longform.add_argument("--speakers", default=None, metavar="ID,ID",
                          help="the two talkers (default: the first female and first male test speaker of --model)")
    longform.add_argument("--work", default=None, help="keep the generated audio here (default: a temporary folder)")
    shortfiles = commands.add_parser("shortfiles", help="many short files in one separate call: real-time factor")
    shortfiles.add_argument("--model", default=DEFAULT_MODEL, help=f"a shipped model (default {DEFAULT_MODEL})")
    shortfiles.add_argument("--files", type=int, default=41, help="files (default 41)")
    shortfiles.add_argument("--seconds", type=float, default=3.0, help="seconds each (default 3)")
    shortfiles.add_argument("--rate", type=int, default=16000, help="their sample rate (default 16000)")
    return parser


def main(argv=None):
    program_start()  # the entry point: quiet TensorFlow start-up
    args = parse_args(argv)
    from benchmarks.data import bench_data
    from benchmarks.discovery import bench_discovery
    from benchmarks.longform import bench_longform, bench_shortfiles
    from benchmarks.meanshift import bench_meanshift
    from benchmarks.quality import bench_quality
    from benchmarks.separate import bench_separate
    from benchmarks.softmask import bench_softmask
    from benchmarks.train import bench_train
    from benchmarks.workers import bench_workers

    command = {"data": bench_data, "discovery": bench_discovery, "separate": bench_separate,
               "meanshift": bench_meanshift, "softmask": bench_softmask, "quality": bench_quality,
               "workers": bench_workers, "train": bench_train, "longform": bench_longform,
               "shortfiles": bench_shortfiles}[args.command]
    return run_guarded(command, args)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
