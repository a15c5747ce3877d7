"""Schematic figures of the study (``Pictures/``), generated from the code: experiment flow charts and the corpus
folder layouts. Beside ``make_pictures.py``, not in the installed package: it draws the repository's pictures.

* :func:`experiment_flow` draws the processing chain of one experiment of
  :data:`speechsep.experiments.EXPERIMENTS`, left to right. The network part
  is NOT hand-written: the real Keras model is built with
  :func:`speechsep.nn.models.build_model` and one box is drawn per layer of
  ``model.layers`` (class, units/activation, output shape, parameters), and the
  signal-processing boxes read their numbers from :mod:`speechsep.signal`.
  The training loss hangs off the network output as a dashed "training only"
  branch; the inference path continues with the readout, masking and iSTFT.
  The title gives the parameter count (``model.count_params()``). If the
  models or the STFT settings change, the figures change with them.
* :func:`folder_structure` draws the corpus layouts accepted by
  :func:`speechsep.data.sources.find_corpus` and its resolution order.
* :func:`write_all` writes the five flow PNGs (:data:`FLOW_FIGURES`) and
  ``FolderStructure.png``.

Like :mod:`speechsep.figures.plots`, every function returns a
:class:`matplotlib.figure.Figure` (no pyplot), and nothing runs at import
time; TensorFlow/Keras are imported only when a flow figure is built. The
schematics are laid out in figure inches (one axes covering the figure,
``xlim``/``ylim`` in inches) so that boxes sized from the measured text fit it
exactly; that is why they do not use ``layout="constrained"``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping

from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import FancyBboxPatch, Patch

from speechsep.experiments import EXPERIMENTS
from speechsep.signal import HOP_LENGTH, N_BINS, N_FFT, SAMPLE_RATE, SILENCE_THRESHOLD_DB

__all__ = [
    "FLOW_FIGURES",
    "FOLDER_FIGURE",
    "READOUT_LABELS",
    "LAYOUT_PATTERNS",
    "experiment_config",
    "experiment_flow",
    "folder_structure",
    "write_all",
]

FLOW_FIGURES = {name: e.flow_figure for name, e in EXPERIMENTS.items() if e.flow_figure}  # experiment -> PNG
FOLDER_FIGURE = "FolderStructure.png"

# Stage kinds -> (fill, edge, legend label).
STAGE_STYLES = {
    "signal": ("#dbe9f6", "#2b6a9e", "signal processing"),
    "layer": ("#fde7c8", "#c46d10", "network layer (built by speechsep.nn.models)"),
    "loss": ("#f7d4d4", "#b03030", "training loss"),
    "readout": ("#d8efd6", "#2f7d32", "readout (inference)"),
}

# Readout boxes: (title, detail line(s)), keyed by config.READOUTS; the loss boxes take the library's
# speechsep.nn.losses.LOSS_LABELS (keyed by config.LOSSES and DC_LOSSES, speechsep.nn.losses.loss_key).
READOUT_LABELS = {
    "mask": ("mask → (m, 1−m)", "2 masks [T, {F}]"),
    "pca_sign": ("sign of 1st principal\ncomponent", "2 masks [T, {F}]"),
    "kmeans": ("k-means on active bins\n(K speakers)", "K masks [T, {F}]"),
    "meanshift": ("mean-shift on unit sphere\n(counts speakers)", "K̂ masks [T, {F}]"),
    "mask_head": ("Chimera++ mask head\n(softmax over sources)", "C masks [T, {F}]"),
    "blend": ("mean of k-means and\nmask-head masks", "K masks [T, {F}]"),
}

# The accepted corpus layouts, as speechsep.data.corpus discovers them.
LAYOUT_PATTERNS = {
    "ldc": "TRAIN|TEST/DR1..DR8/<SPEAKER>/<UTT>.WAV",
    "nltk-sample": "drN-<speaker>/<utt>.wav",
    "librispeech": "<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac",
    "generic": "<root>/<speaker>/**/*.wav|flac",
}

_SANS = "DejaVu Sans"
_MONO = "DejaVu Sans Mono"
_TEXT = "#1a1a1a"
_GREY = "#555555"
_ARROW = "#333333"


# --------------------------------------------------------------------------- text metrics and drawing


def _font(size: float, weight: str = "normal", family: str = _SANS, style: str = "normal") -> FontProperties:
    return FontProperties(family=family, size=size, weight=weight, style=style)


def _text_width(text: str, font: FontProperties) -> float:
    """Width of one line of ``text`` in inches (measured with the Agg renderer at 72 dpi)."""
    from matplotlib.backends.backend_agg import RendererAgg

    renderer = RendererAgg(10, 10, 72)
    width, _, _ = renderer.get_text_width_height_descent(text, font, ismath=False)
    return width / 72.0


def _line_height(font: FontProperties, spacing: float = 1.3) -> float:
    return font.get_size_in_points() * spacing / 72.0


@dataclasses.dataclass
class _Stage:
    """One box: ``lines`` are (text, font, colour) drawn top to bottom, centred."""

    kind: str
    lines: list

    def size(self) -> tuple[float, float]:
        width = max(_text_width(text, font) for text, font, _ in self.lines)
        height = sum(_line_height(font) for _, font, _ in self.lines)
        return width, height

    @property
    def text(self) -> str:
        return "\n".join(text for text, _, _ in self.lines)


_TITLE_FONT = _font(10.5, "bold")
_SHAPE_FONT = _font(10.5, family=_MONO)
_DETAIL_FONT = _font(9.5)
_NOTE_FONT = _font(8.5, style="italic")


def _stage(kind: str, title: str, shape: str | None = None, detail: str | None = None,
           note: str | None = None) -> _Stage:
    lines = [(part, _TITLE_FONT, _TEXT) for part in title.split("\n")]
    if shape:
        lines += [(part, _SHAPE_FONT, _TEXT) for part in shape.split("\n")]
    if detail:
        lines += [(part, _DETAIL_FONT, _TEXT) for part in detail.split("\n")]
    if note:
        lines += [(part, _NOTE_FONT, _GREY) for part in note.split("\n")]
    return _Stage(kind, lines)


def _draw_box(ax, stage: _Stage, x: float, y: float, width: float, height: float) -> None:
    """Box with lower-left corner (x, y); the text block is centred vertically."""
    fill, edge, _ = STAGE_STYLES[stage.kind]
    ax.add_patch(FancyBboxPatch((x, y), width, height, boxstyle="round,pad=0,rounding_size=0.08",
                                facecolor=fill, edgecolor=edge, linewidth=1.6,
                                linestyle="--" if stage.kind == "loss" else "-"))
    _, text_height = stage.size()
    top = y + height / 2 + text_height / 2
    for text, font, colour in stage.lines:
        step = _line_height(font)
        ax.text(x + width / 2, top - step / 2, text, fontproperties=font, color=colour,
                ha="center", va="center", parse_math=False)
        top -= step


def _arrow(ax, start, end, dashed: bool = False, color: str = _ARROW) -> None:
    ax.annotate("", xy=end, xytext=start,
                arrowprops=dict(arrowstyle="-|>", color=color, linewidth=1.6, mutation_scale=16,
                                shrinkA=0, shrinkB=0, linestyle="--" if dashed else "-"))


def _canvas(width: float, height: float):
    """Figure of ``width`` x ``height`` inches and one frameless axes whose data units are inches."""
    from speechsep.figures.plots import DPI

    figure = Figure(figsize=(width, height), dpi=DPI)
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    return figure, ax


# --------------------------------------------------------------------------- experiment flow


def experiment_config(experiment_name: str, config_overrides: Mapping | None = None):
    """The :class:`~speechsep.config.ExperimentConfig` drawn by :func:`experiment_flow`.

    ``ExperimentConfig.for_experiment(experiment_name)`` (model, loss, readout
    and the experiment's recipe defaults, e.g. the DC objective; sizes 300
    hidden units, 2 layers, D=40) with ``config_overrides`` applied.
    """
    from speechsep.config import ExperimentConfig

    return ExperimentConfig.for_experiment(experiment_name, **dict(config_overrides or {}))


def _shape_text(shape) -> str:
    """(None, None, 129, 40) -> "[B, T, 129, 40]" (batch and time axes by name)."""
    names = []
    for axis, dim in enumerate(tuple(shape)):
        names.append(str(dim) if dim is not None else ("B", "T")[axis] if axis < 2 else "?")
    return "[" + ", ".join(names) + "]"


def _layer_title(layer) -> str:
    """Class name with units/activation/rate/target shape where the layer has them."""
    import keras

    from speechsep.nn.recurrent import FastBidirectionalLSTM, FastLSTM

    name = type(layer).__name__
    if isinstance(layer, keras.layers.Bidirectional):
        return f"{name}({_layer_title(layer.forward_layer)})"
    if isinstance(layer, FastBidirectionalLSTM):  # the same network as Bidirectional(LSTM), one fused loop
        return f"Bidirectional(LSTM {layer.units})"
    if isinstance(layer, FastLSTM):
        return f"LSTM {layer.units}"
    if isinstance(layer, keras.layers.Dense):
        return f"{name} {layer.units}, {keras.activations.serialize(layer.activation)}"
    if hasattr(layer, "units"):  # recurrent layers: LSTM, GRU, SimpleRNN
        return f"{name} {layer.units}"
    if isinstance(layer, keras.layers.Dropout):
        return f"{name} {layer.rate:g}"
    if isinstance(layer, keras.layers.Reshape):
        return f"{name} " + str(tuple(layer.target_shape))
    return name


def _network_stages(model) -> list[_Stage]:
    import keras

    stages = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        stages.append(_stage("layer", _layer_title(layer), _shape_text(layer.output.shape),
                             note=f"{layer.name} · {layer.count_params():,} params"))
    return stages


def _flow_stages(config, model) -> tuple[list[_Stage], int, _Stage]:
    """(main inference path, index of the network output in it, loss branch)."""
    features_shape = _shape_text(model.inputs[0].shape)
    sources = {"mask": "2", "pca_sign": "2", "kmeans": "K"}.get(config.readout, "K̂")
    before = [
        _stage("signal", f"mixture waveform ({SAMPLE_RATE / 1000:g} kHz)", "[samples]"),
        _stage("signal", f"STFT {N_FFT}-pt, hop {HOP_LENGTH},\nsqrt-Hann", f"[T, {N_BINS}] complex",
               note=f"{N_FFT // 2 + 1} bins, {1000 * HOP_LENGTH / SAMPLE_RATE:g} ms hop"),
        _stage("signal", "log-magnitude, normalised", features_shape, note="train-set mean/std per bin"),
    ]
    network = _network_stages(model)
    readout_title, readout_detail = READOUT_LABELS[config.readout]
    active = "" if config.readout == "mask" else f"\nactive: within {SILENCE_THRESHOLD_DB:g} dB of max"
    after = [
        _stage("readout", readout_title, readout_detail.format(F=N_BINS), note=f"readout={config.readout!r}{active}"),
        _stage("signal", "mask × mixture STFT", f"{sources} × [T, {N_BINS}]", detail="iSTFT with mixture phase"),
        _stage("signal", "separated waveforms", f"{sources} × [samples]"),
    ]
    from speechsep.nn.losses import LOSS_LABELS, loss_key

    key = loss_key(config)
    loss_title, loss_detail = LOSS_LABELS[key]
    loss = _stage("loss", loss_title, detail=loss_detail, note=f"loss={key!r}, training only")
    main = before + network + after
    return main, len(before) + len(network) - 1, loss


def _split_rows(count: int, output_index: int, max_per_row: int) -> list[list[int]]:
    """Balanced rows of at most ``max_per_row`` stages; the network output lands in the last row."""
    rows = -(-count // max_per_row)
    per_row = -(-count // rows)
    starts = list(range(0, count, per_row))
    if starts[-1] > output_index:  # the last row starts at the network output, the rest wraps before it
        head_rows = -(-output_index // max_per_row)
        starts = [round(i * output_index / head_rows) for i in range(head_rows)] + [output_index]
    bounds = starts + [count]
    return [list(range(bounds[i], bounds[i + 1])) for i in range(len(starts))]


def experiment_flow(experiment_name: str, config_overrides: Mapping | None = None,
                    max_per_row: int = 6) -> Figure:
    """Flow schematic of one experiment, generated from the real model and signal constants.

    ``config_overrides`` (e.g. ``{"hidden_units": 64}``) change the
    :class:`~speechsep.config.ExperimentConfig` the model is built from.
    """
    from speechsep.nn.models import build_model

    config = experiment_config(experiment_name, config_overrides)
    model = build_model(config)
    parameters = model.count_params()
    main, output_index, loss = _flow_stages(config, model)
    rows = _split_rows(len(main), output_index, max_per_row)

    sizes = [stage.size() for stage in main + [loss]]
    box_w = max(w for w, _ in sizes) + 0.3
    box_h = max(h for _, h in sizes) + 0.25
    gap_x, gap_y, margin = 0.5, 0.75, 0.35
    title_h, legend_h = 0.95, 0.5
    columns = max(len(row) for row in rows)
    width = 2 * margin + columns * box_w + (columns - 1) * gap_x
    height = title_h + len(rows) * box_h + (len(rows) - 1) * gap_y + gap_y + box_h + legend_h + 0.2

    figure, ax = _canvas(width, height)
    experiment = EXPERIMENTS[experiment_name]
    ax.text(width / 2, height - 0.3, f"{experiment.title} — {parameters:,} parameters",
            fontproperties=_font(15, "bold"), ha="center", va="center", color=_TEXT, parse_math=False)
    sizes_text = f"{config.hidden_units} hidden units × {config.num_layers} layers"
    if config.model == "dc":
        sizes_text += f", embedding D={config.embedding_dim}"
    ax.text(width / 2, height - 0.68,
            f"experiment {experiment_name!r}: model={config.model!r}, loss={config.loss!r}, "
            f"readout={config.readout!r}; {sizes_text}. Network boxes = model.layers of build_model(config).",
            fontproperties=_font(10), ha="center", va="center", color=_GREY, parse_math=False)

    positions = {}  # stage index -> lower-left corner
    top = height - title_h
    for r, row in enumerate(rows):
        y = top - box_h - r * (box_h + gap_y)
        for c, index in enumerate(row):
            positions[index] = (margin + c * (box_w + gap_x), y)
    for index, stage in enumerate(main):
        _draw_box(ax, stage, *positions[index], box_w, box_h)
    for row in rows:
        for a, b in zip(row, row[1:]):
            (xa, ya), (xb, _) = positions[a], positions[b]
            _arrow(ax, (xa + box_w, ya + box_h / 2), (xb, ya + box_h / 2))
    for row, following in zip(rows, rows[1:]):  # wrap: down, back left, down into the next row
        (xa, ya), (xb, yb) = positions[row[-1]], positions[following[0]]
        middle = ya - gap_y / 2
        ax.plot([xa + box_w / 2, xa + box_w / 2, xb + box_w / 2], [ya, middle, middle], color=_ARROW,
                linewidth=1.6, solid_capstyle="butt")
        _arrow(ax, (xb + box_w / 2, middle), (xb + box_w / 2, yb + box_h))

    x_out, y_out = positions[output_index]
    y_loss = y_out - gap_y - box_h
    _draw_box(ax, loss, x_out, y_loss, box_w, box_h)
    _arrow(ax, (x_out + box_w / 2, y_out), (x_out + box_w / 2, y_loss + box_h), dashed=True,
           color=STAGE_STYLES["loss"][1])
    ax.text(x_out + box_w / 2 + 0.1, y_out - gap_y / 2, "training", fontproperties=_NOTE_FONT,
            color=STAGE_STYLES["loss"][1], ha="left", va="center")

    handles = [Patch(facecolor=fill, edgecolor=edge, label=label) for fill, edge, label in STAGE_STYLES.values()]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles),
              frameon=False, prop=_font(10), handlelength=1.6)
    return figure


# --------------------------------------------------------------------------- corpus folder layouts

_LDC_TREE = """\
TIMIT_WAV/
├── TRAIN/                      train speakers
│   ├── DR1/                    dialect regions DR1..DR8
│   │   ├── FCJF0/              <SPEAKER>: F… = female
│   │   │   ├── SA1.WAV         NIST SPHERE or RIFF
│   │   │   ├── SA2.WAV
│   │   │   └── …  SI*.WAV, SX*.WAV
│   │   └── …
│   └── DR2/ … DR8/
└── TEST/                       TEST speakers = test split
    ├── DR1/
    │   ├── MDAB0/              <SPEAKER>: M… = male
    │   │   ├── SA1.WAV
    │   │   └── …
    │   └── …
    └── DR2/ … DR8/"""

_NLTK_TREE = """\
corpora/timit/                  (nltk.data.find)
├── dr1-fvmh0/                  drN-<speaker>, f = female
│   ├── sa1.wav
│   ├── sa2.wav
│   └── …
├── dr1-mcpm0/                  m = male
└── … dr8-…/"""

_LIBRISPEECH_TREE = """\
LibriSpeech/                    or one <subset>/ folder
├── SPEAKERS.TXT                ID | SEX | …  -> F / M
├── train-clean-100/            train-*: any split
│   ├── 103/                    <speaker>
│   │   └── 1240/               <chapter>
│   │       ├── 103-1240-0000.flac
│   │       └── …
│   └── …
├── dev-clean/                  dev-* = validation split
└── test-clean/                 test-* = test split"""

_GENERIC_TREE = """\
<root>/
├── <speaker>/                  folder name = speaker id
│   ├── a.wav                   any depth: **/*.wav|flac
│   └── session1/
│       └── b.flac
└── <speaker>/ …"""

_RESOLUTION = [
    "1. --timit PATH and every --corpus-root PATH  (several folders: one corpus, ids <corpus>:<id>)",
    "2. $TIMIT_WAV  (environment variable)",
    "3. ./TIMIT_WAV  in the current folder",
    "4. NLTK TIMIT sample, if NLTK has downloaded it  (no network access)",
    "5. LibriSpeech mini, built in: 40 real speakers, 8 kHz FLAC, CC BY 4.0",
    "6. toy corpus, only if 5 is missing: synthetic harmonic 'voices', NOT speech, announced with a WARNING",
]
_RESOLUTION_NOTES = [
    "Steps 1-3 take a folder; its layout is tried in the order LDC, NLTK sample, LibriSpeech, generic.",
    "--corpus nltk forces step 4 (downloading about 18 MB once), --corpus librispeech-mini step 5, "
    "--corpus toy step 6.",
    f"Audio is read with soundfile and resampled to {SAMPLE_RATE / 1000:g} kHz; unusable files are "
    "skipped and listed.",
    "Sex = first letter of a TIMIT speaker id (F/M), LibriSpeech's SPEAKERS.TXT, '?' otherwise.",
]


def _text_panel(ax, x: float, y_top: float, width: float, heading: str, subheading: str, body: list[str],
                body_font: FontProperties, kind: str, min_height: float = 0.0) -> float:
    """A rounded box with a heading, a monospace sub-heading and body lines; returns its height."""
    fill, edge, _ = STAGE_STYLES[kind]
    pad = 0.18
    heading_font, sub_font = _font(12, "bold"), _font(10.5, "bold", family=_MONO)
    lines = [(heading, heading_font, _TEXT)]
    if subheading:
        lines.append((subheading, sub_font, edge))
    lines += [(line, body_font, _TEXT) for line in body]
    height = max(min_height, sum(_line_height(font) for _, font, _ in lines) + 2 * pad + 0.08)
    ax.add_patch(FancyBboxPatch((x, y_top - height), width, height, boxstyle="round,pad=0,rounding_size=0.1",
                                facecolor=fill, edgecolor=edge, linewidth=1.6))
    y = y_top - pad
    for index, (text, font, colour) in enumerate(lines):
        step = _line_height(font)
        ax.text(x + pad, y - step / 2, text, fontproperties=font, color=colour, ha="left", va="center",
                parse_math=False)
        y -= step + (0.08 if index == (1 if subheading else 0) else 0)
    return height


def _panel_width(heading: str, subheading: str, body: list[str], body_font: FontProperties) -> float:
    widths = [_text_width(heading, _font(12, "bold"))] + [_text_width(line, body_font) for line in body]
    if subheading:
        widths.append(_text_width(subheading, _font(10.5, "bold", family=_MONO)))
    return max(widths) + 0.36


def folder_structure() -> Figure:
    """Tree diagram of the corpus layouts :mod:`speechsep.data.corpus` accepts, and the resolution order."""
    tree_font = _font(10.5, family=_MONO)
    list_font = _font(10.5)
    panels = {
        "ldc": ("Full LDC TIMIT  (layout 'ldc')", LAYOUT_PATTERNS["ldc"], _LDC_TREE.split("\n")),
        "nltk": ("NLTK TIMIT sample  (layout 'nltk-sample')", LAYOUT_PATTERNS["nltk-sample"],
                 _NLTK_TREE.split("\n")),
        "librispeech": ("LibriSpeech  (layout 'librispeech')", LAYOUT_PATTERNS["librispeech"],
                        _LIBRISPEECH_TREE.split("\n")),
        "generic": ("Any other folder  (layout 'generic')", LAYOUT_PATTERNS["generic"], _GENERIC_TREE.split("\n")),
    }
    right_column = ("nltk", "librispeech", "generic")
    gap, margin, title_h = 0.3, 0.3, 0.75
    left_w = _panel_width(*panels["ldc"], tree_font)
    right_w = max(_panel_width(*panels[key], tree_font) for key in right_column)
    resolution_body = _RESOLUTION + [""] + _RESOLUTION_NOTES
    width = max(2 * margin + left_w + gap + right_w,
                2 * margin + _panel_width("Resolution order (find_corpus)", "", resolution_body, list_font))
    right_w = width - 2 * margin - gap - left_w

    def panel_height(key):  # the formula of _text_panel
        heading, sub, body = panels[key]
        fonts = [_font(12, "bold"), _font(10.5, "bold", family=_MONO)] + [tree_font] * len(body)
        return sum(_line_height(f) for f in fonts) + 2 * 0.18 + 0.08

    top_h = max(panel_height("ldc"), sum(panel_height(key) for key in right_column) + 2 * gap)
    resolution_h = (_line_height(_font(12, "bold")) + len(resolution_body) * _line_height(list_font)
                    + 2 * 0.18 + 0.08)
    height = title_h + top_h + gap + resolution_h + margin

    figure, ax = _canvas(width, height)
    ax.text(width / 2, height - 0.38, "Corpus folders the data generator accepts (speechsep.data)",
            fontproperties=_font(15, "bold"), ha="center", va="center", color=_TEXT)
    y = height - title_h
    _text_panel(ax, margin, y, left_w, *panels["ldc"], tree_font, "signal", min_height=top_h)
    top = y
    for key, kind in zip(right_column, ("readout", "signal", "layer")):
        top -= _text_panel(ax, margin + left_w + gap, top, right_w, *panels[key], tree_font, kind) + gap
    _text_panel(ax, margin, y - top_h - gap, width - 2 * margin, "Resolution order (find_corpus)", "",
                resolution_body, list_font, "loss")
    return figure


# --------------------------------------------------------------------------- all figures


def write_all(out_dir, config_overrides: Mapping | None = None) -> list[Path]:
    """Write the five flow PNGs of :data:`FLOW_FIGURES` and ``FolderStructure.png`` into ``out_dir``.

    ``config_overrides`` are passed to every :func:`experiment_flow` (default: the config defaults).
    """
    from speechsep.figures.plots import save_figure

    out_dir = Path(out_dir)
    written = [save_figure(experiment_flow(name, config_overrides), out_dir / file_name)
               for name, file_name in FLOW_FIGURES.items()]
    written.append(save_figure(folder_structure(), out_dir / FOLDER_FIGURE))
    return written
