"""``python -m speechsep export``: a SavedModel that plain TensorFlow loads (no speechsep in the process) and
that separates the regression mixtures as the Python path does, within 0.1 dB; refusals are one line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from speechsep import pretrained
from speechsep.__main__ import main as cli_main
from speechsep.eval import metrics

# Loads the SavedModel with TensorFlow alone and writes its estimates of the mixtures in IN to OUT.
PLAIN_TENSORFLOW = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    model = tf.saved_model.load(sys.argv[1])
    mixtures = np.load(sys.argv[2])
    out = {}
    for name in mixtures.files:
        counted = model.signatures["serving_default"](waveform=tf.constant(mixtures[name]))["estimates"]
        given = model.signatures["separate_k"](waveform=tf.constant(mixtures[name]),
                                               num_speakers=tf.constant(2))["estimates"]
        out[name + "_counted"], out[name + "_given"] = counted.numpy(), given.numpy()
    np.savez(sys.argv[3], **out)
    print("speechsep" in sys.modules, any(m.startswith("speechsep") for m in sys.modules))
""")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "dc-librispeech"
    assert cli_main(["export", pretrained.DEFAULT_MODEL, "--format", "saved_model", str(out)]) == 0
    return out


def _sdr(sources, estimates):
    return float(np.mean(metrics.bss_eval(sources, estimates)[0]))


def test_the_saved_model_separates_as_the_python_path_within_a_tenth_of_a_db(exported, tmp_path):
    model = pretrained.load()
    records, _ = pretrained.regression_mixtures()
    np.savez(tmp_path / "in.npz", **{f"m{i}": r["mixture"].astype(np.float32) for i, r in enumerate(records)})
    process = subprocess.run([sys.executable, "-c", PLAIN_TENSORFLOW, str(exported), str(tmp_path / "in.npz"),
                              str(tmp_path / "out.npz")], capture_output=True, text=True, timeout=600,
                             cwd=tmp_path)
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.split()[-2:] == ["False", "False"]  # speechsep never imported
    graph = np.load(tmp_path / "out.npz")
    python_given, graph_given, python_counted, graph_counted = [], [], [], []
    for i, record in enumerate(records):
        sources = record["sources"]
        python_given.append(_sdr(sources, model.separate(record["mixture"], 8000, num_speakers=2)))
        graph_given.append(_sdr(sources, graph[f"m{i}_given"]))
        counted = model.separate(record["mixture"], 8000)
        assert len(graph[f"m{i}_counted"]) == len(counted)  # the same count
        if len(counted) == 2:
            python_counted.append(_sdr(sources, counted))
            graph_counted.append(_sdr(sources, graph[f"m{i}_counted"]))
    print(json.dumps({"python": np.mean(python_given), "graph": np.mean(graph_given)}))
    assert abs(np.mean(graph_given) - np.mean(python_given)) <= 0.1
    assert abs(np.mean(graph_counted) - np.mean(python_counted)) <= 0.1


def test_an_existing_out_is_kept_and_refused_in_one_line(exported, capsys):
    before = sorted(p.name for p in exported.iterdir())
    with pytest.raises(SystemExit):
        cli_main(["export", pretrained.DEFAULT_MODEL, str(exported)])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err and "--overwrite" in err
    assert sorted(p.name for p in exported.iterdir()) == before


@pytest.mark.slow  # uses trained_runs
def test_a_run_folder_exports_and_a_mask_network_is_refused_in_one_line(trained_runs, tmp_path, capsys):
    import tensorflow as tf

    run = trained_runs / "deepclustering"
    out = tmp_path / "run-savedmodel"
    assert cli_main(["export", str(run), str(out)]) == 0
    records, _ = pretrained.regression_mixtures(count=2)
    loaded = tf.saved_model.load(str(out))
    model = pretrained.load(run)
    for record in records:
        graph = loaded.signatures["serving_default"](waveform=tf.constant(record["mixture"].astype(np.float32)))
        python = model.separate(record["mixture"], 8000)
        assert graph["estimates"].shape == python.shape  # the run's own number of talkers
    with pytest.raises(SystemExit):
        cli_main(["export", str(trained_runs / "feedforward"), str(tmp_path / "ff")])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "only deep-clustering models" in err and not (tmp_path / "ff").exists()
