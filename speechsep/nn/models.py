"""One model factory with a registry: ``feedforward``, ``lstm``, ``blstm``, ``dc``.

Every model maps normalised log-magnitude features [B, T, 129] (T may be any
length at inference) to

* mask models (``feedforward``, ``lstm``, ``blstm``): a sigmoid mask for
  source 1, [B, T, 129];
* ``dc``: unit-norm embeddings [B, T, 129, D] (Hershey et al., ICASSP 2016:
  BLSTM, a tanh dense layer of 129·D units, then per-bin L2 normalisation).

Defaults follow the original experiments: 2 layers of 300 units.
"""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

from speechsep.config import ExperimentConfig
from speechsep.nn.layers import UnitNormalize
from speechsep.signal import N_BINS

MODELS: dict[str, Callable[[ExperimentConfig], keras.Model]] = {}


def register(name: str):
    def decorator(builder):
        MODELS[name] = builder
        return builder

    return decorator


def _features() -> keras.KerasTensor:
    return keras.Input(shape=(None, N_BINS), name="features")  # [B, T, F]


def _recurrent_stack(x, config: ExperimentConfig, bidirectional: bool):
    for layer in range(config.num_layers):
        lstm = keras.layers.LSTM(config.hidden_units, return_sequences=True, dropout=config.dropout,
                                 name=f"lstm_{layer + 1}")
        x = keras.layers.Bidirectional(lstm, name=f"blstm_{layer + 1}")(x) if bidirectional else lstm(x)
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
    """BLSTM embedding network: [B, T, F] -> unit-norm embeddings [B, T, F, D]."""
    features = _features()
    x = _recurrent_stack(features, config, True)  # [B, T, 2H]
    x = keras.layers.Dense(N_BINS * config.embedding_dim, activation="tanh", name="embedding")(x)  # [B, T, F*D]
    x = keras.layers.Reshape((-1, N_BINS, config.embedding_dim), name="per_bin")(x)  # [B, T, F, D]
    return keras.Model(features, UnitNormalize(name="unit_norm")(x), name="deep_clustering")


def build_model(config: ExperimentConfig) -> keras.Model:
    """Build the registered model named ``config.model``."""
    if config.model not in MODELS:
        raise ValueError(f"unknown model {config.model!r}; registered: {sorted(MODELS)}")
    return MODELS[config.model](config)


def inference_function(model: keras.Model):
    """A compiled forward pass for any batch size and length: [B, T, F] -> model output.

    Eager Keras calls run a recurrent layer step by step in Python (seconds per
    utterance); this traces one graph with a shape-polymorphic signature.
    """
    signature = [tf.TensorSpec((None, None, N_BINS), tf.float32)]
    return tf.function(lambda features: model(features, training=False), input_signature=signature)


def load_model(path) -> keras.Model:
    """Load a saved ``.keras`` model with the speechsep custom objects registered."""
    import speechsep.nn.losses  # noqa: F401  (registers the loss classes)

    return keras.models.load_model(path, compile=False)
