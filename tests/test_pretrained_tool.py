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
