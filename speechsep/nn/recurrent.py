"""Fast CPU LSTM layers, drop-in replacements for the stock Keras ones (``config.recurrent = "fast"``).

* :class:`FastLSTM` (units)               ~ ``keras.layers.LSTM(units, return_sequences=True)``
* :class:`FastBidirectionalLSTM` (units)  ~ ``keras.layers.Bidirectional(keras.layers.LSTM(units,
  return_sequences=True))`` (``merge_mode="concat"``)

The weight layout is exactly the stock one (per direction): ``kernel`` [F, 4H],
``recurrent_kernel`` [H, 4H], ``bias`` [4H], gate blocks i, f, c, o (Keras
order; ``unit_forget_bias`` initialisation). ``get_weights()`` lists them in
the stock order (forward then backward for the bidirectional layer), so
``fast.set_weights(stock.get_weights())`` works both ways and a checkpoint
converts between the two implementations (:func:`speechsep.nn.models.load_model`).

How the step is computed:

* the input projection ``x @ W + b`` of all T frames is one [B·T, F] × [F, 4H]
  matmul per direction, outside the time loop (in bfloat16 when the layer's
  dtype policy computes in bfloat16; the recurrence always runs in float32);
* the time loop only does ``h @ U``; both directions of the bidirectional
  layer share one ``tf.while_loop`` as a batched [2, B, H] × [2, H, 4H] matmul;
* the gradient is written by hand (``tf.custom_gradient``): the backward loop
  only does ``dz @ Uᵀ`` per step, and ``dU = Σ_t h_{t-1}ᵀ dz_t`` is one large
  matmul after the loop.

The loop is XLA-compilable (``model.compile(jit_compile=True)``).
Sigmoid recurrent activation, tanh activation, zero initial state. A Keras
mask [B, T] is read as right padding (each row a valid prefix of ``length``
frames, as :func:`speechsep.nn.models.inference_function` pads): a reversed
direction then starts at its row's last valid frame, so the valid frames'
outputs equal those of the unpadded sequence; outputs at padded frames are
undefined.
``dropout`` drops input features with one mask per sequence and direction,
like the stock layer (same distribution, not the same random draws).
"""

from __future__ import annotations

import functools
import warnings

import keras
import tensorflow as tf

from speechsep.config import PRECISIONS
from speechsep.hardware import native_bfloat16


@functools.lru_cache(maxsize=None)
def effective_precision(precision: str) -> str:
    """The precision a run really uses: ``bfloat16`` falls back to ``float32`` (one warning) without native support."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bfloat16" and not native_bfloat16():
        warnings.warn("precision 'bfloat16' asked for, but this CPU has no native bfloat16 "
                      "(no avx512_bf16/amx_bf16 flag): training in float32", RuntimeWarning, stacklevel=2)
        return "float32"
    return precision


# ----------------------------------------------------------------------------
# The recurrence on pre-projected inputs, time-major with a direction axis:
#   xw [T, D, B, 4H] (x @ W + b; direction d's sequence already in its own time order)
#   U  [D, H, 4H]
#   -> h [T, D, B, H]
# ----------------------------------------------------------------------------

def _gates(z):
    zi, zf, zc, zo = tf.split(z, 4, axis=-1)
    return tf.sigmoid(zi), tf.sigmoid(zf), tf.tanh(zc), tf.sigmoid(zo)


def _inference_loop(xw, U):
    """The recurrence without the gradient's bookkeeping: h [T, D, B, H] only (inference)."""
    shape = tf.shape(xw)
    n_time = shape[0]
    h = tf.zeros(tf.stack([shape[1], shape[2], U.shape[1]]), xw.dtype)  # [D, B, H]
    ta_h = tf.TensorArray(xw.dtype, size=n_time, element_shape=tf.TensorShape([None, None, U.shape[1]]))

    def body(t, h, c, ta_h):
        i, f, g, o = _gates(xw[t] + tf.matmul(h, U))  # [D, B, H] each
        c = f * c + i * g
        h = o * tf.tanh(c)
        return t + 1, h, c, ta_h.write(t, h)

    _, _, _, ta_h = tf.while_loop(lambda t, *_: t < n_time, body, (tf.constant(0), h, tf.zeros_like(h), ta_h),
                                  maximum_iterations=n_time)
    return ta_h.stack()


