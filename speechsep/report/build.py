"""Build the listening report: runs -> test mixtures -> wavs, figures and one HTML page.

Two pages are built here:

* :func:`write_report` (``python -m speechsep report RUN [RUN ...]``): every
  given run on the same test mixtures, ``DIR/index.html`` with the assets in
  ``DIR/assets/``. The shown mixtures are, for each pair type, the best and the
  worst of the first run by SDRi (:func:`pick_mixtures`).
* :func:`write_run_page` (every training script's figures step):
  ``report.html`` in the run folder, from the run's own results and the one
  example mixture it wrote, with no extra evaluation.

Waveforms are 8 kHz mono float arrays ``[samples]``; a mixture record follows
the schema of :mod:`speechsep.data.shards` (``mixture`` [T], ``sources`` [C, T],
``speakers``, ``sexes``, ``ibm`` and ``active`` [frames, 129]).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import soundfile

from speechsep import signal
from speechsep.io import atomic_write_text, read_json_object
from speechsep.report.page import (MIXTURE_METRICS, PAIR_TYPES, Audio, Card, Mixture, Page, RunFacts, render)

REPORT_PAGE = "index.html"
RUN_PAGE = "report.html"
ASSETS = "assets"
SHORT_PAIR = {"female-female": "FF", "male-male": "MM", "female-male": "FM"}
# what each --strategy means, shown instead of TensorFlow's class name (run.json's "strategy")
STRATEGY_LABELS = {"default": "default (one process, TensorFlow's default placement)",
                   "mirrored": "mirrored (every local device)", "multiworker": "multiworker (several processes)",
                   "cpu": "cpu (one CPU device)"}
REFERENCE_ORACLE = "ibm"  # the reference row every report carries: the oracle ideal binary mask
# config fields of a deep-clustering network alone (a mask network has none of them)
DC_ONLY_FIELDS = ("embedding_dim", "dc_loss", "mask_head", "mask_loss", "mask_loss_weight", "count_head",
                  "count_loss_weight", "freeze_stack", "soft_mask_beta", "meanshift_bandwidth", "count_method",
                  "count_threshold")


@dataclasses.dataclass
class RunInfo:
    """A run folder read for the report: ``config.json``, ``results.json`` and ``run.json`` (``{}`` if absent)."""

    path: Path
    name: str
    config: dict
    results: dict
    record: dict
    model: str | None = None  # a shipped model's name (``report --model``): evaluated here, its model.json the facts


def _read_json(path: Path) -> dict:
    return read_json_object(path, "JSON file")


def load_run(path) -> RunInfo:
    """Read one run folder; a folder that is not a run, or a run never evaluated, is a one-line ValueError."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: no such run folder")
    if not (path / "config.json").is_file():
        raise ValueError(f"{path} is not a training run folder (no config.json)")
    if not (path / "results.json").is_file():
        raise ValueError(f"{path}: no results.json (the run was never evaluated: rerun its training script "
                         f"with --out {path})")
    record = _read_json(path / "run.json") if (path / "run.json").is_file() else {}
    return RunInfo(path, path.name, _read_json(path / "config.json"), _read_json(path / "results.json"), record)


def load_model(name: str) -> RunInfo:
    """A shipped model named by ``report --model NAME`` (or a run folder), read like a run: no ``results.json``
    (it is evaluated on the report's mixtures), its ``model.json`` giving the facts. Unknown names: one line."""
    from speechsep import pretrained

    source = pretrained.resolve(name)
    if not source.shipped:
        return load_run(source.folder)
    return RunInfo(source.folder, source.name, source.config.to_json(), {}, source.info, model=source.name)


