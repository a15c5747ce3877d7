"""The fast recurrent layers equal the stock Keras ones: same weights, same outputs and gradients."""

import numpy as np
import pytest
import keras
import tensorflow as tf

from speechsep.nn.recurrent import FastBidirectionalLSTM, FastLSTM

B, T, F, H = 3, 7, 5, 4
ATOL = 1e-5


def _stock(bidirectional, units=H):
    lstm = keras.layers.LSTM(units, return_sequences=True)
    return keras.layers.Bidirectional(lstm) if bidirectional else lstm


def _fast(bidirectional, units=H, **kw):
    return FastBidirectionalLSTM(units, **kw) if bidirectional else FastLSTM(units, **kw)


def _pair(bidirectional, seed=0, **kw):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, F)).astype("float32")
    stock, fast = _stock(bidirectional), _fast(bidirectional, **kw)
    stock(x)
    fast(x)
    # non-trivial biases so that every gate block is exercised
    weights = [w + 0.1 * rng.standard_normal(w.shape).astype("float32") for w in stock.get_weights()]
    stock.set_weights(weights)
    fast.set_weights(weights)
    return x, stock, fast


def _grads(layer, x, upstream):
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * upstream)
    grads = tape.gradient(loss, [x] + [w.value for w in layer.trainable_weights])
    return y, grads


@pytest.mark.parametrize("bidirectional", [False, True])
def test_weight_layout_matches_stock(bidirectional):
    _, stock, fast = _pair(bidirectional)
    assert [w.shape for w in stock.get_weights()] == [w.shape for w in fast.get_weights()]
    for a, b in zip(stock.get_weights(), fast.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_default_init_matches_stock_layout(bidirectional):
    fast = _fast(bidirectional)
    fast(np.zeros((1, 2, F), "float32"))
    bias = fast.get_weights()[2]
    np.testing.assert_array_equal(bias, np.r_[np.zeros(H), np.ones(H), np.zeros(2 * H)])


@pytest.mark.parametrize("bidirectional", [False, True])
def test_outputs_and_gradients_match_stock(bidirectional):
    x, stock, fast = _pair(bidirectional)
    upstream = np.random.default_rng(1).standard_normal(
        (B, T, (2 if bidirectional else 1) * H)).astype("float32")
    y_s, g_s = _grads(stock, x, upstream)
    y_f, g_f = _grads(fast, x, upstream)
    np.testing.assert_allclose(y_f.numpy(), y_s.numpy(), atol=ATOL)
    assert len(g_s) == len(g_f)
    for a, b in zip(g_s, g_f):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_inside_tf_function_variable_length_and_batch(bidirectional):
    _, stock, fast = _pair(bidirectional)
    f_fast = tf.function(lambda v: fast(v), input_signature=[tf.TensorSpec((None, None, F), tf.float32)])
    f_stock = tf.function(lambda v: stock(v), input_signature=[tf.TensorSpec((None, None, F), tf.float32)])
    for b, t in [(1, 3), (4, 11)]:
        x = np.random.default_rng(b).standard_normal((b, t, F)).astype("float32")
        np.testing.assert_allclose(f_fast(x).numpy(), f_stock(x).numpy(), atol=ATOL)


@pytest.mark.parametrize("layer_kind", ["forward", "backwards", "bidirectional"])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_right_padding_under_a_mask_gives_each_rows_unpadded_outputs(layer_kind, return_sequences):
    rng = np.random.default_rng(6)
    if layer_kind == "bidirectional":
        layer = FastBidirectionalLSTM(H, return_sequences=return_sequences)
    else:
        layer = FastLSTM(H, go_backwards=layer_kind == "backwards", return_sequences=return_sequences)
    lengths = [T, 4, 1]
    x = rng.standard_normal((B, T, F)).astype("float32")
    mask = np.arange(T)[None, :] < np.asarray(lengths)[:, None]  # [B, T] valid prefixes
    padded = np.where(mask[..., None], x, 5.0).astype("float32")  # padding that would change any state
    layer(padded)
    layer.set_weights([w + 0.1 * rng.standard_normal(w.shape).astype("float32") for w in layer.get_weights()])
    masked = layer(padded, mask=mask).numpy()
    for row, length in enumerate(lengths):
        alone = layer(x[row:row + 1, :length]).numpy()[0]
        np.testing.assert_allclose(masked[row, :length] if return_sequences else masked[row], alone, atol=ATOL)
    if layer_kind != "forward" or not return_sequences:  # without the mask, padding would reach these outputs
        unmasked, alone = layer(padded).numpy()[1], layer(x[1:2, :4]).numpy()[0]
        assert not np.allclose(unmasked[:4] if return_sequences else unmasked, alone, atol=1e-3)


def test_go_backwards_matches_stock():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((B, T, F)).astype("float32")
    stock = keras.layers.LSTM(H, return_sequences=True, go_backwards=True)
    fast = FastLSTM(H, go_backwards=True)
    stock(x)
    fast(x)
    fast.set_weights(stock.get_weights())
    np.testing.assert_allclose(fast(x).numpy(), stock(x).numpy(), atol=ATOL)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_return_sequences_false_matches_stock(bidirectional):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((B, T, F)).astype("float32")
    lstm = keras.layers.LSTM(H, return_sequences=False)
    stock = keras.layers.Bidirectional(lstm) if bidirectional else lstm
    fast = _fast(bidirectional, return_sequences=False)
    stock(x)
    fast(x)
    fast.set_weights(stock.get_weights())
    np.testing.assert_allclose(fast(x).numpy(), stock(x).numpy(), atol=ATOL)


def test_dropout_training_only():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((B, T, F)).astype("float32")
    layer = FastBidirectionalLSTM(H, dropout=0.5, seed=1)
    y_inf = layer(x, training=False).numpy()
    np.testing.assert_allclose(layer(x, training=False).numpy(), y_inf)  # deterministic at inference
    assert not np.allclose(layer(x, training=True).numpy(), y_inf)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_save_load_roundtrip(tmp_path, bidirectional):
    inputs = keras.Input((None, F))
    h = _fast(bidirectional, dropout=0.1)(inputs)
    outputs = keras.layers.Dense(2)(h)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(6).standard_normal((2, 9, F)).astype("float32")
    y = model.predict(x, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), y)
    assert type(loaded.layers[1]) is type(model.layers[1])
    assert loaded.layers[1].get_config() == model.layers[1].get_config()


