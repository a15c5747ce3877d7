"""One model factory with a registry: ``feedforward``, ``lstm``, ``blstm``, ``dc``.

Every model maps normalised log-magnitude features [B, T, 129] (T may be any
length at inference) to

* mask models (``feedforward``, ``lstm``, ``blstm``): a sigmoid mask for
  source 1, [B, T, 129];
* ``dc``: unit-norm embeddings [B, T, 129, D] (Hershey et al., ICASSP 2016:
  BLSTM, a tanh dense layer of 129·D units, then per-bin L2 normalisation);
  with ``config.mask_head`` (Chimera++) and/or ``config.count_head`` a dict
  ``{"embedding": [B, T, 129, D], "mask": [B, T, 129, C], "count": [B, C]}``
  holding the heads it has (C = ``config.max_talkers``; ``count[:, k - 1]``
  is the probability of k talkers).

Defaults follow the original experiments: 2 layers of 300 units.
"""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

from speechsep.config import ExperimentConfig
from speechsep.nn.layers import TimePooling, UnitNormalize
from speechsep.nn.recurrent import FastBidirectionalLSTM, FastLSTM, effective_precision
from speechsep.signal import N_BINS

MODELS: dict[str, Callable[[ExperimentConfig], keras.Model]] = {}


def register(name: str):
    def decorator(builder):
        MODELS[name] = builder
        return builder

    return decorator


def _features() -> keras.KerasTensor:
    return keras.Input(shape=(None, N_BINS), name="features")  # [B, T, F]


def compute_dtype(config: ExperimentConfig) -> str:
    """Keras dtype policy of the recurrent and large dense layers: ``mixed_bfloat16`` or ``float32``."""
    return "mixed_bfloat16" if effective_precision(config.precision) == "bfloat16" else "float32"


def _recurrent_stack(x, config: ExperimentConfig, bidirectional: bool):
    dtype = compute_dtype(config)
    for layer in range(config.num_layers):
        if config.recurrent == "fast":  # same weights layout as the stock layers (speechsep/nn/recurrent.py)
            fast = FastBidirectionalLSTM if bidirectional else FastLSTM
            name = f"blstm_{layer + 1}" if bidirectional else f"lstm_{layer + 1}"
            x = fast(config.hidden_units, dropout=config.dropout, dtype=dtype, name=name)(x)
            continue
        lstm = keras.layers.LSTM(config.hidden_units, return_sequences=True, dropout=config.dropout,
                                 name=f"lstm_{layer + 1}", dtype=dtype)
        x = keras.layers.Bidirectional(lstm, name=f"blstm_{layer + 1}", dtype=dtype)(x) if bidirectional else lstm(x)
    return x  # [B, T, H] or [B, T, 2H]


def _mask_head(x):
    return keras.layers.Dense(N_BINS, activation="sigmoid", name="mask")(x)  # [B, T, F]


@register("feedforward")
def build_feedforward(config: ExperimentConfig) -> keras.Model:
    """Per-frame network 129 -> 300 -> 300 -> 129 (sigmoid)."""
    features = _features()
    x = features
    for layer in range(config.num_layers):
        x = keras.layers.Dense(config.hidden_units, activation="relu", name=f"dense_{layer + 1}")(x)  # [B, T, H]
        if config.dropout:
            x = keras.layers.Dropout(config.dropout)(x)
    return keras.Model(features, _mask_head(x), name="feedforward")


@register("lstm")
def build_lstm(config: ExperimentConfig) -> keras.Model:
    features = _features()
    return keras.Model(features, _mask_head(_recurrent_stack(features, config, False)), name="lstm")


@register("blstm")
def build_blstm(config: ExperimentConfig) -> keras.Model:
    features = _features()
    return keras.Model(features, _mask_head(_recurrent_stack(features, config, True)), name="blstm")


@register("dc")
def build_deep_clustering(config: ExperimentConfig) -> keras.Model:
    """BLSTM embedding network: [B, T, F] -> unit-norm embeddings [B, T, F, D].

    With ``config.mask_head`` (Chimera++) or ``config.count_head`` the outputs
    are a dict ``{"embedding": [B, T, F, D], "mask": [B, T, F, C], "count": [B, C]}``
    of the heads it has, with C = ``config.max_talkers``: a dense head on the
    same BLSTM gives C masks per bin (softmax over the sources), and the count
    head a softmax over 1 .. C talkers from the BLSTM features pooled over
    time. The shared layers (``blstm_*``, ``embedding``) keep the names and
    shapes of the plain network, so its weights load into them by name
    (:func:`load_shared_weights`).
    """
    features = _features()
    hidden = _recurrent_stack(features, config, True)  # [B, T, 2H]
    x = keras.layers.Dense(N_BINS * config.embedding_dim, activation="tanh", name="embedding",
                           dtype=compute_dtype(config))(hidden)  # [B, T, F*D]
    x = keras.layers.Reshape((-1, N_BINS, config.embedding_dim), name="per_bin")(x)  # [B, T, F, D]
    embeddings = UnitNormalize(name="unit_norm", dtype="float32")(x)  # [B, T, F, D] float32
    if not (config.mask_head or config.count_head):
        return keras.Model(features, embeddings, name="deep_clustering")
    outputs = {"embedding": embeddings}
    if config.mask_head:
        outputs["mask"] = _source_masks(hidden, config.max_talkers)
    if config.count_head:
        outputs["count"] = _talker_count(hidden, config.max_talkers)
    model = keras.Model(features, outputs, name="chimera")
    if config.freeze_stack:
        for layer in model.layers:
            if layer.name in SHARED_LAYERS or layer.name.startswith("blstm_"):
                layer.trainable = False
    return model


