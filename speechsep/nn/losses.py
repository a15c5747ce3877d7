"""Training losses for deep clustering and mask-estimation networks.

Packed target convention (shared by every Keras loss in this module): the
pipeline hands Keras a single ``y_true`` of shape ``[B, T, F, C + 1]`` float32.
Channels ``0 .. C-1`` hold the one-hot ideal binary mask (the dominant source
of each time-frequency bin) and channel ``C`` holds the active-bin weight
(1.0 for bins within 40 dB of the mixture maximum, 0.0 for silent bins).
The Chimera++ mask-inference loss (:class:`MaskInferenceLoss`) takes its own
packing: the C source target magnitudes, then the mixture magnitude.

A varying number of talkers per item (``ExperimentConfig.talkers``): every
item's IBM has ``C = Kmax`` channels, and an item of K < Kmax talkers has
all-zero channels K .. Kmax-1 (the pipeline's dominant-source index one-hot
encoded with depth Kmax, :func:`speechsep.data.pipeline.packed_targets`). Both
embedding losses give such an item exactly the loss of its K channels alone:
an empty source's column of ``VᵀY`` and its row and column of ``YᵀY`` are
zero, which adds 0 to ``‖VᵀY‖²`` and ``‖YᵀY‖²`` (:func:`deep_clustering_loss`);
in :func:`whitened_deep_clustering_loss` ``YᵀY`` is diagonal (one-hot rows),
so the ``epsilon`` ridge on its diagonal makes the empty source's entry
``epsilon`` (never a singular inverse) and the zero column of ``VᵀY`` makes
its term of the trace exactly 0. The same holds for a talker who is silent
throughout a chunk. ``tests/test_talkers.py`` checks both, at every K.

References
----------
- Hershey, Chen, Le Roux, Watanabe, "Deep clustering: Discriminative
  embeddings for segmentation and separation", ICASSP 2016, eq. (3)-(4).
- Kolbaek, Yu, Tan, Jensen, "Multi-talker speech separation with
  utterance-level permutation invariant training of deep recurrent neural
  networks", IEEE/ACM TASLP 2017.
- Wang, Le Roux, Hershey, "Alternative objective functions for deep
  clustering", ICASSP 2018 (whitened DC loss, the Chimera++ network).
"""

import itertools

import keras
import tensorflow as tf

LOSS_LABELS = {
    "mse": ("MSE vs IBM", "mask vs ideal binary mask of source 1\n(active bins)"),
    "pit": ("uPIT MSE", "best speaker permutation per utterance\n(active bins)"),
    "dc": ("deep-clustering loss", "|VᵀV|²−2|VᵀY|²+|YᵀY|²\n(active bins)"),
    "dc_whitened": ("whitened deep-clustering loss", "D − tr((VᵀV)⁻¹VᵀY(YᵀY)⁻¹YᵀV)\n(active bins)"),
}
"""Each training objective's name and formula, as figures and schematics write them: (title, detail line(s)),
keyed by ``config.LOSSES`` and ``config.DC_LOSSES`` (:func:`loss_key`)."""


def loss_key(config) -> str:
    """The :data:`LOSS_LABELS` key of a config's training objective (the DC loss variant for dc models)."""
    return config.dc_loss if config.loss == "dc" else config.loss


