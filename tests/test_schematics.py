"""Tests for speechsep.schematics: flow charts drawn from the real models, folder tree, PNG output."""

from __future__ import annotations

import itertools
import re

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.patches import FancyBboxPatch
from matplotlib.text import Text

from speechsep import config as config_module
from speechsep.data import corpus
from speechsep.figures import schematics
from speechsep.experiments import EXPERIMENTS
from speechsep.nn.models import build_model


def texts(figure: Figure) -> list[str]:
    return [t.get_text() for t in figure.findobj(Text) if t.get_text()]


def joined(figure: Figure) -> str:
    return "\n".join(texts(figure))


@pytest.fixture(scope="module")
def flows() -> dict[str, Figure]:
    return {name: schematics.experiment_flow(name) for name in schematics.FLOW_FIGURES}


def test_flow_figure_names():
    assert schematics.FLOW_FIGURES == {
        "feedforward": "Feed_forward.png", "rnn": "RNN.png", "bidirnn": "Bi-directional-RNN.png",
        "bidiloss": "Bi-directional-RNN-with-loss-function.png", "deepclustering": "deep_clustering.png"}


EXPECTED_TEXT = {  # written out by hand from the model definitions (2 x 300 units, D = 40, 129 bins)
    "feedforward": ["Dense 300, relu", "[B, T, 300]", "Dense 129, sigmoid", "[B, T, 129]", "MSE vs IBM",
                    "mask → (m, 1−m)"],
    "rnn": ["LSTM 300", "[B, T, 300]", "Dense 129, sigmoid", "MSE vs IBM", "mask → (m, 1−m)"],
    "bidirnn": ["Bidirectional(LSTM 300)", "[B, T, 600]", "Dense 129, sigmoid", "MSE vs IBM"],
    "bidiloss": ["Bidirectional(LSTM 300)", "[B, T, 600]", "Dense 5160, tanh", "[B, T, 5160]",
                 "[B, T, 129, 40]", "UnitNormalize", "deep-clustering loss", "sign of 1st principal"],
    "deepclustering": ["Bidirectional(LSTM 300)", "[B, T, 600]", "Dense 5160, tanh", "[B, T, 5160]",
                       "Reshape (-1, 129, 40)", "[B, T, 129, 40]", "UnitNormalize", "deep-clustering loss",
                       "|VᵀV|²−2|VᵀY|²+|YᵀY|²", "k-means on active bins"],
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
    model = build_model(schematics.experiment_config(name))
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    for layer in layers:  # one box per layer, with its own name
        assert sum(line.startswith(f"{layer.name} · ") for line in texts(figure)) == 1, layer.name
    boxes = [p for ax in figure.axes for p in ax.patches if isinstance(p, FancyBboxPatch)]
    assert len(boxes) == 3 + len(layers) + 3 + 1  # front end, layers, readout/mask/waveforms, loss branch


@pytest.mark.parametrize("name", list(schematics.FLOW_FIGURES))
def test_title_has_the_parameter_count_of_the_built_model(flows, name):
    count = build_model(schematics.experiment_config(name)).count_params()
    titles = [t for t in texts(flows[name]) if "parameters" in t]
    assert titles == [f"{EXPERIMENTS[name].title} — {count:,} parameters"]


def test_feedforward_parameter_count_by_hand(flows):
    by_hand = (129 * 300 + 300) + (300 * 300 + 300) + (300 * 129 + 129)
    assert f"{by_hand:,} parameters" in joined(flows["feedforward"])


def test_config_changes_change_the_drawing():
    small = joined(schematics.experiment_flow("rnn", config_overrides={"hidden_units": 64}))
    assert "LSTM 64" in small and "[B, T, 64]" in small
    assert "LSTM 300" not in small and "[B, T, 300]" not in small
    count = build_model(schematics.experiment_config("rnn", {"hidden_units": 64})).count_params()
    assert f"{count:,} parameters" in small

    deeper = schematics.experiment_flow("deepclustering", {"num_layers": 3, "embedding_dim": 7})
    text = joined(deeper)
    assert "[B, T, 129, 7]" in text and "[B, T, 903]" in text and "[B, T, 129, 40]" not in text
    assert sum(t == "Bidirectional(LSTM 300)" for t in texts(deeper)) == 3

    with_dropout = texts(schematics.experiment_flow("feedforward", {"dropout": 0.25}))
    assert with_dropout.count("Dropout 0.25") == 2


def test_labels_cover_every_loss_and_readout():
    assert set(schematics.LOSS_LABELS) == set(config_module.LOSSES)
    assert set(schematics.READOUT_LABELS) == set(config_module.READOUTS)
    assert "uPIT MSE" in joined(schematics.experiment_flow("rnn", {"loss": "pit"}))
    assert "mean-shift on unit sphere" in joined(schematics.experiment_flow("meanshift"))


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
def test_flow_layout_is_clean(flows, name):
    page, boxes, words = _extents(flows[name])
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


def test_folder_structure_matches_the_corpus_docstring():
    figure = schematics.folder_structure()
    assert isinstance(figure, Figure)
    text = joined(figure)
    docstring = corpus.__doc__.replace("``", "")
    for pattern in schematics.LAYOUT_PATTERNS.values():
        assert pattern in docstring, f"{pattern!r} no longer in the speechsep.corpus docstring"
        assert pattern in text
    for expected in ["TIMIT_WAV/", "TRAIN/", "TEST/", "DR1/", "FCJF0/", "MDAB0/", "SA1.WAV",
                     "NIST SPHERE or RIFF", "TEST speakers = test split", "dr1-fvmh0/", "F… = female",
                     "1. --timit PATH", "2. $TIMIT_WAV", "3. ./TIMIT_WAV", "4. NLTK TIMIT sample",
                     "5. toy corpus", "WARNING"]:
        assert expected in text, expected
    order = [text.index(f"{n}. ") for n in range(1, 6)]
    assert order == sorted(order)
    page, boxes, words = _extents(figure)
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)
    for word in words:
        assert _inside(word, page) and (any(_inside(word, b) for b in boxes) or word.y0 > max(b.y1 for b in boxes))


def test_write_all_writes_six_non_blank_pngs(tmp_path):
    written = schematics.write_all(tmp_path)
    names = sorted(path.name for path in written)
    assert names == sorted(list(schematics.FLOW_FIGURES.values()) + ["FolderStructure.png"])
    for path in written:
        assert path.parent == tmp_path and path.stat().st_size > 0
        image = imread(path)
        assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 800
        assert image[..., :3].std() > 0.05, f"{path.name} looks blank"


def test_import_builds_nothing():
    source = schematics.__loader__.get_source(schematics.__name__)
    top_level_imports = re.findall(r"^(?:from|import) (\S+)", source, flags=re.MULTILINE)
    assert not any(name.split(".")[0] in ("tensorflow", "keras") for name in top_level_imports)
    assert "speechsep.models" not in top_level_imports
