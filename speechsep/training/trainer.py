"""Keras ``fit`` on the tf.data pipeline, with the run folder and callbacks.

Run folder (``run_dir``)::

    config.json      the frozen ExperimentConfig (beside every checkpoint)
    stats.json       feature normalisation used in training (train split only)
    best.keras       best checkpoint on validation loss (BestCheckpoint, atomic)
    last.keras       the final weights
    backup/          BackupAndRestore state after the last finished epoch (kept at the
                     end): a killed run resumes there, a finished one is recognised
    history.csv      CSVLogger, one row per epoch across resumed sessions
    tensorboard/     TensorBoard logs
    run.json         run record rewritten every epoch: config, seed, git commit,
                     data, every session, the whole history, best epoch, wall time

Rerunning into the folder resumes the run (see :func:`train`); ``best.keras``
only ever improves, across sessions too.

Callbacks: bin accuracies (fixed order and permutation-invariant, train and
valid), BestCheckpoint, BackupAndRestore, CSVLogger, TensorBoard,
TerminateOnNaN, a wall-clock budget (``--minutes``), the run record, and Keras'
progress bar.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from speechsep.config import ExperimentConfig
from speechsep.hardware import CPU_FLAGS_OF_NOTE, cpu_info
from speechsep.data.pipeline import (InputShard, packed_count_targets, packed_mask_targets, packed_targets,
                                    switch_datasets)
from speechsep.nn.losses import (DeepClusteringLoss, MaskInferenceLoss, MaskMSELoss, WaveformMaskLoss,
                                 WhitenedDeepClusteringLoss)
from speechsep.nn.models import build_model, load_shared_weights
from speechsep.separation.separator import (batch_accuracies, item_talkers, read_masks, single_threaded_blas,
                                           split_batch)
from speechsep.io import (atomic_save_model, atomic_write_json, atomic_write_text, atomic_write_weights,
                          read_json_object)
from speechsep.training import distribute


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and TensorFlow (one call)."""
    keras.utils.set_random_seed(seed)


def make_loss(config: ExperimentConfig):
    """The Keras loss of ``config``; a Chimera++ network gets a dict {"embedding", "mask", "count"} of the losses
    of the heads it has."""
    if config.loss != "dc":
        return MaskMSELoss(permutation_invariant=config.loss == "pit")
    embedding_loss = WhitenedDeepClusteringLoss() if config.dc_loss == "dc_whitened" else DeepClusteringLoss()
    if not (config.mask_head or config.count_head):
        return embedding_loss
    losses = {"embedding": embedding_loss}
    if config.mask_head:
        losses["mask"] = WaveformMaskLoss() if config.mask_loss == "sisdr" else MaskInferenceLoss()
    if config.count_head:
        losses["count"] = keras.losses.CategoricalCrossentropy()
    return losses


def make_loss_weights(config: ExperimentConfig) -> dict | None:
    """Chimera++: ``(1 − mask_loss_weight)·L_DC + mask_loss_weight·L_MI``, plus ``count_loss_weight·L_count``
    with a count head; None for single-output networks."""
    if not (config.mask_head or config.count_head):
        return None
    weights = {"embedding": 1.0 - config.mask_loss_weight if config.mask_head else 1.0}
    if config.mask_head:
        weights["mask"] = config.mask_loss_weight
    if config.count_head:
        weights["count"] = config.count_loss_weight
    return weights


def make_packer(config: ExperimentConfig):
    """(features, target dict) -> (features, the packed y_true of :func:`make_loss`)."""
    def pack(features, targets):
        embedding_targets = packed_targets(targets, config.max_talkers)  # [B, T, F, Kmax+1], fewer talkers zero-padded
        if not (config.mask_head or config.count_head):
            return features, embedding_targets
        packed = {"embedding": embedding_targets}
        if config.mask_head:
            packed["mask"] = packed_mask_targets(targets)  # [B, T, F, Kmax+1]
        if config.count_head:
            packed["count"] = packed_count_targets(embedding_targets)  # [B, Kmax]
        return features, packed

    return pack


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

        self.forward = inference_function(self.model, self.config.jit_compile)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for prefix, (features, ibm, active) in self.samples.items():
            outputs = split_batch(self.forward(features))  # B x ([T, F(, D)] or {"embedding", "mask"})
            # a model trained on a varying number of talkers is scored with each chunk's own count (the sources
            # that dominate one of its active bins): the accuracies measure the separation, not the counting
            counts = (item_talkers(ibm, active) if self.config.counts_talkers
                      else [self.config.num_speakers] * len(outputs))
            with single_threaded_blas():  # no spinning BLAS threads left to slow the next training steps
                labels = np.stack([read_masks(o, a, self.config, num_sources=k).labels
                                   for o, a, k in zip(outputs, active, counts)])
            fixed, pit = batch_accuracies(labels, ibm, active, counts)
            logs[f"{prefix}acc_fixed"], logs[f"{prefix}acc_pit"] = fixed, pit


