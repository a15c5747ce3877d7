"""Evaluate a separator (or an oracle mask) on test mixtures: per-utterance rows and a summary.

Metric conventions: SNR, SI-SDR, SDR/SIR/SAR and STOI are computed on the
waveforms (they do NOT weight out silent bins) as improvements over the
unprocessed mixture, with the permutation solved (:mod:`speechsep.eval.metrics`).
The two bin accuracies DO weight out silent bins (active bins only).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from speechsep import signal
from speechsep.eval import metrics
from speechsep.data.mixing import pair_type
from speechsep.separation.separator import bin_accuracy, counts_talkers

ORACLES = ("ibm", "irm", "mixture")
SUMMARY_METRICS = ("snr_improvement", "si_sdr_improvement", "sdr_improvement", "stoi_improvement",
                   "accuracy_fixed", "accuracy_pit")
SILENT_BIN_NOTE = ("accuracy_fixed/accuracy_pit count active bins only (silent bins, > 40 dB below the mixture "
                   "maximum, are weighted out); SNR/SI-SDR/SDR/STOI are waveform metrics over all samples")


def check_unseen(run_dir, test_speakers, test_corpus: str | None = None) -> None:
    """Refuse test speakers that the run in ``run_dir`` trained on (its run.json, or a shipped model's
    model.json, lists them).

    Speakers compare in their qualified form (:func:`speechsep.data.corpus.qualified_speaker`):
    ``FALK0`` of the corpus ``test_corpus`` = ``timit-sample`` is the speaker
    a run trained on ``timit-sample`` plus other corpora calls ``timit-sample:FALK0``.
    """
    import json
    from pathlib import Path

    from speechsep.data.corpus import NAMESPACE_SEPARATOR, qualified_speaker

    run_file = Path(run_dir) / "run.json"
    if not run_file.is_file():
        run_file = Path(run_dir) / "model.json"  # a shipped model: same ``data`` schema
    if not run_file.is_file():
        return
    data = json.loads(run_file.read_text()).get("data", {})
    trained_corpus = data["corpus"].get("name") if isinstance(data.get("corpus"), dict) else None
    trained = {qualified_speaker(s, trained_corpus) for s in data.get("splits", {}).get("train", [])}
    if not test_corpus:  # the test speakers' corpus is unknown: match bare ids too, erring on the safe side
        trained |= {s.split(NAMESPACE_SEPARATOR, 1)[-1] for s in trained}
    overlap = sorted(s for s in test_speakers if qualified_speaker(s, test_corpus) in trained)
    if overlap:
        raise ValueError(f"{run_dir} was trained on test speaker(s) {overlap}: "
                         "evaluate with the run's own --seed / dataset")


def oracle_masks(record: dict, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(masks [C, T, F], labels [T, F]) of an oracle: ideal binary, ideal ratio, or the mixture itself."""
    spectra = signal.stft(record["sources"])  # [C, N, F]
    count = spectra.shape[0]
    if kind == "ibm":
        labels = signal.ideal_binary_mask(spectra).astype(np.int64)
        return signal.masks_from_labels(labels, count), labels
    if kind == "irm":
        masks = signal.ideal_ratio_mask(spectra)
        return masks, np.argmax(masks, axis=0)
    if kind == "mixture":
        return np.ones((count,) + spectra.shape[1:], np.float32), np.zeros(spectra.shape[1:], np.int64)
    raise ValueError(f"unknown oracle {kind!r}: use one of {ORACLES}")


def score_record(record: dict, estimates: np.ndarray, labels: np.ndarray, n_found: int | None = None) -> dict:
    """One per-utterance row: metric improvements, accuracies, pair type, speaker count.

    estimates : [C', T] for the record's C sources; a C' other than C (a
    separation into a counted number of talkers) is matched to them by
    :func:`speechsep.eval.metrics.match_count`.
    """
    references = record["sources"]
    count = references.shape[0]
    if estimates.shape[0] != count:  # separated into a counted number of sources: the best C, or the mixture
        estimates = metrics.match_count(record["mixture"], references, estimates)
    result = metrics.evaluate_separation(record["mixture"], references, estimates, signal.SAMPLE_RATE,
                                         metrics=("snr", "si_sdr", "sdr", "stoi"))
    row = {"id": record["id"], "pair_type": pair_type(record["sexes"]), "speakers": "+".join(record["speakers"])}
    for key in ("snr", "si_sdr", "sdr", "stoi"):
        row[f"{key}_improvement"] = result[f"{key}_improvement"]
        row[key] = result[key]
    ibm, active = record["ibm"], record["active"]
    row["accuracy_fixed"] = bin_accuracy(labels, ibm, active, False, count)
    row["accuracy_pit"] = bin_accuracy(labels, ibm, active, True, count)
    if n_found is not None:
        row["speakers_found"] = int(n_found)
        row["speaker_count_right"] = bool(n_found == count)
    return row