def applied_settings(config: dict) -> dict:
    """The fields of a ``config.json`` dict that the run actually used, for the page.

    Dropped: unset fields (``None``); the deep-clustering fields of a mask
    network; the mask head's loss without a mask head, the count head's weight
    without a count head; the counting method and threshold of a model trained
    on one talker count (it never counts), and the mean-shift bandwidth where
    neither the readout nor the counting is mean-shift.
    """
    applied = {key: value for key, value in config.items() if value is not None}
    if config.get("model", "dc") != "dc":
        for key in DC_ONLY_FIELDS:
            applied.pop(key, None)
    if not config.get("mask_head"):
        applied.pop("mask_loss", None)
        applied.pop("mask_loss_weight", None)
    if not config.get("count_head"):
        applied.pop("count_loss_weight", None)
    counts = len(set(config.get("talkers") or ())) > 1
    if not counts:
        applied.pop("count_method", None)
        applied.pop("count_threshold", None)
    uses_meanshift = config.get("readout") == "meanshift" or (counts and config.get("count_method") == "meanshift")
    if not uses_meanshift:
        applied.pop("meanshift_bandwidth", None)
    return applied


def strategy_label(record: dict, config: dict) -> str | None:
    """The distribution strategy of a run in the words of ``--strategy`` (not TensorFlow's class name)."""
    name = config.get("strategy")
    if name in STRATEGY_LABELS:
        return STRATEGY_LABELS[name]
    recorded = record.get("strategy")
    return re.sub(r"^_+|Strategy$", "", recorded) if recorded else None


def _corpus_name(run: RunInfo):
    corpus = (run.record.get("data") or {}).get("corpus")
    return corpus.get("name") if isinstance(corpus, dict) else corpus


def test_set_fields(run: RunInfo) -> dict:
    """What must agree between runs for their rows to compare: test speakers, seed, corpus, speakers per mixture.

    A shipped model (``report --model``) has no test set of its own: it is evaluated on the runs' (all None).
    """
    if run.model is not None:
        return {"test_speakers": None, "seed": None, "corpus": None, "num_speakers": None}
    speakers = run.results.get("test_speakers")
    return {"test_speakers": sorted(speakers) if speakers is not None else None,
            "seed": run.config.get("seed"), "corpus": _corpus_name(run),
            "num_speakers": run.config.get("num_speakers")}


def load_runs(paths) -> list[RunInfo]:
    """Read every run (:func:`load_run`) and refuse runs tested on different test sets, naming the field.

    Names are the folder names, made unique by their parent folder where two agree.
    """
    runs = [load_run(path) for path in paths]
    if not runs:
        raise ValueError("report needs at least one run folder")
    names = [run.path.name for run in runs]
    for run in runs:
        if names.count(run.path.name) > 1:
            run.name = f"{run.path.parent.name}/{run.path.name}"
    first = test_set_fields(runs[0])
    for run in runs[1:]:
        fields = test_set_fields(run)
        for key, value in fields.items():
            if value is not None and first[key] is not None and value != first[key]:
                raise ValueError(f"{run.path} and {runs[0].path} were tested on different test sets: {key} is "
                                 f"{value!r} in {run.path} and {first[key]!r} in {runs[0].path}; their rows "
                                 "would not compare")
    return runs


