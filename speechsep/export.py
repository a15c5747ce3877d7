"""A separation model as a TensorFlow SavedModel: an 8 kHz waveform in, the estimates out, all in the graph.

``python -m speechsep export NAME|RUN_DIR --format saved_model OUT`` writes it;
anyone with TensorFlow loads it without this kit::

    import tensorflow as tf
    model = tf.saved_model.load("OUT")
    estimates = model.signatures["serving_default"](waveform=tf.constant(w8k))["estimates"]   # [K, samples]
    estimates = model.signatures["separate_k"](waveform=..., num_speakers=tf.constant(2))["estimates"]

The graph does what :mod:`speechsep.separation.longform` does for a recording
at 8 kHz that fits one network pass: the kit's STFT (256-point sqrt-Hann,
hop 64, centred), the normalised log-magnitude features, the network, the
active bins (within 40 dB of the peak), the count (a counting model whose
``count_method`` is ``participation``: the participation ratio ``1 / Σλ²`` of
the Gram matrix of the active bins' unit embeddings, with ``Σλ²`` its squared
Frobenius norm; otherwise the model's ``num_speakers``), k-means for every
count the model may find (the counted one's masks are kept) with a deterministic start (farthest-first from the
embedding nearest the mean direction) and :data:`KMEANS_ITERATIONS` Lloyd
steps on at most :data:`MAX_POINTS` active bins (every n-th), soft masks
``softmax(β·vᵀμ)`` (or the nearest centre), and the overlap-add inverse STFT.
The Python path draws a random subsample and seeds k-means++ instead, so the
two agree to the metrics' resolution, not bit for bit
(``tests/test_export.py``, ``docs/benchmarks.md``).

Only deep-clustering networks with a clustering readout (``kmeans``) export.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from speechsep import signal

FORMATS = ("saved_model", "tflite")
KMEANS_ITERATIONS = 30
MAX_POINTS = 20000  # active bins clustered and counted at most (every n-th)


def separation_module(model):
    """A ``tf.Module`` with ``separate(waveform [N] float32 at 8 kHz, num_speakers int32 scalar, 0 = count)``
    -> estimates [K, N] float32, for a loaded :class:`speechsep.pretrained.PretrainedModel`."""
    import tensorflow as tf

    from speechsep.separation import counting

    config = model.config
    if config.model != "dc" or config.readout not in ("kmeans",):
        raise ValueError(f"{model.name}: only deep-clustering models with the kmeans readout export "
                         f"(this one: model {config.model}, readout {config.readout})")
    counts_in_graph = bool(config.counts_talkers) and config.count_method == "participation"
    per_talker = float(counting.config_params(config).get("directions_per_talker", 1.0))
    talkers = sorted(config.talker_set) if counts_in_graph else [config.num_speakers]
    max_talkers = max(talkers + [config.num_speakers])
    beta = config.soft_mask_beta
    window = signal.analysis_window().astype(np.float32)

    class Separation(tf.Module):
        def __init__(self):
            super().__init__(name="speechsep_separation")
            self.network = model.separator.model
            self.mean = tf.constant(np.asarray(model.separator.mean, np.float32))
            self.std = tf.constant(np.asarray(model.separator.std, np.float32))
            self.window = tf.constant(window)
            self.talkers = tf.constant(talkers, tf.int32)

        def _stft(self, waveform):
            samples = tf.shape(waveform)[0]
            frames = (samples + signal.HOP_LENGTH - 1) // signal.HOP_LENGTH + 1
            padded = (frames - 1) * signal.HOP_LENGTH + signal.N_FFT
            half = signal.N_FFT // 2
            x = tf.pad(waveform, [[half, padded - samples - half]])
            return tf.signal.rfft(tf.signal.frame(x, signal.N_FFT, signal.HOP_LENGTH) * self.window)  # [T, F]

        def _istft(self, spectra, samples):
            segments = tf.signal.irfft(spectra, [signal.N_FFT]) * self.window  # [K, T, N_FFT]
            summed = tf.signal.overlap_and_add(segments, signal.HOP_LENGTH)  # [K, L]
            weight = tf.signal.overlap_and_add(tf.tile((self.window ** 2)[None], [tf.shape(spectra)[1], 1]),
                                               signal.HOP_LENGTH)  # [L]
            out = summed / tf.maximum(weight, 1e-8)
            return out[:, signal.N_FFT // 2:signal.N_FFT // 2 + samples]

        def _count(self, points):
            n = tf.cast(tf.shape(points)[0], tf.float32)
            gram = tf.matmul(points, points, transpose_a=True) / n
            ratio = 1.0 / tf.reduce_sum(gram * gram)  # Σλ² of a symmetric matrix is its squared Frobenius norm
            found = 1.0 + tf.floor((ratio - 1.0) / per_talker + 0.5)
            allowed = tf.cast(self.talkers, tf.float32)
            distance = tf.abs(allowed - found) * 10.0 + allowed / 100.0
            return tf.gather(self.talkers, tf.argmin(distance))  # nearest allowed count, the smaller on a tie

        def _kmeans(self, points, k):
            mean = tf.reduce_mean(points, axis=0)
            first = tf.argmax(tf.linalg.matvec(points, mean))
            centers = tf.gather(points, [first])  # [1, D]
            for _ in range(k - 1):  # farthest first: the point least like every centre so far
                nearest = tf.reduce_max(tf.matmul(points, centers, transpose_b=True), axis=1)
                centers = tf.concat([centers, tf.gather(points, [tf.argmin(nearest)])], axis=0)
            for _ in range(KMEANS_ITERATIONS):
                distances = (tf.reduce_sum(centers ** 2, axis=1)[None]
                             - 2.0 * tf.matmul(points, centers, transpose_b=True))
                one_hot = tf.one_hot(tf.argmin(distances, axis=1), k)  # [N, K]
                counts = tf.reduce_sum(one_hot, axis=0)[:, None]
                centers = tf.where(counts > 0, tf.matmul(one_hot, points, transpose_a=True) / tf.maximum(counts, 1.0),
                                   centers)
            return tf.math.l2_normalize(centers, axis=1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int32)])
        def separate(self, waveform, num_speakers):
            spectrum = self._stft(waveform)  # [T, F] complex64
            magnitude = tf.abs(spectrum)
            features = (tf.math.log(magnitude + signal.LOG_FLOOR) - self.mean) / self.std
            output = self.network(features[None], training=False)
            embeddings = tf.math.l2_normalize((output["embedding"] if isinstance(output, dict) else output)[0], axis=-1)
            active = magnitude >= tf.reduce_max(magnitude) * 10.0 ** (-signal.SILENCE_THRESHOLD_DB / 20.0)
            points = tf.boolean_mask(embeddings, active)  # [N, D]
            step = tf.maximum(1, (tf.shape(points)[0] + MAX_POINTS - 1) // MAX_POINTS)
            points = points[::step]
            counted = self._count(points) if counts_in_graph else config.num_speakers
            k = tf.where(num_speakers > 0, num_speakers, counted)
            k = tf.clip_by_value(k, 1, max_talkers)

            def masks_of(count):  # [max_talkers, T, F]: the masks of `count` talkers, then zero masks
                centers = self._kmeans(points, count)  # [K, D]
                logits = tf.einsum("tfd,kd->ktf", embeddings, centers)
                if beta is not None:
                    masks = tf.nn.softmax(float(beta) * logits, axis=0)
                else:
                    masks = tf.one_hot(tf.argmax(logits, axis=0), count, axis=0)
                return tf.pad(masks, [[0, max_talkers - count], [0, 0], [0, 0]])

            # every count's masks, then the one counted: no data-dependent branch (TFLite has no Case op)
            masks = tf.gather(tf.stack([masks_of(count) for count in range(1, max_talkers + 1)]), k - 1)
            estimates = self._istft(tf.cast(masks, tf.complex64) * spectrum[None], tf.shape(waveform)[0])
            return estimates[:k]

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="waveform")])
        def serving_default(self, waveform):
            return {"estimates": self.separate(waveform, tf.constant(0, tf.int32))}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="waveform"),
                                      tf.TensorSpec([], tf.int32, name="num_speakers")])
        def separate_k(self, waveform, num_speakers):
            return {"estimates": self.separate(waveform, num_speakers)}

    return Separation()


def export(model, out, fmt: str = "saved_model", overwrite: bool = False) -> Path:
    """Write ``model`` (a :class:`~speechsep.pretrained.PretrainedModel`) to ``out`` as a SavedModel folder or a
    ``.tflite`` file. Written under a temporary name beside ``out`` and renamed: an existing ``out`` is kept
    unless ``overwrite``, and a failed export leaves nothing. ``ValueError`` (one line) for an existing
    ``out``, an unknown format, a model that does not export or a converter that refuses it."""
    import tensorflow as tf

    out = Path(out)
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: choose from {', '.join(FORMATS)}")
    if out.exists() and not overwrite:
        raise ValueError(f"{out}: already exists (--overwrite replaces it)")
    module = separation_module(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as scratch:
        saved = Path(scratch) / "saved_model"
        tf.saved_model.save(module, str(saved), signatures={"serving_default": module.serving_default,
                                                             "separate_k": module.separate_k})
        if fmt == "saved_model":
            result = saved
        else:
            converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
            try:
                payload = converter.convert()
            except Exception as error:  # the converter's errors are many kinds; one line says which
                first = next((line for line in str(error).splitlines() if "error" in line.lower()), str(error))
                raise ValueError(f"tflite converter refused {model.name}: {first.strip()[:300]}") from None
            result = Path(scratch) / "model.tflite"
            result.write_bytes(payload)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        result.rename(out)
    return out
