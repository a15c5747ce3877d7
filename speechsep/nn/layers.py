"""Custom Keras layers of the kit (registered, so ``.keras`` files load them by name)."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="speechsep")
class UnitNormalize(keras.layers.Layer):
    """L2-normalise the last axis (each bin's embedding lies on the unit sphere)."""

    def call(self, inputs):
        return inputs / tf.sqrt(tf.reduce_sum(tf.square(inputs), axis=-1, keepdims=True) + 1e-12)
