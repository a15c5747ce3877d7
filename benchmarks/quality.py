"""``bench quality``: train every experiment, then score all of them and the oracles on the SAME mixtures.

Every row of :func:`speechsep.experiments.comparison_rows` trains with
dynamic mixing under a wall-clock budget on the training speakers, except the
rows that only change how a network is read out (mean-shift, PCA sign, soft
masks, the k-means readout of a Chimera++ network), which reuse the network of
the earlier row that trains it. The table (overall and by pair type) is
printed and written to ``<out>/quality.md`` and ``quality.json``.

With ``--candidates`` (or candidate names in ``--only``) the deep-clustering
recipe candidates train too, into ``<out>/candidates/<row>``; their table,
beside the study's deep-clustering row and the oracle IBM, goes to
``<out>/candidates/candidates.md`` and ``candidates.json``. The study's table
and figure (``Pictures/make_pictures.py --runs <out>``) never include them.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from speechsep.experiments import comparison_rows, is_candidate
from speechsep.io import atomic_write_json, atomic_write_text

DC_NETWORK_ROW = "deepclustering"
READOUT_FIELDS = ("experiment", "readout", "soft_mask_beta", "meanshift_bandwidth",
                  "count_method")  # set at test time only


def row_config(name: str, rows: dict, argv=()):
    """The ExperimentConfig row ``name`` trains with under the command line ``argv``."""
    from speechsep.training.runner import ExperimentRun

    experiment, changes = rows[name]
    return ExperimentRun(experiment.name, None, changes, list(argv)).config


def network_source(name: str, rows: dict | None = None, argv=()) -> str | None:
    """The earlier row (in training order) whose network ``name`` reuses, or None if ``name`` trains its own.

    Two rows share a network when their configs differ only in
    :data:`READOUT_FIELDS`: mean-shift and PCA sign reuse the deep-clustering
    network (same architecture and loss; only the readout differs), ``dc-binary``
    too, and ``dc-chimera-kmeans`` reuses ``dc-chimera``. Reusing isolates the
    readout and saves a 30-minute training on 2 CPU cores each (the README
    says so). ``argv``: the command line the rows train with.
    """
    rows = rows or comparison_rows(candidates=True)
    key = _training_fields(row_config(name, rows, argv))
    for other in training_order(rows):
        if other == name:
            return None
        if _training_fields(row_config(other, rows, argv)) == key:
            return other
    raise ValueError(f"unknown row {name!r}")


def _training_fields(config) -> dict:
    return {key: value for key, value in config.to_json().items() if key not in READOUT_FIELDS}


def training_order(rows: dict) -> list[str]:
    """The rows in the order they train: the deep-clustering network first (others reuse it)."""
    return [DC_NETWORK_ROW] + [name for name in rows if name != DC_NETWORK_ROW]


def row_dir(out: Path, name: str) -> Path:
    """``<out>/<row>``; recipe candidates in ``<out>/candidates/<row>``, out of the study's figure."""
    return out / "candidates" / name if is_candidate(name) else out / name


def reuses_dc_network(name: str) -> bool:
    """Whether row ``name`` reuses the deep-clustering row's network (only its readout differs)."""
    return network_source(name) == DC_NETWORK_ROW


def reuse_dc_network(dc_run: Path, run_dir: Path, experiment: str, readout: str, records: list[dict],
                     test_speakers: list[str]) -> dict:
    """:func:`reuse_network` of ``dc_run`` with another experiment name and readout."""
    return reuse_network(dc_run, run_dir, {"experiment": experiment, "readout": readout}, records, test_speakers,
                         DC_NETWORK_ROW)


def reuse_network(source_run: Path, run_dir: Path, config_changes: dict, records: list[dict],
                  test_speakers: list[str], source_row: str | None = None) -> dict:
    """Score the network of ``source_run`` (row ``source_row``) with another readout; writes ``run_dir/results.json``.

    ``config_changes`` sets :data:`READOUT_FIELDS` of the source run's config.
    """
    from speechsep.config import ExperimentConfig
    from speechsep.eval import evaluation
    from speechsep.separation.separator import Separator

    experiment = config_changes["experiment"]
    if not (source_run / "config.json").is_file():
        raise ValueError(f"the {experiment} row reuses {source_run}: "
                         f"train the {source_row or source_run.name} row first")
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("best.keras", "stats.json", "run.json"):
        shutil.copyfile(source_run / name, run_dir / name)
    config = ExperimentConfig.load(source_run / "config.json").replace(**config_changes)
    config.save(run_dir / "config.json")
    separator = Separator.from_run_dir(run_dir)
    summary = evaluation.summarise(evaluation.evaluate_records(records, evaluation.model_separate(separator)))
    results = {"experiment": experiment, "reuses_network_of": str(source_run), "config": config.to_json(),
               "test_speakers": test_speakers, **summary}
    atomic_write_json(run_dir / "results.json", results)
    return results


