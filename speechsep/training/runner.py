"""The one runner behind every training script: options -> data -> training -> evaluation -> figures.

A script makes an :class:`ExperimentRun` from its experiment name, its own
path and its ``CONFIG`` block, then calls its steps in order::

    run = ExperimentRun("deepclustering", __file__, CONFIG)
    data = run.prepare_data()          # speaker-disjoint train/valid/test
    model, history = run.train()
    results = run.evaluate()           # unseen TEST speakers only
    example = run.write_outputs()      # wavs and figures of one test mixture

Every step runs the ones before it if they have not run yet, so a Spyder user
can run the cells one by one or all at once. ``CONFIG`` sets option defaults;
command-line flags override them. Outputs go to ``--out`` (default: ``output/``
next to the script) and the runner prints where.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from pathlib import Path
from typing import Mapping

import numpy as np
import soundfile

from speechsep import signal
from speechsep.cli import (add_clusterer_argument, add_corpus_arguments, add_crop_argument, build_dataset,
                           check_out_dir, corpus_from_args, dataset_config_from_args, default_data_dir,
                           describe_corpus, install_error_hook, run_guarded)
from speechsep.config import DC_LOSSES, LR_SCHEDULES, MASK_LOSSES, PRECISIONS, RECURRENT, STRATEGIES, ExperimentConfig
from speechsep.data.shards import verify_dataset
from speechsep.experiments import Experiment, get_experiment
from speechsep.io import atomic_write_json

QUICK = {"mixtures": 60, "epochs": 2, "test_mixtures": 6}
QUICK_NOTE = "a --quick run is a smoke test of the code path, not a measurement"


def build_parser(experiment: Experiment, description: str) -> argparse.ArgumentParser:
    """The options of a training script (every one described in ``--help``)."""
    parser = argparse.ArgumentParser(description=description)
    add_corpus_arguments(parser)
    group = parser.add_argument_group("data")
    group.add_argument("--data", metavar="DIR", default=None, help="pickle dataset written by datagenerator.py")
    group.add_argument("--dynamic-mixing", action="store_true",
                       help="draw fresh training mixtures every epoch (nothing written to disk)")
    group.add_argument("--mixtures", type=int, default=1000,
                       help="size of the auto-built dataset when no --data is given (default 1000)")
    group.add_argument("--test-mixtures", type=int, default=100, help="test mixtures to evaluate (default 100)")
    group.add_argument("--speed-perturb", type=float, nargs=2, default=(0.9, 1.1), metavar=("LOW", "HIGH"),
                       help="with --dynamic-mixing: speed/pitch factor range of training sources "
                            "(virtual speakers; default 0.9 1.1; 1 1 = off)")
    add_crop_argument(group)
    group.add_argument("--level-range", dest="train_level_range", type=float, nargs=2, default=(0.0, 5.0),
                       metavar=("LOW", "HIGH"),
                       help="with --dynamic-mixing: relative level of the training talkers in dB, uniform "
                            "(default 0 5; validation and test mixtures keep 0 5)")
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int, default=10, help="maximum number of epochs (default 10)")
    group.add_argument("--minutes", type=float, default=None, help="wall-clock training budget in minutes")
    group.add_argument("--steps-per-epoch", type=int, default=None,
                       help="batches per epoch (default: the whole split; 200 with --dynamic-mixing)")
    group.add_argument("--quick", action="store_true",
                       help=f"smoke test in about a minute: {QUICK['mixtures']} mixtures, {QUICK['epochs']} "
                            f"epochs, {QUICK['test_mixtures']} test mixtures ({QUICK_NOTE})")
    group.add_argument("--batch-size", type=int, default=32, help="global batch size in chunks (default 32)")
    group.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    group.add_argument("--hidden-units", type=int, default=300, help="units per (B)LSTM or dense layer (default 300)")
    group.add_argument("--layers", type=int, default=2, help="number of recurrent or dense layers (default 2)")
    group.add_argument("--dropout", type=float, default=0.0, help="dropout on layer inputs (default 0)")
    group.add_argument("--strategy", default="default", choices=STRATEGIES,
                       help="tf.distribute strategy the model is built in (default: the default strategy); "
                            "multiworker needs TF_CONFIG: see python -m speechsep launch --help")
    group.add_argument("--join-timeout", type=float, default=None, metavar="SECONDS",
                       help="with --strategy multiworker: give up, naming the unreachable workers, if the "
                            "cluster has not formed after SECONDS (default 120)")
    add_throughput_arguments(group)
    group.add_argument("--out", metavar="DIR", default=None,
                       help="run folder; rerunning into it resumes the run, or reports it complete "
                            "(default: output/ next to the script)")
    group.add_argument("--fresh", action="store_true",
                       help="start over: delete the run's checkpoints, history and record in --out first")
    if experiment.model == "dc":
        group.add_argument("--embedding-dim", type=int, default=40, help="embedding size D (default 40)")
        add_clusterer_argument(group, experiment.readout, "how embeddings become masks at test time")
        group.add_argument("--bandwidth", type=float, default=None,
                           help="mean-shift bandwidth on the unit sphere (default 0.1)")
        add_recipe_arguments(parser)
    else:
        group.add_argument("--loss", choices=("mse", "pit"), default=experiment.loss,
                           help="mse against the source-1 IBM (original) or permutation-invariant (uPIT)")
    parser.set_defaults(**experiment.defaults)  # this experiment's measured recipe choices
    return parser


def add_throughput_arguments(group) -> None:
    """``--recurrent``, ``--jit/--no-jit`` and ``--precision`` (:class:`ExperimentConfig` throughput fields)."""
    defaults = ExperimentConfig()
    group.add_argument("--recurrent", choices=RECURRENT, default=defaults.recurrent,
                       help="LSTM implementation: fast (speechsep.nn.recurrent) or the stock keras layer "
                            f"(default {defaults.recurrent})")
    group.add_argument("--jit", dest="jit_compile", action=argparse.BooleanOptionalAction,
                       default=defaults.jit_compile, help="compile the training step with XLA (default: on)")
    group.add_argument("--precision", choices=PRECISIONS, default=defaults.precision,
                       help="bfloat16: large matmuls in bfloat16 on CPUs with native support, else float32 "
                            f"with a warning (default {defaults.precision})")


def config_from_args(experiment: Experiment, args) -> ExperimentConfig:
    """The frozen :class:`ExperimentConfig` of a parsed command line."""
    is_dc = experiment.model == "dc"
    return ExperimentConfig(
        experiment=experiment.name, model=experiment.model,
        loss="dc" if is_dc else args.loss,
        readout=args.clusterer if is_dc else "mask",
        num_speakers=args.speakers, hidden_units=args.hidden_units, num_layers=args.layers,
        embedding_dim=args.embedding_dim if is_dc else ExperimentConfig.embedding_dim,
        dropout=args.dropout, batch_size=args.batch_size,
        learning_rate=args.learning_rate, epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch or (200 if args.dynamic_mixing else None),
        minutes=args.minutes, seed=args.seed, dynamic_mixing=args.dynamic_mixing, strategy=args.strategy,
        recurrent=args.recurrent, jit_compile=args.jit_compile, precision=args.precision,
        meanshift_bandwidth=args.bandwidth if is_dc else None,
        **(recipe_from_args(args) if is_dc else {}),
    )


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The deep-clustering recipe options (:class:`ExperimentConfig` fields; defaults: the original study)."""
    defaults = ExperimentConfig()
    group = parser.add_argument_group("deep-clustering recipe")
    group.add_argument("--dc-loss", choices=DC_LOSSES, default=defaults.dc_loss,
                       help="embedding objective: dc (Hershey et al. 2016) or dc_whitened (Wang et al. 2018)")
    group.add_argument("--mask-head", action=argparse.BooleanOptionalAction, default=defaults.mask_head,
                       help="Chimera++: add a mask-inference head beside the embeddings "
                            "(read it out with --clusterer mask_head)")
    group.add_argument("--mask-loss", choices=MASK_LOSSES, default=defaults.mask_loss,
                       help=f"loss of the mask head: msa or tpsa (truncated phase-sensitive; default "
                            f"{defaults.mask_loss})")
    group.add_argument("--mask-loss-weight", type=float, default=defaults.mask_loss_weight, metavar="W",
                       help=f"total loss (1 - W)·L_DC + W·L_MI (default {defaults.mask_loss_weight})")
    group.add_argument("--soft-mask-beta", type=float, default=defaults.soft_mask_beta, metavar="BETA",
                       help="k-means/mean-shift give soft masks p(c|v) ∝ exp(BETA·vᵀμ_c); 0 or None: binary "
                            "masks, as in the paper (default %(default)s)")
    group.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=defaults.lr_schedule,
                       help="constant, or cosine decay to 0 over the epochs or the --minutes budget")
    group.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps,
                       help="linear learning-rate warm-up over this many batches (default 0)")
    group.add_argument("--clip-norm", type=float, default=defaults.clip_norm,
                       help=f"gradient clipping norm (default {defaults.clip_norm})")
    group.add_argument("--long-chunk-frames", type=int, default=defaults.long_chunk_frames, metavar="FRAMES",
                       help="curriculum: from --curriculum-epoch on, train on chunks of FRAMES frames "
                            "instead of 100, as many frames per batch (e.g. 400: a 4 s crop has 501 frames)")
    group.add_argument("--curriculum-epoch", type=int, default=defaults.curriculum_epoch, metavar="EPOCH",
                       help="first epoch (0-based) on --long-chunk-frames chunks")


