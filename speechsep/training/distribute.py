"""tf.distribute for the training scripts: strategies, the chief, worker folders, barriers, lost peers.

``--strategy`` names one of :data:`speechsep.config.STRATEGIES`:

* ``default``: one device (TensorFlow's default strategy);
* ``mirrored``: every local device (``MirroredStrategy``; on CPU one device
  unless logical devices were configured before TensorFlow started);
* ``multiworker``: several processes or machines (``MultiWorkerMirroredStrategy``),
  each started with its own ``TF_CONFIG`` (:mod:`speechsep.training.tf_config`);
* ``cpu``: ``OneDeviceStrategy("/cpu:0")``.

``--batch-size`` is always the global batch, split evenly over the replicas.
Under ``multiworker`` every worker runs the same program; only the chief
writes the run folder. The others read it (to resume) and write their own
copies into a temporary folder (:func:`worker_dir`) removed at exit, as
TensorFlow's multi-worker guide recommends. A worker that loses a peer raises
a :class:`~speechsep.errors.PeerLostError` naming it
(:func:`lost_peer_error`), which the entry points turn into one line and an
exit; one whose peers never
join is stopped by a watchdog naming them (:func:`make_strategy`).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Mapping

import keras
import tensorflow as tf

from speechsep.config import STRATEGIES
from speechsep.io import atomic_write_json
from speechsep.errors import PeerLostError
from speechsep.training.tf_config import ClusterTask, check_strategy_arguments, cluster_task

JOIN_TIMEOUT = 120.0
"""Seconds a worker waits for the whole cluster to join before it gives up (``--join-timeout``)."""
COLLECTIVE_TIMEOUT = 300.0
"""Seconds any one all-reduce may wait for the other workers; must exceed the largest step skew."""
KERAS_TESTED = (3, 15)
"""Newest Keras version on which the multi-worker workaround (:func:`patch_keras_for_multiworker`) was verified."""

_created: dict[str, tf.distribute.Strategy] = {}
_worker_dirs: dict[Path, Path] = {}


# ----------------------------------------------------------------------------- strategies


def make_strategy(name: str, join_timeout: float | None = None, collective_timeout: float = COLLECTIVE_TIMEOUT,
                  batch_sizes: Mapping[str, int | None] | None = None) -> tf.distribute.Strategy:
    """The strategy ``name`` (one of :data:`~speechsep.config.STRATEGIES`), created once per process.

    The kit's one strategy factory (the runner, the trainer and the
    benchmarks call it). ``multiworker`` must be created before TensorFlow
    runs any operation in the process (TensorFlow's rule); a worker whose
    peers have not all joined after ``join_timeout`` seconds (default
    :data:`JOIN_TIMEOUT`) is killed with a message naming the unreachable
    addresses. With ``batch_sizes`` (``{"--batch-size": 32}``), a global
    batch the replicas cannot split evenly is refused (:func:`check_global_batch`).
    """
    strategy = _create_strategy(name, join_timeout, collective_timeout)
    if batch_sizes:
        check_global_batch(strategy, batch_sizes)
    return strategy


def _create_strategy(name: str, join_timeout: float | None, collective_timeout: float) -> tf.distribute.Strategy:
    """:func:`make_strategy` without the batch check."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown --strategy {name!r}: use {', '.join(STRATEGIES[:-1])} or {STRATEGIES[-1]}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name in _created:
        return _created[name]
    if name == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
    elif name == "cpu":
        strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    else:
        task = check_strategy_arguments(name, {})
        patch_keras_for_multiworker()
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=collective_timeout)
        try:
            strategy = _with_watchdog(
                lambda: tf.distribute.MultiWorkerMirroredStrategy(communication_options=options),
                JOIN_TIMEOUT if join_timeout is None else join_timeout, task)
        except RuntimeError as error:
            if "program startup" not in str(error):
                raise
            raise ValueError("--strategy multiworker must be created before TensorFlow runs anything in the "
                             "process: call make_strategy('multiworker') first") from None
    _created[name] = strategy
    return strategy


