"""One frozen experiment configuration, saved as ``config.json`` beside every checkpoint."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from speechsep.experiments import get_experiment
from speechsep.io import atomic_write_json

MODEL_KINDS = ("feedforward", "lstm", "blstm", "dc")
LOSSES = ("mse", "pit", "dc")
EMBEDDING_READOUTS = ("kmeans", "meanshift", "pca_sign")
DC_READOUTS = EMBEDDING_READOUTS + ("mask_head", "blend")  # the choices of every --readout (alias --clusterer) option
READOUTS = ("mask",) + DC_READOUTS
DC_LOSSES = ("dc", "dc_whitened")  # the embedding objective of the dc model
# the mask-inference objective of the Chimera++ head (= the pipeline's mask targets): magnitude or truncated
# phase-sensitive spectrum approximation, or the SI-SDR of the masked mixture after the inverse STFT
MASK_LOSSES = ("msa", "tpsa", "sisdr")
LR_SCHEDULES = ("constant", "cosine")
STRATEGIES = ("default", "mirrored", "multiworker", "cpu")  # tf.distribute: speechsep/training/distribute.py
RECURRENT = ("fast", "keras")  # speechsep/nn/recurrent.py layers, or stock keras.layers.LSTM
PRECISIONS = ("float32", "bfloat16")  # mixed precision of speechsep/nn/recurrent.py
# How a model trained on a varying number of talkers counts them at test time: the names of
# speechsep.separation.counting.COUNTERS (a test checks that the two lists agree)
EMBEDDING_COUNT_METHODS = ("meanshift", "eigenvalues", "participation", "eigengap", "silhouette")
# counters that read a Chimera++ network's other heads: its count head's softmax, or its mask head's masses
HEAD_COUNT_METHODS = ("head", "mask_energy")
COUNT_METHODS = EMBEDDING_COUNT_METHODS + HEAD_COUNT_METHODS
MAX_TALKERS = 6  # the largest number of talkers per mixture a talker set may hold


# What a config.json written before a field existed meant: checkpoints from before the fast
# recurrent layers hold stock Keras LSTMs.
LEGACY_DEFAULTS = {"recurrent": "keras"}


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines a training run.

    Build one with :meth:`for_experiment`: the experiment's model, loss and
    readout, and its own defaults (:attr:`speechsep.experiments.Experiment.defaults`,
    the recipe choices measured to pay) over the field defaults below. That
    is what the experiment's training script trains with no flags (a test
    checks it); the scripts' parsers derive every default from it.
    ``ExperimentConfig()`` alone is the field defaults: the original
    study's deep-clustering network, as ``config.json`` files written before a
    field existed meant it.

    ``model`` picks the registry entry (:mod:`speechsep.nn.models`), ``loss`` the
    objective (``mse``: MSE against the source-1 IBM; ``pit``: utterance-level
    permutation-invariant MSE; ``dc``: the deep-clustering loss) and
    ``readout`` how masks are read at test time (``mask``: the network's mask;
    ``pca_sign``: sign of the embeddings' first principal component;
    ``kmeans``/``meanshift``: clustering of the embeddings of active bins;
    ``mask_head``: the masks of the Chimera++ mask head; ``blend``: the mean of
    the k-means and the mask head's masks).
    ``batch_size`` is the GLOBAL batch size (split across replicas by tf.distribute).

    Throughput: ``recurrent`` picks the LSTM implementation (``fast``: the
    layers of :mod:`speechsep.nn.recurrent`; ``keras``: stock
    ``keras.layers.LSTM``; same weights layout, checkpoints convert),
    ``jit_compile`` compiles the training step with XLA, and ``precision``
    ``bfloat16`` runs the large matmuls in bfloat16 (mixed precision; falls
    back to float32 with a warning on a CPU without native bfloat16).

    The deep-clustering recipe (every field default keeps the original study;
    the deep-clustering and mean-shift experiments default to ``dc_whitened`` and
    ``soft_mask_beta`` 5, :mod:`speechsep.experiments`):

    * ``dc_loss``: ``dc`` (Hershey et al. 2016) or ``dc_whitened`` (the
      whitened k-means objective of Wang, Le Roux, Hershey, ICASSP 2018);
    * ``mask_head``: add a Chimera++ mask-inference head (softmax over the
      C = ``max_talkers`` sources; a talker absent from a mixture is a
      silent target) trained with ``mask_loss`` (``msa``: magnitude spectrum
      approximation; ``tpsa``: truncated phase-sensitive approximation;
      ``sisdr``: the thresholded SI-SDR of each masked mixture after the
      inverse STFT, :func:`speechsep.nn.losses.waveform_mask_loss`)
      under utterance-level PIT, total loss
      ``(1 − mask_loss_weight)·L_DC + mask_loss_weight·L_MI``;
    * ``count_head`` (a model trained on several talker counts): a head on
      the BLSTM features pooled over time (mean and max) with a softmax over
      1 .. ``max_talkers`` talkers, trained with cross-entropy weighted by
      ``count_loss_weight`` (added to the loss above);
    * ``freeze_stack``: train only the heads a run adds (the mask and count
      heads), with the BLSTM stack and the embedding layer frozen: the
      warm-up of heads added to a trained embedding network (``--init``);
    * ``soft_mask_beta``: k-means/mean-shift readouts give soft masks
      ``p(c|v) ∝ exp(β·vᵀμ_c)`` instead of binary ones (``None``: binary);
    * ``lr_schedule`` (``constant`` or ``cosine`` decay to 0 over the run:
      the epochs, or the ``minutes`` budget when that ends first) after
      ``warmup_steps`` of linear warm-up;
    * ``long_chunk_frames``/``curriculum_epoch``: from that (0-based) epoch
      on, train on chunks of ``long_chunk_frames`` frames instead of
      ``chunk_frames``, with as many frames per batch (``long_batch_size``);
      validation keeps ``chunk_frames``.

    Counting talkers (dc model only): ``talkers`` is the set of talker
    counts the training mixtures draw from (e.g. ``(1, 2, 3)``, weighted by
    ``talker_weights``; ``None``: always ``num_speakers``). A model trained
    on several counts estimates the count at test time with ``count_method``
    (:data:`speechsep.separation.counting.COUNTERS`) at its tuned setting
    ``count_threshold`` (the eigenvalue share, the directions per further
    talker of the participation ratio, the least silhouette or the mean-shift
    bandwidth, :data:`speechsep.separation.counting.THRESHOLDS`; ``None``: the
    method's own default).
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
    # the deep-clustering recipe (defaults: the original study); see the class docstring
    dc_loss: str = "dc"
    mask_head: bool = False
    mask_loss: str = "tpsa"
    mask_loss_weight: float = 0.5
    count_head: bool = False
    count_loss_weight: float = 0.1
    freeze_stack: bool = False
    soft_mask_beta: float | None = None
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    long_chunk_frames: int | None = None
    curriculum_epoch: int | None = None
    # throughput (speechsep/nn/recurrent.py); none of them changes what the model computes beyond rounding
    recurrent: str = "fast"
    jit_compile: bool = True
    precision: str = "float32"
    # counting talkers (see the class docstring); None: the fixed num_speakers of the study
    talkers: tuple[int, ...] | None = None
    talker_weights: tuple[float, ...] | None = None
    count_method: str = "meanshift"
    count_threshold: float | None = None

    def __post_init__(self):
        self._normalise_talkers()
        for field, allowed in (("model", MODEL_KINDS), ("loss", LOSSES), ("readout", READOUTS),
                               ("recurrent", RECURRENT), ("precision", PRECISIONS)):
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
        self._check_recipe()

    def _check_recipe(self):
        """Validate the deep-clustering recipe fields (``ValueError`` naming the field)."""
        for field, allowed in (("dc_loss", DC_LOSSES), ("mask_loss", MASK_LOSSES), ("lr_schedule", LR_SCHEDULES)):
            if getattr(self, field) not in allowed:
                raise ValueError(f"config.{field} must be one of {allowed}, got {getattr(self, field)!r}")
        if self.model != "dc" and (self.dc_loss != "dc" or self.mask_head or self.soft_mask_beta is not None):
            raise ValueError("config.dc_loss, config.mask_head and config.soft_mask_beta apply to the dc model only")
        if self.readout in ("mask_head", "blend") and not self.mask_head:
            raise ValueError(f"config.readout {self.readout!r} needs config.mask_head = True (a Chimera++ mask head)")
        if self.model != "dc" and (self.count_head or self.freeze_stack):
            raise ValueError("config.count_head and config.freeze_stack apply to the dc model only")
        if self.count_head and not self.counts_talkers:
            raise ValueError("config.count_head needs a varying number of talkers (config.talkers, e.g. 1-3)")
        if self.freeze_stack and not (self.mask_head or self.count_head):
            raise ValueError("config.freeze_stack trains only the added heads: it needs config.mask_head or "
                             "config.count_head")
        if self.count_method == "head" and not self.count_head:
            raise ValueError("config.count_method 'head' needs config.count_head = True (a count head)")
        if self.count_method == "mask_energy" and not self.mask_head:
            raise ValueError("config.count_method 'mask_energy' needs config.mask_head = True (a mask head)")
        if not self.count_loss_weight > 0:
            raise ValueError(f"config.count_loss_weight must be > 0, got {self.count_loss_weight}")
        if not 0.0 < self.mask_loss_weight < 1.0:
            raise ValueError(f"config.mask_loss_weight must be in (0, 1), got {self.mask_loss_weight}")
        if self.soft_mask_beta is not None and not self.soft_mask_beta > 0:
            raise ValueError(f"config.soft_mask_beta must be > 0 (or None for binary masks), got {self.soft_mask_beta}")
        if self.warmup_steps < 0:
            raise ValueError(f"config.warmup_steps must be >= 0, got {self.warmup_steps}")
        if (self.long_chunk_frames is None) != (self.curriculum_epoch is None):
            raise ValueError("config.long_chunk_frames and config.curriculum_epoch go together (both or neither), "
                             f"got {self.long_chunk_frames} and {self.curriculum_epoch}")
        if self.long_chunk_frames is not None and self.long_chunk_frames <= self.chunk_frames:
            raise ValueError(f"config.long_chunk_frames must exceed chunk_frames ({self.chunk_frames}), "
                             f"got {self.long_chunk_frames}")
        if self.curriculum_epoch is not None and self.curriculum_epoch < 0:
            raise ValueError(f"config.curriculum_epoch must be >= 0, got {self.curriculum_epoch}")

    def _normalise_talkers(self):
        """Tuples for ``talkers``/``talker_weights`` (config.json holds lists), then check them (``ValueError``)."""
        if self.count_method not in COUNT_METHODS:
            raise ValueError(f"config.count_method must be one of {COUNT_METHODS}, got {self.count_method!r}")
        if self.count_threshold is not None and not self.count_threshold > 0:
            raise ValueError(f"config.count_threshold must be > 0 (or None), got {self.count_threshold!r}")
        if self.talkers is None:
            if self.talker_weights is not None:
                raise ValueError("config.talker_weights needs config.talkers (the talker counts they weight)")
            return
        talkers = parse_talkers(self.talkers, "config.talkers")
        if self.num_speakers not in talkers:
            raise ValueError(f"config.num_speakers ({self.num_speakers}, the talkers of the run's own test "
                             f"mixtures) must be one of config.talkers {format_talkers(talkers)}")
        if talkers == (self.num_speakers,):  # the fixed count: the same config as without the field
            object.__setattr__(self, "talkers", None)
            object.__setattr__(self, "talker_weights", None)
            return
        object.__setattr__(self, "talkers", talkers)
        if len(talkers) > 1 and self.model != "dc":
            raise ValueError(f"config.talkers {format_talkers(talkers)}: only the dc model trains on a varying "
                             "number of talkers (mask networks predict one mask)")
        if self.talker_weights is not None:
            weights = tuple(float(w) for w in self.talker_weights)
            if len(weights) != len(talkers) or not all(w >= 0 for w in weights) or not sum(weights) > 0:
                raise ValueError(f"config.talker_weights must be {len(talkers)} non-negative numbers, not all 0, "
                                 f"one per talker count of {format_talkers(talkers)}; got {list(weights)}")
            object.__setattr__(self, "talker_weights", weights)

    @property
    def talker_set(self) -> tuple[int, ...]:
        """The talker counts of the training mixtures: ``talkers``, or ``(num_speakers,)``."""
        return self.talkers if self.talkers is not None else (self.num_speakers,)

    @property
    def max_talkers(self) -> int:
        """Kmax: the number of IBM channels of every item (items with fewer talkers are zero-padded)."""
        return max(self.talker_set)

    @property
    def counts_talkers(self) -> bool:
        """Whether the model was trained on more than one talker count (and so counts them at test time)."""
        return len(self.talker_set) > 1

    @property
    def long_batch_size(self) -> int | None:
        """Chunks per batch in the long-chunk stage: as many frames per batch as ``batch_size`` short chunks."""
        if self.long_chunk_frames is None:
            return None
        return max(1, self.batch_size * self.chunk_frames // self.long_chunk_frames)

    @property
    def mask_target(self) -> str | None:
        """What the pipeline must add for the mask head (``mask_loss``), or None without one."""
        return self.mask_loss if self.mask_head else None

    def trains_long_chunks(self, epoch: int) -> bool:
        """Whether (0-based) ``epoch`` trains on ``long_chunk_frames`` chunks: the chunk curriculum's one rule."""
        return self.long_chunk_frames is not None and epoch >= self.curriculum_epoch

    @classmethod
    def for_experiment(cls, name: str, **changes) -> "ExperimentConfig":
        """The config experiment ``name`` trains by default, with ``changes`` (field names) applied.

        = the field defaults, then the experiment's ``model``/``loss``/``readout``
        and its :attr:`~speechsep.experiments.Experiment.defaults`
        (:mod:`speechsep.experiments`, the one home of per-experiment defaults),
        then ``changes``. An unknown name or field is a ``ValueError``.
        """
        experiment = get_experiment(name)
        unknown = sorted(set(changes) - {field.name for field in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}")
        return cls(**{"experiment": experiment.name, "model": experiment.model, "loss": experiment.loss,
                      "readout": experiment.readout, **experiment.defaults, **changes})

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
        for field, value in LEGACY_DEFAULTS.items():  # files written before the field existed
            data.setdefault(field, value)
        return cls(**data)

    def replace(self, **changes) -> "ExperimentConfig":
        return dataclasses.replace(self, **changes)


def parse_talkers(value, what: str = "--talkers") -> tuple[int, ...]:
    """A talker set from ``"1-3"``, ``"1,2,3"``, ``["1", "2", "3"]``, ``["1-2", "4"]`` or ``(1, 2, 3)``.

    Returns the sorted, distinct counts, each in ``1..MAX_TALKERS``; anything
    else is a ``ValueError`` naming ``what``.
    """
    items = [value] if isinstance(value, (str, int)) else list(value)
    counts = set()
    try:
        for item in items:
            for part in str(item).replace(",", " ").split():
                low, _, high = part.partition("-")
                low, high = int(low), int(high or low)
                if low > high:
                    raise ValueError
                counts.update(range(low, high + 1))
    except ValueError:
        raise ValueError(f"{what}: expected talker counts such as 1-3 or 1 2 3, got {value!r}") from None
    if not counts or min(counts) < 1 or max(counts) > MAX_TALKERS:
        raise ValueError(f"{what}: talker counts must be between 1 and {MAX_TALKERS}, got {value!r}")
    return tuple(sorted(counts))


def format_talkers(talkers) -> str:
    """``(1, 2, 3)`` -> ``"{1, 2, 3}"``: how messages name a talker set."""
    return "{" + ", ".join(str(k) for k in talkers) + "}"
