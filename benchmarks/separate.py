"""``bench separate``: load time, and the real-time factor of separating a 3 s mixture per readout (median of repeats).

One row per readout: ``model``, ``readout``, ``seconds`` (median, 3 s mixture),
``rtf``, ``first_call_seconds`` (tracing and compiling included), and the
run's ``load_seconds`` and ``import_seconds`` (TensorFlow and Keras), the same
in every row.
"""

from __future__ import annotations

import time

from speechsep.cli import corpus_from_args
from speechsep.signal import SAMPLE_RATE

SECONDS = 3.0  # length of the timed mixture


def reference_separator():
    """An untrained deep-clustering network of the default config (the reference size), unit statistics.

    The network's cost does not depend on its weights; k-means and mean-shift
    cost depends on the embeddings only through the iterations they need, and
    both fit at most :data:`speechsep.separation.cluster.MAX_FIT_POINTS` bins.
    """
    import numpy as np

    from speechsep.config import ExperimentConfig
    from speechsep.nn.models import build_model
    from speechsep.separation.separator import Separator
    from speechsep.signal import N_BINS

    config = ExperimentConfig(experiment="reference (untrained)")
    return Separator(build_model(config), config, np.zeros(N_BINS, np.float32), np.ones(N_BINS, np.float32))


def bench_separate(args) -> list[dict]:
    import numpy as np

    from speechsep import pretrained
    from speechsep.data import testset
    from speechsep.data.mixing import MixingConfig
    from speechsep.separation.separator import counts_talkers

    start = time.perf_counter()
    import speechsep.nn.models  # noqa: F401  (TensorFlow and Keras: timed apart from the model's load)

    imported = time.perf_counter() - start
    start = time.perf_counter()
    separator = reference_separator() if args.reference else pretrained.load(args.model).separator
    loaded = time.perf_counter() - start
    print(f"load: {loaded:.2f} s ({'reference network' if args.reference else args.model}), "
          f"after {imported:.2f} s importing TensorFlow and Keras")
    test = testset.from_corpus(corpus_from_args(args), 20, mixing=MixingConfig(length_mode="max"))
    length = int(SECONDS * SAMPLE_RATE)
    long_enough = [r["mixture"] for r in test.records if len(r["mixture"]) >= length]
    # the first 3 s test mixture; a corpus of shorter utterances (the toy one) gets test mixtures end to end
    mixture = (long_enough[0] if long_enough else np.concatenate([r["mixture"] for r in test.records]))[:length]
    if len(mixture) < length:
        raise ValueError(f"the test mixtures of {test.description} last less than {SECONDS:g} s in all")
    readouts = ["kmeans", "meanshift"] if separator.config.model == "dc" else ["mask"]
    # a model trained on a varying number of talkers: also each readout after its count (config.count_method),
    # as `separate` runs it without --speakers; beside the row with the count given, that is what counting costs
    runs = [(readout, False) for readout in readouts]
    runs += [(readout, True) for readout in readouts if counts_talkers(separator.config, readout)]
    rows = []
    print(f"{'model':<24}{'readout':<32}{'seconds (3 s mix)':>20}{'RTF':>8}{'first call (s)':>16}")
    for readout, counted in runs:
        def separate():
            separator.separate(mixture, readout=readout, estimate_count=counted)

        start = time.perf_counter()
        separate()  # warm-up: graph tracing and, the first time, XLA compiling
        first = time.perf_counter() - start
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            separate()
            times.append(time.perf_counter() - start)
        seconds = float(np.median(times))
        name = f"{readout} + {separator.config.count_method} count" if counted else readout
        rows.append({"model": separator.config.experiment, "readout": name, "seconds": seconds,
                     "rtf": seconds / SECONDS, "first_call_seconds": first, "load_seconds": loaded,
                     "import_seconds": imported})
        print(f"{separator.config.experiment:<24}{name:<32}{seconds:>20.3f}{seconds / SECONDS:>8.3f}"
              f"{first:>16.2f}")
    return rows
