"""Shared fixtures and helpers: tiny corpora in tmp_path, the shared samples when present, tiny trained runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from speechsep.data.toy import synthesize

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
if str(REPO_ROOT) not in sys.path:  # benchmarks/ sits at the repo root, not installed: tests import it from there
    sys.path.insert(0, str(REPO_ROOT))
TIMIT_SAMPLE = SHARED_DATA / "timit-sample"
LIBRISPEECH_SAMPLE = SHARED_DATA / "librispeech-sample"

# The smallest model sizes (ExperimentConfig fields) that still exercise every code path.
TINY_SIZES = {"hidden_units": 8, "num_layers": 1, "embedding_dim": 4}
# The same as training-script flags, with the smallest data and training settings.
TINY_ARGS = ["--corpus", "toy", "--mixtures", "20", "--epochs", "1", "--hidden-units", str(TINY_SIZES["hidden_units"]),
             "--layers", str(TINY_SIZES["num_layers"]), "--batch-size", "8", "--test-mixtures", "2",
             "--no-jit"]  # XLA compiles in seconds per run: tests/test_recurrent.py covers the jit path
TINY_DC_ARGS = TINY_ARGS + ["--embedding-dim", str(TINY_SIZES["embedding_dim"])]


def tiny_args(experiment) -> list[str]:
    """:data:`TINY_ARGS` for an experiment (deep-clustering ones get a 4-dimensional embedding)."""
    return TINY_DC_ARGS if experiment.model == "dc" else TINY_ARGS


def load_script(relative: str):
    """Import a repository script (e.g. ``"Feedforward/train_net.py"``) as a module, without running it."""
    spec = importlib.util.spec_from_file_location(relative.replace("/", "_").replace("-", "_")[:-3],
                                                  REPO_ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses (Pictures/schematics.py) look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def timit_sample() -> Path:
    if not (TIMIT_SAMPLE / "dr1-fvmh0").is_dir():
        pytest.skip(f"TIMIT sample not found at {TIMIT_SAMPLE}")
    return TIMIT_SAMPLE


@pytest.fixture
def librispeech_sample() -> Path:
    if not (LIBRISPEECH_SAMPLE / "SPEAKERS.TXT").is_file():
        pytest.skip(f"LibriSpeech sample not found at {LIBRISPEECH_SAMPLE}")
    return LIBRISPEECH_SAMPLE


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


@pytest.fixture(scope="session")
def toy_dataset(tmp_path_factory) -> Path:
    """A 20-mixture pickle dataset of the toy corpus, written once by DataGenerator/datagenerator.py."""
    out = tmp_path_factory.mktemp("toy-dataset")
    load_script("DataGenerator/datagenerator.py").main(
        ["--corpus", "toy", "--mixtures", "20", "--shard-size", "10", "--out", str(out), "--quiet"])
    return out


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory, toy_dataset) -> Path:
    """Tiny trained runs ``<root>/deepclustering`` and ``<root>/feedforward`` on :func:`toy_dataset`."""
    from speechsep.experiments import EXPERIMENTS

    root = tmp_path_factory.mktemp("runs")
    for name in ("deepclustering", "feedforward"):
        experiment = EXPERIMENTS[name]
        load_script(experiment.script).main(tiny_args(experiment) + ["--data", str(toy_dataset),
                                                                     "--out", str(root / name)])
    return root
