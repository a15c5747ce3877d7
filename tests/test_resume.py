"""A killed training run resumes with its whole record; a finished one is not retrained; --fresh starts over."""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

from conftest import REPO_ROOT, TINY_ARGS
from speechsep.config import ExperimentConfig
from speechsep.training.runner import ExperimentRun, run_experiment
from speechsep.training.trainer import LearningRateSchedule

# Runs a training script's steps (an entry point: program_start first) and SIGKILLs the process right after
# epoch 2 is backed up.
KILL_AFTER_EPOCH_2 = textwrap.dedent("""
    import os, signal, sys
    from speechsep.cli import program_start
    program_start()
    from speechsep.training.runner import run_experiment
    import keras

    backup_epoch_end = keras.callbacks.BackupAndRestore.on_epoch_end

    def on_epoch_end(self, epoch, logs=None):
        backup_epoch_end(self, epoch, logs)
        if epoch == 1:
            os.kill(os.getpid(), signal.SIGKILL)

    keras.callbacks.BackupAndRestore.on_epoch_end = on_epoch_end
    run_experiment("feedforward", argv=sys.argv[1:])
""")


def csv_epochs(run_dir) -> list[str]:
    with open(run_dir / "history.csv", newline="") as handle:
        return [row["epoch"] for row in csv.DictReader(handle)]


def read_record(run_dir) -> dict:
    return json.loads((run_dir / "run.json").read_text())


@pytest.mark.slow
def test_killed_run_resumes_keeps_its_record_and_best_model(toy_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    args = TINY_ARGS + ["--data", str(toy_dataset), "--out", str(out), "--epochs", "3"]
    process = subprocess.run([sys.executable, "-c", KILL_AFTER_EPOCH_2, *args], capture_output=True, text=True,
                             timeout=300, cwd=REPO_ROOT)
    assert process.returncode == -signal.SIGKILL, process.stderr
    assert process.stderr == ""  # no TensorFlow start-up chatter, no Keras warning
    assert "Epoch 2/3" in process.stdout and "Epoch 3/3" not in process.stdout
    assert "Unknown" not in process.stdout  # a known number of batches, one line per epoch
    record = read_record(out)
    assert record["epochs_done"] == 2 and csv_epochs(out) == ["0", "1"]
    first_losses = record["history"]["val_loss"]
    steps_per_epoch = int(re.search(r"^(\d+)/\1 ", process.stdout, re.MULTILINE).group(1))  # Keras' "N/N - 3s"
    assert record["optimizer_steps"] == 2 * steps_per_epoch

    # The kill window: the record and history.csv may hold an epoch the backup does not (dropped on
    # resume). And make epoch 2 unbeatable: best.keras must then never change again.
    record["history"]["val_loss"][1] = 1e-6
    for values in record["history"].values():
        values.append(0.0)
    (out / "run.json").write_text(json.dumps(record))
    with open(out / "history.csv", "a") as handle:
        handle.write("2" + ",0.0" * (len(record["history"])) + "\n")
    best = (out / "best.keras").read_bytes()

    capsys.readouterr()
    _, history = ExperimentRun("feedforward", argv=args).train()
    assert f"Resuming {out} from epoch 3 of 3" in capsys.readouterr().out
    record = read_record(out)
    assert record["epochs_done"] == 3 and record["history"] == history
    assert record["optimizer_steps"] == 3 * steps_per_epoch  # counted across both sessions
    assert len(history["loss"]) == 3 and 0.0 not in history["loss"]
    assert history["val_loss"][:2] == [first_losses[0], 1e-6]
    assert record["best_epoch"] == 2 and (out / "best.keras").read_bytes() == best
    assert [session["first_epoch"] for session in record["sessions"]] == [1, 3]
    assert csv_epochs(out) == ["0", "1", "2"]

    # A finished run, rerun with the same settings: says so and trains nothing.
    last = (out / "last.keras").stat().st_mtime_ns
    model, history = ExperimentRun("feedforward", argv=args).train()
    assert f"{out} is complete (3 epochs, best epoch 2)" in capsys.readouterr().out
    assert model is not None and len(history["loss"]) == 3
    assert (out / "last.keras").stat().st_mtime_ns == last and csv_epochs(out) == ["0", "1", "2"]

    # A setting that cannot resume is refused, naming the field, before anything changes.
    with pytest.raises(SystemExit) as stop:
        run_experiment("feedforward", argv=args + ["--loss", "pit"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(lines) == 1
    assert lines[0].startswith("error: ") and "loss is 'mse' in the run, 'pit' now" in lines[0]
    assert read_record(out)["epochs_done"] == 3

    # More epochs continue the run; --fresh starts it over.
    ExperimentRun("feedforward", argv=args + ["--epochs", "4"]).train()
    assert f"Resuming {out} from epoch 4 of 4" in capsys.readouterr().out
    assert read_record(out)["epochs_done"] == 4 and read_record(out)["best_epoch"] == 2
    ExperimentRun("feedforward", argv=args + ["--epochs", "1", "--fresh"]).train()
    record = read_record(out)
    assert record["epochs_done"] == 1 and len(record["sessions"]) == 1 and csv_epochs(out) == ["0"]
    assert "Resuming" not in capsys.readouterr().out


def test_minutes_budget_spans_resumed_sessions(toy_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    args = TINY_ARGS + ["--data", str(toy_dataset), "--out", str(out), "--epochs", "3", "--minutes", "0.0005"]
    ExperimentRun("feedforward", argv=args).train()
    record = read_record(out)
    assert record["epochs_done"] == 1 and record["wall_seconds"] > 0.03  # the 0.03 s budget ended epoch 1

    # Rerun: the budget is spent, so the run is complete although epochs remain.
    last = (out / "last.keras").stat().st_mtime_ns
    capsys.readouterr()
    ExperimentRun("feedforward", argv=args).train()
    assert f"{out} is complete (1 epochs, best epoch 1, its 0.0005-minute budget used)" in capsys.readouterr().out
    assert (out / "last.keras").stat().st_mtime_ns == last and read_record(out)["epochs_done"] == 1

    # A larger budget continues it, counting the time already used.
    ExperimentRun("feedforward", argv=args[:-1] + ["10"]).train()
    assert f"Resuming {out} from epoch 2 of 3" in capsys.readouterr().out
    record = read_record(out)
    assert record["epochs_done"] == 3 and len(record["sessions"]) == 2


def test_budgeted_schedule_counts_earlier_sessions():
    config = ExperimentConfig(learning_rate=1e-3, lr_schedule="cosine", minutes=1.0, epochs=1000, steps_per_epoch=10)
    fresh, resumed = LearningRateSchedule(config), LearningRateSchedule(config, earlier_seconds=45.0)
    rates = []
    for schedule in (fresh, resumed):
        schedule.set_model(types.SimpleNamespace(optimizer=types.SimpleNamespace(learning_rate=None)))
        schedule.on_epoch_begin(0)
        schedule.on_train_batch_begin(0)
        rates.append(schedule.model.optimizer.learning_rate)
    assert rates[0] == pytest.approx(1e-3, rel=1e-3)
    assert rates[1] == pytest.approx(1e-3 * 0.5 * (1 + np.cos(np.pi * 0.75)), rel=1e-3)  # 45 s of 60 s used
