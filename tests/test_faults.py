"""Faults end in one clear line, a non-zero exit and no hang: bad datasets, bad --out, unsupported audio.

Anything that could hang runs in a subprocess with a timeout, so a hang fails
the test instead of stalling CI. Most of these processes stop before
TensorFlow loads (the dataset is checked first), so they take about a second.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO_ROOT, TINY_ARGS, write_audio, voice
from speechsep import _quiet
from speechsep.cli import build_dataset, check_out_dir
from speechsep.data.corpus import CorpusError, discover_corpus
from speechsep.data.shards import DatasetConfig, ShardError, verify_dataset
from speechsep.data.toy import toy_corpus

TIMEOUT = 120  # seconds; a healthy run of any of these takes a few


def run_python(*args, cwd=None) -> subprocess.CompletedProcess:
    """``python *args`` with a timeout; a hang raises ``subprocess.TimeoutExpired`` (a failed test)."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=TIMEOUT,
                          cwd=cwd or REPO_ROOT)


def error_lines(process: subprocess.CompletedProcess) -> list[str]:
    return process.stderr.strip().splitlines()


def flip_byte(path: Path) -> None:
    payload = bytearray(path.read_bytes())
    payload[len(payload) // 2] ^= 0x01
    path.write_bytes(bytes(payload))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def garbage_index(path: Path) -> None:
    (path.parent.parent / "index.json").write_bytes(os.urandom(300))


FAULTS = {  # name: (damage done to the first train shard (or its index), what the one line must say)
    "flipped byte": (flip_byte, "shard-00000.pkl: sha256 mismatch"),
    "truncated": (truncate, "shard-00000.pkl: sha256 mismatch"),
    "deleted": (Path.unlink, "shard-00000.pkl: missing (listed in"),
    "garbage index": (garbage_index, "index.json: not valid JSON"),
}


@pytest.fixture
def damaged_copy(toy_dataset, tmp_path, request):
    """A copy of the toy dataset with one fault of :data:`FAULTS`; yields (folder, expected message)."""
    damage, message = FAULTS[request.param]
    folder = tmp_path / "data"
    shutil.copytree(toy_dataset, folder)
    damage(folder / "train" / "shard-00000.pkl")
    return folder, message


@pytest.mark.parametrize("damaged_copy", list(FAULTS), indirect=True)
def test_bad_dataset_is_one_line_and_exits(damaged_copy):
    folder, message = damaged_copy
    process = run_python("DataGenerator/datagenerator2.py", "--data", str(folder))
    assert process.returncode == 2
    lines = error_lines(process)
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], process.stderr


