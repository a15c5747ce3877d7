"""``bench train``: training throughput of the deep-clustering step against this machine's sgemm ceiling.

Prints the CPU, its bfloat16 support and the thread settings; the float32
matmul rate through TensorFlow at the shapes the network uses (the ceiling is
the best large shape); then, per implementation, the training step of the
reference network (default :class:`ExperimentConfig`: 2 × BLSTM(300), D = 40,
32 chunks of 100 frames) on a fixed batch in memory: steps/s, frames/s,
achieved GFLOP/s (matmul FLOPs counted from the built model), share of the
ceiling, speed-up over the stock Keras layer, loss after the timed steps, and
the CPU cores other processes used meanwhile (noise); the recurrent loops
alone and their share of the step. Last, the share of step time spent
waiting for input, for the shard pipeline and for dynamic mixing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from benchmarks import SHARED_LIBRISPEECH, SHARED_SAMPLE
from speechsep.hardware import CPU_FLAGS_OF_NOTE, cpu_info, native_bfloat16
from speechsep.signal import N_BINS

BATCH, FRAMES = 32, 100


# ----------------------------------------------------------------------------- machine

def cpu_description() -> tuple[str, dict]:
    """CPU model name and the flags that matter here (:func:`speechsep.hardware.cpu_info`)."""
    info = cpu_info()
    return info.name, {flag: flag in info.flags for flag in CPU_FLAGS_OF_NOTE}


def load_average() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a"


def _busy_jiffies() -> int:
    values = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    return sum(values) - values[3] - values[4]  # minus idle and iowait


def timed_with_noise(function):
    """Run ``function()``; return (result, wall seconds, CPU cores used by OTHER processes meanwhile)."""
    hz = os.sysconf("SC_CLK_TCK")
    busy, mine, start = _busy_jiffies(), sum(os.times()[:2]), time.perf_counter()
    result = function()
    wall = time.perf_counter() - start
    other = (_busy_jiffies() - busy) / hz - (sum(os.times()[:2]) - mine)
    return result, wall, max(0.0, other) / wall


# ----------------------------------------------------------------------------- ceiling

def matmul_gflops(m: int, k: int, n: int, batch: int | None = None, dtype: str = "float32",
                  repeats: int = 20) -> float:
    """GFLOP/s of [batch,] [m, k] × [k, n] through TensorFlow (best of 3 timed calls)."""
    import tensorflow as tf

    a = tf.cast(tf.random.normal((m, k) if batch is None else (batch, m, k)), dtype)
    b = tf.cast(tf.random.normal((k, n) if batch is None else (batch, k, n)), dtype)

    @tf.function
    def run(a, b):
        # a loop-carried accumulator: every iteration runs its own matmul (identical ones would be deduplicated)
        def body(i, total):
            return i + 1, total + tf.cast(tf.reshape(tf.matmul(a, b), [-1])[0], tf.float32)

        return tf.while_loop(lambda i, _: i < repeats, body, (tf.constant(0), tf.zeros(())))[1]

    run(a, b).numpy()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        run(a, b).numpy()
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2.0 * m * k * n * (batch or 1) / best / 1e9


def ceiling_shapes(config) -> list[tuple[str, tuple, int | None, bool]]:
    """(label, (m, k, n), batch, large) of the matmuls of one training step."""
    rows, units, bins = BATCH * FRAMES, config.hidden_units, N_BINS
    return [(f"input projection [{rows},{bins}]x[{bins},{4 * units}]", (rows, bins, 4 * units), None, True),
            (f"input projection [{rows},{2 * units}]x[{2 * units},{4 * units}]", (rows, 2 * units, 4 * units),
             None, True),
            (f"embedding [{rows},{2 * units}]x[{2 * units},{bins * config.embedding_dim}]",
             (rows, 2 * units, bins * config.embedding_dim), None, True),
            (f"recurrent [{BATCH},{units}]x[{units},{4 * units}]", (BATCH, units, 4 * units), None, False),
            (f"recurrent both directions [2,{BATCH},{units}]x[2,{units},{4 * units}]", (BATCH, units, 4 * units),
             2, False)]


def recurrence_time(units: int, batch: int = BATCH, frames: int = FRAMES, repeats: int = 10) -> dict:
    """The fused recurrence of ONE bidirectional layer alone, forward + backward, XLA-compiled.

    Times :func:`speechsep.nn.recurrent.recurrence` on pre-projected inputs
    [T, 2, B, 4H] (median of ``repeats`` calls): the per-time-step ``h @ U``
    loop of the forward pass, the ``dz @ Uᵀ`` loop of the backward pass and
    the one ``dU`` matmul. Returns seconds and GFLOP/s of those matmuls.
    """
    import tensorflow as tf

    from speechsep.nn.recurrent import recurrence

    xw = tf.random.normal([frames, 2, batch, 4 * units])  # [T, D, B, 4H]
    kernel = tf.random.normal([2, units, 4 * units], stddev=units ** -0.5)  # [D, H, 4H]

    @tf.function(jit_compile=True)
    def step(xw, kernel):
        with tf.GradientTape() as tape:
            tape.watch([xw, kernel])
            h = recurrence(xw, kernel)  # [T, D, B, H]
            loss = tf.reduce_sum(h * h)
        return tape.gradient(loss, [xw, kernel])

    step(xw, kernel)[1].numpy()  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step(xw, kernel)[1].numpy()
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times))
    flops = 3 * 2.0 * frames * 2 * batch * units * 4 * units  # forward loop, backward loop, dU
    return {"seconds": seconds, "gflops": flops / seconds / 1e9}


# ----------------------------------------------------------------------------- FLOPs

def train_step_flops(model, batch: int, frames: int, num_sources: int = 2) -> float:
    """Matmul FLOPs of one training step (forward + backward), counted from the model's layers.

    Forward, with M = batch·frames rows: an LSTM direction of input width F and
    H units costs 2·M·(F + H)·4H (input projection and recurrent matmul), a
    Dense layer 2·M·in·out, the deep-clustering loss's Gram matrices VᵀV, VᵀY,
    YᵀY 2·batch·N·(D² + D·C + C²) over N = frames·N_BINS (129) bins. Backward = 2 ×
    forward (gradients of inputs and of weights). Elementwise work is not counted.
    """
    import keras

    from speechsep.nn.recurrent import FastBidirectionalLSTM, FastLSTM

    rows = batch * frames
    forward = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        width = layer.input.shape[-1]
        if isinstance(layer, keras.layers.Bidirectional):
            forward += sum(2.0 * rows * (width + sub.units) * 4 * sub.units
                           for sub in (layer.forward_layer, layer.backward_layer))
        elif isinstance(layer, (FastBidirectionalLSTM, FastLSTM, keras.layers.LSTM)):
            directions = 2 if isinstance(layer, FastBidirectionalLSTM) else 1
            forward += directions * 2.0 * rows * (width + layer.units) * 4 * layer.units
        elif isinstance(layer, keras.layers.Dense):  # per frame, or once per item (the count head)
            forward += 2.0 * (rows if len(layer.input.shape) == 3 else batch) * width * layer.units
    output = model.output["embedding"] if isinstance(model.output, dict) else model.output
    bins, dim = output.shape[-2], output.shape[-1]
    forward += 2.0 * batch * frames * bins * (dim * dim + dim * num_sources + num_sources**2)
    return 3.0 * forward


# ----------------------------------------------------------------------------- training step

def _fixed_batch(config):
    """Features [B, T, F] and the packed targets of ``config``'s loss (a dict for a Chimera++ network)."""
    rng = np.random.default_rng(0)
    sources = config.max_talkers
    features = rng.standard_normal((BATCH, FRAMES, N_BINS)).astype(np.float32)
    labels = np.eye(sources, dtype=np.float32)[rng.integers(0, sources, (BATCH, FRAMES, N_BINS))]
    weights = (rng.random((BATCH, FRAMES, N_BINS, 1)) > 0.2).astype(np.float32)
    embedding = np.concatenate([labels, weights], axis=-1)  # [B, T, F, C+1]
    if not (config.mask_head or config.count_head):
        return features, embedding
    targets = {"embedding": embedding}
    if config.mask_head:  # C target magnitudes, then |X|
        targets["mask"] = rng.random((BATCH, FRAMES, N_BINS, sources + 1)).astype(np.float32)
    if config.count_head:
        targets["count"] = np.eye(sources, dtype=np.float32)[rng.integers(0, sources, BATCH)]  # [B, C]
    return features, targets