def slug(name: str) -> str:
    """A file-name-safe form of a run name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"


def write_wav(path: Path, waveform: np.ndarray) -> Path:
    """``waveform`` [samples] as 16-bit 8 kHz mono, scaled down only if it would clip."""
    path.parent.mkdir(parents=True, exist_ok=True)
    waveform = np.asarray(waveform, dtype=np.float32)
    peak = max(float(np.max(np.abs(waveform))) if waveform.size else 0.0, 1e-9)
    soundfile.write(str(path), waveform / max(peak, 1.0), signal.SAMPLE_RATE, subtype="PCM_16")
    return path


def pick_mixtures(rows: list[dict], count: int) -> list[int]:
    """Indices of the mixtures to show: per pair type, the best and the worst by SDRi, in turn.

    ``rows``: per-mixture rows (:func:`speechsep.eval.evaluation.score_record`)
    of the first run. Taken round-robin (best FF, best MM, best FM, worst FF,
    ..., then the second best, ...) until ``count``; pair types beyond the
    three (e.g. unknown sexes) come after them.
    """
    kinds = [p for p in PAIR_TYPES if any(r["pair_type"] == p for r in rows)]
    kinds += sorted({r["pair_type"] for r in rows} - set(kinds))
    ranked = {kind: sorted((i for i, r in enumerate(rows) if r["pair_type"] == kind),
                           key=lambda i: -_finite(rows[i].get("sdr_improvement"))) for kind in kinds}
    chosen: list[int] = []
    depth = 0
    while len(chosen) < min(count, len(rows)):
        for end in (0, 1):  # the best, then the worst
            for kind in kinds:
                order = ranked[kind]
                if depth < len(order):
                    index = order[depth] if end == 0 else order[len(order) - 1 - depth]
                    if index not in chosen and len(chosen) < count:
                        chosen.append(index)
        depth += 1
    return chosen


def _finite(value) -> float:
    return float(value) if value is not None and np.isfinite(value) else -np.inf


def aligned(references: np.ndarray, estimates: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Estimates [C', T] padded/trimmed to the C references and reordered so row i estimates reference i."""
    from speechsep.eval import metrics

    count = references.shape[0]
    estimates = np.concatenate([estimates, np.zeros((max(0, count - len(estimates)), estimates.shape[1]),
                                                    np.float32)])[:count]
    order = [int(i) for i in metrics.bss_eval(references, estimates)[3]]
    return estimates[order], order


def _figure(figure, path: Path) -> Path:
    from speechsep.figures import plots

    return plots.save_figure(figure, path)


def _spectrogram_figure(path: Path, waveforms: dict[str, np.ndarray], masks: dict[str, np.ndarray] | None,
                        title: str) -> Path:
    from speechsep.figures import plots

    spectra = {name: signal.log_magnitude(signal.stft(np.asarray(w, np.float32))) for name, w in waveforms.items()}
    return _figure(plots.plot_spectrograms(spectra, masks, title=title), path)


def mixture_facts(record: dict, index: int | None = None) -> str:
    """e.g. ``"mixture 12: FALK0 (female) + MADC0 (male), female-male, 2.9 s"``."""
    from speechsep.data.mixing import pair_type

    sex = {"F": "female", "M": "male"}
    speakers = " + ".join(f"{s} ({sex.get(x, 'sex unknown')})" for s, x in zip(record["speakers"], record["sexes"]))
    head = f"test mixture {index}: " if index is not None else ""
    seconds = len(record["mixture"]) / signal.SAMPLE_RATE
    return f"{head}{speakers}, {pair_type(record['sexes'])}, {seconds:.1f} s"


