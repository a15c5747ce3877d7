"""Feedforward mask network: 129 -> 300 -> 300 -> 129 (sigmoid), MSE against the IBM.

The baseline of the study, after Y. Wang, D. Wang, "Towards scaling up classification-based
speech separation", IEEE TASLP 2013 (a DNN estimating the ideal binary mask).

Trains on speaker-disjoint mixtures, evaluates on test speakers the model never
heard, and writes results.json, the separated wavs of one test mixture and the
figures into --out (default: ./output next to this script). Spyder: run the
cells one by one (Ctrl+Enter) or all at once (F5), then inspect the variables.

    python Feedforward/train_net.py             (the CONFIG below)
    python Feedforward/train_net.py --quick     (a one-minute smoke test)
    python Feedforward/train_net.py --timit PATH --dynamic-mixing --minutes 30
"""

import sys
from pathlib import Path

try:
    import speechsep  # noqa: F401
except ImportError:  # running from a clone without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechsep.cli import program_start
from speechsep.training.runner import ExperimentRun, run_experiment

EXPERIMENT = "feedforward"
# Defaults of the command-line options (--help lists them all), by ExperimentConfig field name: what this
# experiment trains (ExperimentConfig.for_experiment(EXPERIMENT); tests/test_experiments.py keeps the two
# equal). Edit in place; flags given on the command line override these values.
CONFIG = dict(
    epochs=10,             # maximum number of epochs
    minutes=None,          # wall-clock budget in minutes (None: no limit)
    dynamic_mixing=False,  # fresh mixtures every epoch instead of a pickle dataset
    batch_size=32,         # chunks of 100 frames per step
    learning_rate=1e-3,
    hidden_units=300,
    num_layers=2,          # alias: layers
    dropout=0.0,
)


def main(argv=None):
    """Every cell below, in order, with ``argv`` flags (None: the command line); returns the results."""
    return run_experiment(EXPERIMENT, __file__, argv, CONFIG)


#%% 1. Data: speaker-disjoint training/validation pipelines and the unseen test mixtures
if __name__ == "__main__":
    program_start(__file__)  # quiet TensorFlow start-up; run from a shell, a user error prints one line
    run = ExperimentRun(EXPERIMENT, __file__, CONFIG)
    data = run.prepare_data()

#%% 2. Train: Keras fit with checkpoints; resumes a killed run
if __name__ == "__main__":
    model, history = run.train()

#%% 3. Evaluate: SNR, SI-SDR, SDR, STOI and bin accuracies on unseen speakers
if __name__ == "__main__":
    results = run.evaluate()

#%% 4. Figures and wavs of one test mixture (feedforward*.png)
if __name__ == "__main__":
    example = run.write_outputs()
    masks, separated = example.masks, example.estimates
