"""Tests of speechsep.nn.losses (deep clustering loss, mask MSE, uPIT)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from speechsep.nn.losses import (
    DeepClusteringLoss,
    MaskMSELoss,
    deep_clustering_loss,
    mask_mse,
    permutation_invariant_mse,
)


def _random_assignments(rng, batch, n_bins, n_sources):
    """One-hot dominant-source labels [B, N, C] float64."""
    return np.eye(n_sources)[rng.integers(0, n_sources, size=(batch, n_bins))]


def _naive_loss(embeddings, assignments, weights):
    """|W^1/2 (V V^T - Y Y^T) W^1/2|_F^2 / (sum w)^2, built with the N x N matrix."""
    losses = []
    for v, y, w in zip(embeddings, assignments, weights):
        difference = v @ v.T - y @ y.T  # [N, N]
        weighted = difference * np.sqrt(w)[:, None] * np.sqrt(w)[None, :]
        total = np.sum(w)
        losses.append(np.sum(weighted**2) / total**2 if total > 0 else 0.0)
    return np.array(losses)


def _packed_target(rng, batch, n_frames, n_freqs, n_sources, active_fraction=0.7):
    labels = rng.integers(0, n_sources, size=(batch, n_frames, n_freqs))
    ibm = np.eye(n_sources)[labels]  # [B, T, F, C]
    weight = (rng.random((batch, n_frames, n_freqs, 1)) < active_fraction).astype(float)
    return np.concatenate([ibm, weight], axis=-1).astype(np.float32)  # [B, T, F, C+1]


def test_dc_loss_is_zero_for_ideal_embeddings_with_silent_bins():
    rng = np.random.default_rng(0)
    batch, n_bins, n_sources, dim = 3, 200, 3, 8
    assignments = _random_assignments(rng, batch, n_bins, n_sources)
    embeddings = np.concatenate([assignments, np.zeros((batch, n_bins, dim - n_sources))], axis=-1)
    weights = (rng.random((batch, n_bins)) < 0.6).astype(np.float32)
    for w in (None, weights):
        loss = deep_clustering_loss(embeddings.astype(np.float32), assignments, w).numpy()
        assert loss.shape == (batch,)
        np.testing.assert_allclose(loss, 0.0, atol=1e-5)
    # And it is clearly positive for random embeddings.
    random_embeddings = rng.standard_normal((batch, n_bins, dim)).astype(np.float32)
    assert np.all(deep_clustering_loss(random_embeddings, assignments, weights).numpy() > 0.1)


def test_dc_loss_matches_naive_affinity_formula():
    rng = np.random.default_rng(1)
    batch, n_bins, n_sources, dim = 4, 30, 2, 5
    embeddings = rng.standard_normal((batch, n_bins, dim))
    embeddings /= np.linalg.norm(embeddings, axis=-1, keepdims=True)
    assignments = _random_assignments(rng, batch, n_bins, n_sources)
    weights = rng.random((batch, n_bins)) * (rng.random((batch, n_bins)) < 0.7)
    expected = _naive_loss(embeddings, assignments, weights)
    got64 = deep_clustering_loss(embeddings, assignments, weights).numpy()
    np.testing.assert_allclose(got64, expected, rtol=1e-10)
    got32 = deep_clustering_loss(embeddings.astype(np.float32), assignments, weights).numpy()
    np.testing.assert_allclose(got32, expected, rtol=1e-4)
    unweighted = deep_clustering_loss(embeddings, assignments).numpy()
    np.testing.assert_allclose(unweighted, _naive_loss(embeddings, assignments, np.ones_like(weights)))


def test_dc_loss_invariant_to_speaker_relabelling():
    rng = np.random.default_rng(2)
    embeddings = rng.standard_normal((2, 50, 6)).astype(np.float32)
    assignments = _random_assignments(rng, 2, 50, 3)
    weights = (rng.random((2, 50)) < 0.8).astype(np.float32)
    original = deep_clustering_loss(embeddings, assignments, weights).numpy()
    relabelled = deep_clustering_loss(embeddings, assignments[..., [2, 0, 1]], weights).numpy()
    np.testing.assert_allclose(relabelled, original, rtol=1e-5)


def test_dc_loss_ignores_silent_bins_and_all_silent_is_zero():
    rng = np.random.default_rng(3)
    embeddings = rng.standard_normal((2, 40, 4)).astype(np.float32)
    assignments = _random_assignments(rng, 2, 40, 2)
    weights = (rng.random((2, 40)) < 0.5).astype(np.float32)
    weights[1] = 0.0  # second item entirely silent
    reference = deep_clustering_loss(embeddings, assignments, weights).numpy()
    changed = embeddings.copy()
    changed[weights == 0] = 100.0 * rng.standard_normal((int(np.sum(weights == 0)), 4))
    np.testing.assert_allclose(deep_clustering_loss(changed, assignments, weights).numpy(), reference, rtol=1e-5)
    assert reference[0] > 0.0
    assert reference[1] == 0.0 and np.all(np.isfinite(reference))


def test_dc_loss_rejects_bad_ranks():
    with pytest.raises(ValueError, match="embeddings"):
        deep_clustering_loss(np.zeros((2, 3)), np.zeros((2, 3, 2)))


def test_deep_clustering_loss_class_on_packed_target_and_round_trip():
    rng = np.random.default_rng(4)
    y_true = _packed_target(rng, 2, 5, 129, 2)
    y_pred = rng.standard_normal((2, 5, 129, 10)).astype(np.float32)
    loss = DeepClusteringLoss()
    expected = deep_clustering_loss(
        y_pred.reshape(2, -1, 10), y_true[..., :2].reshape(2, -1, 2), y_true[..., 2].reshape(2, -1)
    ).numpy()
    np.testing.assert_allclose(float(loss(y_true, y_pred)), expected.mean(), rtol=1e-5)

    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, DeepClusteringLoss)
    np.testing.assert_allclose(float(restored(y_true, y_pred)), expected.mean(), rtol=1e-5)
    assert isinstance(DeepClusteringLoss.from_config(loss.get_config()), DeepClusteringLoss)


def test_deep_clustering_loss_trains_a_tiny_keras_model():
    rng = np.random.default_rng(5)
    features = rng.standard_normal((4, 3, 129, 1)).astype(np.float32)
    y_true = _packed_target(rng, 4, 3, 129, 2)
    model = keras.Sequential([keras.Input((3, 129, 1)), keras.layers.Dense(6)])
    model.compile(optimizer="sgd", loss=DeepClusteringLoss())
    history = model.fit(features, y_true, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_pit_is_zero_for_swapped_sources_but_plain_mse_is_not():
    rng = np.random.default_rng(6)
    ibm = (rng.random((2, 4, 129)) < 0.5).astype(np.float32)
    swapped_mask = 1.0 - ibm
    np.testing.assert_allclose(permutation_invariant_mse(swapped_mask, ibm).numpy(), 0.0)
    plain = mask_mse(swapped_mask, ibm).numpy()
    np.testing.assert_allclose(plain, 1.0)  # every bin is wrong by exactly 1
    np.testing.assert_allclose(mask_mse(ibm, ibm).numpy(), 0.0)


@settings(max_examples=25, deadline=None)
@given(
    masks=st.lists(st.floats(0.0, 1.0), min_size=12, max_size=12),
    ibm=st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_pit_never_exceeds_plain_mse(masks, ibm):
    masks = np.array(masks, dtype=np.float32).reshape(2, 2, 3)
    ibm = np.array(ibm, dtype=np.float32).reshape(2, 2, 3)
    pit = permutation_invariant_mse(masks, ibm).numpy()
    plain = mask_mse(masks, ibm).numpy()
    swapped = mask_mse(masks, 1.0 - ibm).numpy()
    assert np.all(pit <= plain + 1e-7)
    np.testing.assert_allclose(pit, np.minimum(plain, swapped), rtol=1e-6)
    np.testing.assert_allclose(plain, np.mean((masks - ibm) ** 2, axis=(1, 2)), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("permutation_invariant", [False, True])
def test_mask_mse_loss_class_on_packed_target_and_round_trip(permutation_invariant):
    rng = np.random.default_rng(7)
    y_true = _packed_target(rng, 2, 4, 129, 2)
    y_pred = 1.0 - y_true[..., 0]  # the swapped-source mask
    loss = MaskMSELoss(permutation_invariant=permutation_invariant)
    expected = 0.0 if permutation_invariant else 1.0
    np.testing.assert_allclose(float(loss(y_true, y_pred)), expected, atol=1e-6)
    np.testing.assert_allclose(float(loss(y_true, y_pred[..., None])), expected, atol=1e-6)

    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, MaskMSELoss)
    assert restored.permutation_invariant is permutation_invariant
    np.testing.assert_allclose(float(restored(y_true, y_pred)), expected, atol=1e-6)


@pytest.mark.parametrize("permutation_invariant", [False, True])
def test_mask_mse_loss_weights_out_silent_bins(permutation_invariant):
    rng = np.random.default_rng(9)
    y_true = _packed_target(rng, 3, 4, 129, 2)  # [B, T, F, 3]
    y_true[2, ..., 2] = 0.0  # the third utterance is entirely silent
    silent = y_true[..., 2] == 0
    y_pred = rng.random((3, 4, 129)).astype(np.float32)
    loss = MaskMSELoss(permutation_invariant=permutation_invariant)
    reference = float(loss(y_true, y_pred))
    changed = y_pred.copy()
    changed[silent] = rng.random(int(silent.sum()))  # only silent bins' predictions change
    np.testing.assert_allclose(float(loss(y_true, changed)), reference, rtol=1e-6)
    # The value is the mean over active bins only (all-silent utterance: 0), then over the batch.
    active = ~silent[:2]
    same = [np.mean((y_pred[i] - y_true[i, ..., 0])[active[i]] ** 2) for i in range(2)]
    swapped = [np.mean((y_pred[i] - 1 + y_true[i, ..., 0])[active[i]] ** 2) for i in range(2)]
    per_item = np.minimum(same, swapped) if permutation_invariant else np.array(same)
    np.testing.assert_allclose(reference, np.sum(per_item) / 3, rtol=1e-5)
    weights = y_true[..., 2]
    functional = (permutation_invariant_mse if permutation_invariant else mask_mse)(y_pred, y_true[..., 0], weights)
    np.testing.assert_allclose(functional.numpy(), list(per_item) + [0.0], rtol=1e-5)


def test_mask_mse_loss_rejects_more_than_two_sources():
    rng = np.random.default_rng(8)
    y_true = _packed_target(rng, 1, 2, 129, 3)  # [B, T, F, 4]
    with pytest.raises(ValueError, match="2 sources"):
        MaskMSELoss()(y_true, tf.zeros((1, 2, 129)))
