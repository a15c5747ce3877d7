"""One frozen experiment configuration, saved as ``config.json`` beside every checkpoint."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from speechsep.io import atomic_write_json

MODEL_KINDS = ("feedforward", "lstm", "blstm", "dc")
LOSSES = ("mse", "pit", "dc")
EMBEDDING_READOUTS = ("kmeans", "meanshift", "pca_sign")  # the choices of every --clusterer option
READOUTS = ("mask",) + EMBEDDING_READOUTS


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines a training run.

    ``model`` picks the registry entry (:mod:`speechsep.models`), ``loss`` the
    objective (``mse``: MSE against the source-1 IBM; ``pit``: utterance-level
    permutation-invariant MSE; ``dc``: the deep-clustering loss) and
    ``readout`` how masks are read at test time (``mask``: the network's mask;
    ``pca_sign``: sign of the embeddings' first principal component;
    ``kmeans``/``meanshift``: clustering of the embeddings of active bins).
    ``batch_size`` is the GLOBAL batch size (split across replicas by tf.distribute).
    """

    experiment: str = "deepclustering"
    model: str = "dc"
    loss: str = "dc"
    readout: str = "kmeans"
    num_speakers: int = 2
    hidden_units: int = 300
    num_layers: int = 2
    embedding_dim: int = 40
    dropout: float = 0.0
    batch_size: int = 32
    chunk_frames: int = 100
    learning_rate: float = 1e-3
    clip_norm: float = 5.0
    epochs: int = 10
    steps_per_epoch: int | None = None
    minutes: float | None = None
    seed: int = 0
    dynamic_mixing: bool = False
    strategy: str = "default"
    meanshift_bandwidth: float | None = None

    def __post_init__(self):
        for field, allowed in (("model", MODEL_KINDS), ("loss", LOSSES), ("readout", READOUTS)):
            if getattr(self, field) not in allowed:
                raise ValueError(f"config.{field} must be one of {allowed}, got {getattr(self, field)!r}")
        if (self.loss == "dc") != (self.model == "dc"):
            raise ValueError(f"loss {self.loss!r} does not fit model {self.model!r}: "
                             "the 'dc' model (embeddings) trains with the 'dc' loss, mask models with 'mse'/'pit'")
        if self.model != "dc" and self.num_speakers != 2:
            raise ValueError("mask networks predict one mask and support exactly 2 speakers; use the dc model")
        if self.model != "dc" and self.readout != "mask":
            raise ValueError(f"mask model {self.model!r} needs readout 'mask', got {self.readout!r}")
        if self.model == "dc" and self.readout == "mask":
            raise ValueError("the dc model outputs embeddings: use readout pca_sign, kmeans or meanshift")
        for field in ("hidden_units", "num_layers", "embedding_dim", "batch_size", "chunk_frames", "epochs"):
            if getattr(self, field) < 1:
                raise ValueError(f"config.{field} must be >= 1, got {getattr(self, field)}")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path) -> Path:
        path = Path(path)
        atomic_write_json(path, self.to_json())
        return path

    @classmethod
    def load(cls, path) -> "ExperimentConfig":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: cannot read the run config ({error})") from None
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{path}: unknown config fields {sorted(unknown)} (written by a newer speechsep?)")
        return cls(**data)

    def replace(self, **changes) -> "ExperimentConfig":
        return dataclasses.replace(self, **changes)
