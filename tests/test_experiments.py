"""A tiny one-epoch run of each of the six training scripts, checking what they write.

Five run through ``main()`` (a shell, or Spyder's F5); the deep-clustering script runs cell by cell,
as with Spyder's Ctrl+Enter (its ``main()`` also runs in the ``trained_runs`` fixture).
"""

import dataclasses
import json
import re
import sys

import matplotlib.image
import numpy as np
import pytest
import soundfile

from conftest import REPO_ROOT, TINY_SIZES, load_script, tiny_args
from speechsep.config import ExperimentConfig
from speechsep.experiments import EXPERIMENTS
from speechsep.nn.models import build_model
from speechsep.training.runner import ExperimentRun
from speechsep.training.script_args import SETTING_ALIASES, build_parser

CELL_BY_CELL = "deepclustering"


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_a_script_with_no_flags_trains_what_python_builds(name):
    """One home per default: the script (its CONFIG and its parser's defaults, no flags, nothing trained)
    and ``ExperimentConfig.for_experiment`` from Python give the same config, field by field."""
    script = load_script(EXPERIMENTS[name].script)
    assert script.EXPERIMENT == name
    from_script = ExperimentRun(script.EXPERIMENT, script.__file__, script.CONFIG).config
    from_python = ExperimentConfig.for_experiment(name)
    for field in dataclasses.fields(ExperimentConfig):
        assert getattr(from_script, field.name) == getattr(from_python, field.name), (name, field.name)
    assert from_script == from_python
    for key, value in script.CONFIG.items():  # CONFIG shows the values in effect, by field name
        assert key in {field.name for field in dataclasses.fields(ExperimentConfig)}, key
        assert getattr(from_python, key) == value, key


def test_old_flag_and_config_spellings_are_aliases_of_the_field_names():
    new = ["--num-layers", "3", "--readout", "kmeans", "--num-speakers", "3", "--meanshift-bandwidth", "0.2",
           "--no-jit-compile"]
    old = ["--layers", "3", "--clusterer", "kmeans", "--speakers", "3", "--bandwidth", "0.2", "--no-jit"]
    expected = ExperimentConfig.for_experiment("meanshift", num_layers=3, readout="kmeans", num_speakers=3,
                                               meanshift_bandwidth=0.2, jit_compile=False)
    assert ExperimentRun("meanshift", argv=new).config == ExperimentRun("meanshift", argv=old).config == expected
    settings = {"layers": 3, "clusterer": "kmeans", "speakers": 3, "bandwidth": 0.2, "jit_compile": False}
    assert ExperimentRun("meanshift", settings=settings, argv=[]).config == expected
    later_wins = {"num_layers": 2, "layers": 3}  # a script's CONFIG, then CONFIG.update(layers=3)
    assert ExperimentRun("meanshift", settings=later_wins, argv=[]).config.num_layers == 3
    text = build_parser(EXPERIMENTS["meanshift"], "").format_help()
    for alias in ["--jit", *(f"--{old_name}" for old_name in SETTING_ALIASES)]:
        assert re.search(re.escape(alias) + r"(?![\w-])", text), alias  # documented in --help
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['layer'\]"):
        ExperimentRun("meanshift", settings={"layer": 3}, argv=[])
    with pytest.raises(ValueError, match="unknown config field"):
        ExperimentConfig.for_experiment("meanshift", layers=3)


