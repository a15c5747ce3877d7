"""Benchmarks that print a table: ``python -m speechsep.bench data|separate``.

* ``data``: mixtures per second and peak RSS of the dataset generator (by
  default on the shared TIMIT sample, reusing its utterances as often as needed).
* ``separate``: real-time factor of separation (see :mod:`speechsep.separate`).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


def bench_data(args) -> dict:
    from speechsep.corpus import find_corpus
    from speechsep.mixing import MixingConfig
    from speechsep.shards import DatasetConfig, write_dataset

    corpus = find_corpus(args.timit, args.corpus)
    config = DatasetConfig.from_total(args.mixtures, shard_size=args.shard_size, mixing=MixingConfig(seed=0))
    out = Path(tempfile.mkdtemp(prefix="speechsep-bench-", dir=args.scratch))
    try:
        start = time.perf_counter()
        write_dataset(corpus, out, config, progress=not args.quiet)
        seconds = time.perf_counter() - start
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    row = {"corpus": corpus.name, "mixtures": args.mixtures, "seconds": seconds,
           "mixtures_per_second": args.mixtures / seconds, "peak_rss_mb": peak_mb, "disk_mb": size / 2**20}
    print(f"{'corpus':<16}{'mixtures':>10}{'seconds':>10}{'mix/s':>10}{'peak RSS MB':>14}{'disk MB':>10}")
    print(f"{row['corpus']:<16}{row['mixtures']:>10}{row['seconds']:>10.1f}{row['mixtures_per_second']:>10.1f}"
          f"{row['peak_rss_mb']:>14.0f}{row['disk_mb']:>10.0f}")
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m speechsep.bench", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="dataset generation speed and memory")
    data.add_argument("--timit", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "timit-sample"))
    data.add_argument("--corpus", choices=("timit", "nltk", "toy"), default=None)
    data.add_argument("--mixtures", type=int, default=2000)
    data.add_argument("--shard-size", type=int, default=100)
    data.add_argument("--scratch", default=None, help="folder for the temporary dataset (deleted after)")
    data.add_argument("--quiet", action="store_true")
    separate = commands.add_parser("separate", help="separation real-time factor")
    separate.add_argument("--model", required=False, default=None)
    args, rest = parser.parse_known_args(argv)
    if args.command == "data":
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return bench_data(args)
    from speechsep.separate import bench_separate

    return bench_separate(args, rest)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
