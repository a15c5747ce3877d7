"""tools/train_pretrained.py: how the card names each stage's objective and draws stages of two objectives."""

import csv
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import train_pretrained as tool  # noqa: E402


def test_stages_recorded_before_the_objective_was_named_are_the_whitened_ones():
    assert tool.objective({"stage": 1}) == "dc_whitened" and tool.objective({"dc_loss": "dc"}) == "dc"
    whitened, paper = tool.OBJECTIVES["dc_whitened"], tool.OBJECTIVES["dc"]
    assert tool.objectives_text([{"stage": 1}, {"stage": 2}]) == f"the {whitened}"
    assert tool.objectives_text([{"stage": 1}, {"stage": 2}, {"stage": 3}, {"stage": 4}, {"stage": 5, "dc_loss": "dc"}]) \
        == f"the {whitened} in stages 1-4, then the {paper} in stage 5"


def test_the_learning_curve_draws_two_objectives_and_rewrites_old_rows_with_theirs(tmp_path):
    pytest.importorskip("matplotlib")
    rows = list(csv.DictReader(open(tool.model_dir() / tool.CURVE_FILE, newline="")))
    later = [{**rows[-1], "stage": str(int(rows[-1]["stage"]) + 1), "dc_loss": "dc", "train_loss": "0.11",
              "val_loss": "0.12", "optimizer_steps": str(int(rows[-1]["optimizer_steps"]) + 1000)}]
    path = tool.plot_curve(rows + later, tmp_path / "curve.png")
    assert Path(path).stat().st_size > 10_000
    assert all(tool.objective(row) in tool.OBJECTIVES for row in rows)


def test_the_card_says_how_many_talkers_each_stage_mixed_and_the_summary_follows_the_config():
    from speechsep.config import ExperimentConfig

    assert tool.talkers_text((2,)) == "2 talkers"
    assert tool.talkers_text((1, 2, 3), (1, 1, 2)) == "1, 2 or 3 talkers (probabilities 1:1:2)"
    assert tool.talkers_text((1, 2), (1, 1)) == "1 or 2 talkers"  # equal weights go unsaid
    old = [{"stage": k} for k in (1, 2, 3)]  # recorded before the field: two talkers
    counting = {"stage": 4, "dc_loss": "dc", "talkers": [1, 2, 3], "talker_weights": [1, 1, 2]}
    assert tool.mixing_text(old) == "2 talkers"
    assert tool.mixing_text(old + [counting]) == \
        "2 talkers in stages 1-3; 1, 2 or 3 talkers (probabilities 1:1:2) in stage 4"
    fixed = ExperimentConfig(model="dc")
    assert tool.summary_text(fixed, old).endswith("whitened objective, k-means with soft masks), 2 talkers, "
                                                  "trained on LibriSpeech")
    counts = fixed.replace(talkers=(1, 2, 3), count_method="eigenvalues", count_threshold=0.12)
    summary = tool.summary_text(counts, old + [counting])
    assert "whitened, then the paper's objective" in summary and "counts and separates 1, 2 or 3 talkers" in summary
    assert tool.count_setting(counts) == "the eigenvalues method, threshold 0.12, on the active bins' embeddings"
    by_ratio = counts.replace(count_method="participation", count_threshold=1.9)
    assert tool.count_setting(by_ratio) == \
        "the participation method, directions per talker 1.9, on the active bins' embeddings"
    assert tool.count_setting(by_ratio.replace(count_threshold=None)) == \
        "the participation method, the method's default directions per talker, on the active bins' embeddings"
    chimera = counts.replace(mask_head=True, count_head=True, count_method="head", readout="blend")
    assert tool.count_setting(chimera) == "its count head's most probable count"
    assert tool.count_setting(chimera.replace(count_method="mask_energy", count_threshold=0.05)) == \
        "the mask_energy method, min share 0.05, on its mask head's masks"
    assert tool.summary_text(chimera, old + [counting]).startswith(
        "Chimera++: deep clustering with a mask head and a count head (2 x BLSTM 300")
    assert "the mean of k-means and mask-head masks), counts and separates" in tool.summary_text(chimera, [counting])


