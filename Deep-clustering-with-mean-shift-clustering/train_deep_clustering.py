"""Deep clustering separated by mean-shift on the unit sphere, which estimates the number of speakers itself and reports it.

J. R. Hershey et al., "Deep clustering", ICASSP 2016; mean-shift: D. Comaniciu, P. Meer, IEEE TPAMI 2002; von Mises-Fisher kernel: T. Kobayashi, N. Otsu, ICPR 2010.

Trains on speaker-disjoint mixtures, evaluates on test speakers the model never
heard, and writes results.json, the separated wavs of one test mixture and the
figures into --out (default: ./output next to this script).

    python Deep-clustering-with-mean-shift-clustering/train_deep_clustering.py                 # sensible default (Spyder: F5)
    python Deep-clustering-with-mean-shift-clustering/train_deep_clustering.py --quick         # about a minute on tiny data
    python Deep-clustering-with-mean-shift-clustering/train_deep_clustering.py --timit PATH --dynamic-mixing --minutes 30
"""

import sys
from pathlib import Path

try:
    import speechsep  # noqa: F401
except ImportError:  # running from a clone without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechsep.experiments import run_experiment


def main(argv=None):
    return run_experiment("meanshift", __file__, argv, description=__doc__.split("\n")[0])


if __name__ == "__main__":
    main()