SHARED_LAYERS = ("embedding",)
"""The dense layers of the deep-clustering network besides its ``blstm_*`` stack (frozen by ``freeze_stack``)."""
HEAD_LAYERS = {"mask": ("mask_logits",), "count": ("count_hidden", "count_logits")}
"""The weighted layers of each added head, by output name."""


def _talker_count(hidden, max_talkers: int, units: int = 64):
    """Count head: BLSTM features [B, T, H'] -> mean and max over time [B, 2H'] -> ReLU [B, 64] -> softmax [B, C]."""
    pooled = TimePooling(name="time_pooling")(hidden)  # [B, 2H']
    x = keras.layers.Dense(units, activation="relu", name="count_hidden")(pooled)  # [B, 64]
    x = keras.layers.Dense(max_talkers, name="count_logits")(x)  # [B, C]
    return keras.layers.Softmax(axis=-1, name="count", dtype="float32")(x)  # [B, C]


def _source_masks(hidden, num_sources: int):
    """Chimera++ mask-inference head: [B, T, H'] -> masks [B, T, F, C] (softmax over the C sources)."""
    x = keras.layers.Dense(N_BINS * num_sources, name="mask_logits")(hidden)  # [B, T, F*C]
    x = keras.layers.Reshape((-1, N_BINS, num_sources), name="mask_per_bin")(x)  # [B, T, F, C]
    return keras.layers.Softmax(axis=-1, name="mask", dtype="float32")(x)  # [B, T, F, C]