def _forward_loop(xw, U):
    """Run the recurrence. Returns h [T, D, B, H], gate activations [T, D, B, 4H] and cells c [T, D, B, H]."""
    shape = tf.shape(xw)
    n_time, n_dir, batch = shape[0], shape[1], shape[2]
    units = U.shape[1]
    h = tf.zeros(tf.stack([n_dir, batch, units]), xw.dtype)  # [D, B, H]
    c = tf.zeros_like(h)
    spec = tf.TensorShape([None, None, units])
    ta_h = tf.TensorArray(xw.dtype, size=n_time, element_shape=spec)
    ta_c = tf.TensorArray(xw.dtype, size=n_time, element_shape=spec)
    ta_a = tf.TensorArray(xw.dtype, size=n_time, element_shape=tf.TensorShape([None, None, 4 * units]))

    def body(t, h, c, ta_h, ta_c, ta_a):
        z = xw[t] + tf.matmul(h, U)  # [D, B, 4H]
        i, f, g, o = _gates(z)
        c = f * c + i * g
        h = o * tf.tanh(c)
        return (t + 1, h, c, ta_h.write(t, h), ta_c.write(t, c),
                ta_a.write(t, tf.concat([i, f, g, o], axis=-1)))

    _, _, _, ta_h, ta_c, ta_a = tf.while_loop(
        lambda t, *_: t < n_time, body, (tf.constant(0), h, c, ta_h, ta_c, ta_a), maximum_iterations=n_time)
    return ta_h.stack(), ta_a.stack(), ta_c.stack()


def _backward_loop(dh_out, act, c_all, U):
    """Gradient of the recurrence: dz [T, D, B, 4H] = d loss / d xw.

    Everything that does not depend on the recurrent gradient is computed for
    all T at once; the loop body is only
    ``dh = dh_out[t] + dh_rec; dc = dc_next + dh·A[t]; dz = [dc, dc, dc, dh]·G[t];
    dh_rec = dz @ Uᵀ; dc_next = dc·f[t]``.
    """
    i, f, g, o = tf.split(act, 4, axis=-1)
    c_prev = tf.concat([tf.zeros_like(c_all[:1]), c_all[:-1]], axis=0)
    tc = tf.tanh(c_all)
    A = o * (1.0 - tc * tc)  # d h / d c, [T, D, B, H]
    G = tf.concat([g * i * (1.0 - i), c_prev * f * (1.0 - f), i * (1.0 - g * g),
                   tc * o * (1.0 - o)], axis=-1)  # [T, D, B, 4H]
    Ut = tf.transpose(U, [0, 2, 1])  # [D, 4H, H]
    zero = tf.zeros_like(dh_out[0])  # [D, B, H]
    n_time = tf.shape(act)[0]
    ta = tf.TensorArray(act.dtype, size=n_time, element_shape=tf.TensorShape([None, None, 4 * U.shape[1]]))

    def body(t, dh_rec, dc_next, ta):
        dh = dh_out[t] + dh_rec
        dc = dc_next + dh * A[t]
        dz = tf.concat([dc, dc, dc, dh], axis=-1) * G[t]  # [D, B, 4H]
        return t - 1, tf.matmul(dz, Ut), dc * f[t], ta.write(t, dz)

    _, _, _, ta = tf.while_loop(lambda t, *_: t >= 0, body, (n_time - 1, zero, zero, ta),
                                maximum_iterations=n_time)
    return ta.stack()


