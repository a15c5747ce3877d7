"""Tests for speechsep.figures.plots: every helper returns a Figure with the right axes, units and content."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.image import imread

from speechsep.figures import plots
from speechsep.signal import (
    HOP_LENGTH,
    N_BINS,
    N_FFT,
    SAMPLE_RATE,
    active_bins,
    apply_masks,
    ideal_binary_mask,
    ideal_ratio_mask,
    log_magnitude,
    masks_from_labels,
    stft,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def harmonic(pitch: float, seconds: float, on: tuple[float, float], harmonics: int = 12) -> np.ndarray:
    """A harmonic tone at ``pitch`` Hz, gated to the interval ``on`` (seconds), float64 [samples]."""
    time = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tone = sum(np.sin(2 * np.pi * k * pitch * time) / k for k in range(1, harmonics + 1))
    gate = (time >= on[0]) & (time < on[1])
    return 0.3 * tone * gate


@pytest.fixture(scope="module")
def scene():
    """Two gated harmonic talkers (120 Hz and 210 Hz), their STFTs, masks and a noisy mask estimate."""
    references = np.stack([harmonic(210.0, 0.6, (0.05, 0.45)), harmonic(120.0, 0.6, (0.2, 0.55))])  # [2, T]
    mixture = references.sum(axis=0)  # [T]
    mixture_spectrum = stft(mixture)  # [frames, 129]
    source_spectra = stft(references)  # [2, frames, 129]
    labels = ideal_binary_mask(source_spectra)  # [frames, 129]
    rng = np.random.default_rng(0)
    estimated = np.clip(ideal_ratio_mask(source_spectra)[0] + 0.1 * rng.standard_normal(labels.shape), 0, 1)
    estimates = apply_masks(mixture_spectrum, masks_from_labels(labels, 2), mixture.size)  # [2, T]
    return {
        "mixture": mixture,
        "references": references,
        "estimates": estimates,
        "log_magnitude": log_magnitude(mixture_spectrum),
        "active": active_bins(mixture_spectrum),
        "labels": labels,
        "oracle_mask": (labels == 0).astype(np.float32),
        "estimated_mask": estimated,
    }


def image_axes(figure):
    """Axes that hold a time-frequency image (not colorbars)."""
    return [ax for ax in figure.axes if ax.images and ax.get_xlabel()]


def assert_time_frequency_axes(ax, n_frames):
    assert "(s)" in ax.get_xlabel()
    assert "Hz" in ax.yaxis.get_label_text() or ax.get_ylabel() == ""
    left, right, bottom, top = ax.images[0].get_extent()
    frame_seconds = HOP_LENGTH / SAMPLE_RATE
    assert left == pytest.approx(-0.5 * frame_seconds)
    assert right == pytest.approx((n_frames - 0.5) * frame_seconds)
    bin_hz = SAMPLE_RATE / N_FFT
    assert bottom == pytest.approx(-0.5 * bin_hz)
    assert top == pytest.approx(SAMPLE_RATE / 2 + 0.5 * bin_hz)


def assert_nontrivial_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5000
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 200
    assert float(pixels[..., :3].std()) > 0.05  # not a single flat colour


# --------------------------------------------------------------------------- save_figure


def test_save_figure_writes_png_in_new_directories(scene, tmp_path):
    figure = plots.plot_masks(scene["log_magnitude"], scene["oracle_mask"], scene["estimated_mask"], scene["active"])
    path = plots.save_figure(figure, tmp_path / "deep" / "nested" / "masks.png")
    assert path == tmp_path / "deep" / "nested" / "masks.png"
    assert_nontrivial_png(path)
    width_pixels = imread(path).shape[1]
    assert width_pixels == pytest.approx(figure.get_figwidth() * plots.DPI, rel=0.02)


def test_blank_figure_fails_the_png_check(tmp_path):
    """The PNG check itself must be able to fail."""
    path = plots.save_figure(Figure(figsize=(4, 3)), tmp_path / "blank.png")
    with pytest.raises(AssertionError):
        assert_nontrivial_png(path)


# --------------------------------------------------------------------------- masks


def test_plot_masks_panels_units_and_silence(scene):
    n_frames = scene["labels"].shape[0]
    figure = plots.plot_masks(scene["log_magnitude"], scene["oracle_mask"], scene["estimated_mask"],
                              active=scene["active"], title="toy")
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 5  # 3 panels + 2 colorbars
    panels = image_axes(figure)
    assert len(panels) == 3
    assert [ax.get_title() for ax in panels] == ["mixture spectrogram", "oracle IBM (source 1)",
                                                 "estimated mask (source 1)"]
    for ax in panels:
        assert_time_frequency_axes(ax, n_frames)
    assert "Hz" in panels[0].get_ylabel()
    # Images are stored [bins, frames] and silent bins are masked in both mask panels, not in the spectrogram.
    for ax in panels[1:]:
        data = ax.images[0].get_array()
        assert data.shape == (N_BINS, n_frames)
        np.testing.assert_array_equal(np.ma.getmaskarray(data), ~scene["active"].T)
        assert ax.images[0].get_clim() == (0.0, 1.0)
    assert not np.ma.getmaskarray(panels[0].images[0].get_array()).any()
    # The spectrogram is in dB: 20 log10(e) times the natural-log magnitude.
    np.testing.assert_allclose(panels[0].images[0].get_array(), 20 / np.log(10) * scene["log_magnitude"].T, rtol=1e-5)
    assert figure.get_suptitle() == "toy"


def test_plot_masks_without_active_and_edge_cases(scene):
    figure = plots.plot_masks(scene["log_magnitude"], scene["oracle_mask"], scene["estimated_mask"])
    for ax in image_axes(figure)[1:]:
        assert not np.ma.getmaskarray(ax.images[0].get_array()).any()
    # A single frame and an all-silent mask must not crash.
    one = slice(0, 1)
    figure = plots.plot_masks(scene["log_magnitude"][one], scene["oracle_mask"][one],
                              scene["estimated_mask"][one], np.zeros((1, N_BINS), bool))
    assert len(image_axes(figure)) == 3
    figure = plots.plot_masks(scene["log_magnitude"], scene["oracle_mask"], scene["estimated_mask"],
                              np.zeros_like(scene["active"]))
    assert np.ma.getmaskarray(image_axes(figure)[2].images[0].get_array()).all()
    with pytest.raises(ValueError):
        plots.plot_masks(scene["log_magnitude"], scene["oracle_mask"][:-1], scene["estimated_mask"])


# --------------------------------------------------------------------------- waveforms


def test_plot_waveforms_rows_titles_and_time_axis(scene):
    figure = plots.plot_waveforms(scene["mixture"], scene["references"], scene["estimates"], [12.345, -3.21],
                                  title="IBM")
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 3
    titles = [ax.get_title(loc="left") for ax in figure.axes]
    assert titles[0] == "mixture"
    assert "12.35 dB" in titles[1] and "source 1" in titles[1]
    assert "-3.21 dB" in titles[2] and "source 2" in titles[2]
    assert "(s)" in figure.axes[-1].get_xlabel()
    duration = scene["mixture"].size / SAMPLE_RATE
    assert figure.axes[-1].get_xlim() == pytest.approx((0.0, duration))
    # Each source row draws the reference and the estimate (in the speaker colour), against seconds.
    lines = figure.axes[2].get_lines()
    assert len(lines) == 2
    np.testing.assert_allclose(lines[1].get_ydata(), scene["estimates"][1], rtol=1e-6)
    assert lines[1].get_xdata()[-1] == pytest.approx((scene["mixture"].size - 1) / SAMPLE_RATE)
    assert lines[1].get_color() == plots.speaker_color(1)


def test_plot_waveforms_three_sources_and_bad_input(scene):
    references = np.concatenate([scene["references"], scene["references"][:1] * 0.5])
    figure = plots.plot_waveforms(references.sum(0), references, references * 0.9, [1.0, 2.0, float("nan")])
    assert len(figure.axes) == 4
    assert "n/a" in figure.axes[3].get_title(loc="left")
    with pytest.raises(ValueError):
        plots.plot_waveforms(scene["mixture"], scene["references"], scene["estimates"], [1.0])


def test_plot_waveforms_in_sdri_beside_the_mixtures_own_score(scene):
    figure = plots.plot_waveforms(scene["mixture"], scene["references"], scene["estimates"], [12.5, 3.0],
                                  mixture_sdr_db=[0.5, -1.0])
    titles = [ax.get_title(loc="left") for ax in figure.axes]
    assert titles[1].startswith("source 1: SDRi = 12.00 dB") and "0.50 dB" in titles[1] and "12.50 dB" in titles[1]
    assert titles[2].startswith("source 2: SDRi = 4.00 dB") and "-1.00 dB" in titles[2]
    with pytest.raises(ValueError, match="mixture SDR"):
        plots.plot_waveforms(scene["mixture"], scene["references"], scene["estimates"], [1.0, 2.0],
                             mixture_sdr_db=[0.0])


def test_plot_waveforms_renders(scene, tmp_path):
    figure = plots.plot_waveforms(scene["mixture"], scene["references"], scene["estimates"], [10.0, 9.0])
    assert_nontrivial_png(plots.save_figure(figure, tmp_path / "waveforms.png"))


# --------------------------------------------------------------------------- history / accuracy


HISTORY = {
    "loss": [0.9, 0.5, 0.35, 0.3],
    "val_loss": [1.0, 0.6, 0.45, 0.42],
    "acc_fixed": [0.5, 0.52, 0.55, 0.56],
    "val_acc_fixed": [0.5, 0.51, 0.53, 0.53],
    "acc_pit": [0.6, 0.7, 0.8, 0.85],
    "val_acc_pit": [0.58, 0.68, 0.75, 0.8],
}


def test_plot_history_plots_available_keys_from_epoch_one():
    figure = plots.plot_history(HISTORY, [("loss", "train loss"), ("val_loss", "validation loss"),
                                          ("missing", "nope")], title="loss", ylabel="DC loss")
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 1
    ax = figure.axes[0]
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["train loss", "validation loss"]
    np.testing.assert_array_equal(lines[0].get_xdata(), [1, 2, 3, 4])
    np.testing.assert_allclose(lines[1].get_ydata(), HISTORY["val_loss"])
    assert all(line.get_marker() not in (None, "None", "") for line in lines)
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "DC loss" and ax.get_title() == "loss"
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["train loss", "validation loss"]


def test_plot_history_single_epoch_point_is_inside_the_axes(tmp_path):
    figure = plots.plot_history({"loss": [0.7]}, [("loss", "train loss"), ("val_loss", "val")])
    ax = figure.axes[0]
    (line,) = ax.get_lines()
    low, high = ax.get_xlim()
    assert low < 1 < high
    bottom, top = ax.get_ylim()
    assert bottom < 0.7 < top
    assert line.get_marker() not in (None, "None", "")
    empty = plots.plot_history({}, [("loss", "train loss")])
    assert not empty.axes[0].get_lines()


def test_training_curves_mark_where_the_training_data_changed():
    events = [(2.5, "training on 400-frame chunks from here")]
    (ax,) = plots.plot_history(HISTORY, [("loss", "train"), ("val_loss", "validation")], events=events).axes
    mark = ax.get_lines()[-1]
    np.testing.assert_allclose(mark.get_xdata(), [2.5, 2.5])
    assert mark.get_linestyle() == ":"
    assert [text.get_text() for text in ax.get_legend().get_texts()][-1] == events[0][1]
    for panel in plots.plot_accuracy(HISTORY, events=events).axes:
        assert [line.get_label() for line in panel.get_lines()] == ["train", "validation", "chance", events[0][1]]
    # no data: no mark either (the axes would stretch to x = 2.5 around a "no data" message)
    assert not plots.plot_history({}, [("loss", "train")], events=events).axes[0].get_lines()


def test_plot_accuracy_two_panels_with_chance_line():
    figure = plots.plot_accuracy(HISTORY, prefix_title="BLSTM")
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 2
    left, right = figure.axes
    assert left.get_title() == "bin accuracy, fixed speaker order"
    assert right.get_title() == "bin accuracy, permutation-invariant"
    for ax, key in ((left, "acc_fixed"), (right, "acc_pit")):
        assert ax.get_ylim()[0] == 0.0 and 1.0 <= ax.get_ylim()[1] <= 1.05
        assert ax.get_xlabel() == "epoch"
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels == ["train", "validation", "chance"]
        chance = ax.get_lines()[-1]
        np.testing.assert_allclose(chance.get_ydata(), [0.5, 0.5])
        assert chance.get_linestyle() == "--"
        np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), HISTORY[key])
    assert figure.get_suptitle() == "BLSTM"
    # Missing keys: still two panels, no crash.
    figure = plots.plot_accuracy({"acc_pit": [0.7]})
    assert len(figure.axes) == 2
    assert [line.get_label() for line in figure.axes[0].get_lines()] == ["chance"]


# --------------------------------------------------------------------------- embeddings and clusters


def embeddings_for(labels, dimension=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = 3.0 * rng.standard_normal((int(labels.max()) + 1, dimension))
    return centres[labels] + 0.3 * rng.standard_normal(labels.shape + (dimension,))  # [frames, bins, D]


def test_plot_embeddings_pca_subsamples_active_bins_and_separates_speakers(scene):
    labels, active = scene["labels"].astype(int), scene["active"]
    embeddings = embeddings_for(labels)
    embeddings[~active] = 1000.0  # silent bins must never be drawn (nor shift the PCA)
    figure = plots.plot_embeddings_pca(embeddings, labels, active, max_points=500, title="DC")
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 1
    ax = figure.axes[0]
    collections = ax.collections
    assert [c.get_label() for c in collections] == ["speaker 1", "speaker 2"]
    points = np.concatenate([np.asarray(c.get_offsets()) for c in collections])
    assert len(points) == min(500, int(active.sum()))
    assert len(np.unique(points, axis=0)) == len(points)  # a subset, without repeats
    assert np.abs(points).max() < 50
    # Well-separated clusters must be separated along the first principal component.
    first, second = (np.asarray(c.get_offsets())[:, 0] for c in collections)
    assert first.max() < second.min() or second.max() < first.min()
    np.testing.assert_allclose(collections[0].get_facecolor()[0][:3], plots.speaker_color(0))
    assert "PC 1" in ax.get_xlabel() and "PC 2" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["speaker 1", "speaker 2"]
    # Same seed -> same subset.
    again = plots.plot_embeddings_pca(embeddings, labels, active, max_points=500, title="DC")
    np.testing.assert_allclose(again.axes[0].collections[0].get_offsets(), collections[0].get_offsets())


def test_plot_embeddings_pca_edge_cases(scene):
    labels = scene["labels"].astype(int)
    embeddings = embeddings_for(labels)
    silent = plots.plot_embeddings_pca(embeddings, labels, np.zeros_like(scene["active"]))
    assert len(silent.axes) == 1 and not silent.axes[0].collections
    three = np.random.default_rng(1).integers(0, 3, size=(5, N_BINS))
    figure = plots.plot_embeddings_pca(embeddings_for(three), three, np.ones((5, N_BINS), bool))
    assert [c.get_label() for c in figure.axes[0].collections] == ["speaker 1", "speaker 2", "speaker 3"]
    one_frame = plots.plot_embeddings_pca(embeddings_for(three)[:1, :, :1], three[:1], np.ones((1, N_BINS), bool))
    assert len(one_frame.axes) == 1
    with pytest.raises(ValueError):
        plots.plot_embeddings_pca(embeddings, labels[:-1], scene["active"])


def test_plot_cluster_assignment_colours_and_silence(scene, tmp_path):
    labels, active = scene["labels"].astype(int), scene["active"]
    n_frames = labels.shape[0]
    figure = plots.plot_cluster_assignment(labels, active, title="k-means")
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 2  # image + colorbar
    (ax,) = image_axes(figure)
    assert_time_frequency_axes(ax, n_frames)
    image = ax.images[0]
    shown = np.asarray(image.get_array())
    np.testing.assert_array_equal(shown, np.where(active, labels, -1).T)
    rgba = image.to_rgba(shown)  # [bins, frames, 4]
    silent_t = ~active.T
    np.testing.assert_allclose(rgba[silent_t][:, :3], np.tile(np.array([0xD9, 0xD9, 0xD9]) / 255, (silent_t.sum(), 1)))
    speaker_2 = active.T & (labels.T == 1)
    np.testing.assert_allclose(rgba[speaker_2][0, :3], plots.speaker_color(1))
    colorbar_labels = [t.get_text() for t in figure.axes[1].get_yticklabels()]
    assert colorbar_labels == ["silent", "cluster 1", "cluster 2"]
    assert_nontrivial_png(plots.save_figure(figure, tmp_path / "clusters.png"))


def test_plot_cluster_assignment_with_spectrogram_three_clusters_and_silence(scene):
    labels = np.random.default_rng(0).integers(0, 3, size=scene["labels"].shape)
    figure = plots.plot_cluster_assignment(labels, scene["active"], log_magnitude=scene["log_magnitude"])
    assert len(figure.axes) == 4  # spectrogram + colorbar, clusters + colorbar
    panels = image_axes(figure)
    assert [ax.get_title() for ax in panels] == ["mixture spectrogram", "cluster assignment"]
    assert "Hz" in panels[0].get_ylabel()
    assert [t.get_text() for t in figure.axes[-1].get_yticklabels()] == [
        "silent", "cluster 1", "cluster 2", "cluster 3"]
    silent = plots.plot_cluster_assignment(labels[:1], np.zeros((1, N_BINS), bool))
    assert (np.asarray(image_axes(silent)[0].images[0].get_array()) == -1).all()


# --------------------------------------------------------------------------- metric bars


ROWS = [
    {"method": "oracle IBM", "snr_improvement": 13.0, "snr_improvement_std": 1.5,
     "sdr_improvement": 12.5, "sdr_improvement_std": 1.7, "kind": "oracle"},
    {"method": "BLSTM", "snr_improvement": 5.0, "snr_improvement_std": 2.0,
     "sdr_improvement": 4.5, "sdr_improvement_std": 2.2, "kind": "model"},
    {"method": "deep clustering", "snr_improvement": -0.5, "snr_improvement_std": 1.0,
     "sdr_improvement": 7.0, "kind": "model"},
]


def test_plot_metric_bars_groups_errors_and_oracle_style(tmp_path):
    figure = plots.plot_metric_bars(ROWS, title="test set")
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 1
    ax = figure.axes[0]
    bars = ax.patches
    assert len(bars) == 6
    heights = sorted(round(bar.get_height(), 3) for bar in bars)
    assert heights == sorted([13.0, 12.5, 5.0, 4.5, -0.5, 7.0])
    oracle_bars = [bar for bar in bars if bar.get_hatch()]
    assert sorted(bar.get_height() for bar in oracle_bars) == [12.5, 13.0]
    bar_containers = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bar_containers) == 6  # one per bar
    with_errors = [c for c in bar_containers if c.errorbar is not None]
    assert len(with_errors) == 5  # the row without sdr_improvement_std has no error bar
    assert ax.get_ylabel() == "improvement (dB)"
    zero_lines = [line for line in ax.get_lines() if np.allclose(line.get_ydata(), 0.0)]
    assert zero_lines
    assert [t.get_text() for t in ax.get_xticklabels()] == ["oracle IBM", "BLSTM", "deep clustering"]
    legend_texts = [t.get_text() for t in figure.legends[0].get_texts()]
    assert legend_texts[:2] == ["SNR improvement", "SDR improvement"]
    assert any("oracle" in text for text in legend_texts)
    assert_nontrivial_png(plots.save_figure(figure, tmp_path / "bars.png"))


def test_plot_metric_bars_missing_values_and_empty_rows():
    figure = plots.plot_metric_bars(ROWS[1:], metrics=("snr_improvement", "si_sdr_improvement"))
    assert len(figure.axes[0].patches) == 2
    assert "SI-SDR improvement (no data)" in [t.get_text() for t in figure.legends[0].get_texts()]
    empty = plots.plot_metric_bars([])
    assert len(empty.axes) == 1 and not empty.axes[0].patches