def run_facts(run_dir: Path, record: dict, results: dict, config: dict | None = None) -> list[tuple[str, str]]:
    """The ``run.json`` facts shown for a run: steps, minutes, epochs, CPU, strategy (``config``'s
    ``--strategy``), data."""
    facts = []
    if results.get("title"):
        facts.append(("experiment", f"{results.get('experiment', '')}: {results['title']}"))
    if record.get("optimizer_steps") is not None:
        facts.append(("optimizer steps", f"{record['optimizer_steps']:,}"))
    if record.get("wall_seconds") is not None:
        facts.append(("training time", f"{record['wall_seconds'] / 60:.1f} minutes"))
    if record.get("epochs_done") is not None:
        best = f" (best epoch {record['best_epoch']})" if record.get("best_epoch") else ""
        facts.append(("epochs", f"{record['epochs_done']}{best}"))
    cpus = sorted({f"{s['cpu']} ({', '.join(s.get('cpu_flags') or ()) or 'no AVX2'})"
                   for s in record.get("sessions") or () if s.get("cpu")})
    if cpus:  # every session's CPU (run.json records it per session)
        facts.append(("CPU", "; ".join(cpus)))
    strategy = strategy_label(record, config if config is not None else results.get("config") or {})
    if strategy:
        facts.append(("strategy", strategy))
    for key, label in (("tensorflow", "TensorFlow"), ("started", "started"), ("git_commit", "git commit")):
        if record.get(key):
            facts.append((label, str(record[key])))
    data = record.get("data") or {}
    corpus = data.get("corpus")
    if isinstance(corpus, dict):
        text = (f"{corpus.get('name')}: {corpus.get('speakers')} speakers ({corpus.get('female')} female, "
                f"{corpus.get('male')} male), {corpus.get('utterances')} utterances")
        facts.append(("corpus", text + (" [synthetic, NOT speech]" if corpus.get("is_toy") else "")))
    splits = data.get("splits") or {}
    if splits:
        facts.append(("speakers per split", ", ".join(f"{k} {len(v)}" for k, v in splits.items())))
    if "dynamic_mixing" in data:
        facts.append(("training mixtures", "dynamic mixing" if data["dynamic_mixing"]
                      else f"pickle dataset {data.get('data_dir', '')}"))
    if results.get("test_speakers"):
        facts.append(("test speakers", ", ".join(map(str, results["test_speakers"]))))
    if data.get("quick") or results.get("note"):
        facts.append(("note", results.get("note") or "a --quick smoke test"))
    if not record:
        facts.append(("run.json", f"missing in {run_dir}: no training facts"))
    return facts


def _curve(history: dict, target: Path, title: str) -> Path | None:
    """The loss and PIT-accuracy figure of ``history`` at ``target``; None for an empty history."""
    from speechsep.figures import plots

    if not history:
        return None
    _figure(plots.plot_training_curves(history, title=title), target)
    return target


def _relative(path: Path, page_dir: Path) -> str:
    return path.resolve().relative_to(page_dir.resolve()).as_posix()


# ----------------------------------------------------------------------------- the report of several runs