class BestCheckpoint(keras.callbacks.Callback):
    """Save the model to ``path`` whenever ``val_loss`` beats the best so far (``best``: of earlier
    sessions, or None), atomically (:func:`speechsep.io.atomic_save_model`): a kill mid-save keeps the
    previous best checkpoint."""

    def __init__(self, path, best: float | None = None):
        super().__init__()
        self.path, self.best = Path(path), best

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("val_loss")
        if loss is None or not np.isfinite(loss) or (self.best is not None and loss >= self.best):
            return
        self.best = float(loss)
        atomic_save_model(self.model, self.path)


class WallClockBudget(keras.callbacks.Callback):
    """Stop training once ``minutes`` of wall-clock time have passed (checked every batch).

    ``earlier_seconds``: the time earlier sessions of a resumed run used, which counts against the budget.
    """

    def __init__(self, minutes: float, earlier_seconds: float = 0.0):
        super().__init__()
        self.seconds = minutes * 60.0 - earlier_seconds
        self.start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if time.monotonic() - self.start > self.seconds:
            self.model.stop_training = True


class LearningRateSchedule(keras.callbacks.Callback):
    """Linear warm-up over ``warmup_steps``, then constant or cosine decay to 0 (``config.lr_schedule``).

    The cosine runs over the whole run: its progress is the larger of the
    share of epochs done and, with a ``minutes`` budget, the share of that
    budget used, so a budgeted run ends at a learning rate near 0. Steps
    count from the epoch Keras reports and ``earlier_seconds`` (the time of
    earlier sessions) from the run record, so a resumed run continues the
    schedule. Logs ``learning_rate`` at every epoch end.
    """

    def __init__(self, config: ExperimentConfig, earlier_seconds: float = 0.0):
        super().__init__()
        self.config, self.earlier_seconds = config, earlier_seconds
        self.steps_per_epoch, self.epoch, self.batches, self.start = config.steps_per_epoch, 0, 0, time.monotonic()

    def value(self, step: int, progress: float) -> float:
        """The learning rate at global ``step`` with ``progress`` in [0, 1] of the run done."""
        rate = self.config.learning_rate
        if self.config.warmup_steps:
            rate *= min(1.0, (step + 1) / self.config.warmup_steps)
        if self.config.lr_schedule == "cosine":
            rate *= 0.5 * (1.0 + np.cos(np.pi * min(max(progress, 0.0), 1.0)))
        return float(rate)

    def on_train_begin(self, logs=None):
        self.steps_per_epoch = self.params.get("steps") or self.config.steps_per_epoch
        self.start = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.batches = epoch, 0

    def on_train_batch_begin(self, batch, logs=None):
        steps = self.steps_per_epoch  # None until the first epoch of a split of unknown size has ended
        step = self.epoch * steps + batch if steps else batch
        progress = (self.epoch + (batch / steps if steps else 0.0)) / self.config.epochs
        if self.config.minutes:
            used = self.earlier_seconds + time.monotonic() - self.start
            progress = max(progress, used / (60.0 * self.config.minutes))
        self.model.optimizer.learning_rate = self.value(step, progress)

    def on_train_batch_end(self, batch, logs=None):
        self.batches = batch + 1

    def on_epoch_end(self, epoch, logs=None):
        if not self.steps_per_epoch:
            self.steps_per_epoch = self.batches
        if logs is not None:
            logs["learning_rate"] = float(np.asarray(self.model.optimizer.learning_rate))


