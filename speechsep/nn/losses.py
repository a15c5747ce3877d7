"""Training losses for deep clustering and mask-estimation networks.

Packed target convention (shared by every Keras loss in this module): the
pipeline hands Keras a single ``y_true`` of shape ``[B, T, F, C + 1]`` float32.
Channels ``0 .. C-1`` hold the one-hot ideal binary mask (the dominant source
of each time-frequency bin) and channel ``C`` holds the active-bin weight
(1.0 for bins within 40 dB of the mixture maximum, 0.0 for silent bins).

References
----------
- Hershey, Chen, Le Roux, Watanabe, "Deep clustering: Discriminative
  embeddings for segmentation and separation", ICASSP 2016, eq. (3)-(4).
- Kolbaek, Yu, Tan, Jensen, "Multi-talker speech separation with
  utterance-level permutation invariant training of deep recurrent neural
  networks", IEEE/ACM TASLP 2017.
"""

import keras
import tensorflow as tf


def deep_clustering_loss(embeddings, assignments, weights=None):
    """Weighted deep clustering loss in its low-rank form (Hershey et al. 2016).

    ``|A_hat - A|_F^2 = |V^T V|_F^2 - 2 |V^T Y|_F^2 + |Y^T Y|_F^2`` with
    ``A_hat = V V^T`` and ``A = Y Y^T`` (eq. (3)-(4)). Every bin's row of ``V``
    and ``Y`` is multiplied by ``sqrt(weight)``, which equals weighting each
    affinity pair ``(i, j)`` by ``w_i * w_j``: silent bins are weighted out.
    The ``N x N`` affinity matrix is never built; only ``D x D``, ``D x C`` and
    ``C x C`` Gram matrices are. The result is divided by ``(sum w)^2`` so it
    does not grow with the number of bins; an all-silent item gives 0.

    Parameters
    ----------
    embeddings : Tensor [B, N, D]
        Embedding ``V`` of each of the N time-frequency bins.
    assignments : Tensor [B, N, C]
        One-hot dominant-source assignment ``Y``.
    weights : Tensor [B, N] or None
        Non-negative bin weights (e.g. 1 for active, 0 for silent bins).
        ``None`` means all ones.

    Returns
    -------
    Tensor [B]
        Per-utterance loss.
    """
    embeddings = tf.convert_to_tensor(embeddings)
    if not embeddings.dtype.is_floating:
        embeddings = tf.cast(embeddings, tf.float32)
    dtype = embeddings.dtype
    assignments = tf.cast(assignments, dtype)
    if embeddings.shape.rank != 3 or assignments.shape.rank != 3:
        raise ValueError(
            "deep_clustering_loss expects embeddings [B, N, D] and assignments "
            f"[B, N, C]; got shapes {embeddings.shape} and {assignments.shape}."
        )
    if not embeddings.shape[:2].is_compatible_with(assignments.shape[:2]):
        raise ValueError(
            f"embeddings {embeddings.shape} and assignments {assignments.shape} "
            "disagree on the batch or bin axis."
        )
    if weights is None:
        weights = tf.ones(tf.shape(embeddings)[:2], dtype=dtype)  # [B, N]
    weights = tf.cast(weights, dtype)
    if weights.shape.rank != 2:
        raise ValueError(f"weights must have shape [B, N]; got {weights.shape}.")

    root_weights = tf.sqrt(tf.maximum(weights, 0.0))[..., tf.newaxis]  # [B, N, 1]
    weighted_embeddings = embeddings * root_weights  # [B, N, D]
    weighted_assignments = assignments * root_weights  # [B, N, C]

    embedding_gram = tf.einsum("bnd,bne->bde", weighted_embeddings, weighted_embeddings)  # [B, D, D]
    cross_gram = tf.einsum("bnd,bnc->bdc", weighted_embeddings, weighted_assignments)  # [B, D, C]
    target_gram = tf.einsum("bnc,bnk->bck", weighted_assignments, weighted_assignments)  # [B, C, C]

    cost = (
        tf.reduce_sum(tf.square(embedding_gram), axis=[1, 2])
        - 2.0 * tf.reduce_sum(tf.square(cross_gram), axis=[1, 2])
        + tf.reduce_sum(tf.square(target_gram), axis=[1, 2])
    )  # [B]
    cost = tf.maximum(cost, 0.0)  # a squared norm; clip float round-off
    normaliser = tf.square(tf.reduce_sum(weights, axis=1))  # [B]
    return tf.math.divide_no_nan(cost, normaliser)  # [B]


