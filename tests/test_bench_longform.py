"""``bench longform`` and ``bench shortfiles`` run end to end on the embedded LibriSpeech mini (tiny sizes)."""

from __future__ import annotations

from pathlib import Path

import pytest

import speechsep
from benchmarks.__main__ import main as bench_main

MINI = Path(speechsep.__file__).parent / "data" / "librispeech-mini"


@pytest.mark.slow
def test_bench_longform_measures_a_chunked_recording(capsys):
    (row,) = bench_main(["longform", "--corpus-root", str(MINI), "--minutes", "0.6", "--rate", "16000",
                         "--clips", "2"])
    assert row["minutes"] == 0.6 and row["rate"] == 16000 and row["segments"] == 1
    assert 0.0 < row["peak_mb"] < 8000 and row["rtf"] > 0 and 1 <= row["talkers_found"] <= 3
    assert row["whole_si_sdri"] > 0 and row["clip_si_sdri"] > 0  # real numbers, not NaN
    assert "continuity" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_shortfiles_times_one_call_cold_and_warm(capsys):
    (row,) = bench_main(["shortfiles", "--files", "3", "--seconds", "1", "--rate", "16000"])
    assert row["files"] == 3 and row["cold_rtf"] > row["warm_rtf"] > 0
    assert "warm RTF" in capsys.readouterr().out