class WeightSnapshots(keras.callbacks.Callback):
    """Save the weights every ``every_steps`` optimizer steps (checked at epoch ends) for a learning curve.

    Writes ``folder/step-NNNNNNN.npz``: one float16 array per weight, named
    ``w000``, ``w001``, ... in ``model.get_weights()`` order, with
    ``step_offset`` (optimizer steps of earlier runs this one started from)
    added to the file's step. Weights only: snapshots are scored, not resumed.
    """

    def __init__(self, folder: Path, every_steps: int, step_offset: int = 0):
        super().__init__()
        if every_steps < 1:
            raise ValueError(f"every_steps must be >= 1, got {every_steps}")
        self.folder, self.every_steps, self.step_offset = Path(folder), every_steps, step_offset

    def on_epoch_end(self, epoch, logs=None):
        step = self.step_offset + int(np.asarray(self.model.optimizer.iterations))
        existing = sorted(self.folder.glob("step-*.npz"))
        last = int(existing[-1].stem.split("-")[1]) if existing else self.step_offset
        if step - last >= self.every_steps:
            atomic_write_weights(self.folder / f"step-{step:07d}.npz", self.model.get_weights())


class ChunkCurriculum(keras.callbacks.Callback):
    """Stage 1 (long chunks) in the epochs where ``config.trains_long_chunks``, stage 0 (``chunk_frames``) before.

    :func:`speechsep.data.pipeline.switch_datasets` reads :attr:`stage` before
    every training batch; a resumed run starts in the stage of its epoch.
    """

    def __init__(self, config: ExperimentConfig):
        super().__init__()
        self.config, self.stage = config, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.stage = int(self.config.trains_long_chunks(epoch))


class RunRecord(keras.callbacks.Callback):
    """Rewrite ``run.json`` (atomically) after every epoch: history, epochs done, best epoch, wall time, steps."""

    def __init__(self, path: Path, record: dict):
        super().__init__()
        self.path, self.record, self.start = path, record, time.time()
        self.record.setdefault("history", {})
        self.earlier_seconds = float(self.record.get("wall_seconds") or 0.0)  # sessions before a resume

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.record["history"].setdefault(key, []).append(float(value))
        losses = self.record["history"].get("val_loss") or self.record["history"].get("loss", [])
        self.record["epochs_done"] = len(losses)
        self.record["best_epoch"] = int(np.nanargmin(losses)) + 1 if losses else None
        self.record["wall_seconds"] = self.earlier_seconds + time.time() - self.start
        # optimizer updates so far, across resumed sessions (BackupAndRestore restores the optimizer): what a
        # --minutes budget bought, comparable between hosts and recipes
        self.record["optimizer_steps"] = int(np.asarray(self.model.optimizer.iterations))
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


# ----------------------------------------------------------------------------- resuming

RESUMABLE_FIELDS = frozenset({"epochs", "minutes", "strategy", "readout", "meanshift_bandwidth", "soft_mask_beta",
                              "jit_compile", "count_method", "count_threshold"})
"""Config fields a rerun may change and still resume the run (budgets and test-time choices); any other
change is refused, naming the field."""

TRAINING_FILES = ("run.json", "config.json", "stats.json", "best.keras", "last.keras", "backup", "history.csv",
                  "tensorboard", "results.json")
"""What :func:`train` writes into a run folder, and the results of its model (``--fresh`` deletes these,
and nothing else; figures and wavs are rewritten by the next evaluation)."""


def clear_run(run_dir) -> None:
    """Delete the training state of a run folder (``--fresh``); other files in it are kept."""
    for name in TRAINING_FILES:
        path = Path(run_dir) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def remove_unstarted_run(run_dir) -> None:
    """After a failure: delete a run folder's training state if no epoch finished, then the folder if empty."""
    run_dir = Path(run_dir)
    try:
        if run_dir.is_dir() and read_progress(run_dir)[0] == 0:
            clear_run(run_dir)
            run_dir.rmdir()
    except (OSError, ValueError):
        pass  # not empty, or not ours to judge: leave it


def _read_json(path: Path, what: str) -> dict:
    return read_json_object(path, what, "; use --fresh to start the run over")