def load_shared_weights(model: keras.Model, source: keras.Model) -> dict:
    """Copy the weights of every layer of ``source`` into the layer of ``model`` with the same name.

    Returns ``{"loaded": [names], "fresh": [names]}``: the weighted layers of
    ``model`` that took ``source``'s weights, and those left freshly
    initialised (say, the heads a Chimera++ network adds to a deep-clustering
    one). A layer of both whose shapes differ is a ``ValueError`` naming it.
    """
    donors = {layer.name: layer for layer in source.layers if layer.weights}
    loaded, fresh = [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        donor = donors.get(layer.name)
        if donor is None:
            fresh.append(layer.name)
            continue
        weights = donor.get_weights()
        if [w.shape for w in weights] != [tuple(w.shape) for w in layer.weights]:
            raise ValueError(f"layer {layer.name!r}: its weights {[w.shape for w in weights]} do not fit "
                             f"{[tuple(w.shape) for w in layer.weights]}")
        layer.set_weights(weights)
        loaded.append(layer.name)
    return {"loaded": loaded, "fresh": fresh}


def build_model(config: ExperimentConfig) -> keras.Model:
    """Build the registered model named ``config.model``."""
    if config.model not in MODELS:
        raise ValueError(f"unknown model {config.model!r}; registered: {sorted(MODELS)}")
    return MODELS[config.model](config)


def padded_length(n_frames: int, steps_per_octave: int = 4, minimum: int = 16) -> int:
    """The bucket a length of ``n_frames`` is padded to for the XLA forward pass (< 25% or 16 frames longer).

    Buckets are multiples of ``2**floor(log2 T) / steps_per_octave``: 4 per
    octave (…, 256, 320, 384, 448, 512, 640, …), so an evaluation over
    mixtures of 2 to 6 s compiles about 8 shapes.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    step = max(minimum, (1 << (int(n_frames).bit_length() - 1)) // steps_per_octave)
    return -(-int(n_frames) // step) * step


def inference_function(model: keras.Model, jit_compile: bool = True):
    """A compiled forward pass for any batch size and length: features [B, T, F] -> model output.

    The output is a NumPy array [B, T, ...], or for a Chimera++ model
    (``config.mask_head``, ``config.count_head``) the dict of arrays
    ``{"embedding", "mask", "count"}`` (``count`` [B, C] has no time axis).
    The compiled pass also takes a list of items of their own lengths
    ``[T_i, F]`` and returns a list of their outputs ``[T_i, ...]``, each as
    that item alone would give it (one call for several short files);
    :func:`speechsep.separation.separator.split_batch` splits either per item.

    Eager Keras calls run a recurrent layer step by step in Python (seconds per
    utterance); this traces one graph with a shape-polymorphic signature. With
    ``jit_compile`` (a run's ``config.jit_compile``) the
    graph is XLA-compiled; XLA compiles once per input shape, so the time axis
    is zero-padded to :func:`padded_length` and a Keras mask [B, T'] marks the
    valid frames (the recurrent layers' reversed directions start at the last
    valid frame, :mod:`speechsep.nn.recurrent`), and the output is cut back to T.
    """
    import warnings

    import numpy as np

    if not jit_compile:
        graph = tf.function(lambda features: model(features, training=False),
                            input_signature=[tf.TensorSpec((None, None, N_BINS), tf.float32)])
        return lambda features: tf.nest.map_structure(np.asarray, graph(features))
    signature = [tf.TensorSpec((None, None, N_BINS), tf.float32), tf.TensorSpec((None, None), tf.bool)]
    graph = tf.function(lambda features, mask: model(features, training=False, mask=mask),
                        input_signature=signature, jit_compile=True)

    def forward(features):
        rows = features if isinstance(features, list) else None  # items of their own lengths [T_i, F]
        features = rows if rows is not None else np.asarray(features, np.float32)  # [B, T, F]
        lengths = np.array([len(item) for item in features])  # [B]
        length = padded_length(int(lengths.max()))
        padded = np.zeros((len(lengths), length, N_BINS), np.float32)  # [B, T', F]
        for row, item in enumerate(features):
            padded[row, :len(item)] = item
        mask = np.arange(length)[None, :] < lengths[:, None]  # [B, T']
        with warnings.catch_warnings():  # layers after the LSTMs drop the mask, and Keras says so when tracing
            warnings.filterwarnings("ignore", message=".*does not support masking.*", category=UserWarning)
            outputs = tf.nest.map_structure(np.asarray, graph(padded, mask))
        if rows is None:  # one length: the batch cut back to it
            return tf.nest.map_structure(lambda output: output[:, :lengths[0]] if output.ndim > 2 else output,
                                         outputs)
        return [tf.nest.map_structure(lambda output: output[row, :frames] if output.ndim > 2 else output[row],
                                      outputs) for row, frames in enumerate(lengths)]

    return forward


def recurrent_of(model: keras.Model) -> str | None:
    """The recurrent implementation a model was built with (``fast`` or ``keras``), None without LSTM layers."""
    for layer in model.layers:
        if isinstance(layer, (FastLSTM, FastBidirectionalLSTM)):
            return "fast"
        if isinstance(layer, (keras.layers.LSTM, keras.layers.Bidirectional)):
            return "keras"
    return None


def run_checkpoint(run_dir):
    """The checkpoint a training run folder is used through: its ``best.keras``, else its ``last.keras``
    (ValueError if neither). A run continued or exported from its last weights is not what this loads."""
    from pathlib import Path

    run_dir = Path(run_dir)
    for name in ("best.keras", "last.keras"):
        if (run_dir / name).is_file():
            return run_dir / name
    raise ValueError(f"{run_dir}: no best.keras or last.keras checkpoint")


def load_run_checkpoint(run_dir) -> keras.Model:
    """The network of a training run folder, from :func:`run_checkpoint`."""
    return load_model(run_checkpoint(run_dir))


def load_model(path, recurrent: str | None = None) -> keras.Model:
    """Load a saved ``.keras`` model with the speechsep custom objects registered.

    With ``recurrent`` (``fast`` or ``keras``) a checkpoint saved with the other
    recurrent implementation is rebuilt from the ``config.json`` beside it with
    ``recurrent`` and its weights copied over (the layouts are identical).
    """
    import speechsep.nn.losses  # noqa: F401  (registers the loss classes)
    from pathlib import Path

    path = Path(path)
    model = keras.models.load_model(path, compile=False)
    saved = recurrent_of(model)
    if recurrent is None or saved is None or saved == recurrent:
        return model
    config_path = path.parent / "config.json"
    if not config_path.is_file():
        raise ValueError(f"{path}: saved with the {saved!r} recurrent implementation; converting it to "
                         f"{recurrent!r} needs the run's config.json beside it (load it with recurrent={saved!r})")
    config = ExperimentConfig.load(config_path).replace(recurrent=recurrent)
    converted = build_model(config)
    source, target = model.get_weights(), converted.get_weights()
    if [w.shape for w in source] != [w.shape for w in target]:
        raise ValueError(f"{path}: its weights do not fit a {recurrent!r} model built from {config_path} "
                         f"(load it with recurrent={saved!r}, the implementation it was saved with)")
    converted.set_weights(source)
    return converted