def check_run_folder(experiment, out, results):
    """What every script writes into its run folder: results.json, figures, wavs, checkpoint, run record."""
    stored = json.loads((out / "results.json").read_text())
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
        image = matplotlib.image.imread(out / figure)
        assert image.shape[0] > 200 and image.std() > 0.01, figure  # a real, non-blank picture
    mixture, rate = soundfile.read(out / "wavs" / "mixture.wav")
    estimate, _ = soundfile.read(out / "wavs" / "source1_estimate.wav")
    assert rate == 8000 and len(mixture) == len(estimate) > 1000
    for file_name in ("config.json", "stats.json", "best.keras", "run.json", "history.csv"):
        assert (out / file_name).is_file(), file_name
    run = json.loads((out / "run.json").read_text())
    assert run["seed"] == 0 and run["epochs_done"] == 1 and "val_acc_pit" in run["history"]


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in EXPERIMENTS if name != CELL_BY_CELL])
def test_script_smoke_run(name, toy_dataset, tmp_path, capsys):
    experiment = EXPERIMENTS[name]
    results = load_script(experiment.script).main(tiny_args(experiment) + ["--data", str(toy_dataset),
                                                                          "--out", str(tmp_path)])
    assert str(tmp_path) in capsys.readouterr().out  # says where the output went
    check_run_folder(experiment, tmp_path, results)


@pytest.mark.parametrize("name", ["feedforward", "rnn", "deepclustering"])  # dense, LSTM and BLSTM layers
def test_dropout_flag_changes_the_built_model(name):
    tiny = tiny_args(EXPERIMENTS[name])
    config = ExperimentRun(name, argv=tiny + ["--dropout", "0.5"]).config
    assert config == ExperimentRun(name, settings={"dropout": 0.5}, argv=tiny).config  # CONFIG block = flag
    features = np.random.default_rng(0).standard_normal((2, 20, 129)).astype(np.float32)
    for dropout in (0.0, 0.5):
        model = build_model(config.replace(dropout=dropout))
        training, inference = (np.asarray(model(features, training=mode)) for mode in (True, False))
        # dropout is active only while training, and only when asked for
        assert np.allclose(training, inference) == (dropout == 0.0), dropout


@pytest.mark.slow
def test_spyder_cells_run_one_by_one_and_leave_the_variables(toy_dataset, tmp_path, monkeypatch, capsys):
    """What Spyder's Ctrl+Enter does: each ``#%%`` cell runs in the console's one namespace, sys.argv == [""]."""
    experiment = EXPERIMENTS[CELL_BY_CELL]
    script = REPO_ROOT / experiment.script
    header, *cells = re.split(r"^#%%.*$", script.read_text(), flags=re.MULTILINE)
    assert len(cells) == 4
    monkeypatch.setattr(sys, "argv", [""])
    namespace = {"__name__": "__main__", "__file__": str(script)}
    exec(compile(header, str(script), "exec"), namespace)
    namespace["CONFIG"].update(  # the user edits CONFIG
        data=str(toy_dataset), epochs=1, batch_size=8, test_mixtures=2, out=str(tmp_path),
        hidden_units=TINY_SIZES["hidden_units"], layers=TINY_SIZES["num_layers"],
        embedding_dim=TINY_SIZES["embedding_dim"])
    for cell in cells:
        exec(compile(cell, str(script), "exec"), namespace)
    run = namespace["run"]
    assert run.out == tmp_path and run.config.hidden_units == TINY_SIZES["hidden_units"]  # CONFIG reached the run
    assert str(tmp_path) in capsys.readouterr().out  # says where the output went
    assert namespace["model"].count_params() == build_model(run.config).count_params()
    assert len(namespace["history"]["val_loss"]) == 1
    check_run_folder(experiment, tmp_path, namespace["results"])
    masks, separated = namespace["masks"], namespace["separated"]
    assert masks.shape[0] == separated.shape[0] == 2 and masks.shape[2] == 129
    np.testing.assert_allclose(masks.sum(axis=0), 1.0, atol=1e-6)  # k-means masks partition the bins


def test_rows_outside_the_study_sort_their_numbers_as_numbers():
    from speechsep.experiments import study_order

    names = ["oracle ibm", "dc-x (pretrained, 11,401 steps)", "dc-x (pretrained, 4,235 steps)", "meanshift",
             "dc-x (pretrained, 6,105 steps)"]
    assert study_order(names) == ["meanshift", "dc-x (pretrained, 4,235 steps)", "dc-x (pretrained, 6,105 steps)",
                                  "dc-x (pretrained, 11,401 steps)", "oracle ibm"]