def read_progress(run_dir) -> tuple[int, dict | None]:
    """(epochs trained and backed up, the run record trimmed to them) of a run folder; (0, None) if new.

    The backup (``backup/training_metadata.json``) is the truth: callbacks
    write the record and ``history.csv`` before the backup, so after a kill
    the record may hold one epoch more, which is dropped here. A run finished
    by an earlier speechsep (which deleted its backup) counts its recorded epochs.
    """
    run_dir = Path(run_dir)
    record_path, backup = run_dir / "run.json", run_dir / "backup" / "training_metadata.json"
    record = _read_json(record_path, "run record") if record_path.is_file() else None
    if backup.is_file():
        try:
            epochs = int(_read_json(backup, "training backup")["epoch"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{backup}: damaged training backup; use --fresh to start the run over") from None
    elif record is not None and (run_dir / "last.keras").is_file():
        epochs = int(record.get("epochs_done") or 0)
    else:
        epochs = 0
    if record is not None:
        record["history"] = {key: list(values)[:epochs] for key, values in (record.get("history") or {}).items()}
    return epochs, record if epochs else None


def check_resumable(run_dir, config: ExperimentConfig, stats: tuple[np.ndarray, np.ndarray]) -> None:
    """Raise ``ValueError`` naming the field if ``run_dir`` holds a run that ``config`` and ``stats`` cannot resume."""
    run_dir = Path(run_dir)
    saved = ExperimentConfig.load(run_dir / "config.json")
    changed = [field for field in config.to_json()
               if field not in RESUMABLE_FIELDS and getattr(saved, field, None) != getattr(config, field)]
    if changed:
        details = "; ".join(f"{field} is {getattr(saved, field, None)!r} in the run, {getattr(config, field)!r} now"
                            for field in changed)
        raise ValueError(f"{run_dir} holds a run that cannot resume with these settings ({details}). "
                         "Use the run's settings to resume it, --fresh to start over, or another --out")
    if (run_dir / "stats.json").is_file():
        saved_stats = _read_json(run_dir / "stats.json", "normalisation statistics")
        same = all(np.allclose(np.asarray(saved_stats.get(key), np.float64), np.asarray(new, np.float64), rtol=1e-4)
                   for key, new in zip(("mean", "std"), stats))
        if not same:
            raise ValueError(f"{run_dir} holds a run trained on other data (data: its normalisation statistics "
                             "differ from this training data's). Use the run's data to resume it, --fresh to "
                             "start over, or another --out")


def _trim_csv(path: Path, epochs: int) -> None:
    """Keep the header and the first ``epochs`` rows of ``history.csv`` (none: delete it)."""
    if not path.is_file():
        return
    if epochs == 0:
        path.unlink()
        return
    lines = path.read_text().splitlines(keepends=True)
    if len(lines) > epochs + 1:
        atomic_write_text(path, "".join(lines[:epochs + 1]))


def _best_val_loss(record: dict | None, run_dir: Path) -> float | None:
    """The lowest validation loss of the recorded epochs, if ``best.keras`` holds it."""
    losses = [v for v in ((record or {}).get("history") or {}).get("val_loss", []) if np.isfinite(v)]
    return float(min(losses)) if losses and (run_dir / "best.keras").is_file() else None


def train(config: ExperimentConfig, run_dir, train_data: tf.data.Dataset, valid_data: tf.data.Dataset,
          stats: tuple[np.ndarray, np.ndarray], data_description: dict, accuracy_chunks: int = 32,
          long_train_data: tf.data.Dataset | None = None, fresh: bool = False,
          train_input=None, long_train_input=None, extra_callbacks=(), init=None):
    """Train ``config`` on the given pipelines (dict targets) and return (model, history dict).

    ``long_train_data`` (chunks of ``config.long_chunk_frames``) replaces
    ``train_data`` from epoch ``config.curriculum_epoch`` on.

    A run folder that already holds epochs of this run is resumed after its
    last backed-up epoch (its record, ``history.csv`` and ``best.keras``
    continue), a complete one is returned without training, and one that
    ``config`` cannot resume is refused (:func:`check_resumable`).
    ``fresh`` deletes the folder's training state first (:func:`clear_run`).

    Under ``--strategy multiworker`` every worker calls this: all read the
    run folder (it must be one folder that every worker sees), only the chief
    writes it; the others write into :func:`distribute.worker_dir`.
    ``train_input`` (and ``long_train_input``), called as
    ``train_input(batch_size, shard=InputShard)``, build one worker's part of
    the training data (:class:`~speechsep.data.pipeline.InputShard`); without
    them Keras splits ``train_data`` itself. ``extra_callbacks`` run after
    the built-in ones (e.g. :class:`WeightSnapshots`).

    ``init`` = (a Keras network, a dict describing where it comes from)
    starts a new run from its weights, layer by layer by name
    (:func:`speechsep.nn.models.load_shared_weights`), with a fresh
    optimizer; ``run.json`` records the dict as ``init``, with the layers
    left freshly initialised (heads the source lacks) as ``fresh_layers``.
    A resumed run continues from its backup instead.
    """
    run_dir = Path(run_dir)
    strategy = distribute.make_strategy(config.strategy)  # first: multiworker must exist before TensorFlow runs anything
    resume = _resume(config, run_dir, stats, strategy, fresh)
    if resume.complete:
        return _complete_run(config, run_dir, resume.previous, resume.epochs_done)
    _start_run_folder(config, resume, stats)
    inputs = _fit_inputs(config, strategy, train_data, valid_data, long_train_data, train_input, long_train_input,
                         accuracy_chunks)
    model, init = _model_and_loss(config, strategy, init, resume)
    record = _run_record(config, strategy, data_description, init, resume)
    callbacks = _callbacks(config, resume, inputs, record, extra_callbacks)
    with distribute.lost_peer_error():
        history = model.fit(inputs.train, validation_data=inputs.valid, epochs=config.epochs,
                            steps_per_epoch=inputs.steps_per_epoch, callbacks=callbacks,
                            verbose=progress_verbosity(), shuffle=False)  # the pipelines shuffle; Keras would warn
    _save_final(model, resume, strategy)
    return model, {key: [float(v) for v in values] for key, values in history.history.items()}


@dataclasses.dataclass
class _Resume:
    """Where a run stands: the folder (``run_dir``), where this process writes (``out``), the epochs backed up
    and their record, the wall time of earlier sessions, and whether nothing is left to train."""

    run_dir: Path
    out: Path
    chief: bool
    epochs_done: int
    previous: dict | None
    earlier_seconds: float
    complete: bool


def _resume(config: ExperimentConfig, run_dir: Path, stats, strategy, fresh: bool) -> _Resume:
    """Step 1, resume: clear (``fresh``) or read the run folder, refuse a run ``config`` cannot resume, and agree
    on the epochs done across workers."""
    chief, out = distribute.is_chief(), distribute.worker_dir(run_dir)  # out: where this process writes
    with distribute.lost_peer_error():
        if fresh and chief:
            clear_run(run_dir)
        if not chief:
            distribute.agree(strategy, 0, "the start")  # wait until the chief has cleared and trimmed run_dir
        epochs_done, previous = read_progress(run_dir)
        if epochs_done:
            check_resumable(run_dir, config, stats)
        if chief:
            _trim_csv(run_dir / "history.csv", epochs_done)
            distribute.agree(strategy, 0, "the start")
        distribute.agree(strategy, epochs_done, f"the epochs backed up in {run_dir / 'backup'} (--out must be "
                                                "one folder that every worker sees)")
    earlier_seconds = float((previous or {}).get("wall_seconds") or 0.0)  # --minutes spans resumed sessions
    budget_used = bool(config.minutes) and earlier_seconds >= 60.0 * config.minutes
    complete = (epochs_done >= config.epochs or budget_used) and (run_dir / "last.keras").is_file()
    return _Resume(run_dir, out, chief, epochs_done, previous, earlier_seconds, complete)


def _start_run_folder(config: ExperimentConfig, resume: _Resume, stats) -> None:
    """Step 2: seed everything, write ``config.json`` and ``stats.json`` where this process writes."""
    if resume.epochs_done:
        print(f"Resuming {resume.run_dir} from epoch {resume.epochs_done + 1} of {config.epochs}", flush=True)
    resume.out.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed)
    config.save(resume.out / "config.json")
    mean, std = stats
    atomic_write_json(resume.out / "stats.json", {"mean": np.asarray(mean).tolist(), "std": np.asarray(std).tolist(),
                                                  "split": "train"})


@dataclasses.dataclass
class _FitInputs:
    """What ``fit`` reads: the packed training and validation data, the steps of an epoch (None: the data's
    length), the chunk curriculum (or None), and the fixed chunk samples of the accuracy callback."""

    train: object
    valid: object
    steps_per_epoch: int | None
    curriculum: "ChunkCurriculum | None"
    samples: dict


def _fit_inputs(config: ExperimentConfig, strategy, train_data, valid_data, long_train_data, train_input,
                long_train_input, accuracy_chunks: int) -> _FitInputs:
    """Step 3, inputs: pack the targets for the loss, switch to long chunks on the curriculum's epoch, repeat
    what an epoch of fixed steps needs, and give each worker its own part under multi-worker training."""
    samples = {"": _sample_chunks(train_data, accuracy_chunks), "val_": _sample_chunks(valid_data, accuracy_chunks)}
    pack = make_packer(config)
    train_fit, valid_fit = train_data.map(pack), valid_data.map(pack)
    curriculum = None
    if config.long_chunk_frames is not None:
        if long_train_data is None:
            raise ValueError(f"config.long_chunk_frames = {config.long_chunk_frames} needs long_train_data")
        curriculum = ChunkCurriculum(config)
        train_fit = switch_datasets([train_fit, long_train_data.map(pack)], lambda: curriculum.stage)
    if config.steps_per_epoch:
        train_fit = train_fit.repeat()
    steps_per_epoch = config.steps_per_epoch
    if curriculum is not None and not steps_per_epoch and int(train_data.cardinality()) > 0:
        # long chunks make fewer batches of a finite split: every epoch takes the short stage's steps
        steps_per_epoch = int(train_data.cardinality())
        train_fit = train_fit.repeat()
    if train_input is not None and distribute.is_multi_worker(strategy):
        if not steps_per_epoch:  # the workers' parts differ in length: every epoch has a single process's steps
            steps_per_epoch = int(train_data.cardinality())
            if steps_per_epoch < 1:
                raise ValueError("multi-worker training on data of unknown length needs --steps-per-epoch")
        train_fit = strategy.distribute_datasets_from_function(
            _worker_pipeline(config, pack, train_input, long_train_input, curriculum))
    return _FitInputs(train_fit, valid_fit, steps_per_epoch, curriculum, samples)


def _model_and_loss(config: ExperimentConfig, strategy, init, resume: _Resume):
    """Step 4, model and loss: build and compile the network in the strategy's scope; a new run starts from
    ``init``'s weights. Returns the model and ``init`` with the layers left fresh named in its description."""
    with strategy.scope():
        model = build_model(config)
        optimizer = keras.optimizers.Adam(config.learning_rate, clipnorm=config.clip_norm)
        model.compile(optimizer=optimizer, loss=make_loss(config), loss_weights=make_loss_weights(config),
                      jit_compile=config.jit_compile and distribute.supports_jit(strategy))
    if init is None or resume.epochs_done:
        return model, None
    layers = load_shared_weights(model, init[0])  # by layer name: heads the source lacks start fresh
    return model, (init[0], {**init[1], "fresh_layers": layers["fresh"]})


def _run_record(config: ExperimentConfig, strategy, data_description: dict, init, resume: _Resume) -> dict:
    """Step 5, record: what ``run.json`` starts from (the earlier sessions' record when resuming, plus this
    session)."""
    record = {"config": config.to_json(), "seed": config.seed, "git_commit": git_commit(),
              "data": data_description, "strategy": type(strategy).__name__,
              "replicas": strategy.num_replicas_in_sync, "tensorflow": tf.__version__,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if init is not None:
        record["init"] = init[1]
    previous = resume.previous
    if previous is not None:  # resuming: the history, first start and wall time of the earlier sessions go on
        record = {**previous, **record, "started": previous.get("started", record["started"])}
    cpu = cpu_info()
    record.setdefault("sessions", []).append({"started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                              "first_epoch": resume.epochs_done + 1, "git_commit": record["git_commit"],
                                              "cpu": cpu.name, "cpu_flags": sorted(cpu.flags.intersection(CPU_FLAGS_OF_NOTE))})
    return record


def _callbacks(config: ExperimentConfig, resume: _Resume, inputs: _FitInputs, record: dict,
               extra_callbacks) -> list:
    """Step 6, callbacks: accuracies, checkpoints, logs, the run record and the backup, in the order they
    must run (what a callback logs, the ones after it read)."""
    out, run_dir = resume.out, resume.run_dir
    callbacks = [
        SeparationAccuracy(config, inputs.samples),
        BestCheckpoint(out / "best.keras", _best_val_loss(resume.previous, run_dir)),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        keras.callbacks.TensorBoard(str(out / "tensorboard"), write_graph=False),
        keras.callbacks.TerminateOnNaN(),
        RunRecord(out / "run.json", record),
        # last, so the record and history.csv never lag the backup; kept after training so that a
        # finished run can be recognised and continued with more --epochs; all workers restore, the chief saves
        distribute.ChiefBackupAndRestore(run_dir / "backup", resume.chief, delete_checkpoint=False),
    ]
    if config.minutes:
        callbacks.append(WallClockBudget(config.minutes, resume.earlier_seconds))
    if config.lr_schedule != "constant" or config.warmup_steps:
        # before CSVLogger/RunRecord, which log learning_rate
        callbacks.insert(1, LearningRateSchedule(config, resume.earlier_seconds))
    if inputs.curriculum is not None:
        callbacks.insert(0, inputs.curriculum)
    return callbacks + list(extra_callbacks)


def _save_final(model, resume: _Resume, strategy) -> None:
    """Step 7: the last weights (and a best checkpoint if validation never wrote one), then every worker waits
    for the chief's checkpoints to be complete."""
    atomic_save_model(model, resume.out / "last.keras")
    if not (resume.out / "best.keras").is_file():
        atomic_save_model(model, resume.out / "best.keras")
    with distribute.lost_peer_error():
        distribute.agree(strategy, 0, "the end")  # the chief's checkpoints are complete: all may evaluate them


def _worker_pipeline(config: ExperimentConfig, pack, train_input, long_train_input, curriculum):
    """The dataset function of multi-worker training: one worker's part of the training data, batched per replica.

    Endless (``.repeat()``): the parts differ in length, so ``steps_per_epoch`` ends each epoch on every worker
    at the same step.
    """
    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        shard = InputShard.of(context)
        data = train_input(context.get_per_replica_batch_size(config.batch_size), shard=shard).map(pack)
        if curriculum is not None:
            long = long_train_input(context.get_per_replica_batch_size(config.long_batch_size), shard=shard)
            data = switch_datasets([data, long.map(pack)], lambda: curriculum.stage)
        return data.repeat()

    return dataset_fn


def progress_verbosity() -> int:
    """Keras ``verbose``: a progress bar on a terminal or notebook, else one line per epoch."""
    return 1 if sys.stdout.isatty() or "ipykernel" in sys.modules else 2


def _complete_run(config: ExperimentConfig, run_dir: Path, record: dict | None, epochs_done: int):
    """A finished run: say so and return its last model and whole history without training."""
    from speechsep.nn.models import load_model

    saved = ExperimentConfig.load(run_dir / "config.json")
    budget = f", its {config.minutes:g}-minute budget used" if epochs_done < config.epochs else ""
    config = config.replace(epochs=saved.epochs, minutes=saved.minutes, strategy=saved.strategy)
    chief = distribute.is_chief()
    if chief:
        config.save(run_dir / "config.json")  # only test-time choices (e.g. --clusterer) can differ
    best = f", best epoch {record['best_epoch']}" if record and record.get("best_epoch") else ""
    print(f"{run_dir} is complete ({epochs_done} epochs{best}{budget}): nothing to train. "
          "Pass a larger --epochs or --minutes to continue it or --fresh to start over.", flush=True)
    if record is not None and chief:
        record["config"] = config.to_json()
        atomic_write_json(run_dir / "run.json", record)
    return load_model(run_dir / "last.keras"), (record or {}).get("history", {})


def history_from_run(run_dir) -> dict:
    """The full per-epoch history from ``run.json`` (spans resumed runs)."""
    path = Path(run_dir) / "run.json"
    return json.loads(path.read_text()).get("history", {}) if path.is_file() else {}
