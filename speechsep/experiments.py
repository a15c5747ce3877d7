"""The six experiments of the original study: the one list every other list derives from.

Each :class:`Experiment` names its model, loss and readout, the training
script that runs it (relative to the repository), the figures that script
writes, the flow schematic drawn for it in ``Pictures/``, and its variants
(rows of the comparison that change one setting, e.g. the BLSTM with uPIT).
The runner, the comparison, the benchmarks, the schematics and the tests all
read this module; it imports nothing from the kit.
"""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Mapping


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One experiment of the study.

    ``figures`` maps a figure role (``accuracy``, ``ibm``, ``wav``, ``loss``,
    ``embeddings``, ``separation``) to the PNG file name the script writes.
    ``variants`` maps a comparison row name to the settings it changes.
    """

    name: str
    title: str
    model: str
    loss: str
    readout: str
    script: str  # path of the training script, relative to the repository root
    figures: Mapping[str, str]
    flow_figure: str | None = None  # schematic in Pictures/ (the mean-shift one shares deep_clustering.png)
    variants: Mapping[str, Mapping] = dataclasses.field(default_factory=dict)
    budget: str = "mask"  # "mask" or "dc": which wall-clock budget the quality benchmark gives it

    @property
    def folder(self) -> str:
        """The script's folder, e.g. ``Deep-clustering``."""
        return str(PurePosixPath(self.script).parent)

    @property
    def output_folder(self) -> str:
        """The script's default output folder, relative to the repository root."""
        return f"{self.folder}/output"


def _mask_figures(prefix: str) -> dict:
    return {"accuracy": f"{prefix}accuracy.png", "ibm": f"{prefix}ibm.png", "wav": f"{prefix}recoveredwav.png"}


def _clustering_figures(prefix: str, underscored: str) -> dict:
    return {"embeddings": f"{prefix}_embeddings.png", "separation": f"{prefix}_separation.png",
            "loss": f"{prefix}loss.png", "ibm": f"{underscored}_ibm.png", "wav": f"{underscored}_recoveredwav.png",
            "accuracy": f"{prefix}accuracy.png"}


_ALL = (
    Experiment("feedforward", "Feedforward mask network", "feedforward", "mse", "mask",
               "Feedforward/train_net.py", _mask_figures("feedforward"), "Feed_forward.png"),
    Experiment("rnn", "LSTM mask network", "lstm", "mse", "mask", "RNN/train_rnn.py", _mask_figures("rnn"),
               "RNN.png"),
    Experiment("bidirnn", "BLSTM mask network", "blstm", "mse", "mask",
               "Bi-Directional-RNN/train_bi_directional_RNN.py", _mask_figures("bidirnn"),
               "Bi-directional-RNN.png", variants={"bidirnn-pit": {"loss": "pit"}}),
    Experiment("bidiloss", "BLSTM + deep-clustering loss, PCA-sign readout", "dc", "dc", "pca_sign",
               "Bi-Directional-RNN-with-loss-function/train_bi_with_loss_function.py", _mask_figures("bidiloss"),
               "Bi-directional-RNN-with-loss-function.png", budget="dc"),
    Experiment("deepclustering", "Deep clustering (k-means)", "dc", "dc", "kmeans",
               "Deep-clustering/train_deep_clustering.py",
               _clustering_figures("deepclustering", "deep_clustering"), "deep_clustering.png", budget="dc"),
    Experiment("meanshift", "Deep clustering (mean-shift, counts speakers)", "dc", "dc", "meanshift",
               "Deep-clustering-with-mean-shift-clustering/train_deep_clustering.py",
               _clustering_figures("meanshift", "mean_shift"), budget="dc"),
)

EXPERIMENTS: Mapping[str, Experiment] = MappingProxyType({e.name: e for e in _ALL})  # in study order
ORACLE_ROWS = ("oracle ibm", "oracle irm", "oracle mixture")


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; a ``ValueError`` lists the known names."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def comparison_rows() -> dict[str, tuple[Experiment, Mapping]]:
    """Every row of the comparison in study order: name -> (experiment, settings it changes)."""
    rows: dict[str, tuple[Experiment, Mapping]] = {}
    for experiment in EXPERIMENTS.values():
        rows[experiment.name] = (experiment, {})
        for variant, changes in experiment.variants.items():
            rows[variant] = (experiment, changes)
    return rows


def study_order(names) -> list[str]:
    """``names`` sorted as the study runs: experiments and variants first, then unknown names, oracles last."""
    order = list(comparison_rows()) + list(ORACLE_ROWS)
    rank = {name: index for index, name in enumerate(order)}
    return sorted(names, key=lambda name: (name.startswith("oracle"), rank.get(name, len(order)), name))
