"""A tiny one-epoch smoke run of each of the six training scripts, checking what they write."""

import json

import matplotlib.image
import numpy as np
import pytest
import soundfile

from test_pipeline import load_script

SCRIPTS = {
    "Feedforward/train_net.py": ["feedforwardaccuracy.png", "feedforwardibm.png", "feedforwardrecoveredwav.png"],
    "RNN/train_rnn.py": ["rnnaccuracy.png", "rnnibm.png", "rnnrecoveredwav.png"],
    "Bi-Directional-RNN/train_bi_directional_RNN.py": ["bidirnnaccuracy.png", "bidirnnibm.png",
                                                      "bidirnnrecoveredwav.png"],
    "Bi-Directional-RNN-with-loss-function/train_bi_with_loss_function.py": [
        "bidilossaccuracy.png", "bidilossibm.png", "bidilossrecoveredwav.png"],
    "Deep-clustering/train_deep_clustering.py": [
        "deepclustering_embeddings.png", "deepclustering_separation.png", "deepclusteringloss.png",
        "deep_clustering_ibm.png", "deep_clustering_recoveredwav.png"],
    "Deep-clustering-with-mean-shift-clustering/train_deep_clustering.py": [
        "meanshift_embeddings.png", "meanshift_separation.png", "meanshiftloss.png", "mean_shift_ibm.png",
        "mean_shift_recoveredwav.png"],
}
TINY = ["--corpus", "toy", "--mixtures", "20", "--epochs", "1", "--hidden-units", "8", "--layers", "1",
        "--batch-size", "8", "--test-mixtures", "2"]


@pytest.fixture(scope="module")
def shared_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    load_script("DataGenerator/datagenerator.py").main(
        ["--corpus", "toy", "--mixtures", "20", "--shard-size", "10", "--out", str(out), "--quiet"])
    return out


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_script_smoke_run(script, shared_data, tmp_path, capsys):
    extra = ["--embedding-dim", "4"] if "clustering" in script or "loss-function" in script else []
    results = load_script(script).main(TINY + extra + ["--data", str(shared_data), "--out", str(tmp_path)])
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
    if "mean-shift" in script:
        assert 0 <= overall["speaker_count_accuracy"] <= 1
    for name in SCRIPTS[script]:
        image = matplotlib.image.imread(tmp_path / name)
        assert image.shape[0] > 200 and image.std() > 0.01, name  # a real, non-blank picture
    mixture, rate = soundfile.read(tmp_path / "wavs" / "mixture.wav")
    estimate, _ = soundfile.read(tmp_path / "wavs" / "source1_estimate.wav")
    assert rate == 8000 and len(mixture) == len(estimate) > 1000
    for name in ("config.json", "stats.json", "best.keras", "run.json", "history.csv"):
        assert (tmp_path / name).is_file(), name
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["seed"] == 0 and run["epochs_done"] == 1 and "val_acc_pit" in run["history"]
