"""BLSTM mask network (2 bidirectional LSTM layers of 300 units, dense 129 sigmoid), MSE against the IBM.

With --loss pit it trains with utterance-level PIT: M. Kolbaek, D. Yu, Z.-H. Tan, J. Jensen, "Multitalker speech separation with utterance-level permutation invariant training", IEEE/ACM TASLP 2017.

Trains on speaker-disjoint mixtures, evaluates on test speakers the model never
heard, and writes results.json, the separated wavs of one test mixture and the
figures into --out (default: ./output next to this script).

    python Bi-Directional-RNN/train_bi_directional_RNN.py                 # sensible default (Spyder: F5)
    python Bi-Directional-RNN/train_bi_directional_RNN.py --quick         # about a minute on tiny data
    python Bi-Directional-RNN/train_bi_directional_RNN.py --timit PATH --dynamic-mixing --minutes 30
"""

import sys
from pathlib import Path

try:
    import speechsep  # noqa: F401
except ImportError:  # running from a clone without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechsep.experiments import run_experiment


def main(argv=None):
    return run_experiment("bidirnn", __file__, argv, description=__doc__.split("\n")[0])


if __name__ == "__main__":
    main()
