"""``python -m speechsep.bench data|separate|meanshift|quality``: see :mod:`speechsep.bench`."""

from __future__ import annotations

import argparse
import sys

from speechsep.bench import QUALITY_DIR, SHARED_SAMPLE
from speechsep.cli import add_corpus_arguments


def _corpus(parser) -> None:
    add_corpus_arguments(parser, speakers=False, seed=False)
    parser.set_defaults(timit=SHARED_SAMPLE)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m speechsep.bench", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="dataset generation speed and memory")
    _corpus(data)
    data.add_argument("--mixtures", type=int, default=2000, help="mixtures to write (default 2000)")
    data.add_argument("--shard-size", type=int, default=100, help="mixtures per shard (default 100)")
    data.add_argument("--scratch", default=None, help="folder for the temporary dataset (deleted after)")
    data.add_argument("--quiet", action="store_true", help="no progress bars")
    separate = commands.add_parser("separate", help="separation real-time factor on a 3 s mixture")
    separate.add_argument("--model", default=f"{QUALITY_DIR}/deepclustering", help="a training run folder")
    _corpus(separate)
    separate.add_argument("--repeats", type=int, default=7, help="timed repeats; the median is reported")
    meanshift = commands.add_parser("meanshift", help="mean-shift speaker counting per bandwidth")
    meanshift.add_argument("--model", default=f"{QUALITY_DIR}/deepclustering", help="a deep-clustering run folder")
    _corpus(meanshift)
    meanshift.add_argument("--mixtures", type=int, default=50, help="mixtures per set (default 50)")
    meanshift.add_argument("--bandwidths", type=float, nargs="+", default=[0.05, 0.1, 0.15, 0.2],
                           help="bandwidths to try")
    meanshift.add_argument("--min-fractions", type=float, nargs="+", default=[0.05, 0.1, 0.15],
                           help="minimum cluster sizes to try, as a fraction of the active bins")
    quality = commands.add_parser("quality", help="train all experiments, evaluate with the oracles")
    quality.add_argument("--timit", default=SHARED_SAMPLE, help=f"corpus folder (default {SHARED_SAMPLE})")
    quality.add_argument("--out", default=QUALITY_DIR, help=f"folder of the run folders (default {QUALITY_DIR})")
    quality.add_argument("--dc-minutes", type=float, default=30.0, help="budget of the deep-clustering network")
    quality.add_argument("--mask-minutes", type=float, default=4.0, help="budget of each mask network")
    quality.add_argument("--steps-per-epoch", type=int, default=150, help="batches per epoch (default 150)")
    quality.add_argument("--test-mixtures", type=int, default=100, help="test mixtures (default 100)")
    quality.add_argument("--seed", type=int, default=0, help="split, mixing and training seed (default 0)")
    quality.add_argument("--only", nargs="*", default=None,
                         help="rows to train now (others are reported if their results.json exists)")
    quality.add_argument("--retrain", action="store_true", help="retrain even if results.json exists")
    args = parser.parse_args(argv)
    from speechsep.bench.data import bench_data
    from speechsep.bench.meanshift import bench_meanshift
    from speechsep.bench.quality import bench_quality
    from speechsep.bench.separate import bench_separate

    return {"data": bench_data, "separate": bench_separate, "meanshift": bench_meanshift,
            "quality": bench_quality}[args.command](args)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
