"""LSTM mask network (2 LSTM layers of 300 units, dense 129 sigmoid) trained with MSE against the IBM.

P.-S. Huang, M. Kim, M. Hasegawa-Johnson, P. Smaragdis, "Deep learning for monaural speech separation", ICASSP 2014 (recurrent mask estimation).

Trains on speaker-disjoint mixtures, evaluates on test speakers the model never
heard, and writes results.json, the separated wavs of one test mixture and the
figures into --out (default: ./output next to this script).

    python RNN/train_rnn.py                 # sensible default (Spyder: F5)
    python RNN/train_rnn.py --quick         # about a minute on tiny data
    python RNN/train_rnn.py --timit PATH --dynamic-mixing --minutes 30
"""

import sys
from pathlib import Path

try:
    import speechsep  # noqa: F401
except ImportError:  # running from a clone without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechsep.experiments import run_experiment


def main(argv=None):
    return run_experiment("rnn", __file__, argv, description=__doc__.split("\n")[0])


if __name__ == "__main__":
    main()
