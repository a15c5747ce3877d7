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
    ``candidates`` does the same for the recipe candidates: rows measured by
    ``python -m benchmarks quality --candidates`` beside the study's own
    rows, but never part of the study's figure and table.
    ``defaults`` are this experiment's own defaults (:class:`~speechsep.config.ExperimentConfig`
    field names) over the config's field defaults: the recipe choices measured
    to pay (the README's Results section). This registry is their one home:
    ``ExperimentConfig.for_experiment(name)`` applies them, the training
    scripts' options default to that config, and a script's ``CONFIG`` shows
    the values (a test checks that a script with no flags trains exactly
    ``for_experiment(name)``). Variants and candidates are written in field
    names too (plus ``train_level_range``, the ``--level-range`` of the
    training mixtures, which is no config field).
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
    candidates: Mapping[str, Mapping] = dataclasses.field(default_factory=dict)
    defaults: Mapping[str, object] = dataclasses.field(default_factory=dict)

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


# Candidates for the deep-clustering recipe (settings are ExperimentConfig field names): each changes
# one thing of the study's network or its training, to be measured under the same 30-minute budget.
_DC_CANDIDATES = {
    "dc-unwhitened": {"dc_loss": "dc"},  # the paper's objective (the default became the whitened one)
    "dc-binary": {"soft_mask_beta": None},  # the paper's binary masks (the default became soft masks)
    "dc-chimera": {"mask_head": True, "readout": "mask_head"},
    "dc-chimera-kmeans": {"mask_head": True},
    "dc-chimera-msa": {"mask_head": True, "mask_loss": "msa", "readout": "mask_head"},
    "dc-cosine": {"lr_schedule": "cosine", "warmup_steps": 50},
    "dc-lr2e-3": {"learning_rate": 2e-3, "warmup_steps": 50},
    "dc-curriculum": {"long_chunk_frames": 400, "curriculum_epoch": 3},
    # test mixtures last up to 5.5 s (TIMIT sample) or 17 s (LibriSpeech sample): train on 400-frame (3.2 s)
    # chunks after one epoch of 100-frame ones, so the BLSTM hears contexts closer to those it is tested on
    "dc-long400": {"long_chunk_frames": 400, "curriculum_epoch": 1},
    "dc-d20": {"embedding_dim": 20},
    "dc-4x600": {"hidden_units": 600, "num_layers": 4},
    "dc-batch16": {"batch_size": 16},
    "dc-clip1": {"clip_norm": 1.0},
    "dc-level10": {"train_level_range": (0.0, 10.0)},
    # Several short-budget changes at once: a cheaper embedding layer, a higher peak rate, and a decay to 0.
    "dc-d20-lr2e-3-cosine": {"embedding_dim": 20, "learning_rate": 2e-3, "warmup_steps": 50,
                             "lr_schedule": "cosine"},
}

# The recipe choices that paid (README, "Results"): the whitened DC objective (Wang et al., ICASSP 2018), and
# soft masks from the k-means/mean-shift centres, beta chosen on validation mixtures by `bench softmask`.
_DC_RECIPE = {"dc_loss": "dc_whitened", "soft_mask_beta": 5.0}

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
               _clustering_figures("deepclustering", "deep_clustering"), "deep_clustering.png", budget="dc",
               candidates=_DC_CANDIDATES, defaults=_DC_RECIPE),
    Experiment("meanshift", "Deep clustering (mean-shift, counts speakers)", "dc", "dc", "meanshift",
               "Deep-clustering-with-mean-shift-clustering/train_deep_clustering.py",
               _clustering_figures("meanshift", "mean_shift"), budget="dc", defaults=_DC_RECIPE),
)

EXPERIMENTS: Mapping[str, Experiment] = MappingProxyType({e.name: e for e in _ALL})  # in study order
ORACLE_ROWS = ("oracle ibm", "oracle irm", "oracle mixture")


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; a ``ValueError`` lists the known names."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def comparison_rows(candidates: bool = False) -> dict[str, tuple[Experiment, Mapping]]:
    """Every row of the comparison in study order: name -> (experiment, settings it changes).

    With ``candidates``, each experiment's recipe candidates follow its variants.
    """
    rows: dict[str, tuple[Experiment, Mapping]] = {}
    for experiment in EXPERIMENTS.values():
        rows[experiment.name] = (experiment, {})
        for variant, changes in experiment.variants.items():
            rows[variant] = (experiment, changes)
        for candidate, changes in (experiment.candidates.items() if candidates else ()):
            rows[candidate] = (experiment, changes)
    return rows


def is_candidate(name: str) -> bool:
    """Whether ``name`` is a recipe-candidate row (not one of the study's rows)."""
    return any(name in experiment.candidates for experiment in EXPERIMENTS.values())


def _natural(name: str) -> tuple:
    """A sort key that reads digit groups as numbers: "(4,235 steps)" before "(11,401 steps)"."""
    import re

    return tuple((0, int(part.replace(",", ""))) if index % 2 else (1, part)
                 for index, part in enumerate(re.split(r"(\d[\d,]*)", name)) if part)


def study_order(names) -> list[str]:
    """``names`` sorted as the study runs: experiments and variants first, then unknown names (numbers in
    them read as numbers), oracles last."""
    order = list(comparison_rows(candidates=True)) + list(ORACLE_ROWS)
    rank = {name: index for index, name in enumerate(order)}
    return sorted(names, key=lambda name: (name.startswith("oracle"), rank.get(name, len(order)), _natural(name)))