def write_report(runs: list[RunInfo], out, test, mixtures: int = 6, oracles: bool = False,
                 title: str | None = None) -> Path:
    """Evaluate ``runs`` on ``test`` (a :class:`speechsep.data.testset.TestSet`), write ``out/index.html``.

    A run whose checkpoint cannot be loaded keeps its ``results.json`` row, and
    its section and cards say why it has no estimates. ``oracles`` adds the
    oracle IBM/IRM/mixture rows; without it the oracle IBM is the one reference
    row. Returns the page's path.
    """
    from speechsep.eval import compare, evaluation
    from speechsep.figures import plots
    from speechsep import pretrained
    from speechsep.separation.separator import Separator

    out = Path(out)
    assets = out / ASSETS
    assets.mkdir(parents=True, exist_ok=True)
    records = test.records
    if not records:
        raise ValueError("the test set has no mixtures")
    separators, problems, rows, summaries, notes = {}, {}, {}, {}, []
    for run in runs:
        try:
            separators[run.name] = (pretrained.load(run.model).separator if run.model
                                    else Separator.from_run_dir(run.path))
        except Exception as error:  # a missing or damaged checkpoint: the page says so and goes on
            problems[run.name] = (f"{error}: no estimates to play; its table row is the run's own "
                                  "results.json")
            summaries[run.name] = run.results
            print(f"note: {run.path}: {error}", flush=True)
            continue
        evaluation.check_unseen(run.path, test.speakers, test.corpus)
        print(f"evaluating {run.name} ({run.path}) on {len(records)} mixtures...", flush=True)
        rows[run.name] = evaluation.evaluate_records(records, evaluation.model_separate(separators[run.name]))
        summaries[run.name] = evaluation.summarise(rows[run.name])
    # the reference row: the oracle IBM always (the ceiling of a binary-mask method), every oracle with ``oracles``
    summaries.update(compare.oracle_summaries(records, evaluation.ORACLES if oracles else (REFERENCE_ORACLE,)))
    listed = sorted({str(s) for s in runs[0].results.get("test_speakers") or []})
    if listed and listed != sorted(map(str, test.speakers)):
        notes.append(f"These test mixtures use speakers {', '.join(map(str, test.speakers))}; the runs' "
                     f"results.json lists {', '.join(listed)}.")
    figure = plots.plot_metric_bars(compare.bar_rows(summaries, study_ordered=False),
                                    title=f"Improvement over the mixture ({len(records)} test mixtures, mean ± std)")
    figure_path = _figure(figure, assets / "comparison.png")

    ranked_run = next((run.name for run in runs if run.name in rows), None)
    if ranked_run is None:
        shown = list(range(min(mixtures, len(records))))
        notes.append("No run could be loaded: the mixtures below are the first of the test set, without estimates.")
    else:
        shown = pick_mixtures(rows[ranked_run], mixtures)
        if ranked_run != runs[0].name:
            notes.append(f"{runs[0].name} has no checkpoint: the mixtures shown are chosen by {ranked_run}'s SDRi.")
    columns = [("pair_type", "pair", None), ("speakers", "speakers", None)]
    for run in runs:
        if run.name in rows:
            columns += [(f"{run.name}:{key}", f"{run.name} {head}", digits) for key, head, digits in MIXTURE_METRICS]
    anchors = {index: f"mix-{index}" for index in shown}
    table_rows = []
    for index, record in enumerate(records):
        row = {"label": f"{index}", "order": index, "anchor": anchors.get(index),
               "pair_type": SHORT_PAIR.get(_pair(record), _pair(record)), "speakers": "+".join(record["speakers"])}
        for name, run_rows in rows.items():
            for key, _, _ in MIXTURE_METRICS:
                row[f"{name}:{key}"] = run_rows[index].get(key)
        table_rows.append(row)

    views = []
    for index in shown:
        views.append(_mixture_view(index, records[index], runs, separators, rows, problems, assets / f"mix{index}",
                                   out, ranked_run, _rank_label(rows.get(ranked_run), index)))
    pairs = {SHORT_PAIR.get(_pair(r), _pair(r)) for r in (records[i] for i in shown)}
    run_sections = []
    for run in runs:
        curve = _curve(run.record.get("history") or {}, assets / f"{slug(run.name)}-curve.png",
                       f"{run.name}: training")
        run_sections.append(RunFacts(run.name, str(run.path), run_facts(run.path, run.record, run.results, run.config),
                                     applied_settings(run.config), _relative(curve, out) if curve else None,
                                     problems.get(run.name)))
    intro = [f"{len(runs)} run(s) on {test.description}. Every row of the comparison is evaluated here on these "
             f"{len(records)} mixtures (a run without a checkpoint keeps its own results.json row).",
             f"Shown below: {len(shown)} mixtures ({', '.join(sorted(pairs))}), for each pair type the best and "
             f"the worst of {ranked_run or runs[0].name} by SDRi, with the mixture, the references and every run's "
             "estimates, their spectrograms and masks. Estimates are ordered to match the references."]
    for note in notes:
        print(f"note: {note}", flush=True)
    page = Page(title or f"Listening report: {', '.join(run.name for run in runs)}", intro, summaries,
                _relative(figure_path, out), notes, columns, table_rows, views, run_sections)
    path = out / REPORT_PAGE
    atomic_write_text(path, render(page))
    return path


def _rank_label(rows: list[dict] | None, index: int) -> str:
    """``"best"``/``"worst"`` when mixture ``index`` has the highest/lowest SDRi of its pair type in ``rows``."""
    if not rows:
        return ""
    kind = rows[index]["pair_type"]
    values = [_finite(r.get("sdr_improvement")) for r in rows if r["pair_type"] == kind]
    value = _finite(rows[index].get("sdr_improvement"))
    return "best" if value == max(values) else "worst" if value == min(values) else ""


def _pair(record: dict) -> str:
    from speechsep.data.mixing import pair_type

    return pair_type(record["sexes"])


