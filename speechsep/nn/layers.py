"""Custom Keras layers of the kit (registered, so ``.keras`` files load them by name)."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="speechsep")
class UnitNormalize(keras.layers.Layer):
    """L2-normalise the last axis (each bin's embedding lies on the unit sphere)."""

    def call(self, inputs):
        return inputs / tf.sqrt(tf.reduce_sum(tf.square(inputs), axis=-1, keepdims=True) + 1e-12)


@keras.saving.register_keras_serializable(package="speechsep")
class TimePooling(keras.layers.Layer):
    """Mean and max over the valid frames: [B, T, H] (Keras mask [B, T] or None) -> [B, 2H].

    The count head's summary of a whole utterance; padded frames (the mask of
    :func:`speechsep.nn.models.inference_function`) take part in neither.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        inputs = tf.cast(inputs, tf.float32)
        if mask is None:
            return tf.concat([tf.reduce_mean(inputs, axis=1), tf.reduce_max(inputs, axis=1)], axis=-1)  # [B, 2H]
        valid = tf.cast(mask, tf.float32)[..., tf.newaxis]  # [B, T, 1]
        mean = tf.math.divide_no_nan(tf.reduce_sum(inputs * valid, axis=1), tf.reduce_sum(valid, axis=1))  # [B, H]
        peak = tf.reduce_max(tf.where(valid > 0, inputs, tf.fill(tf.shape(inputs), -1e9)), axis=1)  # [B, H]
        return tf.concat([mean, peak], axis=-1)  # [B, 2H]

    def compute_mask(self, inputs, mask=None):
        return None
