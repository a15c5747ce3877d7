"""Multi-worker training: TF_CONFIG and batch checks, input sharding, the launcher, and real clusters on loopback.

The cluster tests start TensorFlow processes with a timeout each (a hang
fails the test instead of stalling CI); tests/multiworker_fit.py is the tiny
program they train with.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import REPO_ROOT, TINY_ARGS
from speechsep.launch import LocalCluster, free_ports, launch
from speechsep.training.tf_config import check_strategy_arguments, parse_tf_config, tf_config

TIMEOUT = 150  # seconds for any one cluster; a healthy one takes 10-30
FIT_PROGRAM = str(REPO_ROOT / "tests" / "multiworker_fit.py")


def two_workers(index: int = 0) -> dict:
    return {"TF_CONFIG": tf_config(["127.0.0.1:2001", "127.0.0.1:2002"], index)}


# ----------------------------------------------------------------------------- TF_CONFIG and batch checks


@settings(max_examples=30, deadline=None)
@given(ports=st.lists(st.integers(1, 65535), min_size=1, max_size=6, unique=True), data=st.data())
def test_tf_config_round_trip(ports, data):
    addresses = [f"10.0.0.{i}:{port}" for i, port in enumerate(ports)]
    index = data.draw(st.integers(0, len(ports) - 1))
    task = parse_tf_config(tf_config(addresses, index))
    assert task.addresses == addresses and task.rank == index and task.address == addresses[index]
    assert task.is_chief == (index == 0)
    assert [address for _, address in task.peers()] == addresses[:index] + addresses[index + 1:]


def test_a_chief_task_is_rank_0_and_workers_follow():
    cluster = {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"]}
    chief = parse_tf_config(json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}}))
    worker = parse_tf_config(json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert (chief.rank, chief.is_chief, chief.num_workers) == (0, True, 3)
    assert (worker.rank, worker.is_chief, worker.address) == (1, False, "h1:1")
    assert parse_tf_config(None) is None and parse_tf_config("  ") is None


@pytest.mark.parametrize("text, message", [
    ('{"cluster": {"worker": ["a:1"', "TF_CONFIG is not valid JSON"),
    ('["a:1"]', "must be a JSON object"),
    ('{"task": {"type": "worker", "index": 0}}', 'no "cluster"'),
    ('{"cluster": {"worker": ["a:1"]}}', 'no "task"'),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "task index 1 is outside"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": "0"}}', "task index '0' is outside"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "task type 'ps' is not a job"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:1"]}, "task": {"type": "worker", "index": 0}}', "not supported"),
    ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}', "not a host:port"),
    ('{"cluster": {"worker": ["a:99999"]}, "task": {"type": "worker", "index": 0}}', "not a host:port"),
    ('{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}', "more than once"),
    ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "non-empty list"),
])
def test_malformed_tf_config_is_refused_naming_the_problem(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_tf_config(text)


def test_strategy_arguments_are_checked_before_tensorflow_loads():
    with pytest.raises(ValueError, match="--strategy multiworker needs TF_CONFIG"):
        check_strategy_arguments("multiworker", {"--batch-size": 8}, environ={})
    with pytest.raises(ValueError, match="--batch-size 7 .* not divisible by the 2 workers"):
        check_strategy_arguments("multiworker", {"--batch-size": 7}, environ=two_workers())
    with pytest.raises(ValueError, match="cluster of 2 workers but --strategy is default"):
        check_strategy_arguments("default", {"--batch-size": 8}, environ=two_workers())
    with pytest.raises(ValueError, match="not valid JSON"):
        check_strategy_arguments("default", {}, environ={"TF_CONFIG": "{"})
    assert check_strategy_arguments("multiworker", {"--batch-size": 8, "unused": None},
                                    environ=two_workers(1)).rank == 1
    assert check_strategy_arguments("mirrored", {"--batch-size": 7}, environ={}) is None


def test_a_training_script_refuses_bad_cluster_settings_in_one_line(monkeypatch, tmp_path):
    from speechsep.training.runner import ExperimentRun

    argv = TINY_ARGS + ["--out", str(tmp_path / "run"), "--strategy", "multiworker"]
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs TF_CONFIG"):
        ExperimentRun("feedforward", argv=argv)
    monkeypatch.setenv("TF_CONFIG", two_workers()["TF_CONFIG"])
    with pytest.raises(ValueError, match="--batch-size 9 .* 2 workers"):
        ExperimentRun("feedforward", argv=argv + ["--batch-size", "9"])
    monkeypatch.setenv("TF_CONFIG", "not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        ExperimentRun("feedforward", argv=argv)
    assert not (tmp_path / "run").exists()
    process = subprocess.run([sys.executable, "Feedforward/train_net.py", *argv], capture_output=True, text=True,
                             timeout=60, cwd=REPO_ROOT, env=dict(os.environ, TF_CONFIG="{"))
    lines = process.stderr.strip().splitlines()
    assert process.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: TF_CONFIG is not valid JSON")


def test_global_batch_must_split_over_the_replicas():
    from speechsep.training.distribute import check_global_batch

    class TwoReplicas:
        num_replicas_in_sync = 2

    check_global_batch(TwoReplicas(), {"--batch-size": 8, "the long-chunk batch": None})
    with pytest.raises(ValueError, match="the long-chunk batch 3 .* not divisible by the 2 replicas"):
        check_global_batch(TwoReplicas(), {"--batch-size": 8, "the long-chunk batch": 3})


# ----------------------------------------------------------------------------- input sharding


def chunk_keys(dataset) -> list[bytes]:
    """The chunks a pipeline yields (their feature bytes), sorted, to compare two pipelines."""
    return sorted(features.tobytes() for batch, _ in dataset for features in batch.numpy())


@pytest.mark.parametrize("workers", [2, 3])  # 2 shard files: by file for 2 workers, by chunk for 3
def test_every_training_chunk_goes_to_exactly_one_worker(toy_dataset, workers):
    from speechsep.data.pipeline import InputShard, make_dataset

    whole = chunk_keys(make_dataset(toy_dataset, "train", 8, shuffle=False))
    shards = [make_dataset(toy_dataset, "train", 4, shard=InputShard(i, workers)) for i in range(workers)]
    parts = [chunk_keys(shard) for shard in shards]
    assert all(parts) and len({tuple(part) for part in parts}) == workers
    assert sorted(sum(parts, [])) == whole  # every chunk read once, by one worker
    assert [int(shard.cardinality()) for shard in shards] == [-(-len(part) // 4) for part in parts]
    with pytest.raises(ValueError, match="fewer chunks than the 1000 workers"):
        make_dataset(toy_dataset, "train", 8, shard=InputShard(999, 1000))
    with pytest.raises(ValueError, match="input shard 2 of 2 does not exist"):
        InputShard(2, 2)


def test_dynamic_mixing_draws_other_mixtures_on_every_worker():
    from speechsep.data.mixing import MixingConfig, split_speakers
    from speechsep.data.pipeline import InputShard, estimate_stats, make_dynamic_dataset
    from speechsep.data.toy import toy_corpus

    corpus = toy_corpus()
    speakers = split_speakers(corpus, seed=0)["train"]
    mixing = MixingConfig(seed=0)
    mean, std = estimate_stats(corpus, speakers, mixing, mixtures=5)

    def first(shard):  # short chunks: the shuffle buffer (256 chunks) fills from few mixtures
        return chunk_keys(make_dynamic_dataset(corpus, speakers, mixing, mean, std, 8, chunk_frames=10,
                                               shard=shard).take(2))

    single, worker0, worker1 = first(None), first(InputShard(0, 2)), first(InputShard(1, 2))
    assert worker0 == single  # worker 0 draws what a single process draws
    assert not set(worker1) & set(worker0)


# ----------------------------------------------------------------------------- the launcher


WORKER = ("import json, os, sys, time; task = json.loads(os.environ['TF_CONFIG'])['task']['index']; "
          "print('address', json.loads(os.environ['TF_CONFIG'])['cluster']['worker'][task]); "
          "print('to stderr', file=sys.stderr); sys.stdout.flush(); {body}")


def test_launcher_prefixes_output_and_gives_each_worker_its_tf_config():
    out = io.StringIO()
    assert launch([sys.executable, "-c", WORKER.format(body="")], 3, timeout=60, out=out) == 0
    lines = out.getvalue().splitlines()
    for index in range(3):
        address = next(line for line in lines if line.startswith(f"[worker {index}] address "))
        assert address.split()[-1].startswith("127.0.0.1:")
        assert f"[worker {index}] to stderr" in lines
    assert len({line.split()[-1] for line in lines if " address " in line}) == 3


def test_launcher_fails_with_the_first_failure_and_stops_the_others():
    # worker 1 fails; worker 0 ignores SIGTERM (like TensorFlow's multi-worker runtime) and must be killed
    body = ("import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "sys.exit(7) if task == 1 else time.sleep(60)")
    out = io.StringIO()
    cluster = LocalCluster([sys.executable, "-c", WORKER.format(body=body)], 2, out=out, kill_grace=1.0).start()
    start = time.monotonic()
    assert cluster.wait(timeout=60) == 7
    assert time.monotonic() - start < 20
    assert all(process.poll() is not None for process in cluster.processes)
    assert "[launch] worker 1 exited with status 7; stopping the others" in out.getvalue()
    assert launch([sys.executable, "-c", "import time; time.sleep(60)"], 1, timeout=1, out=io.StringIO()) == 124


def test_launch_command_line_passes_the_command_and_returns_its_status(capsys):
    from speechsep.__main__ import main

    body = "sys.exit(3 if task == 1 else 0)"
    assert main(["launch", "--workers", "2", "--", sys.executable, "-c", WORKER.format(body=body)]) == 3
    assert "[launch] worker 1 exited with status 3" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["launch", "--workers", "2"])
    assert exit_info.value.code == 2 and "error: no command to launch" in capsys.readouterr().err


def test_a_workers_folder_is_reclaimed_by_its_next_start(monkeypatch, tmp_path):
    from speechsep.training import distribute

    monkeypatch.setattr(distribute, "_worker_dirs", {})
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(distribute.tempfile, "tempdir", None)  # re-read TMPDIR
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TF_CONFIG", tf_config(["127.0.0.1:1", "127.0.0.1:2"], 1))
    run = tmp_path / "run"
    folder = distribute.worker_dir(run)
    assert folder.parent == tmp_path / "tmp" and folder != run and distribute.worker_dir(run) == folder
    (folder / "last.keras").write_text("from a worker that was killed")
    distribute._worker_dirs.clear()  # a new process: the same run and task get the same, emptied folder
    assert distribute.worker_dir(run) == folder and not any(folder.iterdir())
    other = distribute.worker_dir(tmp_path / "other-run")
    assert other != folder
    distribute.remove_worker_dirs()
    assert not folder.exists() and not other.exists()
    monkeypatch.setenv("TF_CONFIG", tf_config(["127.0.0.1:1", "127.0.0.1:2"], 0))
    assert distribute.worker_dir(run) == run  # the chief writes the run folder itself


def test_free_ports_are_distinct_loopback_ports():
    ports = free_ports(4)
    assert len(set(ports)) == 4 and all(0 < port < 65536 for port in ports)


# ----------------------------------------------------------------------------- backups written by the chief only


def test_only_the_chief_writes_the_backup_and_every_worker_restores_it(tmp_path):
    import keras

    from speechsep.training.distribute import ChiefBackupAndRestore

    def model():
        keras.utils.set_random_seed(0)
        network = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        network.compile(optimizer="sgd", loss="mse")
        return network

    x, y = np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32)
    trained = model()
    trained.fit(x, y, epochs=2, verbose=0,
                callbacks=[ChiefBackupAndRestore(tmp_path / "backup", chief=True, delete_checkpoint=False)])
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == ["latest.weights.h5",
                                                                       "training_metadata.json"]
    assert json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["epoch"] == 2
    model().fit(x, y, epochs=1, verbose=0, callbacks=[ChiefBackupAndRestore(tmp_path / "other", chief=False)])
    assert not (tmp_path / "other").exists()
    weights = {}
    for chief in (False, True):  # restoring: both read the chief's backup, skip the epochs done, continue alike
        restored = model()
        history = restored.fit(x, y, epochs=3, verbose=0,
                               callbacks=[ChiefBackupAndRestore(tmp_path / "backup", chief=chief,
                                                                delete_checkpoint=False)])
        assert history.epoch == [2]
        weights[chief] = restored.get_weights()
        assert json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["epoch"] == 2 + chief
    for worker, chief in zip(weights[False], weights[True]):
        np.testing.assert_array_equal(worker, chief)


# ----------------------------------------------------------------------------- clusters on loopback


def test_two_workers_and_two_devices_train_like_one_process(tmp_path):
    """2 workers on loopback, MirroredStrategy on 2 logical CPUs and the default strategy, 3 steps each on the
    same global batches: identical weights, loss, validation loss and accuracy-callback numbers."""
    local = subprocess.Popen([sys.executable, FIT_PROGRAM, str(tmp_path / "fit"), "default", "mirrored2"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = io.StringIO()
    try:
        status = launch([sys.executable, FIT_PROGRAM, str(tmp_path / "fit"), "multiworker"], 2, timeout=TIMEOUT,
                        out=out)
        output = local.communicate(timeout=TIMEOUT)[0]
    finally:
        local.kill()
    assert status == 0, out.getvalue()[-3000:]
    assert local.returncode == 0, output[-3000:]

    def read(name: str, rank: int = 0) -> dict:
        return json.loads((tmp_path / f"fit-{name}-{rank}.json").read_text())

    reference = read("default")
    runs = {"worker 0": read("multiworker", 0), "worker 1": read("multiworker", 1), "mirrored2": read("mirrored2")}
    assert reference["replicas"] == 1 and all(run["replicas"] == 2 for run in runs.values())
    for name, run in runs.items():
        for expected, actual in zip(reference["weights"], run["weights"]):
            np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6, err_msg=name)
        assert set(run["history"]) == {"loss", "val_loss", "val_acc_fixed", "val_acc_pit"}
        for key, values in reference["history"].items():
            np.testing.assert_allclose(run["history"][key], values, rtol=1e-5, err_msg=f"{name}: {key}")
    for expected, actual in zip(runs["worker 0"]["weights"], runs["worker 1"]["weights"]):
        np.testing.assert_array_equal(actual, expected)  # the replicas of one cluster are bit-identical


class Watched(io.StringIO):
    """A launcher output that can be waited on for a line."""

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.getvalue():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not seen in {timeout} s:\n{self.getvalue()[-3000:]}")
            time.sleep(0.05)


@pytest.mark.slow
def test_killed_worker_then_restarted_job_resumes_from_the_last_finished_epoch(toy_dataset, tmp_path):
    """The real script on 2 workers; the chief is SIGKILLed mid-epoch; the job fails (the survivor names the
    lost worker, or the launcher stops it first); the restarted job resumes after the last backed-up epoch with
    intact run.json, history.csv and checkpoints, and no worker folder is left behind."""
    from speechsep.nn.models import load_model

    out_dir, scratch = tmp_path / "run", tmp_path / "tmp"
    scratch.mkdir()
    command = [sys.executable, str(REPO_ROOT / "Feedforward" / "train_net.py"), *TINY_ARGS, "--data", str(toy_dataset),
               "--epochs", "3", "--steps-per-epoch", "30", "--strategy", "multiworker", "--out", str(out_dir)]
    environ = dict(os.environ, TMPDIR=str(scratch))
    first = Watched()
    cluster = LocalCluster(command, 2, out=first, env=environ).start()
    try:
        first.wait_for("[worker 0] Epoch 2/3", TIMEOUT)
        time.sleep(0.3)
        os.kill(cluster.processes[0].pid, signal.SIGKILL)
        status = cluster.wait(timeout=TIMEOUT)
    finally:
        cluster.stop()
    assert status != 0
    log = first.getvalue()
    # Either the survivor noticed first (one line naming the lost worker), or the launcher stopped it first.
    survivor_noticed = "[worker 1] error: worker 1 of 2" in log and "lost the cluster (worker 0 at 127.0.0.1:" in log
    assert survivor_noticed or "[launch] worker 0 exited with status" in log, log[-3000:]
    done = json.loads((out_dir / "backup" / "training_metadata.json").read_text())["epoch"]
    assert 1 <= done < 3
    record = json.loads((out_dir / "run.json").read_text())  # complete JSON, not a torn write
    assert record["epochs_done"] >= done
    load_model(out_dir / "best.keras")

    second = Watched()
    assert launch(command, 2, timeout=TIMEOUT, out=second, env=environ) == 0, second.getvalue()[-3000:]
    log = second.getvalue()
    assert f"[worker 0] Resuming {out_dir} from epoch {done + 1} of 3" in log
    assert f"[worker 1] Resuming {out_dir} from epoch {done + 1} of 3" in log
    record = json.loads((out_dir / "run.json").read_text())
    assert record["epochs_done"] == 3 and [s["first_epoch"] for s in record["sessions"]] == [1, done + 1]
    assert all(len(values) == 3 for values in record["history"].values())
    with open(out_dir / "history.csv", newline="") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["0", "1", "2"]
    assert json.loads((out_dir / "backup" / "training_metadata.json").read_text())["epoch"] == 3
    for name in ("best.keras", "last.keras"):
        load_model(out_dir / name)
    assert (out_dir / "results.json").is_file()
    assert not list(scratch.glob("speechsep-*"))  # worker 1 removed its folders, even after losing the chief


@pytest.mark.slow
def test_a_worker_whose_peer_never_starts_fails_naming_the_address(tmp_path):
    task = json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]},
                       "task": {"type": "worker", "index": 0}})
    program = "from speechsep.training import distribute; distribute.make_strategy('multiworker', join_timeout=2)"
    start = time.monotonic()
    process = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=TIMEOUT,
                             env=dict(os.environ, TF_CONFIG=task))
    peer = json.loads(task)["cluster"]["worker"][1]
    assert process.returncode != 0
    assert f"cannot reach worker 1 at {peer} (connection refused)" in process.stderr
    assert time.monotonic() - start < 60