def _mixture_view(index, record, runs, separators, rows, problems, folder: Path, page_dir: Path,
                  ranked_run, rank: str = "") -> Mixture:
    """Wavs and figures of one mixture for every run, and its :class:`Mixture` view."""
    references = np.asarray(record["sources"], np.float32)
    count = references.shape[0]
    rel = lambda path: _relative(path, page_dir)  # noqa: E731
    audios = [Audio("mixture", rel(write_wav(folder / "mixture.wav", record["mixture"])))]
    audios += [Audio(f"reference {c + 1}", rel(write_wav(folder / f"reference{c + 1}.wav", references[c])))
               for c in range(count)]
    ibm = signal.masks_from_labels(np.asarray(record["ibm"]), count)
    image = _spectrogram_figure(folder / "references.png",
                                {"mixture": record["mixture"], **{f"reference {c + 1}": references[c]
                                                                 for c in range(count)}},
                                {f"oracle IBM {c + 1}": ibm[c] for c in range(count)}, "mixture and references")
    cards = [Card("mixture and references", audios, images=[("spectrograms of the mixture and references",
                                                             rel(image))])]
    for run in runs:
        name = run.name
        if name not in separators:
            cards.append(Card(name, [Audio(f"estimate {c + 1}", None, "no checkpoint") for c in range(count)],
                              problem=problems.get(name)))
            continue
        estimates, readout = separators[name].separate(record["mixture"], count)
        estimates, order = aligned(references, estimates)
        masks = [readout.masks[i] if i < len(readout.masks) else np.zeros_like(readout.masks[0]) for i in order]
        stem = slug(name)
        players = [Audio(f"estimate {c + 1}", rel(write_wav(folder / f"{stem}-estimate{c + 1}.wav", estimates[c])))
                   for c in range(count)]
        figure = _spectrogram_figure(folder / f"{stem}.png", {f"estimate {c + 1}": estimates[c] for c in range(count)},
                                     {f"mask {c + 1}": masks[c] for c in range(count)}, f"{name}: estimates and masks")
        scores = {key: rows[name][index].get(key) for key, _, _ in MIXTURE_METRICS}
        cards.append(Card(name, players, scores, [(f"{name}: spectrograms of the estimates and masks", rel(figure))]))
    ranked = rows.get(ranked_run, [None] * (index + 1))[index] if ranked_run else None
    headline = f"Mixture {index}: {f'the {rank} ' if rank else ''}{_pair(record)}"
    headline += f" ({ranked_run} SDRi {ranked['sdr_improvement']:.2f} dB)" if ranked else ""
    return Mixture(f"mix-{index}", headline, mixture_facts(record, index), cards)


# ----------------------------------------------------------------------------- one run's own page