def dc_epochs(args) -> int | None:
    """The whole epochs of ``--steps-per-epoch`` that ``--dc-steps`` asks for (rounded up), or None when the
    deep-clustering rows train under ``--dc-minutes``."""
    steps = getattr(args, "dc_steps", None)
    if steps is None:
        return None
    if steps < 1:
        raise ValueError(f"--dc-steps must be at least 1, got {steps}")
    return -(-steps // args.steps_per_epoch)


def training_argv(args, budget: str, run_dir: Path) -> list[str]:
    """The command line every trained row gets: dynamic mixing under its budget, wall-clock minutes or, for
    the deep-clustering rows with ``--dc-steps``, whole epochs of optimizer steps (no time limit)."""
    epochs = dc_epochs(args) if budget == "dc" else None
    if epochs is not None:
        limit = ["--epochs", str(epochs)]
    else:
        limit = ["--minutes", str(args.dc_minutes if budget == "dc" else args.mask_minutes), "--epochs", "1000"]
    roots = [option for root in (getattr(args, "corpus_root", None) or ()) for option in ("--corpus-root", root)]
    return ["--timit", args.timit, *roots, "--dynamic-mixing", *limit,
            "--steps-per-epoch", str(args.steps_per_epoch), "--test-mixtures", str(args.test_mixtures),
            "--seed", str(args.seed), "--out", str(run_dir)]


def dc_budget(args) -> str:
    """The deep-clustering rows' budget, as the tables' headers state it."""
    epochs = dc_epochs(args)
    return f"{args.dc_minutes:g} min" if epochs is None else f"{epochs * args.steps_per_epoch} optimizer steps"


def bench_quality(args) -> dict:
    from speechsep.cli import corpus_from_args
    from speechsep.data import testset
    from speechsep.eval.compare import comparison_header, oracle_summaries, tables_markdown
    from speechsep.training.runner import ExperimentRun

    out = Path(args.out)
    args.corpus = None
    rows = comparison_rows(candidates=True)
    unknown = sorted(set(args.only or ()) - set(rows))
    if unknown:
        raise ValueError(f"--only: unknown row(s) {unknown}; known: {', '.join(rows)}")
    dc_epochs(args)  # a bad --dc-steps fails before the test mixtures are built
    timit_only = argparse.Namespace(**{**vars(args), "corpus_root": None})  # the table's test mixtures: --timit's
    test = testset.from_corpus(corpus_from_args(timit_only), args.test_mixtures, args.seed)
    summaries, candidates = {}, {}
    for name in training_order(rows):
        experiment, changes = rows[name]
        run_dir = row_dir(out, name)
        wanted = name in args.only if args.only else (args.candidates or not is_candidate(name))
        due = wanted and (args.retrain or not (run_dir / "results.json").is_file())
        argv = training_argv(args, experiment.budget, run_dir)
        source = network_source(name, rows, argv) if due else None
        if source is not None:
            config = row_config(name, rows, argv)
            reuse_network(row_dir(out, source), run_dir, {key: getattr(config, key) for key in READOUT_FIELDS},
                          test.records, test.speakers, source)
        elif due:  # trained on --timit and every --corpus-root, scored on the table's mixtures (--timit's)
            run = ExperimentRun(experiment.name, None, changes, argv)
            run.train()
            run.use_test_set(test)
            run.run_all()
        if (run_dir / "results.json").is_file():  # rows trained earlier (e.g. another --only) are reported too
            (candidates if is_candidate(name) else summaries)[name] = json.loads((run_dir / "results.json").read_text())
    summaries.update(oracle_summaries(test.records))
    if candidates:
        write_candidates_table(out / "candidates", summaries, candidates, test.speakers, args)
    header = (f"{comparison_header(test.speakers, args.test_mixtures)}; seed {args.seed}; DC budget {dc_budget(args)}, mask nets {args.mask_minutes} min "
              "of 2-core CPU training with dynamic mixing.")
    text = tables_markdown(summaries, header)
    print(text)
    atomic_write_text(out / "quality.md", text)
    atomic_write_json(out / "quality.json", summaries)
    return summaries


def write_candidates_table(folder: Path, summaries: dict, candidates: dict, test_speakers: list[str], args) -> None:
    """``candidates.md``/``.json``: the recipe candidates beside the study's deep-clustering row and the oracle IBM."""
    from speechsep.eval.compare import tables_markdown

    rows = {name: summaries[name] for name in (DC_NETWORK_ROW, "oracle ibm") if name in summaries}
    rows.update(candidates)
    header = (f"Deep-clustering recipe candidates (each changes one setting of the {DC_NETWORK_ROW} row); test "
              f"speakers {', '.join(test_speakers)}; {args.test_mixtures} mixtures; seed {args.seed}; "
              f"{dc_budget(args)} of 2-core CPU training with dynamic mixing each.")
    text = tables_markdown(rows, header)
    print(text)
    atomic_write_text(folder / "candidates.md", text)
    atomic_write_json(folder / "candidates.json", rows)
