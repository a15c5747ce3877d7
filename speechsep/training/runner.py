"""The one runner behind every training script: options -> data -> training -> evaluation -> figures.

A script makes an :class:`ExperimentRun` from its experiment name, its own
path and its ``CONFIG`` block, then calls its steps in order::

    run = ExperimentRun("deepclustering", __file__, CONFIG)
    data = run.prepare_data()          # speaker-disjoint train/valid/test
    model, history = run.train()
    results = run.evaluate()           # unseen TEST speakers only
    example = run.write_outputs()      # wavs and figures of one test mixture

Every step runs the ones before it if they have not run yet, so a Spyder user
can run the cells one by one or all at once. ``CONFIG`` sets option defaults
(keyed by :class:`~speechsep.config.ExperimentConfig` field name; the
defaults themselves come from ``ExperimentConfig.for_experiment``, whose
per-experiment values live in :mod:`speechsep.experiments`); command-line
flags override them (:mod:`speechsep.training.script_args` parses them into
:class:`~speechsep.training.script_args.RunOptions`, which
:meth:`ExperimentRun.from_options` takes). The data paths live in
:mod:`speechsep.training.experiment_data`, the wavs and figures in
:mod:`speechsep.training.outputs`. Outputs go to ``--out`` (default:
``output/`` next to the script) and the runner prints where. The runner
changes nothing process-wide: the scripts call
:func:`speechsep.cli.program_start` for the quiet console and the one-line errors.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping

from speechsep.cli import check_out_dir, run_guarded
from speechsep.data.shards import verify_dataset
from speechsep.io import atomic_write_json
from speechsep.training.experiment_data import ExperimentData, dataset_data, dynamic_mixing_data
from speechsep.training.outputs import Example, write_example
from speechsep.training.script_args import QUICK_NOTE, RunOptions, parse_options


class ExperimentRun:
    """One run of an experiment: its options, folder and the results of each step so far."""

    def __init__(self, name: str, script_file=None, settings: Mapping | None = None, argv=None,
                 description: str = ""):
        """Parse a script's command line (:func:`speechsep.training.script_args.parse_options`) into this run."""
        self.setup(parse_options(name, script_file, settings, argv, description))

    @classmethod
    def from_options(cls, options: RunOptions) -> "ExperimentRun":
        """A run of already parsed options: its experiment, config and run settings."""
        run = cls.__new__(cls)
        run.setup(options)
        return run

    def setup(self, options: RunOptions) -> None:
        """Check the options before any work (strategy, run folder, dataset, --init) and take them."""
        self.experiment, args, self.config = options.experiment, options.args, options.config
        self.args = args
        script_file = options.script_file
        from speechsep.training.tf_config import check_strategy_arguments

        self.cluster = check_strategy_arguments(  # a bad TF_CONFIG or batch: one line, before TensorFlow loads
            self.config.strategy, {"--batch-size": self.config.batch_size,
                                   "the long-chunk batch": self.config.long_batch_size})
        if args.out:
            self.out = Path(args.out).expanduser().resolve()
        elif script_file is not None:
            self.out = Path(script_file).resolve().parent / "output"
        else:
            self.out = Path.cwd() / f"output-{self.experiment.name}"
        check_out_dir(self.out, args.data)  # before any work; creates nothing
        if args.data is not None and not args.dynamic_mixing:
            verify_dataset(args.data)  # every shard, before TensorFlow loads
        self.init_source = self._init_source(getattr(args, "init", None))
        self.data: ExperimentData | None = None
        self.strategy = None  # the tf.distribute strategy, created by prepare_data
        self.model = None
        self.history: dict | None = None
        self.separator = None
        self.results: dict | None = None
        self.rows: list[dict] | None = None  # the per-mixture rows of evaluate() (evaluation.score_record)
        self.example: Example | None = None
        self.extra_callbacks: list = []  # Keras callbacks added to training (e.g. trainer.WeightSnapshots)

    def _init_source(self, name_or_dir):
        """The :class:`speechsep.pretrained.Source` of ``--init``, checked against this run's network (or None)."""
        if name_or_dir is None:
            return None
        from speechsep import pretrained

        source = pretrained.resolve(name_or_dir)
        field = pretrained.architecture_mismatch(self.config, source.config)
        if field:
            raise ValueError(f"--init {name_or_dir}: its {field} is {getattr(source.config, field)!r}, this run's "
                             f"is {getattr(self.config, field)!r} (the network sizes must match)")
        return source

    def _init(self):
        """``(network, description)`` for :func:`speechsep.training.trainer.train`'s ``init``, or None."""
        if self.init_source is None:
            return None
        from speechsep import pretrained

        source = self.init_source
        description = {"source": source.name, "shipped": source.shipped,
                       "source_optimizer_steps": source.optimizer_steps, "optimizer": "fresh"}
        if source.shipped:
            description["weights_sha256"] = source.info.get("weights_sha256")
        return pretrained.build_network(source), description

    # ------------------------------------------------------------------ steps

    def prepare_data(self) -> ExperimentData:
        """Speaker-disjoint training/validation pipelines and the test mixtures."""
        from speechsep.training import distribute

        config = self.config
        print(f"{self.experiment.title}: run folder {self.out}", flush=True)
        self.strategy = distribute.make_strategy(  # before TensorFlow runs anything (multiworker needs that)
            config.strategy, join_timeout=self.args.join_timeout,
            batch_sizes={"--batch-size": config.batch_size, "the long-chunk batch": config.long_batch_size})
        init_stats = self.init_source.stats if self.init_source else None
        if config.dynamic_mixing:
            self.data = dynamic_mixing_data(self.args, config, init_stats)
        else:
            self.data = dataset_data(self.args, config, init_stats, self.cluster)
        return self.data

    def train(self):
        """Train (or resume) in the run folder. Returns (model, per-epoch history of every run)."""
        from speechsep.training.trainer import history_from_run, remove_unstarted_run, train

        data = self.data or self.prepare_data()
        if not data.test_records:
            raise ValueError("no test mixtures to evaluate")
        created = not self.out.exists() and (self.cluster is None or self.cluster.is_chief)
        try:
            self.model, _ = train(self.config, self.out, data.train, data.valid, data.stats,
                                  {**data.description, "quick": self.args.quick}, long_train_data=data.long_train,
                                  fresh=self.args.fresh or self._replaces_smoke_test(),
                                  train_input=data.train_input, long_train_input=data.long_train_input,
                                  extra_callbacks=self.extra_callbacks, init=self._init())
        except BaseException:
            if created:
                remove_unstarted_run(self.out)  # a failed first epoch leaves no empty run folder behind
            raise
        self.history = history_from_run(self.out)
        return self.model, self.history

    def _replaces_smoke_test(self) -> bool:
        """Whether the run folder holds a ``--quick`` smoke test that this real run replaces (and says so)."""
        from speechsep.training.trainer import read_progress

        if self.args.quick:
            return False
        epochs, record = read_progress(self.out)
        if not epochs or not (record or {}).get("data", {}).get("quick"):
            return False
        print(f"{self.out} holds a --quick smoke test: starting over", flush=True)
        return True

    def use_test_set(self, test) -> None:
        """Score on ``test`` (a :class:`speechsep.data.testset.TestSet` of speakers this run never trains
        on) instead of the run's own test mixtures: the benchmark's common mixtures. Call after :meth:`train`,
        so that ``run.json`` keeps the run's real speaker split."""
        from speechsep.eval.evaluation import check_unseen

        if self.model is None:
            raise ValueError("use_test_set comes after train(): run.json records the run's own split")
        check_unseen(self.out, test.speakers, test.corpus)
        self.data = dataclasses.replace(self.data, test_records=list(test.records),
                                        description={**self.data.description,
                                                     "splits": {**self.data.description["splits"],
                                                                "test": list(test.speakers)}})

    def evaluate(self) -> dict:
        """Metrics on the test mixtures (speakers never heard in training); writes ``results.json``."""
        from speechsep.eval import evaluation
        from speechsep.separation.separator import Separator

        if self.model is None:
            self.train()
        self.separator = Separator.from_run_dir(self.out)
        records = self.data.test_records
        print(f"Evaluating on {len(records)} test mixtures of unseen speakers...", flush=True)
        rows = evaluation.evaluate_records(records, evaluation.model_separate(self.separator))
        self.rows = rows
        summary = evaluation.summarise(rows)
        self.results = {"experiment": self.experiment.name, "title": self.experiment.title,
                        "config": self.config.to_json(), "test_speakers": self.data.description["splits"]["test"],
                        **summary}
        if self.args.quick:
            self.results["note"] = QUICK_NOTE
        atomic_write_json(self.output_dir / "results.json", self.results)
        print(evaluation.format_table({self.experiment.name: summary}))
        overall = summary["overall"]
        if "speaker_count_accuracy" in overall:
            print(f"Speaker count right on {overall['speaker_count_accuracy']:.0%} of test mixtures")
        if self.args.quick:
            print(f"Note: {QUICK_NOTE}.")
            self.compare_with_shipped(rows)
        return self.results

    def compare_with_shipped(self, rows: list[dict]) -> dict | None:
        """After a smoke test: the shipped model beside this run on the same test mixtures
        (:func:`speechsep.eval.compare.compare_with_shipped`)."""
        from speechsep.eval.compare import compare_with_shipped

        return compare_with_shipped(self.config, self.data.description, self.data.test_records, rows)

    def write_outputs(self) -> Example:
        """Wavs of the first test mixture and every figure of the experiment, in the run folder."""
        if self.results is None:
            self.evaluate()
        self.example = write_example(self.output_dir, self.experiment, self.separator,
                                     self.data.test_records[0], self.history or {})
        files = self.example.files
        from speechsep.report.build import write_run_page

        beside_players = [self.output_dir / name for role, name in self.experiment.figures.items()
                          if role not in ("loss", "accuracy")]  # the page draws its own training curve
        from speechsep.eval.compare import oracle_summaries
        from speechsep.report.build import REFERENCE_ORACLE

        page = write_run_page(self.output_dir, self.experiment, self.results, self.example, self.history or {},
                              beside_players, self.rows,
                              oracle_summaries(self.data.test_records, (REFERENCE_ORACLE,)))
        print(f"Wrote results.json, {sum(p.suffix == '.png' for p in files)} figures, "
              f"{sum(p.suffix == '.wav' for p in files)} wavs and {page.name} (open it in a browser) "
              f"to {self.output_dir}", flush=True)
        return self.example

    @property
    def output_dir(self) -> Path:
        """Where this process writes results, figures and wavs: the run folder, or under
        ``--strategy multiworker`` on a worker other than the chief a temporary folder removed at exit."""
        from speechsep.training.distribute import worker_dir

        return worker_dir(self.out)

    def run_all(self) -> dict:
        """Every step in order; returns the results."""
        self.write_outputs()
        return self.results


def run_experiment(name: str, script_file=None, argv=None, settings: Mapping | None = None,
                   description: str = "") -> dict:
    """Parse, train, evaluate, write results/figures/wavs; user errors become one line and exit status 2.

    The body of a training script's ``main()`` (an entry point: it ends the
    process on a user error, :func:`speechsep.cli.run_guarded`). From Python,
    use :class:`ExperimentRun`, which raises exceptions instead.
    """
    def run():
        return ExperimentRun(name, script_file, settings, argv, description).run_all()

    return run_guarded(run)
