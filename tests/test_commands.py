"""evaluate / separate / the comparison, end to end on a tiny trained run."""

import json

import matplotlib.image
import numpy as np
import pytest
import scipy.signal
import soundfile

from speechsep.__main__ import main as cli_main
from speechsep.data.toy import synthesize
from conftest import load_script

pytestmark = pytest.mark.slow  # every test here uses the trained_runs fixture (trains two scripts)

def test_evaluate_run_and_oracle(trained_runs, toy_dataset, tmp_path, capsys):
    run = trained_runs / "deepclustering"
    data = toy_dataset
    assert cli_main(["evaluate", "--model", str(run), "--data", str(data), "--out", str(tmp_path / "e")]) == 0
    summary = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    lines = (tmp_path / "e" / "evaluation.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + summary["overall"]["mixtures"] == 3  # header + the 2 test mixtures
    printed = capsys.readouterr().out
    assert summary["by_pair_type"]  # one table per pair type that occurs, each printed under its name
    for pair, block in summary["by_pair_type"].items():
        assert f"\n{pair}\n" in printed and block["mixtures"] >= 1
    assert sum(block["mixtures"] for block in summary["by_pair_type"].values()) == 2
    assert cli_main(["evaluate", "--model", "oracle:ibm", "--data", str(data), "--out", str(tmp_path / "o")]) == 0
    oracle = json.loads((tmp_path / "o" / "evaluation.json").read_text())
    assert oracle["overall"]["accuracy_pit"]["mean"] == 1.0
    assert oracle["overall"]["sdr_improvement"]["mean"] > 5.0


def test_evaluate_refuses_training_speakers(trained_runs, toy_dataset, tmp_path, capsys):
    run = trained_runs / "deepclustering"
    record = json.loads((run / "run.json").read_text())
    record["data"]["splits"]["train"].append(record["data"]["splits"]["test"][0])
    (run / "run.json").write_text(json.dumps(record))
    try:
        with pytest.raises(SystemExit):
            cli_main(["evaluate", "--model", str(run), "--data", str(toy_dataset), "--out", str(tmp_path)])
        assert "trained on test speaker" in capsys.readouterr().err
    finally:
        record["data"]["splits"]["train"].pop()
        (run / "run.json").write_text(json.dumps(record))


def test_separate_44k_stereo_and_bad_file(trained_runs, tmp_path, capsys):
    mixture = synthesize(0, "F", 0, 1.5) + synthesize(1, "M", 1, 1.5)
    at_44k = scipy.signal.resample_poly(mixture, 441, 80)
    soundfile.write(tmp_path / "talk.wav", 0.4 * np.stack([at_44k, 0.5 * at_44k], axis=1), 44100)
    (tmp_path / "broken.wav").write_text("not audio")
    code = cli_main(["separate", "--model", str(trained_runs / "deepclustering"), "--out", str(tmp_path / "out"),
                     "--rate", "8000", str(tmp_path / "broken.wav"), str(tmp_path / "talk.wav")])
    captured = capsys.readouterr()
    assert code == 1  # one file failed ...
    assert "broken.wav" in captured.err and "not a readable audio file" in captured.err
    for index in (1, 2):  # ... and the good one after it was still separated
        estimate, rate = soundfile.read(tmp_path / "out" / f"talk_s{index}.wav")
        assert rate == 8000 and abs(len(estimate) - 12000) <= 2
    assert "at 8000 Hz" in captured.out
    code = cli_main(["separate", "--model", str(trained_runs / "feedforward"), "--out",
                     str(tmp_path / "ff"), str(tmp_path / "talk.wav")])
    assert code == 0 and (tmp_path / "ff" / "talk_s2.wav").is_file()


def test_comparison_end_to_end(trained_runs, toy_dataset, tmp_path):
    summaries = load_script("Pictures/make_pictures.py").main(
        ["--runs", str(trained_runs), "--data", str(toy_dataset), "--out", str(tmp_path)])
    assert list(summaries) == ["feedforward", "deepclustering", "oracle ibm", "oracle irm", "oracle mixture"]
    stored = json.loads((tmp_path / "results.json").read_text())
    table = (tmp_path / "results.md").read_text()
    for name, summary in stored.items():  # the table agrees with the summary JSON
        snr = summary["overall"]["snr_improvement"]
        assert f"| {name} | {summary['overall']['mixtures']} | {snr['mean']:.2f} ± {snr['std']:.2f} |" in table
    assert abs(stored["oracle mixture"]["overall"]["snr_improvement"]["mean"]) < 1e-6
    for name in ("snr_comparison.png", "Feed_forward.png", "RNN.png", "Bi-directional-RNN.png",
                 "Bi-directional-RNN-with-loss-function.png", "deep_clustering.png", "FolderStructure.png"):
        assert matplotlib.image.imread(tmp_path / name).std() > 0.05, name