def _embedding_loss_inputs(embeddings, assignments, weights, name: str):
    """Checked float tensors: embeddings [B, N, D], assignments [B, N, C], weights [B, N] (ones if None)."""
    embeddings = tf.convert_to_tensor(embeddings)
    if not embeddings.dtype.is_floating:
        embeddings = tf.cast(embeddings, tf.float32)
    dtype = embeddings.dtype
    assignments = tf.cast(assignments, dtype)
    if embeddings.shape.rank != 3 or assignments.shape.rank != 3:
        raise ValueError(f"{name} expects embeddings [B, N, D] and assignments [B, N, C]; "
                         f"got shapes {embeddings.shape} and {assignments.shape}.")
    if not embeddings.shape[:2].is_compatible_with(assignments.shape[:2]):
        raise ValueError(f"embeddings {embeddings.shape} and assignments {assignments.shape} "
                         "disagree on the batch or bin axis.")
    if weights is None:
        weights = tf.ones(tf.shape(embeddings)[:2], dtype=dtype)  # [B, N]
    weights = tf.cast(weights, dtype)
    if weights.shape.rank != 2:
        raise ValueError(f"weights must have shape [B, N]; got {weights.shape}.")
    return embeddings, assignments, weights


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
    embeddings, assignments, weights = _embedding_loss_inputs(embeddings, assignments, weights,
                                                              "deep_clustering_loss")

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


def mask_mse(masks, ibm_first_source, weights=None):
    """Weighted mean squared error between a predicted mask and the source-1 IBM.

    ``sum(w * (m - y)^2) / sum(w)`` over the bins of each utterance: with the
    active-bin weight, silent bins (and the padding of a chunk) do not count,
    as in the deep-clustering loss and the bin accuracies. An utterance whose
    weights are all zero gives 0.

    Parameters
    ----------
    masks : Tensor [B, T, F]
        Predicted mask of source 1 (values in [0, 1]).
    ibm_first_source : Tensor [B, T, F]
        Ideal binary mask of source 1.
    weights : Tensor [B, T, F] or None
        Non-negative bin weights (1 active, 0 silent); ``None`` means all ones,
        the plain mean over all bins.

    Returns
    -------
    Tensor [B]
    """
    masks = tf.convert_to_tensor(masks)
    targets = tf.cast(ibm_first_source, masks.dtype)
    if weights is None:
        weights = tf.ones_like(masks)  # [B, T, F]
    weights = tf.maximum(tf.cast(weights, masks.dtype), 0.0)  # [B, T, F]
    batch_size = tf.shape(masks)[0]
    squared_error = tf.reshape(weights * tf.square(masks - targets), [batch_size, -1])  # [B, T*F]
    total_weight = tf.reduce_sum(tf.reshape(weights, [batch_size, -1]), axis=1)  # [B]
    return tf.math.divide_no_nan(tf.reduce_sum(squared_error, axis=1), total_weight)  # [B]


def permutation_invariant_mse(masks, ibm_first_source, weights=None):
    """Utterance-level permutation invariant MSE for two sources (uPIT).

    With a single mask output ``m`` for source 1 (source 2 is ``1 - m``),
    each utterance picks the better of the two speaker orders:
    ``min(MSE(m, y), MSE(m, 1 - y))`` (Kolbaek et al., TASLP 2017), both
    weighted as in :func:`mask_mse`.

    Parameters
    ----------
    masks : Tensor [B, T, F]
        Predicted mask of source 1.
    ibm_first_source : Tensor [B, T, F]
        Ideal binary mask of source 1.
    weights : Tensor [B, T, F] or None
        Bin weights as in :func:`mask_mse`.

    Returns
    -------
    Tensor [B]
    """
    masks = tf.convert_to_tensor(masks)
    targets = tf.cast(ibm_first_source, masks.dtype)
    same_order = mask_mse(masks, targets, weights)  # [B]
    swapped_order = mask_mse(masks, 1.0 - targets, weights)  # [B]
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