def write_run_page(out_dir, experiment, results: dict, example, history: dict, figures=(),
                   rows: list[dict] | None = None, reference_rows: dict | None = None) -> Path:
    """``out_dir/report.html`` of a finished training run, from what its figures step already made.

    ``example``: the :class:`speechsep.training.outputs.Example` (one test
    mixture: its ``record``, aligned ``estimates`` [C, T] and ``masks`` [C, T, F],
    and the written ``files``, wavs under ``out_dir/wavs/``); ``results``: the
    run's ``results.json`` dict; ``figures``: the PNGs to show beside the
    players; ``rows``: the per-mixture rows of the run's evaluation
    (:func:`speechsep.eval.evaluation.score_record`, the example first), one
    row each in the sortable table (without them, the example's row alone);
    ``reference_rows``: ``{row name: summary}`` rows shown under the run's in the
    comparison (e.g. the oracle IBM on the same mixtures). Adds one figure
    (``report-spectrograms.png``) and scores the one mixture; nothing else is
    evaluated.
    """
    from speechsep.eval import evaluation

    out_dir = Path(out_dir)
    record = example.record
    references = np.asarray(record["sources"])
    count = references.shape[0]
    run_record = _read_json(out_dir / "run.json") if (out_dir / "run.json").is_file() else {}
    wav_dir = out_dir / "wavs"

    def player(label, path: Path) -> Audio:
        return Audio(label, _relative(path, out_dir)) if path.is_file() else Audio(label, None, f"missing: {path}")

    reference_card = Card("mixture and references", [player("mixture", wav_dir / "mixture.wav")]
                          + [player(f"reference {c + 1}", wav_dir / f"source{c + 1}_reference.wav")
                             for c in range(count)])
    estimates = np.asarray(example.estimates)
    masks = np.asarray(example.masks)
    labels = np.argmax(masks, axis=0) if masks.size else np.zeros_like(record["ibm"])
    row = evaluation.score_record(record, estimates, labels)
    spectra = _spectrogram_figure(out_dir / "report-spectrograms.png",
                                  {"mixture": record["mixture"], **{f"estimate {c + 1}": estimates[c]
                                                                   for c in range(len(estimates))}},
                                  {f"mask {c + 1}": masks[c] for c in range(len(masks))},
                                  f"{experiment.name}: spectrograms and masks")
    images = [("spectrograms of the mixture and the estimates, and the masks", _relative(spectra, out_dir))]
    extra = [(Path(path).name, _relative(Path(path), out_dir)) for path in figures
             if Path(path).suffix == ".png" and Path(path).is_file()]
    estimate_card = Card(experiment.name, [player(f"estimate {c + 1}", wav_dir / f"source{c + 1}_estimate.wav")
                                           for c in range(count)],
                         {key: row.get(key) for key, _, _ in MIXTURE_METRICS}, images)
    missing = [audio.note for card in (reference_card, estimate_card) for audio in card.audios if audio.href is None]
    notes = ["Wavs missing: " + "; ".join(missing)] if missing else []
    if results.get("note"):
        notes.append(results["note"])
    mixture = Mixture("mix-0", f"Test mixture 0 ({SHORT_PAIR.get(row['pair_type'], row['pair_type'])})",
                      mixture_facts(record, 0), [reference_card, estimate_card]
                      + ([Card("the run's figures of this mixture", [], images=extra)] if extra else []))
    columns = [("pair_type", "pair", None), ("speakers", "speakers", None)]
    columns += [(key, head, digits) for key, head, digits in MIXTURE_METRICS]
    table = [{"label": str(index), "order": index, "anchor": "mix-0" if index == 0 else None,
              "pair_type": SHORT_PAIR.get(each["pair_type"], each["pair_type"]), "speakers": each["speakers"],
              **{key: each.get(key) for key, _, _ in MIXTURE_METRICS}}
             for index, each in enumerate(rows or [row])]
    summary = {key: results[key] for key in ("overall", "by_pair_type") if key in results}
    curve = _curve(history or run_record.get("history") or {}, out_dir / "report-curve.png",
                   f"{experiment.name}: training")
    config = results.get("config") or {}
    facts = RunFacts(experiment.name, str(out_dir), run_facts(out_dir, run_record, results, config),
                     applied_settings(config), _relative(curve, out_dir) if curve else None)
    mixtures = (summary.get("overall") or {}).get("mixtures", "?")
    beside = f" beside {', '.join(reference_rows)} on the same mixtures" if reference_rows else ""
    intro = [f"{experiment.title}: the run's own evaluation on {mixtures} test mixtures of speakers it never "
             f"heard (results.json){beside}, every mixture's scores, and the first mixture to listen to. "
             "For several runs side by side: "
             f"python -m speechsep report {out_dir} OTHER_RUN ..."]
    page = Page(f"{experiment.name}: listening report", intro, {experiment.name: summary, **(reference_rows or {})},
                None, notes, columns, table, [mixture], [facts])
    path = out_dir / RUN_PAGE
    atomic_write_text(path, render(page))
    return path
