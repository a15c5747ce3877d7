"""Shared fixtures: tiny corpora written in tmp_path, and the shared TIMIT sample when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from speechsep.toy import synthesize

REPO_ROOT = Path(__file__).resolve().parents[1]
TIMIT_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "timit-sample"


@pytest.fixture
def timit_sample() -> Path:
    if not (TIMIT_SAMPLE / "dr1-fvmh0").is_dir():
        pytest.skip(f"TIMIT sample not found at {TIMIT_SAMPLE}")
    return TIMIT_SAMPLE


def voice(index: int, utterance: int = 0, seconds: float = 1.0) -> np.ndarray:
    """A short speech-like toy signal at 8 kHz (female for even index)."""
    return synthesize(index, "F" if index % 2 == 0 else "M", utterance, seconds)


def write_audio(path: Path, data: np.ndarray, rate: int = 8000, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), data, rate, **kwargs)
    return path


@pytest.fixture
def generic_corpus(tmp_path) -> Path:
    """<root>/<speaker>/**/*.wav|flac with 4 speakers x 3 utterances."""
    root = tmp_path / "generic"
    for speaker in range(4):
        for utterance in range(3):
            suffix = "flac" if utterance == 2 else "wav"
            write_audio(root / f"spk{speaker}" / "session" / f"u{utterance}.{suffix}", voice(speaker, utterance))
    return root