def test_the_card_names_what_each_chimera_stage_trained_and_its_count_confusions():
    from speechsep.config import ExperimentConfig

    assert tool.stage_training({"stage": 1}) == "all layers"  # a deep-clustering stage
    config = ExperimentConfig(talkers=(1, 2, 3), mask_head=True, count_head=True, freeze_stack=True,
                              mask_loss_weight=0.1, count_loss_weight=0.2)
    assert tool.stage_training(tool.heads_record(config)) == "the heads only (stack frozen); tpsa x 0.1, count x 0.2"
    assert tool.stage_training(tool.heads_record(config.replace(freeze_stack=False, count_head=False))) == \
        "all layers; tpsa x 0.1"
    text = tool.confusion_text({"count_confusion": {"stress": [[9, 1, 0], [2, 7, 1], [0, 5, 5]]}})
    assert "| 1 | 9 | 1 | 0 | 90 % |" in text and "| 3 | 0 | 5 | 5 | 50 % |" in text and "stress set" in text
    assert tool.confusion_text({}) == ""


def test_the_stage_table_names_each_stage_s_chunks_from_its_config():
    from speechsep.config import ExperimentConfig

    assert tool.stage_chunks({"stage": 1}) == "32 × 100 frames"  # recorded before the field
    plain = ExperimentConfig(model="dc", batch_size=16)
    assert tool.stage_chunks(tool.chunk_record(plain)) == "16 × 100 frames"
    long = plain.replace(batch_size=32, long_chunk_frames=400, curriculum_epoch=0)
    assert tool.stage_chunks(tool.chunk_record(long)) == "8 × 400 frames"  # as many frames per batch
    later = long.replace(curriculum_epoch=2, long_chunk_frames=200)
    assert tool.stage_chunks(tool.chunk_record(later)) == "32 × 100, then 16 × 200 frames from epoch 3"


def test_the_counting_table_reports_each_trained_count_and_marks_what_was_not_measured():
    from speechsep.config import ExperimentConfig

    config = ExperimentConfig(model="dc", talkers=(1, 2, 3), count_method="eigenvalues", count_threshold=0.12)
    scores = {tool.count_set(1): {"mixtures": 100, "sdri": None, "count_accuracy": 0.97},
              "librispeech-sample": {"mixtures": 100, "sdri": 7.123, "count_accuracy": 0.9, "sdri_counted": 7.01}}
    text = tool.counting_text(config, scores)
    assert "| 1 | 100 | **97 %** | - | - |" in text and "| 2 | 100 | **90 %** | 7.12 | 7.01 |" in text
    assert "| 3 | not measured yet |" in text and "eigenvalues method, threshold 0.12" in text
    assert "TIMIT" not in text  # not scored there
    scores["timit-sample"] = {"mixtures": 100, "sdri": 7.65, "count_accuracy": 0.83, "sdri_counted": 7.321}
    assert "counts right on 83 %, and separates by 7.65 dB with the true count and 7.32 dB counted" in \
        tool.counting_text(config, scores)


def test_re_exporting_a_stage_keeps_its_note_and_keeps_the_speed_only_for_the_same_weights(trained_runs, tmp_path,
                                                                                        monkeypatch):
    import argparse
    import json
    import shutil

    from speechsep import pretrained
    from speechsep.io import atomic_save_model
    from speechsep.nn.models import load_model

    stage = tmp_path / "stage-1"
    shutil.copytree(trained_runs / "deepclustering", stage)
    shutil.copy(stage / "best.keras", stage / "last.keras")
    monkeypatch.setattr(tool, "stage_dir", lambda number: stage)
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path / "package")
    args = argparse.Namespace(stage=1, checkpoint="last", count_method=None, count_threshold=None)
    tool.export(args)
    info_path = tool.model_dir() / pretrained.INFO_FILE
    info = json.loads(info_path.read_text())
    info["stages"][0]["note"], info["speed"] = "ran on a test host", {"kmeans_rtf": 0.5}
    info_path.write_text(json.dumps(info))
    tool.export(args)  # the same weights, again
    again = json.loads(info_path.read_text())
    assert again["stages"][0]["note"] == "ran on a test host" and again["speed"] == {"kmeans_rtf": 0.5}
    network = load_model(stage / "last.keras")
    network.set_weights([w + 0.01 for w in network.get_weights()])
    atomic_save_model(network, stage / "last.keras")
    tool.export(args)  # new weights: the speed measured on the old ones goes
    changed = json.loads(info_path.read_text())
    assert changed["stages"][0]["note"] == "ran on a test host" and "speed" not in changed
    assert changed["weights_sha256"] != again["weights_sha256"]
