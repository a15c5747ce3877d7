"""``report --model NAME``: a shipped model is evaluated and played beside the runs, on their mixtures."""

from __future__ import annotations

import pytest

from speechsep.__main__ import main as speechsep_main

from test_pretrained import shipped  # noqa: F401  (the tiny run exported as the shipped model "tiny")


@pytest.mark.slow  # uses trained_runs
def test_a_shipped_model_is_listened_to_beside_a_run(trained_runs, shipped, tmp_path):
    out = tmp_path / "report"
    assert speechsep_main(["report", str(trained_runs / "feedforward"), "--model", shipped.name, "--out", str(out),
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