def recipe_from_args(args) -> dict:
    """The :class:`ExperimentConfig` recipe fields of parsed :func:`add_recipe_arguments` options."""
    return dict(dc_loss=args.dc_loss, mask_head=args.mask_head, mask_loss=args.mask_loss,
                mask_loss_weight=args.mask_loss_weight, soft_mask_beta=args.soft_mask_beta or None,  # 0: binary
                lr_schedule=args.lr_schedule, warmup_steps=args.warmup_steps, clip_norm=args.clip_norm,
                long_chunk_frames=args.long_chunk_frames, curriculum_epoch=args.curriculum_epoch)


def check_long_chunks(config: ExperimentConfig, train_mixing) -> None:
    """Refuse a long-chunk stage that no training mixture could fill (its pipeline would never yield)."""
    if train_mixing.crop_seconds is None:
        return
    frames = signal.num_frames(int(round(train_mixing.crop_seconds * signal.SAMPLE_RATE)))
    if frames < config.long_chunk_frames:
        raise ValueError(f"--long-chunk-frames {config.long_chunk_frames} exceeds the {frames} frames of the "
                         f"{train_mixing.crop_seconds:g} s training crops (--crop-seconds)")


def is_program(script_file) -> bool:
    """Whether ``script_file`` is the program being run (a shell, or Spyder's F5), not an import."""
    if script_file is None or not sys.argv or not sys.argv[0]:
        return False
    return Path(sys.argv[0]).resolve() == Path(script_file).resolve()


