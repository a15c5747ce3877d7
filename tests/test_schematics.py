"""Tests for Pictures/schematics.py: flow charts drawn from the real models, folder tree, PNG output."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.patches import FancyBboxPatch
from matplotlib.text import Text

from conftest import REPO_ROOT, TINY_SIZES, load_script
from speechsep import config as config_module
from speechsep.config import ExperimentConfig
from speechsep.experiments import EXPERIMENTS
from speechsep.nn import losses
from speechsep.nn.models import build_model

schematics = load_script("Pictures/schematics.py")  # beside make_pictures.py, not in the package


def texts(figure: Figure) -> list[str]:
    return [t.get_text() for t in figure.findobj(Text) if t.get_text()]


def joined(figure: Figure) -> str:
    return "\n".join(texts(figure))


# The drawings are of tiny models (cheap to build); only the fixture ``default_flows`` builds the real sizes.
TINY = dict(TINY_SIZES, num_layers=2)  # two layers: the flows show how layers chain


@pytest.fixture(scope="module")
def flows() -> dict[str, Figure]:
    return {name: schematics.experiment_flow(name, TINY) for name in schematics.FLOW_FIGURES}


@pytest.fixture(scope="module")
def default_flows() -> dict[str, Figure]:
    """The smallest and the largest flow at the default sizes (the 6.3 M-parameter network is built once)."""
    return {name: schematics.experiment_flow(name) for name in ("feedforward", "deepclustering")}


EXPECTED_TEXT = {  # written out by hand from the model definitions (2 x 8 units, D = 4, 129 bins)
    "feedforward": ["Dense 8, relu", "[B, T, 8]", "Dense 129, sigmoid", "[B, T, 129]", "MSE vs IBM",
                    "mask → (m, 1−m)"],
    "rnn": ["LSTM 8", "[B, T, 8]", "Dense 129, sigmoid", "MSE vs IBM", "mask → (m, 1−m)"],
    "bidirnn": ["Bidirectional(LSTM 8)", "[B, T, 16]", "Dense 129, sigmoid", "MSE vs IBM"],
    "bidiloss": ["Bidirectional(LSTM 8)", "[B, T, 16]", "Dense 516, tanh", "[B, T, 516]",
                 "[B, T, 129, 4]", "UnitNormalize", "deep-clustering loss", "|VᵀV|²−2|VᵀY|²+|YᵀY|²",
                 "sign of 1st principal"],  # the original study's objective
    "deepclustering": ["Bidirectional(LSTM 8)", "[B, T, 16]", "Dense 516, tanh", "[B, T, 516]",
                       "Reshape (-1, 129, 4)", "[B, T, 129, 4]", "UnitNormalize", "whitened deep-clustering loss",
                       "D − tr((VᵀV)⁻¹VᵀY(YᵀY)⁻¹YᵀV)", "k-means on active bins"],  # the recipe's default
}


@pytest.mark.parametrize("name", list(schematics.FLOW_FIGURES))
def test_flow_shows_the_real_layers_and_pipeline(flows, name):
    figure = flows[name]
    assert isinstance(figure, Figure)
    text = joined(figure)
    for expected in EXPECTED_TEXT[name] + ["mixture waveform (8 kHz)", "STFT 256-pt, hop 64,", "sqrt-Hann",
                                           "log-magnitude, normalised", "mask × mixture STFT",
                                           "iSTFT with mixture phase", "separated waveforms"]:
        assert expected in text, f"{expected!r} missing from the {name} flow"
    model = build_model(schematics.experiment_config(name, TINY))
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    for layer in layers:  # one box per layer, with its own name
        assert sum(line.startswith(f"{layer.name} · ") for line in texts(figure)) == 1, layer.name
    boxes = [p for ax in figure.axes for p in ax.patches if isinstance(p, FancyBboxPatch)]
    assert len(boxes) == 3 + len(layers) + 3 + 1  # front end, layers, readout/mask/waveforms, loss branch


@pytest.mark.parametrize("name", list(schematics.FLOW_FIGURES))
def test_title_has_the_parameter_count_of_the_built_model(flows, name):
    count = build_model(schematics.experiment_config(name, TINY)).count_params()
    titles = [t for t in texts(flows[name]) if "parameters" in t]
    assert titles == [f"{EXPERIMENTS[name].title} — {count:,} parameters"]


def _lstm_parameters(inputs: int, units: int) -> int:
    return 4 * (units * (inputs + units) + units)  # 4 gates: input and recurrent kernels, one bias


def test_default_flows_show_the_default_sizes_and_parameter_counts_by_hand(default_flows):
    units, dim, bins = ExperimentConfig.hidden_units, ExperimentConfig.embedding_dim, 129
    feedforward = (bins * units + units) + (units * units + units) + (units * bins + bins)
    assert f"{EXPERIMENTS['feedforward'].title} — {feedforward:,} parameters" in texts(default_flows["feedforward"])
    blstm = 2 * _lstm_parameters(bins, units) + 2 * _lstm_parameters(2 * units, units)
    deep_clustering = blstm + (2 * units * bins * dim + bins * dim)  # + the embedding layer
    text = texts(default_flows["deepclustering"])
    assert f"{EXPERIMENTS['deepclustering'].title} — {deep_clustering:,} parameters" in text
    for expected in (f"Bidirectional(LSTM {units})", f"[B, T, {2 * units}]", f"Dense {bins * dim}, tanh",
                     f"[B, T, {bins}, {dim}]"):
        assert expected in text, expected


def test_feedforward_parameter_count_by_hand(flows):
    by_hand = (129 * 8 + 8) + (8 * 8 + 8) + (8 * 129 + 129)
    assert f"{by_hand:,} parameters" in joined(flows["feedforward"])


def test_config_changes_change_the_drawing():
    small = joined(schematics.experiment_flow("rnn", config_overrides={"hidden_units": 64}))
    assert "LSTM 64" in small and "[B, T, 64]" in small
    assert "LSTM 300" not in small and "[B, T, 300]" not in small
    count = build_model(schematics.experiment_config("rnn", {"hidden_units": 64})).count_params()
    assert f"{count:,} parameters" in small

    deeper = schematics.experiment_flow("deepclustering", {"hidden_units": 8, "num_layers": 3, "embedding_dim": 7})
    text = joined(deeper)
    assert "[B, T, 129, 7]" in text and "[B, T, 903]" in text and "[B, T, 129, 40]" not in text
    assert sum(t == "Bidirectional(LSTM 8)" for t in texts(deeper)) == 3

    with_dropout = texts(schematics.experiment_flow("feedforward", {**TINY, "dropout": 0.25}))
    assert with_dropout.count("Dropout 0.25") == 2


def test_labels_cover_every_loss_and_readout():
    assert set(losses.LOSS_LABELS) == set(config_module.LOSSES) | set(config_module.DC_LOSSES)
    assert set(schematics.READOUT_LABELS) == set(config_module.READOUTS)
    assert "uPIT MSE" in joined(schematics.experiment_flow("rnn", {**TINY, "loss": "pit"}))
    assert "mean-shift on unit sphere" in joined(schematics.experiment_flow("meanshift", TINY))


def test_unknown_experiment_is_an_error():
    with pytest.raises(ValueError, match="unknown experiment"):
        schematics.experiment_flow("nope")


def _extents(figure: Figure):
    canvas = FigureCanvasAgg(figure)
    canvas.draw()  # lays out the legend
    renderer = canvas.get_renderer()
    boxes = [p.get_window_extent(renderer) for ax in figure.axes for p in ax.patches if isinstance(p, FancyBboxPatch)]
    words = [t.get_window_extent(renderer) for t in figure.findobj(Text) if t.get_text()]
    return figure.bbox, boxes, words


def _inside(inner, outer, tolerance: float = 0.5) -> bool:
    return (inner.x0 >= outer.x0 - tolerance and inner.x1 <= outer.x1 + tolerance
            and inner.y0 >= outer.y0 - tolerance and inner.y1 <= outer.y1 + tolerance)


@pytest.mark.parametrize("name", ["feedforward", "deepclustering"])
def test_flow_layout_is_clean(default_flows, name):
    page, boxes, words = _extents(default_flows[name])
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), "two boxes overlap"
    for word in words:
        assert _inside(word, page), "text cut off at the figure edge"
    box_texts = [w for w in words if any(w.overlaps(b) for b in boxes)]
    for word in box_texts:  # text touching a box lies wholly inside it
        assert any(_inside(word, b) for b in boxes), "text sticks out of its box"


def test_split_rows_keeps_the_network_output_in_the_last_row():
    for count, output, per_row in itertools.product(range(8, 16), range(3, 8), (4, 5, 6)):
        if count - output < 4:
            continue
        rows = schematics._split_rows(count, output, per_row)
        assert list(itertools.chain(*rows)) == list(range(count))
        assert output in rows[-1]
        assert all(0 < len(row) <= max(per_row, count - output) for row in rows)


def test_folder_structure_shows_every_layout_and_the_resolution_order():
    figure = schematics.folder_structure()
    assert isinstance(figure, Figure)
    text = joined(figure)
    for pattern in schematics.LAYOUT_PATTERNS.values():
        assert pattern in text
    for expected in ["TIMIT_WAV/", "TRAIN/", "TEST/", "DR1/", "FCJF0/", "MDAB0/", "SA1.WAV",
                     "NIST SPHERE or RIFF", "TEST speakers = test split", "dr1-fvmh0/", "F… = female",
                     "LibriSpeech/", "SPEAKERS.TXT", "test-* = test split", "dev-* = validation split",
                     "1. --timit PATH and every --corpus-root PATH", "2. $TIMIT_WAV", "3. ./TIMIT_WAV",
                     "4. NLTK TIMIT sample", "5. LibriSpeech mini", "6. toy corpus", "WARNING"]:
        assert expected in text, expected
    order = [text.index(f"{n}. ") for n in range(1, 7)]
    assert order == sorted(order)
    page, boxes, words = _extents(figure)
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)
    for word in words:
        assert _inside(word, page) and (any(_inside(word, b) for b in boxes) or word.y0 > max(b.y1 for b in boxes))


def test_write_all_writes_six_non_blank_pngs(tmp_path):
    written = schematics.write_all(tmp_path, TINY)
    names = sorted(path.name for path in written)
    assert names == sorted(list(schematics.FLOW_FIGURES.values()) + ["FolderStructure.png"])
    for path in written:
        assert path.parent == tmp_path and path.stat().st_size > 0
        image = imread(path)
        assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 800
        assert image[..., :3].std() > 0.05, f"{path.name} looks blank"


def test_import_builds_nothing():
    code = (f"import sys; sys.path.insert(0, {str(REPO_ROOT / 'Pictures')!r}); import schematics; "
            "loaded = [m for m in ('tensorflow', 'keras', 'speechsep.nn.models') if m in sys.modules]; "
            "assert not loaded, loaded")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