def _compiled(config):
    import keras

    from speechsep.nn.models import build_model
    from speechsep.training.trainer import make_loss, make_loss_weights, seed_everything

    seed_everything(0)
    model = build_model(config)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=config.clip_norm),
                  loss=make_loss(config), loss_weights=make_loss_weights(config), jit_compile=config.jit_compile)
    return model


def time_step(config, steps: int, warmup: int = 3) -> dict:
    """Seconds per training step of ``config``'s model on a fixed batch, and its loss after ``steps``."""
    model = _compiled(config)
    features, targets = _fixed_batch(config)
    start = time.perf_counter()
    model.train_on_batch(features, targets)
    first = time.perf_counter() - start
    for _ in range(warmup - 1):
        model.train_on_batch(features, targets)

    def run():
        for _ in range(steps):
            loss = model.train_on_batch(features, targets)
        return loss

    loss, wall, noise = timed_with_noise(run)
    total = loss[0] if isinstance(loss, list) else loss  # a multi-output model: [total, per output...]
    return {"seconds": wall / steps, "first": first, "loss": float(total), "noise": noise,
            "flops": train_step_flops(model, BATCH, FRAMES, config.num_speakers)}


def input_wait(config, dataset, steps: int) -> dict:
    """Share of the time of ``steps`` training steps fed by ``dataset`` spent waiting for the next batch."""
    from speechsep.training.trainer import make_packer

    model = _compiled(config)
    pack = make_packer(config)
    batches = iter(dataset.map(pack))
    for _ in range(3):
        model.train_on_batch(*next(batches))
    waiting, start = 0.0, time.perf_counter()
    for _ in range(steps):
        before = time.perf_counter()
        features, targets = next(batches)
        waiting += time.perf_counter() - before
        model.train_on_batch(features, targets)
    return {"wait": waiting / (time.perf_counter() - start)}


