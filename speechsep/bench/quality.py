"""``bench quality``: train every experiment, then score all of them and the oracles on the SAME mixtures.

Every row of :func:`speechsep.experiments.comparison_rows` trains with
dynamic mixing under a wall-clock budget on the training speakers, except the
rows that only change the readout of the deep-clustering network (mean-shift,
PCA sign), which reuse that network. The table (overall and by pair type) is
printed and written to ``<out>/quality.md`` and ``quality.json``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from speechsep.experiments import EXPERIMENTS, comparison_rows
from speechsep.io import atomic_write_json, atomic_write_text

DC_NETWORK_ROW = "deepclustering"


def reuses_dc_network(name: str) -> bool:
    """Rows whose experiment trains exactly the deep-clustering network and only reads it out differently."""
    experiment, changes = comparison_rows()[name]
    return experiment.model == "dc" and name != DC_NETWORK_ROW and not changes


def reuse_dc_network(dc_run: Path, run_dir: Path, experiment: str, readout: str, records: list[dict],
                     test_speakers: list[str]) -> dict:
    """Score the network of ``dc_run`` with another readout; writes ``run_dir/results.json``.

    The mean-shift and BLSTM+DC-loss experiments train exactly the
    deep-clustering network; reusing it isolates the readout and saves two
    30-minute retrainings on 2 CPU cores (the README says so).
    """
    from speechsep.config import ExperimentConfig
    from speechsep.eval import evaluation
    from speechsep.separation.separator import Separator

    if not (dc_run / "config.json").is_file():
        raise ValueError(f"the {experiment} row reuses {dc_run}: train the {DC_NETWORK_ROW} row first")
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("best.keras", "stats.json", "run.json"):
        shutil.copyfile(dc_run / name, run_dir / name)
    config = ExperimentConfig.load(dc_run / "config.json").replace(experiment=experiment, readout=readout)
    config.save(run_dir / "config.json")
    separator = Separator.from_run_dir(run_dir)
    summary = evaluation.summarise(evaluation.evaluate_records(records, evaluation.model_separate(separator)))
    results = {"experiment": experiment, "reuses_network_of": str(dc_run), "config": config.to_json(),
               "test_speakers": test_speakers, **summary}
    atomic_write_json(run_dir / "results.json", results)
    return results


def training_argv(args, budget: str, run_dir: Path) -> list[str]:
    """The command line every trained row gets: dynamic mixing under its wall-clock budget."""
    minutes = args.dc_minutes if budget == "dc" else args.mask_minutes
    return ["--timit", args.timit, "--dynamic-mixing", "--minutes", str(minutes), "--epochs", "1000",
            "--steps-per-epoch", str(args.steps_per_epoch), "--test-mixtures", str(args.test_mixtures),
            "--seed", str(args.seed), "--out", str(run_dir)]


def bench_quality(args) -> dict:
    from speechsep.cli import corpus_from_args
    from speechsep.data import testset
    from speechsep.eval.compare import oracle_summaries, tables_markdown
    from speechsep.training.runner import ExperimentRun

    out = Path(args.out)
    args.corpus = None
    test = testset.from_corpus(corpus_from_args(args), args.test_mixtures, args.seed)
    rows = comparison_rows()
    order = [DC_NETWORK_ROW] + [name for name in rows if name != DC_NETWORK_ROW]  # reused network first
    summaries = {}
    for name in order:
        experiment, changes = rows[name]
        run_dir = out / name
        due = (not args.only or name in args.only) and (args.retrain or not (run_dir / "results.json").is_file())
        if due and reuses_dc_network(name):
            reuse_dc_network(out / DC_NETWORK_ROW, run_dir, name, experiment.readout, test.records, test.speakers)
        elif due:
            ExperimentRun(experiment.name, None, changes, training_argv(args, experiment.budget, run_dir)).run_all()
        if (run_dir / "results.json").is_file():  # rows trained earlier (e.g. another --only) are reported too
            summaries[name] = json.loads((run_dir / "results.json").read_text())
    summaries.update(oracle_summaries(test.records))
    header = (f"Test speakers never seen in training: {', '.join(test.speakers)}; {args.test_mixtures} "
              f"mixtures; seed {args.seed}; DC budget {args.dc_minutes} min, mask nets {args.mask_minutes} min "
              "of 2-core CPU training with dynamic mixing.")
    text = tables_markdown(summaries, header)
    print(text)
    atomic_write_text(out / "quality.md", text)
    atomic_write_json(out / "quality.json", summaries)
    return summaries
