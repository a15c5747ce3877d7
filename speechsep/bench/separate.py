"""``bench separate``: real-time factor of separating a 3 s mixture, per readout (median of repeats)."""

from __future__ import annotations

import time

from speechsep.cli import corpus_from_args


def bench_separate(args) -> list[dict]:
    import numpy as np

    from speechsep.data import testset
    from speechsep.data.mixing import MixingConfig
    from speechsep.separation.separator import Separator

    separator = Separator.from_run_dir(args.model)
    test = testset.from_corpus(corpus_from_args(args), 20, mixing=MixingConfig(length_mode="max"))
    record = next(r for r in test.records if len(r["mixture"]) >= 3 * 8000)
    mixture = record["mixture"][: 3 * 8000]
    readouts = ["kmeans", "meanshift"] if separator.config.model == "dc" else ["mask"]
    rows = []
    print(f"{'model':<20}{'readout':<12}{'seconds (3 s mix)':>20}{'RTF':>8}")
    for readout in readouts:
        separator.separate(mixture, readout=readout)  # warm-up (graph tracing)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            separator.separate(mixture, readout=readout)
            times.append(time.perf_counter() - start)
        seconds = float(np.median(times))
        rows.append({"model": separator.config.experiment, "readout": readout, "seconds": seconds,
                     "rtf": seconds / 3.0})
        print(f"{separator.config.experiment:<20}{readout:<12}{seconds:>20.3f}{seconds / 3.0:>8.3f}")
    return rows