def _with_watchdog(create, seconds: float, task: ClusterTask):
    """``create()``, with a watchdog process that kills this one if it takes longer than ``seconds``.

    Creating ``MultiWorkerMirroredStrategy`` blocks in C++ until every peer
    has joined, holding the GIL: no Python thread or signal handler of this
    process runs meanwhile, so the watchdog is a separate process
    (:func:`speechsep.training.tf_config.watch`).
    """
    package_root = str(Path(__file__).resolve().parents[2])  # scripts run from a clone may lack the install
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root,
                                                                        os.environ.get("PYTHONPATH")])))
    watchdog = subprocess.Popen([sys.executable, "-m", "speechsep.training.tf_config", "--watch", str(os.getpid()),
                                 str(seconds), json.dumps(task.peers()), task.address], env=environ)
    try:
        return create()
    finally:
        watchdog.kill()
        watchdog.wait()


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` trains across several worker processes."""
    task = cluster_task()
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and task is not None
            and task.num_workers > 1)


def is_chief() -> bool:
    """Whether this process writes the run folder: no ``TF_CONFIG``, or the chief of its cluster."""
    task = cluster_task()
    return task is None or task.is_chief


def supports_jit(strategy: tf.distribute.Strategy) -> bool:
    """Whether Keras may compile the training step with XLA under ``strategy``.

    Not with several replicas or workers on CPU: TensorFlow implements no XLA
    collectives for CPU devices (the first step fails with "Collectives are not
    yet implemented for CPU devices when compiling with XLA").
    """
    several = strategy.num_replicas_in_sync > 1 or isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    return not several or bool(tf.config.list_logical_devices("GPU"))


def check_global_batch(strategy: tf.distribute.Strategy, batch_sizes: Mapping[str, int | None]) -> None:
    """Refuse a global batch (``{"--batch-size": 32}``) that the replicas of ``strategy`` cannot split evenly."""
    replicas = strategy.num_replicas_in_sync
    for option, size in batch_sizes.items():
        if size is not None and size % replicas:
            raise ValueError(f"{option} {size} (the global batch) is not divisible by the {replicas} replicas of "
                             f"{type(strategy).__name__}: use a multiple of {replicas}")


def agree(strategy: tf.distribute.Strategy, value: int, what: str) -> None:
    """A barrier across the workers of ``strategy`` that also checks they all hold the same ``value``.

    Returns once every worker has called it; raises ``ValueError`` naming
    ``what`` if the values differ. Does nothing without several workers.
    """
    if not is_multi_worker(strategy):
        return

    @tf.function
    def total():
        per_replica = strategy.run(lambda: tf.constant([1.0, float(value), float(value) ** 2], tf.float64))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    count, values, squares = (float(x) for x in total().numpy())
    if abs(count * squares - values ** 2) > 1e-6 * max(1.0, values ** 2):  # equal iff n·Σv² = (Σv)²
        raise ValueError(f"the workers disagree on {what}: this one ({cluster_task().describe()}) has {value}, "
                         f"their mean is {values / count:g}")


# ----------------------------------------------------------------------------- the chief's folder


def worker_dir(run_dir) -> Path:
    """Where this worker writes its outputs: ``run_dir`` on the chief; elsewhere a temporary folder.

    A non-chief worker's folder, ``<tmp>/speechsep-<task><index>-<hash of run_dir>``,
    is created empty once per ``run_dir`` and removed when the process exits.
    Its name is the same for every start of that worker on that run, so the
    folder a killed worker (SIGKILL, SIGTERM) left behind is reclaimed by its next start.
    """
    run_dir = Path(run_dir)
    if is_chief():
        return run_dir
    if run_dir not in _worker_dirs:
        task = cluster_task()
        if not _worker_dirs:
            atexit.register(remove_worker_dirs)
        digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:12]
        folder = Path(tempfile.gettempdir()) / f"speechsep-{task.task_type}{task.index}-{digest}"
        shutil.rmtree(folder, ignore_errors=True)  # left by a killed start of this worker
        folder.mkdir(parents=True)
        _worker_dirs[run_dir] = folder
    return _worker_dirs[run_dir]


def remove_worker_dirs() -> None:
    """Delete the temporary folders of :func:`worker_dir` (run at exit)."""
    while _worker_dirs:
        shutil.rmtree(_worker_dirs.popitem()[1], ignore_errors=True)


class ChiefBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' ``BackupAndRestore`` for several workers: every worker restores, only the chief writes.

    Every worker reads the backup in ``backup_dir`` (so that all start from
    the same weights and epoch; the folder must be one that every worker
    sees); only the chief (:func:`is_chief`) saves or deletes it. Saving
    writes the weights to a temporary file and renames it, then the epoch
    (``training_metadata.json``) atomically, so a kill never leaves a
    truncated backup.
    """

    def __init__(self, backup_dir, chief: bool | None = None, **kwargs):
        super().__init__(str(backup_dir), **kwargs)
        self.chief = is_chief() if chief is None else chief

    def _save_model(self):
        if not self.chief:
            return
        folder = Path(self.backup_dir)
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".partial-{os.getpid()}.weights.h5"
        try:
            self.model.save_weights(str(partial), overwrite=True)
            os.replace(partial, self._weights_path)
        finally:
            partial.unlink(missing_ok=True)
        atomic_write_json(Path(self._training_metadata_path),
                          {"epoch": self._current_epoch, "batch": self._last_batch_seen})

    def on_train_end(self, logs=None):
        if self.chief:
            super().on_train_end(logs)


# ----------------------------------------------------------------------------- lost peers


_TASK_NAME = re.compile(r"/job:(\w+)/replica:\d+/task:(\d+)")
_CAUSE = re.compile(r"heartbeat|unhealthy|Socket closed|[Cc]onnection (refused|reset|closed)|timed out|[Dd]eadline")


def _lost_tasks(message: str, task: ClusterTask) -> list[str]:
    """``worker 1 at host:port`` for every other task named in a TensorFlow error message."""
    lost = []
    for job, index in dict.fromkeys(_TASK_NAME.findall(message)):
        index = int(index)
        if (job, index) != (task.task_type, task.index) and index < len(task.cluster.get(job, ())):
            lost.append(f"{job} {index} at {task.cluster[job][index]}")
    return lost


@contextlib.contextmanager
def lost_peer_error():
    """Around multi-worker training: a dead peer becomes one :class:`PeerLostError` naming it.

    TensorFlow detects a dead peer within seconds (the coordination service's
    heartbeat) and aborts the collectives, raising an error that names no
    one; this removes the worker folders and raises a
    :class:`~speechsep.errors.PeerLostError` whose message names
    the lost task. The entry points print it and exit with
    :data:`~speechsep.errors.LOST_PEER_STATUS` at once (:func:`speechsep.cli.run_guarded`),
    because the process may take minutes to shut down. Outside a cluster it
    does nothing.
    """
    task = cluster_task()
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError) as error:
        if task is None or task.num_workers < 2:
            raise
        message = str(error)
        lost = _lost_tasks(message, task)
        lines = [line.strip() for line in message.splitlines() if line.strip()]
        detail = next((line for line in lines if _CAUSE.search(line)), lines[-1] if lines else "")
        detail = detail.split("aborted by:", 1)[-1].strip()[:200]
        remove_worker_dirs()
        raise PeerLostError(f"{task.describe()} lost the cluster"
                            + (f" ({', '.join(lost)} stopped responding)" if lost else "")
                            + f": {type(error).__name__}: {detail}. Restart every worker with the same command "
                              "to resume from the last finished epoch.") from None


# ----------------------------------------------------------------------------- Keras workaround


def patch_keras_for_multiworker() -> bool:
    """Make Keras 3 ``fit``/``evaluate`` run under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585).

    Two bugs of Keras 3 (verified up to :data:`KERAS_TESTED`) stop training on
    its first step: ``_maybe_symbolic_build`` reduces the first batch (a
    structure of per-replica values) with a collective, which cannot take a
    nested structure; and ``reduce_per_replica(..., "mean")`` reduces scalar
    metrics along axis 0. The patch builds from the local replica's batch
    (only its shapes matter) and takes the cross-replica mean of the scalars.
    Applied once, only for Keras versions up to :data:`KERAS_TESTED`; a newer
    Keras is left alone with a warning. Returns whether the patch is in place.
    """
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as trainer_module

    trainer_class = trainer_module.TensorFlowTrainer
    if getattr(trainer_class, "_speechsep_multiworker_patch", False):
        return True
    version = tuple(int(part) for part in re.findall(r"\d+", keras.__version__)[:2])
    if version > KERAS_TESTED:
        print(f"warning: Keras {keras.__version__} is newer than {'.'.join(map(str, KERAS_TESTED))}, the last "
              "version the multi-worker workaround was verified on; it is not applied. If training stops on its "
              "first step with 'PerReplica ... unsupported type' or 'Invalid reduction dimension', install "
              f"keras<={'.'.join(map(str, KERAS_TESTED))}.*", file=sys.stderr)
        return False
    original_reduce = trainer_module.reduce_per_replica

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tree.map_structure(
                    lambda value: self.distribute_strategy.experimental_local_results(value)[0]
                    if isinstance(value, tf.distribute.DistributedValues) else value,
                    next(batches))
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer_module._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), values)
        return original_reduce(values, strategy, reduction)

    trainer_class._maybe_symbolic_build = _maybe_symbolic_build
    trainer_module.reduce_per_replica = reduce_per_replica
    trainer_class._speechsep_multiworker_patch = True
    return True
