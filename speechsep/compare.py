"""The comparison: every trained run and the oracles on the SAME test mixtures.

Writes ``snr_comparison.png`` (bar chart with error bars of SNR and SDR
improvement per method, oracle rows included), ``results.md`` (the same
numbers as tables, overall and by pair type), ``results.json``, the flow
schematics generated from the real models and ``FolderStructure.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from speechsep import evaluation
from speechsep.corpus import REPO_ROOT

SCRIPT_OUTPUTS = {  # experiment -> default output folder of its script
    "feedforward": "Feedforward/output", "rnn": "RNN/output", "bidirnn": "Bi-Directional-RNN/output",
    "bidiloss": "Bi-Directional-RNN-with-loss-function/output", "deepclustering": "Deep-clustering/output",
    "meanshift": "Deep-clustering-with-mean-shift-clustering/output",
}
PAIR_TYPES = ("female-female", "male-male", "female-male")


def discover_runs(root: Path | None) -> dict[str, Path]:
    """Run folders (with config.json) under ``root``, else the scripts' default output folders."""
    if root is not None:
        runs = {p.parent.name: p.parent for p in sorted(Path(root).glob("*/config.json"))}
    else:
        runs = {name: REPO_ROOT / rel for name, rel in SCRIPT_OUTPUTS.items() if (REPO_ROOT / rel / "config.json").is_file()}
    if not runs:
        raise ValueError(f"no trained runs found in {root or 'the scripts output folders'}: train an experiment first")
    return runs


def tables_markdown(summaries: dict[str, dict], header: str) -> str:
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


def bar_rows(summaries: dict[str, dict]) -> list[dict]:
    rows = []
    for name, summary in summaries.items():
        row = {"method": name, "kind": "oracle" if name.startswith("oracle") else "model"}
        for key in ("snr_improvement", "sdr_improvement"):
            stats = summary["overall"].get(key)
            if stats is not None:
                row[key], row[f"{key}_std"] = stats["mean"], stats["std"]
        rows.append(row)
    return rows


def oracle_summaries(records: list[dict]) -> dict[str, dict]:
    """The oracle rows (IBM, IRM, unprocessed mixture) on ``records``."""
    return {f"oracle {kind}": evaluation.summarise(evaluation.evaluate_records(records, evaluation.oracle_separate(kind)))
            for kind in evaluation.ORACLES}


def compare(runs: dict[str, Path], records: list[dict], test_speakers: list[str], out_dir: Path,
            header: str = "") -> dict[str, dict]:
    from speechsep import plots
    from speechsep.separation import Separator
    from speechsep.shards import atomic_write_json

    summaries = {}
    for name, run_dir in runs.items():
        separator = Separator.from_run_dir(run_dir)
        evaluation.check_unseen(run_dir, test_speakers)
        print(f"evaluating {name} ({run_dir}) on {len(records)} mixtures...", flush=True)
        summaries[name] = evaluation.summarise(evaluation.evaluate_records(records, evaluation.model_separate(separator)))
    summaries.update(oracle_summaries(records))
    out_dir.mkdir(parents=True, exist_ok=True)
    header = header or f"Test speakers never seen in training: {', '.join(test_speakers)}; {len(records)} mixtures."
    (out_dir / "results.md").write_text(tables_markdown(summaries, header))
    atomic_write_json(out_dir / "results.json", summaries)
    figure = plots.plot_metric_bars(bar_rows(summaries), title="Improvement over the mixture on unseen speakers "
                                    f"({len(records)} test mixtures, mean ± std)")
    plots.save_figure(figure, out_dir / "snr_comparison.png")
    return summaries


def main(argv=None) -> dict:
    from speechsep.__main__ import _test_records
    from speechsep.config import ExperimentConfig

    parser = argparse.ArgumentParser(description="Evaluate every trained run and the oracles; write the pictures.")
    parser.add_argument("--runs", default=None, help="folder of run folders (default: the scripts' output folders)")
    parser.add_argument("--timit", default=None)
    parser.add_argument("--data", default=None, help="pickle dataset: use its test split")
    parser.add_argument("--corpus", choices=("timit", "nltk", "toy"), default=None)
    parser.add_argument("--mixtures", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None, help="split seed (default: the runs')")
    parser.add_argument("--speakers", type=int, default=None)
    parser.add_argument("--out", default=str(REPO_ROOT / "Pictures"))
    parser.add_argument("--no-schematics", action="store_true")
    args = parser.parse_args(argv)
    runs = discover_runs(Path(args.runs) if args.runs else None)
    seeds = {ExperimentConfig.load(p / "config.json").seed for p in runs.values()}
    if args.seed is None:
        if len(seeds) > 1:
            raise ValueError(f"the runs were trained with different seeds {sorted(seeds)}: pass --seed")
        args.seed = seeds.pop()
    records, test_speakers = _test_records(args)
    out = Path(args.out)
    summaries = compare(runs, records, test_speakers, out)
    if not args.no_schematics:
        from speechsep.schematics import write_all

        write_all(out)
    print((out / "results.md").read_text())
    print(f"Wrote {out / 'snr_comparison.png'}, {out / 'results.md'} and the schematics to {out}")
    return summaries
