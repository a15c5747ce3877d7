"""Feedforward mask network (129 -> 300 -> 300 -> 129, sigmoid) trained with MSE against the IBM.

The per-frame feedforward baseline of the original study; see Y. Wang, A. Narayanan, D. Wang, "On training targets for supervised speech separation", IEEE/ACM TASLP 2014 (IBM as a training target).

Trains on speaker-disjoint mixtures, evaluates on test speakers the model never
heard, and writes results.json, the separated wavs of one test mixture and the
figures into --out (default: ./output next to this script).

    python Feedforward/train_net.py                 # sensible default (Spyder: F5)
    python Feedforward/train_net.py --quick         # about a minute on tiny data
    python Feedforward/train_net.py --timit PATH --dynamic-mixing --minutes 30
"""

import sys
from pathlib import Path

try:
    import speechsep  # noqa: F401
except ImportError:  # running from a clone without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechsep.experiments import run_experiment


def main(argv=None):
    return run_experiment("feedforward", __file__, argv, description=__doc__.split("\n")[0])


if __name__ == "__main__":
    main()