def evaluate_records(records: Iterable[dict], separate) -> list[dict]:
    """``separate(record) -> (estimates [C', T], labels [T, F], n_found or None)`` for each record."""
    rows = []
    for record in records:
        estimates, labels, n_found = separate(record)
        rows.append(score_record(record, estimates, labels, n_found))
    return rows


def oracle_separate(kind: str):
    def separate(record):
        masks, labels = oracle_masks(record, kind)
        spectrum = signal.stft(record["mixture"])
        return signal.apply_masks(spectrum, masks, len(record["mixture"])), labels, None

    return separate


def model_separate(separator, readout: str | None = None, num_sources: int | None = None, counted: bool = False):
    """Separate with a trained run; mean-shift also reports the speaker count it estimated.

    A model trained on a varying number of talkers, read out by clustering
    (:func:`~speechsep.separation.separator.counts_talkers`), separates the
    record's own count of sources and reports the count its
    ``config.count_method`` estimates; with ``counted`` it separates into the
    count it estimates, as ``python -m speechsep separate`` does, and
    :func:`score_record` matches a wrong count to the references
    (:func:`speechsep.eval.metrics.match_count`).
    """
    counting = counts_talkers(separator.config, readout)
    counts_speakers = counting or (readout or separator.config.readout) == "meanshift"
    if counted and not counting:
        raise ValueError(f"separating into the counted number of talkers needs a model trained on several talker "
                         f"counts (--talkers) read out by clustering; {separator.config.experiment} was trained on "
                         f"{separator.config.num_speakers} talkers")

    def separate(record):
        count = None if counted else num_sources or record["sources"].shape[0]
        estimates, result = separator.separate(record["mixture"], count, readout, estimate_count=counting)
        return estimates, result.labels, result.n_found if counts_speakers else None

    return separate


def _stats(rows: list[dict], key: str) -> dict | None:
    values = np.asarray([r[key] for r in rows if key in r and r[key] is not None], dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    return {"mean": float(values.mean()), "std": float(values.std()), "count": int(values.size)}


def summarise(rows: list[dict]) -> dict:
    """Means/stds overall and per pair type (female-female, male-male, female-male)."""
    def block(subset):
        out = {"mixtures": len(subset)}
        for key in SUMMARY_METRICS:
            stats = _stats(subset, key)
            if stats is not None:
                out[key] = stats
        if any("speaker_count_right" in r for r in subset):
            out["speaker_count_accuracy"] = float(np.mean([r["speaker_count_right"] for r in subset]))
        return out

    summary = {"overall": block(rows), "by_pair_type": {}, "silent_bins": SILENT_BIN_NOTE}
    for kind in sorted({r["pair_type"] for r in rows}):
        summary["by_pair_type"][kind] = block([r for r in rows if r["pair_type"] == kind])
    return summary


def format_table(named_summaries: dict[str, dict]) -> str:
    """Markdown table: one row per method, mean ± std of the main metrics."""
    header = "| method | mixtures | SNRi (dB) | SI-SDRi (dB) | SDRi (dB) | STOIi | acc fixed | acc PIT |"
    lines = [header, "|" + "---|" * 8]
    for name, summary in named_summaries.items():
        overall = summary["overall"]

        def cell(key, digits=2):
            stats = overall.get(key)
            return "–" if stats is None else f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"

        lines.append(f"| {name} | {overall['mixtures']} | {cell('snr_improvement')} | {cell('si_sdr_improvement')} | "
                     f"{cell('sdr_improvement')} | {cell('stoi_improvement', 3)} | {cell('accuracy_fixed', 3)} | "
                     f"{cell('accuracy_pit', 3)} |")
    return "\n".join(lines)
