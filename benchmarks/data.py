"""``bench data``: mixtures per second, peak memory and disk use of the dataset generator."""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from pathlib import Path

from speechsep.cli import corpus_from_args


def bench_data(args) -> dict:
    from speechsep.data.mixing import MixingConfig
    from speechsep.data.shards import DatasetConfig, write_dataset

    corpus = corpus_from_args(args)
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