# ----------------------------------------------------------------------------- the benchmark

VARIANTS = {  # name -> ExperimentConfig changes
    "keras": {"recurrent": "keras", "jit_compile": False},
    "keras +jit": {"recurrent": "keras", "jit_compile": True},
    "fast": {"recurrent": "fast", "jit_compile": False},
    "fast +jit": {"recurrent": "fast", "jit_compile": True},
    "fast +jit bf16": {"recurrent": "fast", "jit_compile": True, "precision": "bfloat16"},
    # the shipped models' networks: deep clustering on 1-3 talkers, and Chimera++ (mask and count heads) beside it
    "fast +jit 1-3": {"recurrent": "fast", "jit_compile": True, "talkers": (1, 2, 3)},
    "fast +jit chimera 1-3": {"recurrent": "fast", "jit_compile": True, "talkers": (1, 2, 3), "mask_head": True,
                              "count_head": True},
}


def _input_rows(args, config) -> list[tuple[str, float]]:
    import dataclasses

    from speechsep.cli import corpus_from_args
    from speechsep.data.mixing import MixingConfig, split_speakers
    from speechsep.data.pipeline import estimate_stats, make_dataset, make_dynamic_dataset
    from speechsep.data.shards import DatasetConfig, write_dataset

    if args.timit is None and not args.corpus_root and args.corpus is None:  # the 242-speaker corpus
        args = argparse.Namespace(**{**vars(args), "timit": SHARED_SAMPLE, "corpus_root": [SHARED_LIBRISPEECH]})
    corpus = corpus_from_args(args)
    mixing = MixingConfig(crop_seconds=args.crop_seconds or None)
    speakers = split_speakers(corpus, seed=0)["train"]
    rows = []
    mean, std = estimate_stats(corpus, speakers, mixing, mixtures=50)
    dynamic = make_dynamic_dataset(corpus, speakers, mixing, mean, std, BATCH, FRAMES, seed=0)
    rows.append((f"dynamic mixing ({len(corpus.speakers)} speakers, crops {mixing.crop_seconds} s)",
                 input_wait(config, dynamic, args.input_steps)["wait"]))
    with tempfile.TemporaryDirectory(dir=args.scratch) as scratch:
        dataset_config = DatasetConfig(mixtures={"train": 60, "valid": 2, "test": 2}, shard_size=20,
                                       mixing=dataclasses.replace(mixing, crop_seconds=None))
        write_dataset(corpus, scratch, dataset_config, progress=False)
        shards = make_dataset(scratch, "train", BATCH, FRAMES, seed=0).repeat()
        rows.append(("shard pipeline (pickle shards)", input_wait(config, shards, args.input_steps)["wait"]))
    return rows