def mask_mse(masks, ibm_first_source):
    """Mean squared error between a predicted mask and the source-1 IBM.

    Parameters
    ----------
    masks : Tensor [B, T, F]
        Predicted mask of source 1 (values in [0, 1]).
    ibm_first_source : Tensor [B, T, F]
        Ideal binary mask of source 1.

    Returns
    -------
    Tensor [B]
        MSE over all bins of each utterance.
    """
    masks = tf.convert_to_tensor(masks)
    targets = tf.cast(ibm_first_source, masks.dtype)
    batch_size = tf.shape(masks)[0]
    squared_error = tf.reshape(tf.square(masks - targets), [batch_size, -1])  # [B, T*F]
    return tf.reduce_mean(squared_error, axis=1)  # [B]


def permutation_invariant_mse(masks, ibm_first_source):
    """Utterance-level permutation invariant MSE for two sources (uPIT).

    With a single mask output ``m`` for source 1 (source 2 is ``1 - m``),
    each utterance picks the better of the two speaker orders:
    ``min(MSE(m, y), MSE(m, 1 - y))`` (Kolbaek et al., TASLP 2017).

    Parameters
    ----------
    masks : Tensor [B, T, F]
        Predicted mask of source 1.
    ibm_first_source : Tensor [B, T, F]
        Ideal binary mask of source 1.

    Returns
    -------
    Tensor [B]
    """
    masks = tf.convert_to_tensor(masks)
    targets = tf.cast(ibm_first_source, masks.dtype)
    same_order = mask_mse(masks, targets)  # [B]
    swapped_order = mask_mse(masks, 1.0 - targets)  # [B]
    return tf.minimum(same_order, swapped_order)  # [B]


@keras.saving.register_keras_serializable(package="speechsep")
class DeepClusteringLoss(keras.losses.Loss):
    """Keras loss: deep clustering on packed targets.

    ``y_true`` is the packed target ``[B, T, F, C + 1]`` (one-hot IBM plus the
    active-bin weight) and ``y_pred`` the embeddings ``[B, T, F, D]``.
    """

    def __init__(self, name="deep_clustering_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        batch_size = tf.shape(y_pred)[0]
        embedding_dim = tf.shape(y_pred)[-1]
        n_sources = tf.shape(y_true)[-1] - 1
        embeddings = tf.reshape(y_pred, [batch_size, -1, embedding_dim])  # [B, T*F, D]
        assignments = tf.reshape(y_true[..., :-1], [batch_size, -1, n_sources])  # [B, T*F, C]
        weights = tf.reshape(y_true[..., -1], [batch_size, -1])  # [B, T*F]
        return deep_clustering_loss(embeddings, assignments, weights)  # [B]

    def get_config(self):
        return super().get_config()


@keras.saving.register_keras_serializable(package="speechsep")
class MaskMSELoss(keras.losses.Loss):
    """Keras loss: (optionally permutation invariant) mask MSE on packed targets.

    ``y_true`` is the packed target ``[B, T, F, 3]`` (two sources plus the
    weight channel); channel 0, the source-1 IBM, is the target. ``y_pred`` is
    the source-1 mask ``[B, T, F]`` (a trailing axis of size 1 is accepted).

    Parameters
    ----------
    permutation_invariant : bool
        Use :func:`permutation_invariant_mse` instead of :func:`mask_mse`.
    """

    def __init__(self, permutation_invariant=False, name="mask_mse_loss",
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.permutation_invariant = bool(permutation_invariant)

    def call(self, y_true, y_pred):
        n_channels = y_true.shape[-1]
        if n_channels is not None and n_channels != 3:
            raise ValueError(
                "MaskMSELoss handles exactly 2 sources: y_true must be packed as "
                f"[B, T, F, 3] (2 IBM channels + weight); got last axis {n_channels}."
            )
        if y_pred.shape.rank == 4 and y_pred.shape[-1] == 1:
            y_pred = y_pred[..., 0]  # [B, T, F]
        ibm_first_source = y_true[..., 0]  # [B, T, F]
        if self.permutation_invariant:
            return permutation_invariant_mse(y_pred, ibm_first_source)  # [B]
        return mask_mse(y_pred, ibm_first_source)  # [B]

    def get_config(self):
        config = super().get_config()
        config["permutation_invariant"] = self.permutation_invariant
        return config
