"""``report --model NAME``: a shipped model is evaluated and played beside the runs, on their mixtures."""

from __future__ import annotations

import json

import pytest

from speechsep import pretrained
from speechsep.__main__ import main as speechsep_main


@pytest.fixture
def shipped_tiny(trained_runs, tmp_path, monkeypatch):
    """The tiny deep-clustering run exported as the shipped model ``tiny`` of a temporary package folder."""
    from speechsep.nn.models import load_model

    run = trained_runs / "deepclustering"
    source = pretrained.resolve(run)
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path / "pretrained")
    record = json.loads((run / "run.json").read_text())
    pretrained.export(load_model(run / "best.keras"), source.config, source.stats, tmp_path / "pretrained" / "tiny",
                      {"name": "tiny", "summary": "a tiny test model", "headline": ["SDRi 1.00 dB"],
                       "optimizer_steps": record["optimizer_steps"], "data": record["data"]})
    return "tiny"


@pytest.mark.slow  # uses trained_runs
def test_a_shipped_model_is_listened_to_beside_a_run(trained_runs, shipped_tiny, tmp_path):
    out = tmp_path / "report"
    assert speechsep_main(["report", str(trained_runs / "feedforward"), "--model", shipped_tiny, "--out", str(out),
                           "--corpus", "toy", "--test-mixtures", "4", "--mixtures", "2"]) == 0
    text = (out / "index.html").read_text()
    assert "<td class=text>feedforward</td>" in text and "<td class=text>tiny</td>" in text  # both rows
    assert "tiny estimate" in text.lower() or text.count("tiny") >= 4  # its players and facts
    assert "optimizer steps" in text  # from its model.json


def test_report_model_refusals_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        speechsep_main(["report", "--model", "no-such-model", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown model 'no-such-model'" in err
    with pytest.raises(SystemExit):
        speechsep_main(["report", "--out", str(tmp_path / "r")])
    assert "a RUN folder or --model NAME" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
