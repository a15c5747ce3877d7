"""The BLSTM trained with the deep-clustering loss, mask read off WITHOUT clustering (sign of the first principal component).

Reproduces the original's "the loss alone is not enough" step. Loss: J. R. Hershey, Z. Chen, J. Le Roux, S. Watanabe, "Deep clustering: Discriminative embeddings for segmentation and separation", ICASSP 2016.

Trains on speaker-disjoint mixtures, evaluates on test speakers the model never
heard, and writes results.json, the separated wavs of one test mixture and the
figures into --out (default: ./output next to this script).

    python Bi-Directional-RNN-with-loss-function/train_bi_with_loss_function.py                 # sensible default (Spyder: F5)
    python Bi-Directional-RNN-with-loss-function/train_bi_with_loss_function.py --quick         # about a minute on tiny data
    python Bi-Directional-RNN-with-loss-function/train_bi_with_loss_function.py --timit PATH --dynamic-mixing --minutes 30
"""

import sys
from pathlib import Path

try:
    import speechsep  # noqa: F401
except ImportError:  # running from a clone without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechsep.experiments import run_experiment


def main(argv=None):
    return run_experiment("bidiloss", __file__, argv, description=__doc__.split("\n")[0])


if __name__ == "__main__":
    main()
