"""What a training run writes besides its checkpoints: one test mixture separated (wavs, figures) and the
events its training curves mark."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import soundfile

from speechsep import signal
from speechsep.config import ExperimentConfig
from speechsep.experiments import Experiment

@dataclasses.dataclass
class Example:
    """One separated test mixture: estimates [C, samples] aligned to the references, masks [C, T, F]."""

    record: dict
    estimates: np.ndarray
    masks: np.ndarray
    sdr: list[float]
    files: list[Path]


def curriculum_events(config: ExperimentConfig, epochs: int) -> list[tuple[float, str]]:
    """Where a run's training curves change meaning: ``[(epoch position, label)]`` for the plots' ``events``.

    With a chunk curriculum the training loss and accuracies of epochs from
    ``config.curriculum_epoch`` on (0-based) are measured on long chunks, so
    they jump at the switch; validation stays on ``chunk_frames`` chunks.
    Empty without a curriculum or when the run ended before the switch.
    """
    if epochs == 0 or not config.trains_long_chunks(epochs - 1):
        return []
    return [(config.curriculum_epoch + 0.5, f"training on {config.long_chunk_frames}-frame chunks from here")]


def write_example(out: Path, experiment: Experiment, separator, record: dict, history: dict) -> Example:
    """Separate ``record``; write its wavs and every figure of ``experiment`` into ``out``."""
    from speechsep.eval import metrics
    from speechsep.figures import plots
    from speechsep.nn.losses import LOSS_LABELS, loss_key

    estimates, readout = separator.separate(record["mixture"], record["sources"].shape[0])
    references = record["sources"]
    count = references.shape[0]
    estimates = np.concatenate([estimates, np.zeros((max(0, count - len(estimates)), estimates.shape[1]),
                                                    np.float32)])[:count]
    sdr, _, _, order = metrics.bss_eval(references, estimates)  # order[i]: estimate of reference i
    order = [int(i) for i in order]
    estimates = estimates[order]
    sdr = [float(value) for value in sdr]
    # the mixture's own SDR against each reference: the baseline of the SDRi the report shows for this mixture
    mixture_sdr = [float(value) for value in metrics.bss_eval(references, np.repeat(
        np.asarray(record["mixture"], np.float32)[None, :references.shape[1]], count, axis=0))[0]]
    wav_dir = out / "wavs"
    wav_dir.mkdir(parents=True, exist_ok=True)
    written = [wav_dir / "mixture.wav"]
    soundfile.write(str(written[0]), record["mixture"], signal.SAMPLE_RATE)
    for index in range(count):
        for kind, waveform in (("estimate", estimates[index]), ("reference", references[index])):
            path = wav_dir / f"source{index + 1}_{kind}.wav"
            peak = max(float(np.max(np.abs(waveform))), 1e-9)
            soundfile.write(str(path), waveform / max(peak, 1.0), signal.SAMPLE_RATE)
            written.append(path)
    spectrum = signal.stft(record["mixture"])
    log_magnitude = signal.log_magnitude(spectrum)
    active = record["active"]
    masks = np.stack([readout.masks[i] if i < len(readout.masks) else np.zeros_like(log_magnitude) for i in order])
    loss_title = LOSS_LABELS[loss_key(separator.config)][0]  # e.g. "whitened deep-clustering loss"
    events = curriculum_events(separator.config, len(history.get("loss") or ()))
    figures = {
        "ibm": lambda: plots.plot_masks(log_magnitude, (record["ibm"] == 0).astype(np.float32), masks[0],
                                        active, title=f"{experiment.title}: masks for source 1 (test mixture)"),
        "wav": lambda: plots.plot_waveforms(record["mixture"], references, estimates, sdr, signal.SAMPLE_RATE,
                                            title=f"{experiment.title}: SDR improvement of each estimate over the "
                                                  f"mixture (test mixture, mean SDRi "
                                                  f"{np.mean(np.subtract(sdr, mixture_sdr)):.2f} dB)",
                                            mixture_sdr_db=mixture_sdr),
        "accuracy": lambda: plots.plot_accuracy(history, prefix_title=experiment.title, events=events),
        "loss": lambda: plots.plot_history(history, [("loss", "train"), ("val_loss", "validation")],
                                           title=f"{experiment.title}: {loss_title}", ylabel="loss", events=events),
        "embeddings": lambda: plots.plot_embeddings_pca(readout.embeddings, record["ibm"], active,
                                                        title=f"{experiment.title}: embeddings, PCA"),
        "separation": lambda: plots.plot_cluster_assignment(readout.labels, active, log_magnitude,
                                                            title=f"{experiment.title}: cluster per bin"),
    }
    for role, name in experiment.figures.items():
        written.append(plots.save_figure(figures[role](), out / name))
    return Example(record, estimates, masks, sdr, written)
