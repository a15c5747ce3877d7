"""The comparison: every trained run and the oracles on the SAME test mixtures.

Writes ``snr_comparison.png`` (bar chart with error bars of SNR and SDR
improvement per method, oracle rows included), ``results.md`` (the same
numbers as tables, overall and by pair type), ``results.json``, the flow
schematics generated from the real models and ``FolderStructure.png``.
"""

from __future__ import annotations

from pathlib import Path

from speechsep.eval import evaluation
from speechsep.experiments import EXPERIMENTS, study_order
from speechsep.io import atomic_write_json, atomic_write_text

PAIR_TYPES = ("female-female", "male-male", "female-male")


def discover_runs(runs_root=None, repository=None) -> dict[str, Path]:
    """Run folders (holding ``config.json``) in study order.

    ``runs_root``: every ``<runs_root>/<row>/``; otherwise each experiment's
    default output folder under ``repository`` (its ``output/`` next to the script).
    """
    if runs_root is not None:
        found = {p.parent.name: p.parent for p in Path(runs_root).glob("*/config.json")}
    elif repository is not None:
        found = {name: Path(repository) / e.output_folder for name, e in EXPERIMENTS.items()
                 if (Path(repository) / e.output_folder / "config.json").is_file()}
    else:
        raise ValueError("discover_runs needs runs_root or repository")
    if not found:
        raise ValueError(f"no trained runs found in {runs_root or 'the scripts’ output folders'}: "
                         "train an experiment first")
    return {name: found[name] for name in study_order(found)}


def in_study_order(summaries: dict[str, dict]) -> dict[str, dict]:
    """``summaries`` re-ordered as the study runs (feedforward ... mean-shift, then the oracles)."""
    return {name: summaries[name] for name in study_order(summaries)}


def tables_markdown(summaries: dict[str, dict], header: str) -> str:
    """Markdown tables (all pairs, then each pair type) of ``summaries``, in study order."""
    summaries = in_study_order(summaries)
    lines = [header, "", "### All pairs", "", evaluation.format_table(summaries)]
    for pair in PAIR_TYPES:
        subset = {k: {"overall": v["by_pair_type"][pair]} for k, v in summaries.items() if pair in v["by_pair_type"]}
        if subset:
            lines += ["", f"### {pair}", "", evaluation.format_table(subset)]
    counting = {k: v["overall"]["speaker_count_accuracy"] for k, v in summaries.items()
                if "speaker_count_accuracy" in v["overall"]}
    if counting:
        lines += ["", "Speaker count estimated right (mean-shift): "
                  + ", ".join(f"{k} {v:.0%}" for k, v in counting.items())]
    lines += ["", f"_{evaluation.SILENT_BIN_NOTE}._"]
    return "\n".join(lines) + "\n"


def comparison_header(test_speakers, mixtures: int) -> str:
    """The first line of a comparison's ``results.md``: its unseen test speakers and mixture count."""
    return f"Test speakers never seen in training: {', '.join(test_speakers)}; {mixtures} mixtures"


def bar_rows(summaries: dict[str, dict], study_ordered: bool = True) -> list[dict]:
    """Rows for :func:`speechsep.figures.plots.plot_metric_bars`, in study order (or as given)."""
    rows = []
    for name, summary in (in_study_order(summaries) if study_ordered else summaries).items():
        row = {"method": name, "kind": "oracle" if name.startswith("oracle") else "model"}
        for key in ("snr_improvement", "sdr_improvement"):
            stats = (summary.get("overall") or {}).get(key)
            if stats is not None:
                row[key], row[f"{key}_std"] = stats["mean"], stats["std"]
        rows.append(row)
    return rows


def oracle_summaries(records: list[dict], kinds=evaluation.ORACLES) -> dict[str, dict]:
    """The oracle rows on ``records``, ``{"oracle KIND": summary}`` for each of ``kinds`` (default all of
    :data:`~speechsep.eval.evaluation.ORACLES`: IBM, IRM, unprocessed mixture)."""
    return {f"oracle {kind}": evaluation.summarise(evaluation.evaluate_records(records, evaluation.oracle_separate(kind)))
            for kind in kinds}


def pretrained_row_name(name: str) -> str:
    """The comparison row of the shipped model ``name``: marked as pretrained, with its steps (its data are in
    its name and model card)."""
    from speechsep import pretrained

    info = pretrained.read_info(pretrained.FOLDER / name)
    return f"{name} (pretrained, {info.get('optimizer_steps', 0):,} steps)"