@keras.saving.register_keras_serializable(package="speechsep")
class MaskMSELoss(keras.losses.Loss):
    """Keras loss: (optionally permutation invariant) mask MSE on packed targets, silent bins weighted out.

    ``y_true`` is the packed target ``[B, T, F, 3]``: channel 0 is the
    source-1 IBM (the target), channel 1 the source-2 IBM (unused: it is
    ``1 - channel 0``) and channel 2 the active-bin weight, which weights the
    squared error of every bin (:func:`mask_mse`), so bins more than 40 dB
    below the mixture maximum and the padding of a chunk do not count.
    ``y_pred`` is the source-1 mask ``[B, T, F]`` (a trailing axis of size 1
    is accepted). The per-utterance loss is ``[B]``.

    The original experiments averaged over all bins; silent bins carry no
    speaker information and everything else in the kit (deep-clustering loss,
    bin accuracies) weights them out, so this loss does too.

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
        weights = y_true[..., 2]  # [B, T, F]
        if self.permutation_invariant:
            return permutation_invariant_mse(y_pred, ibm_first_source, weights)  # [B]
        return mask_mse(y_pred, ibm_first_source, weights)  # [B]

    def get_config(self):
        config = super().get_config()
        config["permutation_invariant"] = self.permutation_invariant
        return config


# ----------------------------------------------------------------------------- the Chimera++ recipe


def whitened_deep_clustering_loss(embeddings, assignments, weights=None, epsilon=1e-3):
    """Whitened deep clustering loss (Wang, Le Roux, Hershey, ICASSP 2018, "DC-W").

    ``L = D - tr((VᵀV)⁻¹ VᵀY (YᵀY)⁻¹ YᵀV)``: the k-means objective on
    whitened embeddings ``V (VᵀV)^(-1/2)``. Rows of ``V`` and ``Y`` are
    weighted by ``sqrt(weight)`` as in :func:`deep_clustering_loss`, so silent
    bins do not count. The Gram matrices are divided by ``sum w`` before
    ``epsilon·I`` is added to each one to invert (the value itself does not
    depend on that scale); a source absent from the item then simply adds
    nothing. The minimum, ``D - C`` up to ``O(epsilon)``, is reached when the
    embeddings span exactly the assignments' subspace (e.g. ``V = Y·R`` for an
    orthonormal ``R`` [C, D]). An all-silent item gives 0.

    Parameters
    ----------
    embeddings : Tensor [B, N, D]
    assignments : Tensor [B, N, C]
        One-hot dominant-source assignment ``Y``.
    weights : Tensor [B, N] or None
        Non-negative bin weights (1 active, 0 silent); ``None`` means all ones.
    epsilon : float
        Ridge added to the normalised Gram matrices before inversion.

    Returns
    -------
    Tensor [B]
    """
    embeddings, assignments, weights = _embedding_loss_inputs(embeddings, assignments, weights,
                                                              "whitened_deep_clustering_loss")
    dtype = embeddings.dtype
    weights = tf.maximum(weights, 0.0)  # [B, N]
    total = tf.reduce_sum(weights, axis=1)  # [B]
    root_weights = tf.sqrt(weights)[..., tf.newaxis]  # [B, N, 1]
    weighted_embeddings = embeddings * root_weights  # [B, N, D]
    weighted_assignments = assignments * root_weights  # [B, N, C]
    scale = tf.math.divide_no_nan(tf.ones_like(total), total)[:, tf.newaxis, tf.newaxis]  # [B, 1, 1]
    embedding_gram = scale * tf.einsum("bnd,bne->bde", weighted_embeddings, weighted_embeddings)  # [B, D, D]
    cross_gram = scale * tf.einsum("bnd,bnc->bdc", weighted_embeddings, weighted_assignments)  # [B, D, C]
    target_gram = scale * tf.einsum("bnc,bnk->bck", weighted_assignments, weighted_assignments)  # [B, C, C]
    embedding_dim = tf.shape(embedding_gram)[-1]
    n_sources = tf.shape(target_gram)[-1]
    ridge_d = epsilon * tf.eye(embedding_dim, dtype=dtype)  # [D, D]
    ridge_c = epsilon * tf.eye(n_sources, dtype=dtype)  # [C, C]
    whitened_cross = tf.linalg.solve(embedding_gram + ridge_d, cross_gram)  # (VᵀV)⁻¹ VᵀY: [B, D, C]
    projected = tf.linalg.solve(target_gram + ridge_c, tf.transpose(cross_gram, [0, 2, 1]))  # (YᵀY)⁻¹ YᵀV: [B, C, D]
    trace = tf.einsum("bdc,bcd->b", whitened_cross, projected)  # [B]
    loss = tf.cast(embedding_dim, dtype) - trace  # [B]
    return tf.where(total > 0, loss, tf.zeros_like(loss))  # [B]


def mask_inference_loss(masks, mixture_magnitude, targets):
    """Utterance-level permutation-invariant L1 mask-inference loss (Chimera++ "MI" head).

    ``min over permutations π of  Σ_n Σ_c | m̂_{n,c}·|X_n| − T_{n,π(c)} |  /  Σ_n |X_n|``

    where ``T`` are the source targets: ``|S_c|`` for the magnitude spectrum
    approximation (MSA) or ``|S_c|·cos(θ_c − θ_X)`` truncated to ``[0, |X|]``
    for the truncated phase-sensitive approximation (tPSA), see
    :func:`speechsep.data.pipeline.mask_targets`. Every bin counts, as in
    Chimera++: a silent bin has a tiny ``|X|`` and so a tiny error, and the
    padding of a chunk (``|X| = 0``) none. Dividing by ``Σ|X|`` makes the loss
    independent of the mixture level (every chunk weighs the same); an
    all-zero chunk gives 0.

    Parameters
    ----------
    masks : Tensor [B, N, C]
        Estimated masks (the mask head's softmax over the C sources).
    mixture_magnitude : Tensor [B, N]
        Mixture STFT magnitude ``|X|`` of each bin.
    targets : Tensor [B, N, C]
        Target magnitudes of the C sources (any order).

    Returns
    -------
    Tensor [B]
    """
    masks = tf.convert_to_tensor(masks)
    dtype = masks.dtype
    mixture_magnitude = tf.cast(mixture_magnitude, dtype)
    targets = tf.cast(targets, dtype)
    n_sources = masks.shape[-1]
    if masks.shape.rank != 3 or n_sources is None:
        raise ValueError(f"mask_inference_loss expects masks [B, N, C] with a known C; got {masks.shape}.")
    estimates = masks * mixture_magnitude[..., tf.newaxis]  # [B, N, C]
    # pairwise[b, i, j] = Σ_n |estimate i − target j|
    pairwise = tf.reduce_sum(tf.abs(estimates[..., :, tf.newaxis] - targets[..., tf.newaxis, :]), axis=1)  # [B, C, C]
    best = best_permutation_cost(pairwise)  # [B]
    return tf.math.divide_no_nan(best, tf.reduce_sum(mixture_magnitude, axis=1))  # [B]


def best_permutation_cost(pairwise):
    """Utterance-level PIT: the least total cost over the assignments of estimates to targets.

    pairwise : Tensor [B, C, C], ``pairwise[b, i, j]`` the cost of estimate i
    against target j (C known). Returns [B], ``min over permutations π of
    Σ_i pairwise[b, i, π(i)]``.
    """
    n_sources = pairwise.shape[-1]
    selection = tf.constant([[[1.0 if p[i] == j else 0.0 for j in range(n_sources)] for i in range(n_sources)]
                             for p in itertools.permutations(range(n_sources))], dtype=pairwise.dtype)  # [P, C, C]
    return tf.reduce_min(tf.einsum("bij,pij->bp", pairwise, selection), axis=1)  # [B]


def _flatten_bins(tensor, channels):
    """[B, T, F, K] -> [B, T*F, K]."""
    return tf.reshape(tensor, [tf.shape(tensor)[0], -1, channels])


@keras.saving.register_keras_serializable(package="speechsep")
class WhitenedDeepClusteringLoss(keras.losses.Loss):
    """Keras loss: :func:`whitened_deep_clustering_loss` on packed targets.

    ``y_true`` is the packed target ``[B, T, F, C + 1]`` (one-hot IBM plus the
    active-bin weight, as for :class:`DeepClusteringLoss`) and ``y_pred`` the
    embeddings ``[B, T, F, D]``.
    """

    def __init__(self, epsilon=1e-3, name="whitened_deep_clustering_loss", reduction="sum_over_batch_size",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.epsilon = float(epsilon)

    def call(self, y_true, y_pred):
        n_sources = tf.shape(y_true)[-1] - 1
        embeddings = _flatten_bins(y_pred, tf.shape(y_pred)[-1])  # [B, T*F, D]
        assignments = _flatten_bins(y_true[..., :-1], n_sources)  # [B, T*F, C]
        weights = tf.reshape(y_true[..., -1], [tf.shape(y_true)[0], -1])  # [B, T*F]
        return whitened_deep_clustering_loss(embeddings, assignments, weights, self.epsilon)  # [B]

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="speechsep")
class MaskInferenceLoss(keras.losses.Loss):
    """Keras loss: :func:`mask_inference_loss` of the Chimera++ mask head.

    ``y_true`` is packed as ``[B, T, F, C + 1]``: channels ``0 .. C-1`` hold
    the source target magnitudes (MSA or tPSA) and channel ``C`` the mixture
    magnitude ``|X|`` (the network's input features are normalised
    log-magnitudes, so ``|X|`` travels with the targets). ``y_pred`` holds the
    masks ``[B, T, F, C]``.
    """

    def __init__(self, name="mask_inference_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        n_sources = y_pred.shape[-1]
        if n_sources is None or (y_true.shape[-1] is not None and y_true.shape[-1] != n_sources + 1):
            raise ValueError(f"MaskInferenceLoss expects masks [B, T, F, C] and targets [B, T, F, C + 1]; "
                             f"got {y_pred.shape} and {y_true.shape}.")
        masks = _flatten_bins(y_pred, n_sources)  # [B, T*F, C]
        targets = _flatten_bins(y_true[..., :-1], n_sources)  # [B, T*F, C]
        magnitude = tf.reshape(y_true[..., -1], [tf.shape(y_true)[0], -1])  # [B, T*F]
        return mask_inference_loss(masks, magnitude, targets)  # [B]


def _inverse_stft(spectra):
    """complex [..., T, F] -> [..., (T - 1)·hop + N_FFT] by overlap-add with the kit's sqrt-Hann window.

    A fixed linear map, the same for estimates and references (frame edges
    included), so ratios of their energies need no window normalisation.
    """
    from speechsep.signal import HOP_LENGTH, N_FFT

    window = lambda length, dtype: tf.sqrt(tf.signal.hann_window(length, periodic=True, dtype=dtype))  # noqa: E731
    return tf.signal.inverse_stft(spectra, frame_length=N_FFT, frame_step=HOP_LENGTH, fft_length=N_FFT,
                                  window_fn=window)


WAVEFORM_SNR_CAP_DB = 30.0
"""The thresholded SI-SDR of :func:`waveform_mask_loss` saturates at this many dB (τ = 10^(−cap/10))."""


def waveform_mask_loss(masks, mixture_spectrum, source_spectra, cap_db: float = WAVEFORM_SNR_CAP_DB):
    """Permutation-invariant thresholded SI-SDR of the masked mixture after the inverse STFT (in dB, lower is better).

    Each estimate ``ŝ_i = iSTFT(m_i · X)`` is compared with each reference
    ``s_j = iSTFT(S_j)``, both resynthesised from the same frames:

    * a present reference: ``−10 log10(|αs|² / (|ŝ − αs|² + τ|αs|²))`` with the
      SI-SDR's optimal scale ``α``, so the loss saturates at ``−cap_db``;
    * a silent reference (a talker the mixture lacks, energy below 10⁻⁶ of the
      mixture's): ``10 log10((|ŝ|² + τ|x|²) / |x|²)``, the estimate's level
      below the mixture, also floored at ``−cap_db`` (Wisdom et al., MixIT,
      NeurIPS 2020, threshold their SNR the same way),

    with ``τ = 10^(−cap_db/10)``; the best permutation's mean over the C
    sources is the loss. An all-zero chunk gives 0.

    Parameters
    ----------
    masks : Tensor [B, T, F, C]
    mixture_spectrum : complex Tensor [B, T, F]
    source_spectra : complex Tensor [B, T, F, C] (zeros for absent talkers)

    Returns
    -------
    Tensor [B]
    """
    masks = tf.cast(masks, tf.float32)
    n_sources = masks.shape[-1]
    if masks.shape.rank != 4 or n_sources is None:
        raise ValueError(f"waveform_mask_loss expects masks [B, T, F, C] with a known C; got {masks.shape}.")
    tau = 10.0 ** (-cap_db / 10.0)
    estimates = _inverse_stft(tf.transpose(tf.cast(masks, tf.complex64) * mixture_spectrum[..., None],
                                           [0, 3, 1, 2]))  # [B, C, L]
    references = _inverse_stft(tf.transpose(source_spectra, [0, 3, 1, 2]))  # [B, C, L]
    mixture = _inverse_stft(mixture_spectrum)  # [B, L]
    mixture_energy = tf.reduce_sum(tf.square(mixture), axis=-1)[:, None, None]  # [B, 1, 1]
    dot = tf.einsum("bil,bjl->bij", estimates, references)  # [B, C_est, C_ref]
    reference_energy = tf.reduce_sum(tf.square(references), axis=-1)[:, None, :]  # [B, 1, C_ref]
    estimate_energy = tf.reduce_sum(tf.square(estimates), axis=-1)[:, :, None]  # [B, C_est, 1]
    alpha = tf.math.divide_no_nan(dot, reference_energy)  # [B, C_est, C_ref]
    target = tf.square(alpha) * reference_energy  # |αs|²
    noise = tf.maximum(estimate_energy - 2.0 * alpha * dot + target, 0.0)  # |ŝ − αs|²
    log10 = lambda x: tf.math.log(x) / tf.math.log(10.0)  # noqa: E731
    tiny = 1e-12
    present_loss = -10.0 * log10((target + tiny) / (noise + tau * target + tiny))
    silent_loss = 10.0 * log10((estimate_energy + tau * mixture_energy + tiny) / (mixture_energy + tiny))
    present = reference_energy > 1e-6 * mixture_energy  # [B, 1, C_ref]
    pairwise = tf.where(present, present_loss, silent_loss)  # [B, C_est, C_ref]
    best = best_permutation_cost(pairwise) / n_sources  # [B]
    return tf.where(mixture_energy[:, 0, 0] > 0, best, tf.zeros_like(best))  # [B]


@keras.saving.register_keras_serializable(package="speechsep")
class WaveformMaskLoss(keras.losses.Loss):
    """Keras loss: :func:`waveform_mask_loss` of the Chimera++ mask head (``mask_loss`` ``"sisdr"``).

    ``y_true`` is packed as ``[B, T, F, 2C + 2]`` (:func:`speechsep.data.pipeline.packed_mask_targets`): the
    real parts of the C source STFTs, their imaginary parts, then the mixture STFT's real and imaginary part.
    ``y_pred`` holds the masks ``[B, T, F, C]``.
    """

    def __init__(self, name="waveform_mask_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        n_sources = y_pred.shape[-1]
        if n_sources is None or (y_true.shape[-1] is not None and y_true.shape[-1] != 2 * n_sources + 2):
            raise ValueError(f"WaveformMaskLoss expects masks [B, T, F, C] and targets [B, T, F, 2C + 2]; "
                             f"got {y_pred.shape} and {y_true.shape}.")
        sources = tf.complex(y_true[..., :n_sources], y_true[..., n_sources:2 * n_sources])  # [B, T, F, C]
        mixture = tf.complex(y_true[..., 2 * n_sources], y_true[..., 2 * n_sources + 1])  # [B, T, F]
        return waveform_mask_loss(y_pred, mixture, sources)  # [B]
