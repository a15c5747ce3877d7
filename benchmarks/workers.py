"""``bench workers``: training steps per second with 1 and N local workers, and a lost peer's time to failure.

Every row trains the same small deep-clustering network (BLSTM) on the same
global batch of random chunks, ``--steps`` per epoch; the first epoch (graph
tracing, cluster start-up) is not timed. Rows: one process with the default
strategy, then ``--strategy multiworker`` with each count of ``--workers``
on loopback (:mod:`speechsep.launch`). The last row starts one worker of a
two-worker ``TF_CONFIG`` whose peer never comes up, and times how long it
takes to fail with a message naming the peer's address (``--join-timeout``).
Worker mode (one process of a row): ``python benchmarks/workers.py
--worker JSON`` (by path: the benchmarks are not installed, so any folder works).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time

from speechsep.hardware import cpu_info

RESULT_PREFIX = "bench-workers-result "


def _worker_command(settings: dict) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(settings)]


def _result(output: str) -> dict:
    for line in output.splitlines():
        text = line.split("] ", 1)[1] if line.startswith("[worker") else line
        if text.startswith(RESULT_PREFIX):
            return json.loads(text[len(RESULT_PREFIX):])
    raise RuntimeError("a benchmark worker printed no result:\n" + output[-3000:])


def bench_workers(args) -> list[dict]:
    from speechsep.launch import LocalCluster, exit_status, launch

    settings = {"steps": args.steps, "epochs": args.epochs, "batch_size": args.batch_size,
                "hidden_units": args.hidden_units, "frames": args.frames}
    load_before = os.getloadavg()
    rows = []
    # the default strategy with and without XLA (the scripts' default); multiworker on CPU cannot use XLA
    runs = [("default", 1, True), ("default", 1, False)] + [("multiworker", count, False) for count in args.workers]
    for strategy, count, jit in runs:
        run_settings = {**settings, "strategy": strategy, "jit": jit}
        if strategy == "default":
            done = subprocess.run(_worker_command(run_settings), capture_output=True, text=True,
                                  timeout=args.timeout)
            output, status = done.stdout + done.stderr, done.returncode
        else:
            buffer = io.StringIO()
            status = launch(_worker_command(run_settings), count, timeout=args.timeout, out=buffer)
            output = buffer.getvalue()
        if status != 0:
            raise RuntimeError(f"{strategy} with {count} worker(s) failed (status {status}):\n{output[-3000:]}")
        timing = _result(output)
        seconds = sum(timing["epoch_seconds"][1:])
        steps_per_second = args.steps * (len(timing["epoch_seconds"]) - 1) / seconds
        rows.append({"strategy": strategy, "workers": count, "xla": jit, "steps_per_second": steps_per_second,
                     "chunks_per_second": steps_per_second * args.batch_size,
                     "epoch_seconds": timing["epoch_seconds"]})

    # a worker whose peer never starts: time to a failure that names the peer
    cluster = LocalCluster(_worker_command({**settings, "strategy": "multiworker", "jit": False,
                                            "join_timeout": args.join_timeout}), 2, out=io.StringIO())
    peer = cluster.addresses[1]
    environ = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": cluster.addresses},
                                                     "task": {"type": "worker", "index": 0}}))
    start = time.monotonic()
    done = subprocess.run(cluster.command, env=environ, capture_output=True, text=True, timeout=args.timeout)
    failure_seconds = time.monotonic() - start
    message = next((line for line in done.stderr.splitlines() if line.startswith("error:")), "(no error line)")
    load_after = os.getloadavg()

    print(f"CPU: {cpu_info().name}, {os.cpu_count()} cores; load average (1 min) {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after")
    print(f"model: deep clustering BLSTM, {args.hidden_units} units, global batch {args.batch_size} x "
          f"{args.frames} frames, {args.steps} steps/epoch, epochs 2..{args.epochs} timed")
    print(f"{'strategy':<14}{'workers':>8}{'XLA':>5}{'steps/s':>10}{'chunks/s':>10}   epoch seconds")
    for row in rows:
        print(f"{row['strategy']:<14}{row['workers']:>8}{'yes' if row['xla'] else 'no':>5}"
              f"{row['steps_per_second']:>10.2f}"
              f"{row['chunks_per_second']:>10.1f}   {', '.join(f'{s:.2f}' for s in row['epoch_seconds'])}")
    named = peer in message
    print(f"unreachable peer: the worker exited with status {exit_status(done.returncode)} after "
          f"{failure_seconds:.1f} s from its start, TensorFlow's import included (--join-timeout "
          f"{args.join_timeout:g}); the message names {peer}: {'yes' if named else 'NO'}")
    print(f"  {message}")
    rows.append({"unreachable_peer_seconds": failure_seconds, "status": exit_status(done.returncode),
                 "message": message, "names_peer": named})
    return rows


# ----------------------------------------------------------------------------- one worker of a row


def _run_worker(settings: dict) -> None:
    """Train the benchmark network under ``settings["strategy"]``; the chief prints the epoch times."""
    import numpy as np

    from speechsep.training import distribute

    strategy = distribute.make_strategy(settings["strategy"], join_timeout=settings.get("join_timeout"))
    import keras
    import tensorflow as tf

    from speechsep.config import ExperimentConfig
    from speechsep.data.pipeline import InputShard
    from speechsep.nn.models import build_model
    from speechsep.signal import N_BINS
    from speechsep.training.trainer import make_loss, make_packer

    config = ExperimentConfig(hidden_units=settings["hidden_units"], num_layers=1, embedding_dim=20,
                              batch_size=settings["batch_size"])
    distribute.check_global_batch(strategy, {"--batch-size": config.batch_size})
    pack = make_packer(config)
    frames = settings["frames"]

    def chunks(batch_size: int, shard: InputShard) -> tf.data.Dataset:
        rng = np.random.default_rng([7, shard.index])
        features = rng.standard_normal((64, frames, N_BINS)).astype(np.float32)  # [64, T, F]
        ibm = rng.integers(0, 2, (64, frames, N_BINS)).astype(np.int32)
        active = np.ones((64, frames, N_BINS), np.float32)
        data = tf.data.Dataset.from_tensor_slices((features, {"ibm": ibm, "active": active}))
        return data.repeat().batch(batch_size, drop_remainder=True).map(pack).prefetch(2)

    if distribute.is_multi_worker(strategy):
        train = strategy.distribute_datasets_from_function(
            lambda context: chunks(context.get_per_replica_batch_size(config.batch_size), InputShard.of(context)))
    else:
        train = chunks(config.batch_size, InputShard())
    with strategy.scope():
        model = build_model(config)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=make_loss(config),
                      jit_compile=settings["jit"] and distribute.supports_jit(strategy))
    epoch_seconds = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self.start)

    with distribute.lost_peer_error():
        model.fit(train, epochs=settings["epochs"], steps_per_epoch=settings["steps"], verbose=0,
                  callbacks=[Timer()])
    if distribute.is_chief():
        print(RESULT_PREFIX + json.dumps({"epoch_seconds": epoch_seconds}), flush=True)


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:  # one worker process of a row: an entry point
    from speechsep.cli import program_start, run_guarded

    program_start()
    run_guarded(_run_worker, json.loads(sys.argv[2]))