def test_damaged_index_and_stats_are_named(toy_dataset, tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(toy_dataset, folder)
    index = json.loads((folder / "index.json").read_text())
    for damaged, message in ((dict(index, splits=None), "damaged index"), ([index], "not a dataset index"),
                             (dict(index, splits={"train": {"shards": [{"file": "../../x", "sha256": "0"}]}}),
                              "damaged index")):
        (folder / "index.json").write_text(json.dumps(damaged))
        with pytest.raises(ShardError, match=f"index.json: {message}"):
            verify_dataset(folder)
    (folder / "index.json").write_text(json.dumps(index))
    (folder / "stats.json").write_text('{"mean": [1, 2]}')
    with pytest.raises(ShardError, match="stats.json: damaged normalisation statistics"):
        verify_dataset(folder)


def test_training_on_a_corrupt_dataset_stops_before_any_work(toy_dataset, tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(toy_dataset, folder)
    flip_byte(folder / "valid" / "shard-00000.pkl")
    out = tmp_path / "run"
    process = run_python("Feedforward/train_net.py", *TINY_ARGS, "--data", str(folder), "--out", str(out))
    lines = error_lines(process)
    assert process.returncode != 0 and len(lines) == 1, process.stderr
    assert lines[0].startswith("error: ") and "valid/shard-00000.pkl: sha256 mismatch" in lines[0]
    assert not out.exists()  # no empty run folder left behind


# A shard that goes bad after the pipeline was built (the check before it cannot see this): the error
# raised inside tf.data is unwrapped to one line, by run_guarded and by the scripts' error hook, and the
# process exits (an iterator alive at interpreter shutdown used to wait forever for its threads).
# Its stderr holds those two lines and nothing else: TensorFlow's start-up chatter is silenced (by
# program_start, as in every entry point: importing the library alone leaves the process alone).
MID_RUN_CORRUPTION = textwrap.dedent("""
    import sys
    from pathlib import Path
    from speechsep.cli import install_error_hook, program_start, run_guarded
    program_start()
    from speechsep.data import pipeline

    dataset = pipeline.make_dataset(sys.argv[1], "train", 4, 100, seed=0)
    for shard in Path(sys.argv[1], "train").glob("*.pkl"):
        payload = bytearray(shard.read_bytes())
        payload[len(payload) // 2] ^= 1
        shard.write_bytes(bytes(payload))

    def consume():
        for batch in dataset:
            pass

    try:
        run_guarded(consume)
    except SystemExit as stop:
        print("run_guarded exit", stop.code)
    install_error_hook()
    for batch in dataset:  # uncaught, like a script cell at module level
        pass
""")


@pytest.mark.slow
def test_shard_corrupted_during_iteration_is_one_line_and_exits(toy_dataset, tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(toy_dataset, folder)
    process = run_python("-c", MID_RUN_CORRUPTION, str(folder))
    assert "run_guarded exit 2" in process.stdout, process.stderr
    lines = error_lines(process)
    assert process.returncode == 1 and len(lines) == 2, process.stderr
    for line in lines:
        assert line.startswith("error: ") and "/train/shard-0000" in line and "sha256 mismatch" in line


def test_out_that_is_a_file_unwritable_or_inside_the_dataset(toy_dataset, tmp_path):
    from speechsep.training.runner import run_experiment

    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_out_dir(a_file)
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_out_dir(a_file / "run")
    with pytest.raises(ValueError, match="inside the dataset folder"):
        check_out_dir(toy_dataset / "runs" / "ff", dataset=toy_dataset)
    assert check_out_dir(tmp_path / "new" / "run") == (tmp_path / "new" / "run").resolve()
    assert not (tmp_path / "new").exists()  # checking creates nothing
    # through a training script: one line, exit status 2, before any work
    with pytest.raises(SystemExit) as stop:
        run_experiment("feedforward", argv=TINY_ARGS + ["--data", str(toy_dataset), "--out", str(a_file)])
    assert stop.value.code == 2 and a_file.read_text() == "mine"


def test_out_that_cannot_be_written(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: a read-only folder is writable")
        with pytest.raises(ValueError, match="cannot write in"):
            check_out_dir(locked / "run")
    finally:
        locked.chmod(0o755)


def test_failed_first_epoch_leaves_no_run_folder(toy_dataset, tmp_path, monkeypatch):
    from speechsep.training import trainer
    from speechsep.training.runner import ExperimentRun

    def fail(*args, **kwargs):
        raise ValueError("the dataset yielded no chunk")

    monkeypatch.setattr(trainer, "_sample_chunks", fail)
    out = tmp_path / "run"
    run = ExperimentRun("feedforward", argv=TINY_ARGS + ["--data", str(toy_dataset), "--out", str(out)])
    with pytest.raises(ValueError, match="no chunk"):
        run.train()
    assert not out.exists()
    mine = tmp_path / "existing"  # a folder that was there before is never removed
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="no chunk"):
        ExperimentRun("feedforward", argv=TINY_ARGS + ["--data", str(toy_dataset), "--out", str(mine)]).train()
    assert (mine / "notes.txt").read_text() == "mine"


def test_unsupported_audio_says_what_it_found(tmp_path):
    for speaker in range(3):
        for utterance in range(2):
            path = tmp_path / "mp3s" / f"spk{speaker}" / f"u{utterance}.mp3"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"ID3 not decoded")
    with pytest.raises(CorpusError, match=r"6 \.mp3 files: unsupported, convert to wav or flac"):
        discover_corpus(tmp_path / "mp3s")
    write_audio(tmp_path / "mixed" / "spk0" / "a.wav", voice(0))  # too little usable audio is another error
    (tmp_path / "mixed" / "spk1").mkdir()
    (tmp_path / "mixed" / "spk1" / "b.m4a").write_bytes(b"not decoded")
    with pytest.raises(CorpusError, match="at least 2 different speakers"):
        discover_corpus(tmp_path / "mixed")


def test_dataset_is_reused_repaired_or_written_and_says_which(tmp_path, capsys):
    corpus = toy_corpus(num_speakers=8, utterances_per_speaker=2)
    config = DatasetConfig(mixtures={"train": 6, "valid": 2, "test": 2}, shard_size=3)
    out = tmp_path / "data"
    build_dataset(corpus, config, out, progress=False)
    assert "Writing 10 mixtures" in capsys.readouterr().out
    shard = out / "train" / "shard-00001.pkl"
    original = shard.read_bytes()
    build_dataset(corpus, config, out, progress=False)
    printed = capsys.readouterr().out
    assert f"Reusing dataset {out}" in printed and "Writing" not in printed
    flip_byte(shard)
    with pytest.raises(ShardError, match="shard-00001.pkl: sha256 mismatch"):
        verify_dataset(out)
    build_dataset(corpus, config, out, progress=False)
    printed = capsys.readouterr().out
    assert "Repairing dataset" in printed and "shard-00001.pkl: sha256 mismatch" in printed
    assert shard.read_bytes() == original  # rewritten byte for byte
    verify_dataset(out)


def test_start_up_filter_drops_only_tensorflow_chatter(capfd, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    chatter = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
               "I0000 00:00:1795866404.685624   24753 port.cc:153] oneDNN custom operations are on.\n"
               "W0000 00:00:1795866404.686180   24753 cudart_stub.cc:31] Could not find cuda drivers.\n")
    kept = "E0000 00:00:1795866404.7   24753 op.cc:12] a real error\nTraceback (most recent call last):\n"
    capfd.readouterr()
    with _quiet.filtered_stderr():
        os.write(2, (chatter + kept).encode())
    assert capfd.readouterr().err == kept
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")  # the user asked for everything
    with _quiet.filtered_stderr():
        os.write(2, chatter.encode())
    assert capfd.readouterr().err == chatter


def test_a_failed_checkpoint_save_keeps_the_previous_one(tmp_path):
    import keras
    import numpy as np

    from speechsep.io import atomic_save_model
    from speechsep.training.trainer import BestCheckpoint

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    checkpoint = BestCheckpoint(tmp_path / "best.keras", best=0.5)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"val_loss": 0.7})  # no better than the earlier sessions' best: nothing written
    assert not (tmp_path / "best.keras").exists()
    checkpoint.on_epoch_end(1, {"val_loss": 0.4})
    saved = (tmp_path / "best.keras").read_bytes()
    assert keras.models.load_model(tmp_path / "best.keras").count_params() == 4

    class DiesWhileSaving(keras.Model):
        def save(self, path, **kwargs):
            Path(path).write_bytes(b"half a zip file")  # what a kill mid-save leaves
            raise KeyboardInterrupt

    dying = DiesWhileSaving(inputs, keras.layers.Dense(1)(inputs))
    with pytest.raises(KeyboardInterrupt):
        atomic_save_model(dying, tmp_path / "best.keras")
    assert (tmp_path / "best.keras").read_bytes() == saved  # the previous best survives, loadable
    assert [p.name for p in tmp_path.iterdir()] == ["best.keras"]  # no temporary file left behind
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "best.keras").predict(np.ones((1, 3)), verbose=0),
                               model.predict(np.ones((1, 3)), verbose=0))
