"""Keras ``fit`` on the tf.data pipeline, with the run folder and callbacks.

Run folder (``run_dir``)::

    config.json      the frozen ExperimentConfig (beside every checkpoint)
    stats.json       feature normalisation used in training (train split only)
    best.keras       best checkpoint on validation loss (ModelCheckpoint)
    last.keras       the final weights
    backup/          BackupAndRestore state: a killed run resumes where it stopped
    history.csv      CSVLogger (appends across resumed runs)
    tensorboard/     TensorBoard logs
    run.json         run record rewritten every epoch: config, seed, git commit,
                     data, history so far, best epoch, wall time

Callbacks: bin accuracies (fixed order and permutation-invariant, train and
valid), ModelCheckpoint, BackupAndRestore, CSVLogger, TensorBoard,
TerminateOnNaN, a wall-clock budget (``--minutes``), the run record, and Keras'
progress bar.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from speechsep.config import ExperimentConfig
from speechsep.data.pipeline import packed_targets
from speechsep.nn.losses import DeepClusteringLoss, MaskMSELoss
from speechsep.nn.models import build_model
from speechsep.separation.separator import batch_accuracies, read_masks
from speechsep.io import atomic_write_json


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and TensorFlow (one call)."""
    keras.utils.set_random_seed(seed)


def get_strategy(name: str) -> tf.distribute.Strategy:
    """``default`` | ``mirrored`` (all local devices) | ``multiworker`` (TF_CONFIG) | ``cpu``."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "cpu":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    raise ValueError(f"unknown --strategy {name!r}: use default, mirrored, multiworker or cpu")


def make_loss(config: ExperimentConfig) -> keras.losses.Loss:
    if config.loss == "dc":
        return DeepClusteringLoss()
    return MaskMSELoss(permutation_invariant=config.loss == "pit")


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


class SeparationAccuracy(keras.callbacks.Callback):
    """Adds ``acc_fixed``, ``acc_pit``, ``val_acc_fixed``, ``val_acc_pit`` to the epoch logs.

    Computed on a fixed sample of chunks of each split with the run's real
    readout (mask threshold, PCA sign or clustering), on active bins only.
    Must come before CSVLogger/TensorBoard in the callback list.
    """

    def __init__(self, config: ExperimentConfig, samples: dict[str, tuple]):
        super().__init__()
        self.config, self.samples = config, samples

    def on_train_begin(self, logs=None):
        from speechsep.nn.models import inference_function

        self.forward = inference_function(self.model)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for prefix, (features, ibm, active) in self.samples.items():
            outputs = np.asarray(self.forward(features))  # [B, T, F(, D)]
            labels = np.stack([read_masks(o, a, self.config).labels for o, a in zip(outputs, active)])
            fixed, pit = batch_accuracies(labels, ibm, active, self.config.num_speakers)
            logs[f"{prefix}acc_fixed"], logs[f"{prefix}acc_pit"] = fixed, pit


class WallClockBudget(keras.callbacks.Callback):
    """Stop training once ``minutes`` of wall-clock time have passed (checked every batch)."""

    def __init__(self, minutes: float):
        super().__init__()
        self.seconds = minutes * 60.0
        self.start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if time.monotonic() - self.start > self.seconds:
            self.model.stop_training = True


class RunRecord(keras.callbacks.Callback):
    """Rewrite ``run.json`` (atomically) after every epoch."""

    def __init__(self, path: Path, record: dict):
        super().__init__()
        self.path, self.record, self.start = path, record, time.time()
        self.record.setdefault("history", {})

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.record["history"].setdefault(key, []).append(float(value))
        losses = self.record["history"].get("val_loss") or self.record["history"].get("loss", [])
        self.record["epochs_done"] = len(losses)
        self.record["best_epoch"] = int(np.nanargmin(losses)) + 1 if losses else None
        self.record["wall_seconds"] = time.time() - self.start
        atomic_write_json(self.path, self.record)


def _sample_chunks(dataset: tf.data.Dataset, count: int) -> tuple:
    features, ibm, active = [], [], []
    for batch_features, targets in dataset:
        features.append(batch_features.numpy())
        ibm.append(targets["ibm"].numpy())
        active.append(targets["active"].numpy() > 0)
        if sum(len(f) for f in features) >= count:
            break
    if not features:
        raise ValueError("the dataset yielded no chunk: are the utterances shorter than chunk_frames?")
    return (np.concatenate(features)[:count], np.concatenate(ibm)[:count], np.concatenate(active)[:count])


def train(config: ExperimentConfig, run_dir, train_data: tf.data.Dataset, valid_data: tf.data.Dataset,
          stats: tuple[np.ndarray, np.ndarray], data_description: dict, accuracy_chunks: int = 32):
    """Train ``config`` on the given pipelines (dict targets) and return (model, history dict)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed)
    config.save(run_dir / "config.json")
    mean, std = stats
    atomic_write_json(run_dir / "stats.json", {"mean": np.asarray(mean).tolist(), "std": np.asarray(std).tolist(),
                                               "split": "train"})
    samples = {"": _sample_chunks(train_data, accuracy_chunks), "val_": _sample_chunks(valid_data, accuracy_chunks)}
    pack = lambda features, targets: (features, packed_targets(targets, config.num_speakers))  # noqa: E731
    train_fit, valid_fit = train_data.map(pack), valid_data.map(pack)
    if config.steps_per_epoch:
        train_fit = train_fit.repeat()

    strategy = get_strategy(config.strategy)
    with strategy.scope():
        model = build_model(config)
        optimizer = keras.optimizers.Adam(config.learning_rate, clipnorm=config.clip_norm)
        model.compile(optimizer=optimizer, loss=make_loss(config))

    record = {"config": config.to_json(), "seed": config.seed, "git_commit": git_commit(),
              "data": data_description, "strategy": type(strategy).__name__,
              "replicas": strategy.num_replicas_in_sync, "tensorflow": tf.__version__,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    callbacks = [
        SeparationAccuracy(config, samples),
        keras.callbacks.ModelCheckpoint(str(run_dir / "best.keras"), monitor="val_loss", save_best_only=True),
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), write_graph=False),
        keras.callbacks.TerminateOnNaN(),
        RunRecord(run_dir / "run.json", record),
    ]
    if config.minutes:
        callbacks.append(WallClockBudget(config.minutes))
    history = model.fit(train_fit, validation_data=valid_fit, epochs=config.epochs,
                        steps_per_epoch=config.steps_per_epoch, callbacks=callbacks, verbose="auto")
    model.save(run_dir / "last.keras")
    if not (run_dir / "best.keras").is_file():
        shutil.copyfile(run_dir / "last.keras", run_dir / "best.keras")
    return model, {key: [float(v) for v in values] for key, values in history.history.items()}


def history_from_run(run_dir) -> dict:
    """The full per-epoch history from ``run.json`` (spans resumed runs)."""
    path = Path(run_dir) / "run.json"
    return json.loads(path.read_text()).get("history", {}) if path.is_file() else {}