def test_weights_copy_into_stock_model_and_back():
    """Stock dc-style model weights copy one-to-one into the fast model and back."""
    def build(fast):
        inputs = keras.Input((None, F))
        x = inputs
        for _ in range(2):
            x = (FastBidirectionalLSTM(H) if fast else keras.layers.Bidirectional(
                keras.layers.LSTM(H, return_sequences=True)))(x)
        return keras.Model(inputs, keras.layers.Dense(3, activation="tanh")(x))

    stock, fast = build(False), build(True)
    fast.set_weights(stock.get_weights())
    x = np.random.default_rng(7).standard_normal((2, T, F)).astype("float32")
    np.testing.assert_allclose(fast(x).numpy(), stock(x).numpy(), atol=ATOL)
    stock2 = build(False)
    stock2.set_weights(fast.get_weights())
    np.testing.assert_allclose(stock2(x).numpy(), stock(x).numpy(), atol=ATOL)


def test_jit_compiled_gradient_matches_eager():
    x, stock, fast = _pair(True)

    @tf.function(jit_compile=True)
    def g(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(fast(x)))
        return tape.gradient(loss, [x] + [w.value for w in fast.trainable_weights])

    xt = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(tf.square(stock(xt)))
    ref = tape.gradient(loss, [xt] + [w.value for w in stock.trainable_weights])
    for a, b in zip(ref, g(xt)):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------- in the kit's models

def _tiny_config(**changes):
    from speechsep.config import ExperimentConfig

    return ExperimentConfig(hidden_units=H, num_layers=2, embedding_dim=3, **changes)


@pytest.mark.parametrize("saved,wanted", [("fast", "keras"), ("keras", "fast")])
def test_checkpoint_loads_into_the_other_implementation(tmp_path, saved, wanted):
    from speechsep.nn.models import build_model, load_model, recurrent_of

    config = _tiny_config(recurrent=saved)
    model = build_model(config)
    x = np.random.default_rng(8).standard_normal((2, T, 129)).astype("float32")
    model.set_weights([w + 0.05 for w in model.get_weights()])  # not the initial weights
    config.save(tmp_path / "config.json")
    model.save(tmp_path / "best.keras")
    same = load_model(tmp_path / "best.keras")
    assert recurrent_of(same) == saved
    converted = load_model(tmp_path / "best.keras", recurrent=wanted)
    assert recurrent_of(converted) == wanted
    np.testing.assert_allclose(converted(x).numpy(), model(x).numpy(), atol=ATOL)


def test_conversion_without_config_names_the_implementation(tmp_path):
    from speechsep.nn.models import build_model, load_model

    build_model(_tiny_config(recurrent="keras")).save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="'keras' recurrent implementation.*config.json"):
        load_model(tmp_path / "m.keras", recurrent="fast")


def test_bfloat16_policy_keeps_float32_weights_and_outputs_close(monkeypatch):
    from speechsep.nn import recurrent
    from speechsep.nn.models import build_model

    monkeypatch.setattr(recurrent, "native_bfloat16", lambda: True)
    recurrent.effective_precision.cache_clear()
    x = np.random.default_rng(9).standard_normal((2, T, 129)).astype("float32")
    full = build_model(_tiny_config())
    half = build_model(_tiny_config(precision="bfloat16"))
    half.set_weights(full.get_weights())
    assert half.get_layer("blstm_1").compute_dtype == "bfloat16"
    assert all(w.dtype == "float32" for w in half.weights)
    out = half(x)
    assert out.dtype == "float32"
    error = np.abs(out.numpy() - full(x).numpy())  # unit vectors: bfloat16 keeps ~3 significant digits
    assert error.mean() < 0.01 and np.quantile(error, 0.99) < 0.05
    recurrent.effective_precision.cache_clear()


def test_bfloat16_without_native_support_falls_back_with_one_warning(monkeypatch):
    from speechsep.nn import recurrent

    monkeypatch.setattr(recurrent, "native_bfloat16", lambda: False)
    recurrent.effective_precision.cache_clear()
    with pytest.warns(RuntimeWarning, match="no native bfloat16") as caught:
        assert recurrent.effective_precision("bfloat16") == "float32"
        assert recurrent.effective_precision("bfloat16") == "float32"
    assert len(caught) == 1
    recurrent.effective_precision.cache_clear()


def test_config_rejects_unknown_implementation_and_precision():
    with pytest.raises(ValueError, match="config.recurrent"):
        _tiny_config(recurrent="cudnn")
    with pytest.raises(ValueError, match="config.precision"):
        _tiny_config(precision="float16")