def bench_train(args) -> list[dict]:
    import keras
    import tensorflow as tf

    if args.intra_op or args.inter_op:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    from speechsep.config import ExperimentConfig

    config = ExperimentConfig(batch_size=BATCH, chunk_frames=FRAMES)
    name, flags = cpu_description()
    print(f"CPU: {name}, {os.cpu_count()} logical cores; "
          + ", ".join(f"{flag} {'yes' if present else 'no'}" for flag, present in flags.items()))
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}; threads intra_op "
          f"{tf.config.threading.get_intra_op_parallelism_threads()} inter_op "
          f"{tf.config.threading.get_inter_op_parallelism_threads()} (0 = TensorFlow's default: all cores); "
          f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset (on)')}; "
          f"load average {load_average()}")
    print(f"model: {config.num_layers} x BLSTM({config.hidden_units}), D={config.embedding_dim}, "
          f"batch {BATCH} x {FRAMES} frames\n")

    ceiling = None
    if not args.no_ceiling:
        dtypes = ["float32"] + (["bfloat16"] if native_bfloat16() else [])
        print(f"{'matmul through TensorFlow':<62}{'dtype':>9}{'GFLOP/s':>9}")
        for dtype in dtypes:
            for label, (m, k, n), batch, large in ceiling_shapes(config):
                rate = matmul_gflops(m, k, n, batch, dtype)
                if large and dtype == "float32":
                    ceiling = max(ceiling or 0.0, rate)
                print(f"{label:<62}{dtype:>9}{rate:>9.1f}")
        print(f"sgemm ceiling (best large float32 shape): {ceiling:.1f} GFLOP/s\n")

    names = [n.strip() for n in args.variants.split(",")] if args.variants else list(VARIANTS)
    if not native_bfloat16():
        names = [n for n in names if "bf16" not in n]
    rows, flops = [], None
    for variant in names:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
        result = time_step(config.replace(**VARIANTS[variant]), args.steps)
        flops = flops or result["flops"]
        rows.append({"variant": variant, **result})
        print(f"  {variant}: {result['seconds']:.3f} s/step (first step incl. tracing/compiling "
              f"{result['first']:.1f} s)", flush=True)
    print(f"\nmatmul FLOPs per training step (forward + backward, counted from the model): {flops / 1e9:.1f} GFLOP")
    base = next((r["seconds"] for r in rows if r["variant"] == "keras"), None)
    print(f"{'variant':<22}{'steps/s':>8}{'frames/s':>9}{'GFLOP/s':>9}{'ceiling':>8}{'vs keras':>9}"
          f"{'loss':>8}{'noise':>7}")
    for row in rows:
        rate = 1.0 / row["seconds"]
        achieved = row["flops"] * rate / 1e9
        share = f"{100 * achieved / ceiling:.0f}%" if ceiling else "n/a"
        speedup = f"{base / row['seconds']:.2f}x" if base else "n/a"
        row.update(steps_per_s=rate, gflops=achieved, ceiling=ceiling, speedup=speedup)
        print(f"{row['variant']:<22}{rate:>8.3f}{rate * BATCH * FRAMES:>9.0f}{achieved:>9.1f}{share:>8}"
              f"{speedup:>9}{row['loss']:>8.4f}{row['noise']:>7.2f}")
    timed = {row["variant"]: row["seconds"] for row in rows}
    if "fast +jit 1-3" in timed and "fast +jit chimera 1-3" in timed:
        print(f"Chimera++ step / deep-clustering step (1-3 talkers): "
              f"{timed['fast +jit chimera 1-3'] / timed['fast +jit 1-3']:.2f}x")
    print(f"loss: after {3 + args.steps} steps on one fixed batch (bf16 vs float32: the effect of bfloat16); "
          "noise: CPU cores used by other processes while timing")
    loops = recurrence_time(config.hidden_units)
    fused = next((r for r in rows if r["variant"] == "fast +jit"), None)
    share = f", {100 * config.num_layers * loops['seconds'] / fused['seconds']:.0f}% of the fast +jit step" \
        if fused else ""
    print(f"recurrent loops alone (one BLSTM layer, forward + backward, XLA): {1000 * loops['seconds']:.0f} ms "
          f"at {loops['gflops']:.1f} GFLOP/s; x {config.num_layers} layers{share}")
    rows.append({"variant": "recurrent loops, one layer", **loops})

    if args.input_steps:
        steps = [r for r in rows if r["variant"] in VARIANTS]  # not the recurrent-loops row
        fastest = min(steps, key=lambda r: r["seconds"])["variant"] if steps else "fast +jit"
        print(f"\ninput wait, training with '{fastest}' for {args.input_steps} steps:")
        for label, wait in _input_rows(args, config.replace(**VARIANTS[fastest])):
            print(f"  {label:<60}{100 * wait:6.1f}% of step time")
            rows.append({"variant": f"input: {label}", "wait": wait})
    print(f"load average at the end: {load_average()}")
    return rows
