"""Figures for separation experiments (matplotlib, headless, no pyplot state).

Every helper builds and RETURNS a :class:`matplotlib.figure.Figure` created
directly (``Figure(layout="constrained")``), so nothing depends on the pyplot
state machine or on the interactive backend: it works on a headless machine
without forcing ``matplotlib.use("Agg")``. Nothing is drawn at import time.
Save a figure with :func:`save_figure` (PNG, :data:`DPI` dots per inch).

Axes follow the signal conventions of :mod:`speechsep.signal`: spectrogram-like
arrays are ``[frames, bins]`` (time first); frame ``t`` is centred at
``t * HOP_LENGTH / SAMPLE_RATE`` seconds and bin ``k`` is at
``k * SAMPLE_RATE / N_FFT`` Hz. Images are drawn so that each frame/bin cell is
centred on its time/frequency.

Speaker ``c`` (0-based) is always drawn in :func:`speaker_color` ``(c)``
(matplotlib's ``tab10`` cycle: blue, orange, green, ...), in every figure.
"""

from __future__ import annotations

import textwrap

from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from speechsep.signal import HOP_LENGTH, N_FFT, SAMPLE_RATE

DPI = 110
SPECTROGRAM_RANGE_DB = 80.0  # dynamic range shown in spectrograms, below the maximum
SILENT_COLOR = "#d9d9d9"  # neutral light grey for silent (inactive) bins
_DB_PER_NEPER = 20.0 / np.log(10.0)  # natural-log magnitude -> dB
_TAB10 = colormaps["tab10"].colors
_METRIC_COLORS = ("#4c72b0", "#55a868", "#8172b2", "#c44e52", "#ccb974", "#64b5cd")
_ACRONYMS = {"snr": "SNR", "sdr": "SDR", "sir": "SIR", "sar": "SAR", "si": "SI", "stoi": "STOI",
             "sdri": "SDRi", "snri": "SNRi"}

__all__ = [
    "DPI",
    "speaker_color",
    "save_figure",
    "plot_masks",
    "plot_waveforms",
    "plot_history",
    "plot_accuracy",
    "plot_embeddings_pca",
    "plot_cluster_assignment",
    "plot_metric_bars",
    "plot_spectrograms",
    "plot_training_curves",
]


# --------------------------------------------------------------------------- helpers


def speaker_color(index: int):
    """RGB colour of speaker/cluster ``index`` (0-based), consistent across all figures."""
    return _TAB10[int(index) % len(_TAB10)]