def evaluate_models(models: dict[str, object], records: list[dict], test_speakers: list[str],
                    test_corpus: str | None = None) -> dict[str, dict]:
    """Summaries of each model (a run folder or a shipped model's name) on ``records``, refusing seen speakers."""
    from speechsep import pretrained

    summaries = {}
    for name, source in models.items():
        model = pretrained.load(source)
        evaluation.check_unseen(model.source.folder, test_speakers, test_corpus)
        print(f"evaluating {name} ({source}) on {len(records)} mixtures...", flush=True)
        summaries[name] = evaluation.summarise(
            evaluation.evaluate_records(records, evaluation.model_separate(model.separator)))
    return summaries


def write_comparison(summaries: dict[str, dict], out_dir: Path, header: str, mixtures: int) -> None:
    """``results.md``, ``results.json`` and ``snr_comparison.png`` of ``summaries`` into ``out_dir``."""
    from speechsep.figures import plots

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "results.md", tables_markdown(summaries, header))
    atomic_write_json(out_dir / "results.json", in_study_order(summaries))
    figure = plots.plot_metric_bars(bar_rows(summaries), title="Improvement over the mixture on unseen speakers "
                                    f"({mixtures} test mixtures, mean ± std)")
    plots.save_figure(figure, out_dir / "snr_comparison.png")


def compare(runs: dict[str, object], records: list[dict], test_speakers: list[str], out_dir: Path,
            header: str = "", test_corpus: str | None = None) -> dict[str, dict]:
    """Evaluate ``runs`` (row name -> run folder or shipped model name) and the oracles on ``records``;
    write the comparison into ``out_dir`` and return the summaries in study order."""
    summaries = evaluate_models(runs, records, test_speakers, test_corpus)  # in study order; oracles last
    summaries.update(oracle_summaries(records))
    header = header or comparison_header(test_speakers, len(records)) + "."
    write_comparison(summaries, out_dir, header, len(records))
    return summaries


def add_rows(models: dict[str, object], records: list[dict], test_speakers: list[str], out_dir: Path,
             test_corpus: str | None = None) -> dict[str, dict]:
    """Evaluate ``models`` on ``records`` and add them to the comparison already in ``out_dir`` (same mixtures:
    its header must name the same test speakers); rewrite its table and figure. Returns every row."""
    from speechsep.io import read_json_object

    results = out_dir / "results.json"
    if not results.is_file():
        raise ValueError(f"{results}: no comparison to add rows to (run without --add first)")
    header = (out_dir / "results.md").read_text().splitlines()[0]
    expected = comparison_header(test_speakers, len(records)) + "."
    if not header.startswith(expected):
        raise ValueError(f"{out_dir / 'results.md'}: its test mixtures ({header!r}) differ from these ({expected!r})")
    summaries = {**read_json_object(results, "comparison results"),
                 **evaluate_models(models, records, test_speakers, test_corpus)}
    write_comparison(summaries, out_dir, header, len(records))
    return in_study_order(summaries)


def compare_with_shipped(config, description: dict, records: list[dict], rows: list[dict]) -> dict | None:
    """After a smoke test: the shipped model's SDRi on a run's test mixtures (``records``, scored by the run in
    ``rows``) whose voices it never heard, beside the run's on the same mixtures (printed; returned as a dict,
    None without a shipped model). ``config``, ``description``: the run's config and data description."""
    import numpy as np

    from speechsep import pretrained

    name = pretrained.DEFAULT_MODEL
    corpus = description.get("corpus") or {}
    if config.num_speakers != 2 or corpus.get("is_toy") or name not in pretrained.available():
        return None  # the shipped model separates two talkers of real speech
    unseen = pretrained.unseen_records(name, records)
    if not unseen:
        return None
    model = pretrained.load(name)
    shipped = evaluation.evaluate_records(unseen, evaluation.model_separate(model.separator))
    ids = {r["id"] for r in unseen}
    own = [row for row in rows if row["id"] in ids]
    result = {"model": name, "mixtures": len(unseen), "of": len(records),
              "shipped_sdri": float(np.mean([r["sdr_improvement"] for r in shipped])),
              "this_run_sdri": float(np.mean([r["sdr_improvement"] for r in own]))}
    info = model.source.info  # its model.json
    card = (info.get("scores") or {}).get("librispeech-sample")
    card = (f"; its model card: {card['sdri']:.2f} dB on {card['mixtures']} mixtures of unseen LibriSpeech "
            "speakers" if card else "")
    print(f"The shipped model {name} ({info.get('optimizer_steps', 0):,} optimizer steps; python -m speechsep "
          f"models) on the {len(unseen)} of these {len(records)} test mixtures whose voices it never heard: "
          f"SDRi {result['shipped_sdri']:.2f} dB (this run: {result['this_run_sdri']:.2f} dB on the same "
          f"mixtures{card})")
    return result
