"""A tiny one-epoch smoke run of each of the six training scripts, checking what they write."""

import json

import matplotlib.image
import numpy as np
import pytest
import soundfile

from conftest import load_script, tiny_args
from speechsep.experiments import EXPERIMENTS


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_script_smoke_run(name, toy_dataset, tmp_path, capsys):
    experiment = EXPERIMENTS[name]
    results = load_script(experiment.script).main(tiny_args(experiment) + ["--data", str(toy_dataset),
                                                                          "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert str(tmp_path) in printed  # says where the output went
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored == json.loads(json.dumps(results))
    overall = stored["overall"]
    assert overall["mixtures"] == 2
    for key in ("snr_improvement", "si_sdr_improvement", "sdr_improvement", "accuracy_fixed", "accuracy_pit"):
        assert np.isfinite(overall[key]["mean"]), key
    assert 0 <= overall["accuracy_fixed"]["mean"] <= overall["accuracy_pit"]["mean"] <= 1
    assert set(stored["by_pair_type"]) <= {"female-female", "male-male", "female-male"}
    if experiment.readout == "meanshift":
        assert 0 <= overall["speaker_count_accuracy"] <= 1
    assert experiment.figures  # every experiment writes figures
    for figure in experiment.figures.values():
        image = matplotlib.image.imread(tmp_path / figure)
        assert image.shape[0] > 200 and image.std() > 0.01, figure  # a real, non-blank picture
    mixture, rate = soundfile.read(tmp_path / "wavs" / "mixture.wav")
    estimate, _ = soundfile.read(tmp_path / "wavs" / "source1_estimate.wav")
    assert rate == 8000 and len(mixture) == len(estimate) > 1000
    for file_name in ("config.json", "stats.json", "best.keras", "run.json", "history.csv"):
        assert (tmp_path / file_name).is_file(), file_name
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["seed"] == 0 and run["epochs_done"] == 1 and "val_acc_pit" in run["history"]