def _new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def save_figure(figure: Figure, path) -> Path:
    """Save ``figure`` as a PNG at :data:`DPI` dpi, creating parent directories; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, format="png", facecolor="white")
    return path


def _as_tf_array(array, name: str, ndim: int = 2) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != ndim or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty {ndim}-D [frames, bins{', ...' if ndim > 2 else ''}] "
                         f"array; got shape {array.shape}")
    return array


def _tf_extent(n_frames: int, n_bins: int):
    """imshow extent (seconds, Hz) so that cell (t, k) is centred on its time and frequency."""
    frame_step = HOP_LENGTH / SAMPLE_RATE
    bin_step = SAMPLE_RATE / N_FFT
    return (-0.5 * frame_step, (n_frames - 0.5) * frame_step, -0.5 * bin_step, (n_bins - 0.5) * bin_step)


def _tf_image(ax, values, **kwargs):
    """Draw a [frames, bins] array as an image over time (s) and frequency (Hz)."""
    values = np.asanyarray(values)  # keeps a numpy masked array (masked cells use the colormap's "bad" colour)
    image = ax.imshow(values.T, origin="lower", aspect="auto", interpolation="nearest",
                      extent=_tf_extent(*values.shape[:2]), **kwargs)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
    return image


def _spectrogram_panel(figure, ax, log_magnitude, title="mixture spectrogram"):
    """Mixture log-magnitude (natural log) shown in dB over an :data:`SPECTROGRAM_RANGE_DB` range."""
    decibels = _DB_PER_NEPER * np.asarray(log_magnitude, dtype=np.float64)
    finite = decibels[np.isfinite(decibels)]
    top = float(finite.max()) if finite.size else 0.0
    image = _tf_image(ax, decibels, cmap="magma", vmin=top - SPECTROGRAM_RANGE_DB, vmax=top)
    ax.set_title(title)
    colorbar = figure.colorbar(image, ax=ax, pad=0.01, fraction=0.05)
    colorbar.set_label("magnitude (dB)")
    return image


def _empty_message(ax, text, y=0.5):
    ax.text(0.5, y, text, ha="center", va="center", transform=ax.transAxes, color="0.4",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})


def _metric_label(key: str) -> str:
    """'si_sdr_improvement' -> 'SI-SDR improvement'."""
    head, _, tail = key.partition("_improvement")
    words = head.split("_")
    acronym_words = [_ACRONYMS.get(word.lower(), word) for word in words]
    if all(word.lower() in _ACRONYMS for word in words):
        name = "-".join(acronym_words)
    else:
        name = " ".join(acronym_words)
    return f"{name} improvement" if key.endswith("_improvement") else name + tail


# --------------------------------------------------------------------------- masks


def plot_masks(log_magnitude, oracle_mask, estimated_mask, active=None, title: str = "") -> Figure:
    """Mixture spectrogram, oracle binary mask and estimated mask, side by side.

    Parameters
    ----------
    log_magnitude : array [frames, bins]
        Natural-log mixture magnitude (:func:`speechsep.signal.log_magnitude`); shown in dB.
    oracle_mask : array [frames, bins]
        Ideal binary mask of source 1 (0/1).
    estimated_mask : array [frames, bins]
        Estimated mask of source 1, values in [0, 1].
    active : bool array [frames, bins], optional
        Active (non-silent) bins; silent bins are greyed out in the two mask panels.
    title : str
        Figure title.

    Returns a Figure with three image axes plus two colorbars (5 axes).
    """
    log_magnitude = _as_tf_array(log_magnitude, "log_magnitude")
    oracle_mask = _as_tf_array(oracle_mask, "oracle_mask")
    estimated_mask = _as_tf_array(estimated_mask, "estimated_mask")
    if active is not None:
        active = _as_tf_array(active, "active").astype(bool)
    shapes = {array.shape for array in (log_magnitude, oracle_mask, estimated_mask) + ((active,) if active is not None else ())}
    if len(shapes) != 1:
        raise ValueError(f"plot_masks: all arrays must have the same [frames, bins] shape; got {sorted(shapes)}")

    figure = _new_figure(14.0, 4.2)
    axes = figure.subplots(1, 3, sharex=True, sharey=True)
    _spectrogram_panel(figure, axes[0], log_magnitude, "mixture spectrogram")
    mask_cmap = colormaps["viridis"].with_extremes(bad=SILENT_COLOR)
    mask_image = None
    for ax, mask, name in ((axes[1], oracle_mask, "oracle IBM (source 1)"),
                           (axes[2], estimated_mask, "estimated mask (source 1)")):
        values = np.clip(np.asarray(mask, dtype=np.float64), 0.0, 1.0)
        if active is not None:
            values = np.ma.masked_where(~active, values)  # silent bins drawn in SILENT_COLOR
        mask_image = _tf_image(ax, values, cmap=mask_cmap, vmin=0.0, vmax=1.0)
        ax.set_title(name)
    for ax in axes[1:]:
        ax.set_ylabel("")
    colorbar = figure.colorbar(mask_image, ax=list(axes[1:]), pad=0.01, fraction=0.05)
    colorbar.set_label("mask value (1 = source 1)")
    if active is not None:
        n_silent = int((~active).sum())
        share = 100.0 * n_silent / active.size
        figure.legend(handles=[Patch(facecolor=SILENT_COLOR, edgecolor="0.5",
                                     label=f"silent bins ({share:.0f}% of all bins, not scored)")],
                      loc="outside lower right", fontsize="small", frameon=False)
    if title:
        figure.suptitle(title)
    return figure


# --------------------------------------------------------------------------- waveforms


def _format_db(value) -> str:
    value = float(value)
    return f"{value:.2f} dB" if np.isfinite(value) else "n/a"


def plot_waveforms(mixture, references, estimates, sdr_db: Sequence[float], sample_rate: int = SAMPLE_RATE,
                   title: str = "", mixture_sdr_db: Sequence[float] | None = None) -> Figure:
    """Mixture on top, then one row per source with its reference and estimate overlaid.

    Parameters
    ----------
    mixture : array [T]
    references, estimates : arrays [C, T]
    sdr_db : sequence of C floats, SDR (dB) of each estimate, shown in the row titles.
    sample_rate : Hz, for the time axis in seconds.
    mixture_sdr_db : sequence of C floats, SDR (dB) of the unprocessed mixture against each
        reference. Given, each row's title leads with the improvement (SDRi = SDR − the
        mixture's), the number the listening report shows, with both scores beside it.

    Returns a Figure with ``C + 1`` axes sharing the time axis.
    """
    mixture = np.asarray(mixture, dtype=np.float64).reshape(-1)
    references = np.atleast_2d(np.asarray(references, dtype=np.float64))
    estimates = np.atleast_2d(np.asarray(estimates, dtype=np.float64))
    sdr_db = np.asarray(list(sdr_db), dtype=np.float64).reshape(-1)
    if references.ndim != 2 or estimates.ndim != 2 or references.shape[0] != estimates.shape[0]:
        raise ValueError(f"plot_waveforms: references and estimates must be [C, T] with the same C; "
                         f"got {references.shape} and {estimates.shape}")
    n_sources = references.shape[0]
    if sdr_db.shape[0] != n_sources:
        raise ValueError(f"plot_waveforms: expected {n_sources} SDR values, got {sdr_db.shape[0]}")
    if sample_rate <= 0:
        raise ValueError(f"plot_waveforms: sample_rate must be positive, got {sample_rate}")
    if mixture_sdr_db is not None:
        mixture_sdr_db = np.asarray(list(mixture_sdr_db), dtype=np.float64).reshape(-1)
        if mixture_sdr_db.shape[0] != n_sources:
            raise ValueError(f"plot_waveforms: expected {n_sources} mixture SDR values, got {mixture_sdr_db.shape[0]}")

    figure = _new_figure(11.0, 1.2 + 1.75 * (n_sources + 1))
    axes = np.atleast_1d(figure.subplots(n_sources + 1, 1, sharex=True, squeeze=False)[:, 0])

    def seconds(signal):
        return np.arange(signal.shape[-1]) / float(sample_rate)

    peak = max(float(np.max(np.abs(array))) if array.size else 0.0 for array in (mixture, references, estimates))
    limit = 1.08 * peak if peak > 0 else 1.0
    axes[0].plot(seconds(mixture), mixture, color="0.25", linewidth=0.6)
    axes[0].set_title("mixture", loc="left")
    for source in range(n_sources):
        ax = axes[source + 1]
        ax.plot(seconds(references[source]), references[source], color="0.7", linewidth=1.4, label="reference")
        ax.plot(seconds(estimates[source]), estimates[source], color=speaker_color(source), linewidth=0.6,
                alpha=0.9, label="estimate")
        if mixture_sdr_db is None:
            ax.set_title(f"source {source + 1}: SDR = {_format_db(sdr_db[source])}", loc="left")
        else:
            improvement = sdr_db[source] - mixture_sdr_db[source]
            ax.set_title(f"source {source + 1}: SDRi = {_format_db(improvement)} (estimate SDR "
                         f"{_format_db(sdr_db[source])}, the mixture's own {_format_db(mixture_sdr_db[source])})",
                         loc="left")
        legend = ax.legend(loc="upper right", fontsize="small", ncols=2, framealpha=0.9)
        for handle in legend.get_lines():
            handle.set_linewidth(2.0)
    for ax in axes:
        ax.set_ylabel("amplitude")
        ax.set_ylim(-limit, limit)
        ax.grid(True, alpha=0.25)
        ax.margins(x=0)
    axes[-1].set_xlabel("time (s)")
    longest = max(mixture.shape[-1], references.shape[-1], estimates.shape[-1])
    if longest <= 1:
        axes[-1].set_xlim(-0.5 / sample_rate, 0.5 / sample_rate)
    else:
        axes[-1].set_xlim(0.0, longest / float(sample_rate))
    if title:
        figure.suptitle(title)
    return figure


# --------------------------------------------------------------------------- training history


def _plot_series(ax, history: Mapping, series: Iterable[tuple[str, str]]) -> int:
    """Plot each available ``key`` of ``history`` against the epoch (from 1); return how many were drawn.

    A ``val_<key>`` series is drawn dashed in the colour of ``<key>``.
    """
    colour_of = {}
    drawn = 0
    max_epochs = 0
    for key, label in series:
        values = history.get(key) if history is not None else None
        if values is None:
            continue
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.size == 0:
            continue
        base = key[4:] if key.startswith("val_") else key
        if base not in colour_of:
            colour_of[base] = _METRIC_COLORS[len(colour_of) % len(_METRIC_COLORS)]
        validation = key.startswith("val_")
        epochs = np.arange(1, values.size + 1)
        ax.plot(epochs, values, color=colour_of[base], linestyle="--" if validation else "-",
                marker="s" if validation else "o", markersize=5, linewidth=1.6, label=label)
        drawn += 1
        max_epochs = max(max_epochs, values.size)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if max_epochs:
        ax.set_xlim(0.5, max_epochs + 0.5)
    ax.grid(True, alpha=0.3)
    return drawn


def _mark_events(ax, events: Sequence[tuple[float, str]]) -> None:
    """A dotted vertical line, in the legend, at each ``(epoch position, label)`` of ``events``."""
    for position, label in events:
        ax.axvline(position, color="0.35", linestyle=":", linewidth=1.4, label=label)


def plot_history(history: Mapping, series: Sequence[tuple[str, str]], title: str = "", ylabel: str = "",
                 events: Sequence[tuple[float, str]] = ()) -> Figure:
    """Training curves from a Keras ``History.history``-like dict.

    ``series`` lists ``(key, label)`` pairs; keys missing from ``history`` are
    skipped. Epochs are numbered from 1. ``events`` are ``(position, label)``
    marks drawn as dotted vertical lines, e.g. ``(2.5, "400-frame chunks")``
    between epochs 2 and 3 where the training data changed. Returns a Figure
    with one axes.
    """
    figure = _new_figure(6.4, 4.2)
    ax = figure.subplots()
    _draw_history(ax, history, series, ylabel, events)
    if title:
        ax.set_title(title)
    return figure


def _draw_history(ax, history: Mapping, series: Sequence[tuple[str, str]], ylabel: str,
                  events: Sequence[tuple[float, str]]) -> None:
    """``series`` of ``history`` per epoch on ``ax`` with the ``events`` marked and a legend ("no data" if none)."""
    if _plot_series(ax, history, series):
        _mark_events(ax, events)
        ax.legend(fontsize="small")
    else:
        _empty_message(ax, "no data")
    ax.set_ylabel(ylabel)


def plot_accuracy(history: Mapping, prefix_title: str = "", events: Sequence[tuple[float, str]] = ()) -> Figure:
    """Bin accuracy per epoch: fixed speaker order (left) and permutation-invariant (right).

    Keys ``acc_fixed``/``val_acc_fixed`` and ``acc_pit``/``val_acc_pit``; y from 0
    to 1 with a dashed chance line at 0.5; ``events`` as in :func:`plot_history`
    (drawn on panels that have data). Returns a Figure with two axes.
    """
    figure = _new_figure(11.0, 4.0)
    axes = figure.subplots(1, 2, sharey=True)
    panels = (
        ("bin accuracy, fixed speaker order", (("acc_fixed", "train"), ("val_acc_fixed", "validation"))),
        ("bin accuracy, permutation-invariant", (("acc_pit", "train"), ("val_acc_pit", "validation"))),
    )
    for ax, (name, series) in zip(axes, panels):
        drawn = _plot_series(ax, history, series)
        ax.axhline(0.5, color="0.45", linestyle=(0, (5, 4)), linewidth=1.0, label="chance")
        if drawn:
            _mark_events(ax, events)
        ax.set_ylim(0.0, 1.02)
        ax.set_title(name)
        if not drawn:
            _empty_message(ax, "no data", y=0.75)
            ax.set_xlim(0.5, 1.5)
        ax.legend(loc="lower right", fontsize="small")
    axes[0].set_ylabel("bin accuracy")
    if prefix_title:
        figure.suptitle(prefix_title)
    return figure


# --------------------------------------------------------------------------- embeddings and clusters


def plot_embeddings_pca(embeddings, oracle_labels, active, max_points: int = 3000, seed: int = 0,
                        title: str = "") -> Figure:
    """2-D PCA of the embeddings of a random subset of active bins, coloured by oracle speaker.

    Parameters
    ----------
    embeddings : array [frames, bins, D]
    oracle_labels : int array [frames, bins], dominant speaker (0-based).
    active : bool array [frames, bins]
    max_points : at most this many active bins are drawn (uniform random subset, ``seed``).

    Returns a Figure with one axes.
    """
    embeddings = _as_tf_array(embeddings, "embeddings", ndim=3)
    oracle_labels = _as_tf_array(oracle_labels, "oracle_labels")
    active = _as_tf_array(active, "active").astype(bool)
    if embeddings.shape[:2] != oracle_labels.shape or oracle_labels.shape != active.shape:
        raise ValueError(f"plot_embeddings_pca: shapes differ: embeddings {embeddings.shape}, "
                         f"oracle_labels {oracle_labels.shape}, active {active.shape}")
    if embeddings.shape[2] == 0:
        raise ValueError("plot_embeddings_pca: embeddings have dimension 0")

    figure = _new_figure(6.0, 5.2)
    ax = figure.subplots()
    points = embeddings[active].astype(np.float64)  # [N, D]
    labels = oracle_labels[active].astype(np.int64)  # [N]
    if points.shape[0] > max_points > 0:
        keep = np.sort(np.random.default_rng(seed).choice(points.shape[0], size=max_points, replace=False))
        points, labels = points[keep], labels[keep]

    if points.shape[0] == 0:
        _empty_message(ax, "no active bins")
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        centred = points - points.mean(axis=0, keepdims=True)
        _, singular, basis = np.linalg.svd(centred, full_matrices=False)
        projected = np.zeros((points.shape[0], 2))
        n_components = min(2, basis.shape[0])
        projected[:, :n_components] = centred @ basis[:n_components].T
        variance = singular**2
        share = np.zeros(2)
        if variance.sum() > 0:
            share[:n_components] = 100.0 * variance[:n_components] / variance.sum()
        marker_size = 6.0 if points.shape[0] > 1000 else 12.0
        for speaker in np.unique(labels):
            members = labels == speaker
            ax.scatter(projected[members, 0], projected[members, 1], s=marker_size, alpha=0.45,
                       color=speaker_color(speaker), linewidths=0, label=f"speaker {speaker + 1}",
                       rasterized=True)
        ax.set_xlabel(f"PC 1 ({share[0]:.0f}% of variance)")
        ax.set_ylabel(f"PC 2 ({share[1]:.0f}% of variance)")
        legend = ax.legend(loc="best", fontsize="small", markerscale=2.5, framealpha=0.9)
        for handle in legend.legend_handles:
            handle.set_alpha(1.0)
        ax.text(0.99, 0.01, f"{points.shape[0]} active bins", ha="right", va="bottom",
                transform=ax.transAxes, fontsize="x-small", color="0.4")
    ax.grid(True, alpha=0.25)
    ax.set_title(title or "embeddings of active bins (PCA)")
    return figure


def plot_cluster_assignment(labels, active, log_magnitude=None, title: str = "") -> Figure:
    """Cluster of every bin over time and frequency; silent bins in neutral grey.

    Parameters
    ----------
    labels : int array [frames, bins], cluster index per bin (0-based; negative = unassigned).
    active : bool array [frames, bins]
    log_magnitude : array [frames, bins], optional
        Mixture natural-log magnitude, drawn in a left panel for reference.

    Returns a Figure with one (or two, with ``log_magnitude``) image axes, each with a colorbar.
    """
    labels = _as_tf_array(labels, "labels").astype(np.int64)
    active = _as_tf_array(active, "active").astype(bool)
    if labels.shape != active.shape:
        raise ValueError(f"plot_cluster_assignment: labels {labels.shape} and active {active.shape} differ")
    if log_magnitude is not None:
        log_magnitude = _as_tf_array(log_magnitude, "log_magnitude")
        if log_magnitude.shape != labels.shape:
            raise ValueError(f"plot_cluster_assignment: log_magnitude {log_magnitude.shape} and labels "
                             f"{labels.shape} differ")

    shown = np.where(active & (labels >= 0), labels, -1)  # [frames, bins], -1 = silent
    n_clusters = max(int(labels.max()) + 1, 1)  # from all labels: colours stay stable if a cluster is silent
    colours = [SILENT_COLOR] + [speaker_color(cluster) for cluster in range(n_clusters)]
    cmap = ListedColormap(colours)
    norm = BoundaryNorm(np.arange(-1.5, n_clusters), cmap.N)

    if log_magnitude is None:
        figure = _new_figure(7.5, 4.2)
        cluster_ax = figure.subplots()
    else:
        figure = _new_figure(14.0, 4.2)
        spectrum_ax, cluster_ax = figure.subplots(1, 2, sharex=True, sharey=True)
        _spectrogram_panel(figure, spectrum_ax, log_magnitude, "mixture spectrogram")
    image = _tf_image(cluster_ax, shown, cmap=cmap, norm=norm)
    cluster_ax.set_title("cluster assignment")
    colorbar = figure.colorbar(image, ax=cluster_ax, pad=0.01, fraction=0.05, ticks=np.arange(-1, n_clusters))
    colorbar.ax.set_yticklabels(["silent"] + [f"cluster {cluster + 1}" for cluster in range(n_clusters)])
    colorbar.ax.tick_params(length=0)
    if log_magnitude is not None:
        cluster_ax.set_ylabel("")
    if title:
        figure.suptitle(title)
    return figure


# --------------------------------------------------------------------------- metric bars


def plot_metric_bars(rows: Sequence[Mapping], metrics: Sequence[str] = ("snr_improvement", "sdr_improvement"),
                     title: str = "") -> Figure:
    """Grouped bars (one group per method, one bar per metric) with standard-deviation error bars.

    ``rows`` are dicts ``{"method": str, "<metric>": mean, "<metric>_std": std,
    "kind": "oracle" | "model"}``; missing values leave a gap. Oracle rows are
    hatched and lighter. Returns a Figure with one axes.
    """
    rows = list(rows)
    metrics = list(metrics)
    n_methods = len(rows)
    longest_name = max((len(str(row.get("method", ""))) for row in rows), default=0)
    rotate = n_methods > 4 or longest_name * max(n_methods, 1) > 48
    width_inches = max(5.5, 1.2 + n_methods * (0.45 + 0.35 * len(metrics)))
    figure = _new_figure(width_inches, 4.8)
    ax = figure.subplots()
    if not rows or not metrics:
        _empty_message(ax, "no results")
    width = 0.8 / max(len(metrics), 1)
    positions = np.arange(n_methods, dtype=np.float64)
    for index, metric in enumerate(metrics):
        colour = _METRIC_COLORS[index % len(_METRIC_COLORS)]
        offset = (index - (len(metrics) - 1) / 2.0) * width
        for position, row in zip(positions, rows):
            value = row.get(metric)
            if value is None or not np.isfinite(float(value)):
                continue
            std = row.get(f"{metric}_std")
            std = float(std) if std is not None and np.isfinite(float(std)) else None
            oracle = row.get("kind") == "oracle"
            ax.bar(position + offset, float(value), width=width * 0.92, yerr=std, capsize=3,
                   color=colour, alpha=0.45 if oracle else 0.95, hatch="///" if oracle else None,
                   edgecolor=colour if oracle else "none", linewidth=0.8,
                   error_kw={"elinewidth": 1.0, "ecolor": "0.2"})
    ax.axhline(0.0, color="0.2", linewidth=0.9)
    ax.set_xticks(positions)
    ax.set_xticklabels([textwrap.fill(str(row.get("method", f"method {index + 1}")), 18)  # long names: 2 lines
                        for index, row in enumerate(rows)],
                       rotation=30 if rotate else 0, ha="right" if rotate else "center")
    for tick, row in zip(ax.get_xticklabels(), rows):
        if row.get("kind") == "oracle":
            tick.set_fontstyle("italic")
    if n_methods:
        ax.set_xlim(-0.6, n_methods - 0.4)
    ax.set_ylabel("improvement (dB)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    def has_values(metric):
        return any(row.get(metric) is not None and np.isfinite(float(row[metric])) for row in rows)

    handles = [Patch(facecolor=_METRIC_COLORS[index % len(_METRIC_COLORS)],
                     label=_metric_label(metric) + ("" if has_values(metric) else " (no data)"))
               for index, metric in enumerate(metrics)]
    if any(row.get("kind") == "oracle" for row in rows):
        handles.append(Patch(facecolor="white", edgecolor="0.3", hatch="///", label="oracle (upper bound)"))
    if handles:  # outside the axes, so it never hides a bar
        figure.legend(handles=handles, fontsize="small", loc="outside lower center", frameon=False,
                      ncols=min(len(handles), 4 if width_inches >= 8 else 2))
    if title:
        figure.suptitle(title)
    return figure


# --------------------------------------------------------------------------- listening report


def plot_spectrograms(log_magnitudes: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray] | None = None,
                      title: str = "") -> Figure:
    """Spectrograms (top row) and masks (bottom row) of one mixture, for the listening report.

    ``log_magnitudes`` maps a panel title (e.g. ``"mixture"``, ``"estimate 1"``)
    to a natural-log magnitude [frames, bins], shown in dB over
    :data:`SPECTROGRAM_RANGE_DB`; ``masks`` maps a title to a mask [frames, bins]
    in [0, 1] (speaker ``c``'s mask in :func:`speaker_color` shades). Panels
    share the time and frequency axes. Returns a Figure with one or two rows.
    """
    spectra = {name: _as_tf_array(value, f"spectrogram {name!r}") for name, value in log_magnitudes.items()}
    masks = {name: _as_tf_array(value, f"mask {name!r}") for name, value in (masks or {}).items()}
    if not spectra:
        raise ValueError("plot_spectrograms needs at least one spectrogram")
    columns = max(len(spectra), len(masks), 1)
    rows = 2 if masks else 1
    figure = _new_figure(2.6 * columns + 0.8, 2.3 * rows + 0.4)
    axes = np.atleast_2d(figure.subplots(rows, columns, sharex=True, sharey=True, squeeze=False))
    top = max(float(np.max(_DB_PER_NEPER * value)) for value in spectra.values())
    image = None
    for ax, (name, value) in zip(axes[0], spectra.items()):
        image = _tf_image(ax, _DB_PER_NEPER * np.asarray(value, np.float64), cmap="magma",
                          vmin=top - SPECTROGRAM_RANGE_DB, vmax=top)
        ax.set_title(name, fontsize="medium")
    if image is not None:
        figure.colorbar(image, ax=list(axes[0]), pad=0.01, fraction=0.03).set_label("dB")
    mask_image = None
    for index, (ax, (name, value)) in enumerate(zip(axes[1] if rows == 2 else (), masks.items())):
        mask_image = _tf_image(ax, np.clip(value, 0.0, 1.0), cmap="gray_r", vmin=0.0, vmax=1.0)
        ax.set_title(name, fontsize="medium", color=speaker_color(index))
    if mask_image is not None:
        figure.colorbar(mask_image, ax=list(axes[1]), pad=0.01, fraction=0.03).set_label("mask")
    for row, used in zip(axes, (len(spectra), len(masks))):
        for ax in row[used:]:
            ax.set_visible(False)
    for ax in axes.flat:
        if not ax.get_subplotspec().is_first_col():
            ax.set_ylabel("")
        if rows == 2 and ax.get_subplotspec().is_first_row():
            ax.set_xlabel("")
    if title:
        figure.suptitle(title)
    return figure


def plot_training_curves(history: Mapping, title: str = "", events: Sequence[tuple[float, str]] = ()) -> Figure:
    """Loss (left) and permutation-invariant bin accuracy (right) per epoch, training and validation.

    Keys ``loss``/``val_loss`` and ``acc_pit``/``val_acc_pit`` of a run's
    history (``run.json``); missing keys are skipped, an empty history says
    "no data". ``events`` as in :func:`plot_history`. Returns a Figure with two axes.
    """
    figure = _new_figure(9.0, 3.2)
    left, right = figure.subplots(1, 2)
    for ax, series, label in ((left, (("loss", "train"), ("val_loss", "validation")), "loss"),
                              (right, (("acc_pit", "train"), ("val_acc_pit", "validation")), "PIT bin accuracy")):
        _draw_history(ax, history, series, label, events)
        ax.set_title(label)
    if title:
        figure.suptitle(title)
    return figure