def recurrence(xw, U):
    """h [T, D, B, H] of D independent LSTM recurrences, with a hand-written gradient.

    xw : [T, D, B, 4H] projected inputs (bias included); U : [D, H, 4H] recurrent kernels.
    """

    @tf.custom_gradient
    def run(xw, U):
        h_all, act, c_all = _forward_loop(xw, U)

        def grad(dh_out):
            dz = _backward_loop(dh_out, act, c_all, U)  # [T, D, B, 4H]
            h_prev = tf.concat([tf.zeros_like(h_all[:1]), h_all[:-1]], axis=0)  # [T, D, B, H]
            n_dir = tf.shape(dz)[1]
            # dU[d] = Σ_{t,b} h_prev[t, d, b]ᵀ dz[t, d, b]: one [H, T·B] × [T·B, 4H] matmul per direction
            hp = tf.reshape(tf.transpose(h_prev, [1, 0, 2, 3]), tf.stack([n_dir, -1, U.shape[1]]))
            dzr = tf.reshape(tf.transpose(dz, [1, 0, 2, 3]), tf.stack([n_dir, -1, U.shape[2]]))
            return dz, tf.matmul(hp, dzr, transpose_a=True)

        return h_all, grad

    return run(xw, U)


def _reverse_time(x, lengths):
    """Reverse time-major x [T, B, ...]: whole rows (lengths None) or each row's first lengths[b] steps."""
    if lengths is None:
        return tf.reverse(x, [0])
    return tf.reverse_sequence(x, tf.cast(lengths, tf.int64), seq_axis=0, batch_axis=1)


# ----------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------

class _LSTMBase(keras.layers.Layer):
    n_directions = 1

    def __init__(self, units, return_sequences=True, dropout=0.0, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", unit_forget_bias=True, seed=None, **kwargs):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"units must be >= 1, got {units}")
        self.units = int(units)
        self.return_sequences = bool(return_sequences)
        self.dropout = min(1.0, max(0.0, float(dropout)))
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if self.dropout > 0 else None
        self.supports_masking = True

    def _bias_initializer(self):
        if not self.unit_forget_bias:
            return "zeros"
        units = self.units

        def init(shape, dtype=None):
            return tf.concat([tf.zeros([units], dtype), tf.ones([units], dtype), tf.zeros([2 * units], dtype)], 0)

        return init

    def _add_direction_weights(self, input_dim, prefix):
        # autocast=False: the weights are cast by hand, only the input projection may run in bfloat16
        kernel = self.add_weight(name=f"{prefix}kernel", shape=(input_dim, 4 * self.units),
                                 initializer=self.kernel_initializer, autocast=False)
        recurrent = self.add_weight(name=f"{prefix}recurrent_kernel", shape=(self.units, 4 * self.units),
                                    initializer=self.recurrent_initializer, autocast=False)
        bias = self.add_weight(name=f"{prefix}bias", shape=(4 * self.units,), initializer=self._bias_initializer(),
                               autocast=False)
        return kernel, recurrent, bias

    def compute_output_shape(self, input_shape):
        width = self.n_directions * self.units
        return (input_shape[0], input_shape[1], width) if self.return_sequences else (input_shape[0], width)

    def _directions(self):
        """[(kernel, recurrent_kernel, bias, reverse)] per direction."""
        raise NotImplementedError

    def _run(self, inputs, training, mask=None):
        """[B, T, F] (mask [B, T] bool, right padding, or None) -> [B, T, D·H] (return_sequences) or [B, D·H]."""
        compute = self.compute_dtype  # "bfloat16" under a mixed_bfloat16 policy
        x = tf.cast(inputs, compute)
        shape = tf.shape(x)
        batch, n_time, n_features = shape[0], shape[1], x.shape[-1]
        lengths = None if mask is None else tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)  # [B]
        x_tm = tf.reshape(tf.transpose(x, [1, 0, 2]), [-1, n_features])  # [T·B, F]
        projected = []
        for kernel, _, bias, reverse in self._directions():
            x_in = x_tm
            if training and self.dropout > 0:
                keep = keras.random.dropout(tf.ones(tf.stack([batch, n_features]), compute), self.dropout,
                                            seed=self.seed_generator)  # [B, F], one mask per sequence
                x_in = tf.reshape(tf.transpose(x * keep[:, None, :], [1, 0, 2]), [-1, n_features])
            xw = tf.matmul(x_in, tf.cast(kernel, compute))  # [T·B, 4H]
            xw = tf.reshape(tf.cast(xw, tf.float32) + bias, tf.stack([n_time, batch, 4 * self.units]))
            projected.append(_reverse_time(xw, lengths) if reverse else xw)  # [T, B, 4H]
        U = tf.stack([tf.convert_to_tensor(r) for _, r, _, _ in self._directions()])  # [D, H, 4H]
        xw = tf.stack(projected, axis=1)  # [T, D, B, 4H]
        h_all = recurrence(xw, U) if training else _inference_loop(xw, U)  # [T, D, B, H]
        outputs = []
        for direction, (_, _, _, reverse) in enumerate(self._directions()):
            h = h_all[:, direction]  # [T, B, H] in this direction's processing order
            if self.return_sequences:
                outputs.append(_reverse_time(h, lengths) if reverse else h)
            elif lengths is None:
                outputs.append(h[-1])  # [B, H]
            else:  # the last valid step of each row, in processing order
                outputs.append(tf.gather_nd(h, tf.stack([lengths - 1, tf.range(batch)], axis=1)))  # [B, H]
        out = outputs[0] if len(outputs) == 1 else tf.concat(outputs, axis=-1)
        if self.return_sequences:
            out = tf.transpose(out, [1, 0, 2])  # [B, T, D·H]
        return tf.cast(out, compute)

    def call(self, inputs, training=None, mask=None):
        return self._run(inputs, bool(training), mask)

    def compute_mask(self, inputs, mask=None):
        return mask if self.return_sequences else None

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "return_sequences": self.return_sequences,
            "dropout": self.dropout,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "unit_forget_bias": self.unit_forget_bias,
            "seed": self.seed,
        })
        return config