def script_argv(script_file) -> list[str]:
    """``sys.argv[1:]`` when ``script_file`` is the program being run, else no flags."""
    return sys.argv[1:] if is_program(script_file) else []


@dataclasses.dataclass
class ExperimentData:
    """Training and validation pipelines, the normalisation, the test mixtures and what they came from."""

    train: object  # tf.data.Dataset of (features [B, T, F], {"ibm", "active"})
    valid: object
    stats: tuple[np.ndarray, np.ndarray]  # per-bin (mean [F], std [F]) of the training log-magnitudes
    test_records: list[dict]
    description: dict  # what run.json records; description["splits"]["test"]: the test speakers
    long_train: object = None  # the training pipeline of long chunks (config.long_chunk_frames), if any
    # (batch size, InputShard) -> this worker's part of train / long_train, for multi-worker training
    train_input: object = None
    long_train_input: object = None


@dataclasses.dataclass
class Example:
    """One separated test mixture: estimates [C, samples] aligned to the references, masks [C, T, F]."""

    record: dict
    estimates: np.ndarray
    masks: np.ndarray
    sdr: list[float]
    files: list[Path]


class ExperimentRun:
    """One run of an experiment: its options, folder and the results of each step so far."""

    def __init__(self, name: str, script_file=None, settings: Mapping | None = None, argv=None,
                 description: str = ""):
        self.experiment = get_experiment(name)
        parser = build_parser(self.experiment, description or self.experiment.title)
        known = {action.dest for action in parser._actions}
        unknown = sorted(set(settings or {}) - known)
        if unknown:
            raise ValueError(f"CONFIG of {script_file or name}: unknown setting(s) {unknown}; "
                             f"known: {sorted(known - {'help'})}")
        parser.set_defaults(**dict(settings or {}))
        if argv is None and is_program(script_file) and not hasattr(sys, "ps1"):
            install_error_hook()  # a script run from a shell: user errors print one line
        args = parser.parse_args(script_argv(script_file) if argv is None else argv)
        if args.quick:
            for key, value in QUICK.items():
                if parser.get_default(key) == getattr(args, key):
                    setattr(args, key, value)
        self.args = args
        self.config = config_from_args(self.experiment, args)
        from speechsep.training.cluster import check_strategy_arguments

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
        self.data: ExperimentData | None = None
        self.strategy = None  # the tf.distribute strategy, created by prepare_data
        self.model = None
        self.history: dict | None = None
        self.separator = None
        self.results: dict | None = None
        self.example: Example | None = None

    # ------------------------------------------------------------------ steps

    def prepare_data(self) -> ExperimentData:
        """Speaker-disjoint training/validation pipelines and the test mixtures."""
        from speechsep.data import pipeline, testset
        from speechsep.data.mixing import MixingConfig, split_composition, split_speakers
        from speechsep.data.shards import load_stats, read_index

        args, config = self.args, self.config
        print(f"{self.experiment.title}: run folder {self.out}", flush=True)
        self.strategy = self.make_strategy()  # before TensorFlow runs anything (multiworker needs that)
        if config.dynamic_mixing:
            corpus = corpus_from_args(args)
            print(f"Corpus: {describe_corpus(corpus)}", flush=True)
            mixing = MixingConfig(num_speakers=config.num_speakers, seed=config.seed)
            train_mixing = dataclasses.replace(mixing, speed_range=tuple(args.speed_perturb),
                                               crop_seconds=args.crop_seconds or None,
                                               level_range_db=tuple(args.train_level_range))
            splits = split_speakers(corpus, seed=config.seed, min_speakers=config.num_speakers)
            mean, std = pipeline.estimate_stats(corpus, splits["train"], mixing)
            train_input = functools.partial(pipeline.make_dynamic_dataset, corpus, splits["train"], train_mixing,
                                            mean, std, chunk_frames=config.chunk_frames, seed=config.seed,
                                            mask_target=config.mask_target)
            train = train_input(config.batch_size)
            valid = pipeline.make_dynamic_dataset(corpus, splits["valid"], mixing, mean, std, config.batch_size,
                                                  config.chunk_frames, seed=config.seed + 1,
                                                  mask_target=config.mask_target).take(8).cache()
            long_train = long_train_input = None
            if config.long_chunk_frames:  # fresh mixtures (another seed) cut into long chunks
                check_long_chunks(config, train_mixing)
                long_train_input = functools.partial(
                    pipeline.make_dynamic_dataset, corpus, splits["train"], train_mixing, mean, std,
                    chunk_frames=config.long_chunk_frames, seed=config.seed + 2, mask_target=config.mask_target)
                long_train = long_train_input(config.long_batch_size)
            test = testset.from_corpus(corpus, args.test_mixtures, config.seed, config.num_speakers)
            description = {"dynamic_mixing": True, "corpus": corpus.summary(), "splits": splits,
                           "train_speed_range": list(train_mixing.speed_range),
                           "train_crop_seconds": train_mixing.crop_seconds,
                           "train_level_range_db": list(train_mixing.level_range_db),
                           **split_composition(corpus, splits)}
            self.data = ExperimentData(train, valid, (mean, std), test.records, description, long_train,
                                       train_input, long_train_input)
            return self.data
        data_dir = args.data
        if data_dir is None:
            corpus = corpus_from_args(args)
            dataset_config = dataset_config_from_args(args)
            print("No --data given: using the DataGenerator default dataset.", flush=True)
            target = default_data_dir(corpus, dataset_config)
            if self.cluster is not None and not self.cluster.is_chief:  # no two workers write one folder
                target = target.with_name(f"{target.name}-worker{self.cluster.rank}")
            data_dir = build_dataset(corpus, dataset_config, target)
        train_input = functools.partial(pipeline.make_dataset, data_dir, "train", chunk_frames=config.chunk_frames,
                                        seed=config.seed, mask_target=config.mask_target)
        train = train_input(config.batch_size)
        valid = pipeline.make_dataset(data_dir, "valid", config.batch_size, config.chunk_frames, shuffle=False,
                                      mask_target=config.mask_target)
        long_train = long_train_input = None
        if config.long_chunk_frames:
            long_train_input = functools.partial(pipeline.make_dataset, data_dir, "train",
                                                 chunk_frames=config.long_chunk_frames, seed=config.seed,
                                                 mask_target=config.mask_target)
            long_train = long_train_input(config.long_batch_size)
        test = testset.from_dataset(data_dir, args.test_mixtures)
        index = read_index(data_dir)
        description = {"dynamic_mixing": False, "data_dir": str(data_dir), "corpus": index["corpus"],
                       "splits": {k: v["speakers"] for k, v in index["splits"].items()},
                       "train_crop_seconds": index["config"]["mixing"].get("crop_seconds"),
                       **index.get("corpora", {})}
        self.data = ExperimentData(train, valid, load_stats(data_dir), test.records, description, long_train,
                                   train_input, long_train_input)
        return self.data

    def make_strategy(self):
        """The ``--strategy`` of this run (created once per process), checked against ``--batch-size``."""
        from speechsep.training import distribute

        strategy = distribute.make_strategy(self.config.strategy, join_timeout=self.args.join_timeout)
        distribute.check_global_batch(strategy, {"--batch-size": self.config.batch_size,
                                                 "the long-chunk batch": self.config.long_batch_size})
        return strategy

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
                                  train_input=data.train_input, long_train_input=data.long_train_input)
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
        return self.results

    def write_outputs(self) -> Example:
        """Wavs of the first test mixture and every figure of the experiment, in the run folder."""
        if self.results is None:
            self.evaluate()
        self.example = write_example(self.output_dir, self.experiment, self.separator,
                                     self.data.test_records[0], self.history or {})
        files = self.example.files
        print(f"Wrote results.json, {sum(p.suffix == '.png' for p in files)} figures and "
              f"{sum(p.suffix == '.wav' for p in files)} wavs to {self.output_dir}", flush=True)
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
    from speechsep.figures.schematics import LOSS_LABELS, loss_key

    estimates, readout = separator.separate(record["mixture"], record["sources"].shape[0])
    references = record["sources"]
    count = references.shape[0]
    estimates = np.concatenate([estimates, np.zeros((max(0, count - len(estimates)), estimates.shape[1]),
                                                    np.float32)])[:count]
    sdr, _, _, order = metrics.bss_eval(references, estimates)  # order[i]: estimate of reference i
    order = [int(i) for i in order]
    estimates = estimates[order]
    sdr = [float(value) for value in sdr]
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
                                            title=f"{experiment.title}: BSS Eval SDR of each estimate (test mixture)"),
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


def run_experiment(name: str, script_file=None, argv=None, settings: Mapping | None = None,
                   description: str = "") -> dict:
    """Parse, train, evaluate, write results/figures/wavs; user errors become one line and exit status 2."""
    def run():
        return ExperimentRun(name, script_file, settings, argv, description).run_all()

    return run_guarded(run)