@keras.saving.register_keras_serializable(package="speechsep")
class FastLSTM(_LSTMBase):
    """Drop-in for ``keras.layers.LSTM(units, return_sequences=True)``: [B, T, F] -> [B, T, H].

    Weights: ``kernel`` [F, 4H], ``recurrent_kernel`` [H, 4H], ``bias`` [4H]
    (stock layout and order). ``go_backwards=True`` reads the sequence reversed
    and, like the stock layer, returns the outputs in that reversed order.
    """

    def __init__(self, units, go_backwards=False, **kwargs):
        super().__init__(units, **kwargs)
        self.go_backwards = bool(go_backwards)

    def build(self, input_shape):
        self.kernel, self.recurrent_kernel, self.bias = self._add_direction_weights(input_shape[-1], "")

    def _directions(self):
        return [(self.kernel, self.recurrent_kernel, self.bias, self.go_backwards)]

    def call(self, inputs, training=None, mask=None):
        out = self._run(inputs, bool(training), mask)
        if self.go_backwards and self.return_sequences:  # the stock layer keeps the outputs in processing order
            lengths = None if mask is None else tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)  # [B]
            out = tf.transpose(_reverse_time(tf.transpose(out, [1, 0, 2]), lengths), [1, 0, 2])
        return out

    def get_config(self):
        return {**super().get_config(), "go_backwards": self.go_backwards}


@keras.saving.register_keras_serializable(package="speechsep")
class FastBidirectionalLSTM(_LSTMBase):
    """Drop-in for ``Bidirectional(LSTM(units, return_sequences=True))``: [B, T, F] -> [B, T, 2H].

    The output is concat(forward, backward). Weights: forward ``kernel``,
    ``recurrent_kernel``, ``bias``, then the same for the backward direction
    (the stock ``Bidirectional`` order).
    """

    n_directions = 2

    def build(self, input_shape):
        self.forward_weights = self._add_direction_weights(input_shape[-1], "forward_")
        self.backward_weights = self._add_direction_weights(input_shape[-1], "backward_")

    def _directions(self):
        return [(*self.forward_weights, False), (*self.backward_weights, True)]
