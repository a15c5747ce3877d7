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
flags override them. Outputs go to ``--out`` (default: ``output/`` next to
the script) and the runner prints where. The runner changes nothing
process-wide: the scripts call :func:`speechsep.cli.program_start` for the
quiet console and the one-line errors.
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
from speechsep.cli import (add_clusterer_argument, add_corpus_arguments, add_crop_argument, add_talkers_arguments,
                           build_dataset, check_out_dir, corpus_from_args, dataset_config_from_args,
                           default_data_dir, describe_corpus, is_program, run_guarded)
from speechsep.config import (COUNT_METHODS, DC_LOSSES, LR_SCHEDULES, MASK_LOSSES, PRECISIONS, RECURRENT, STRATEGIES,
                              ExperimentConfig, format_talkers)
from speechsep.data.shards import verify_dataset
from speechsep.experiments import Experiment, get_experiment
from speechsep.io import atomic_write_json

QUICK = {"mixtures": 60, "epochs": 2, "test_mixtures": 6}
QUICK_NOTE = "a --quick run is a smoke test of the code path, not a measurement"
DYNAMIC_STEPS_PER_EPOCH = 200  # --steps-per-epoch when --dynamic-mixing is given without it (no split to exhaust)
# The study's old spellings of options that set a config field, kept as aliases (in --help, and as keys of a
# script's CONFIG): old dest -> the ExperimentConfig field (= the option's dest).
SETTING_ALIASES = {"layers": "num_layers", "clusterer": "readout", "speakers": "num_speakers",
                   "bandwidth": "meanshift_bandwidth"}
CONFIG_FIELDS = frozenset(field.name for field in dataclasses.fields(ExperimentConfig))


def build_parser(experiment: Experiment, description: str) -> argparse.ArgumentParser:
    """The options of a training script (every one described in ``--help``).

    An option that sets an :class:`ExperimentConfig` field is spelled like
    the field (``--num-layers`` sets ``num_layers``) and defaults to the
    field's value in ``ExperimentConfig.for_experiment(experiment.name)``:
    nothing here restates a default. The study's older spellings
    (:data:`SETTING_ALIASES`: ``--layers``, ``--clusterer``, ``--speakers``,
    ``--bandwidth``; and ``--jit``) stay as aliases.
    """
    defaults = ExperimentConfig.for_experiment(experiment.name)
    parser = argparse.ArgumentParser(description=description)
    add_corpus_arguments(parser)
    group = parser.add_argument_group("data")
    group.add_argument("--data", metavar="DIR", default=None, help="pickle dataset written by datagenerator.py")
    group.add_argument("--dynamic-mixing", action="store_true", default=defaults.dynamic_mixing,
                       help="draw fresh training mixtures every epoch (nothing written to disk)")
    group.add_argument("--mixtures", type=int, default=1000,
                       help="size of the auto-built dataset when no --data is given (default 1000)")
    group.add_argument("--test-mixtures", type=int, default=100, help="test mixtures to evaluate (default 100)")
    group.add_argument("--speed-perturb", type=float, nargs=2, default=(0.9, 1.1), metavar=("LOW", "HIGH"),
                       help="with --dynamic-mixing: speed/pitch factor range of training sources "
                            "(virtual speakers; default 0.9 1.1; 1 1 = off)")
    add_crop_argument(group)
    group.add_argument("--same-sex-share", type=float, default=None, metavar="P",
                       help="with --dynamic-mixing: draw this share of the training mixtures of two or more "
                            "talkers from one sex only (default: speakers uniformly, whatever their sex)")
    group.add_argument("--level-range", dest="train_level_range", type=float, nargs=2, default=(0.0, 5.0),
                       metavar=("LOW", "HIGH"),
                       help="with --dynamic-mixing: relative level of the training talkers in dB, uniform "
                            "(default 0 5; validation and test mixtures keep 0 5)")
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int, default=defaults.epochs,
                       help="maximum number of epochs (default %(default)s)")
    group.add_argument("--minutes", type=float, default=defaults.minutes,
                       help="wall-clock training budget in minutes (default %(default)s: no limit)")
    group.add_argument("--steps-per-epoch", type=int, default=defaults.steps_per_epoch,
                       help="batches per epoch (default: the whole split; "
                            f"{DYNAMIC_STEPS_PER_EPOCH} with --dynamic-mixing)")
    group.add_argument("--quick", action="store_true",
                       help=f"smoke test in about a minute: {QUICK['mixtures']} mixtures, {QUICK['epochs']} "
                            f"epochs, {QUICK['test_mixtures']} test mixtures ({QUICK_NOTE})")
    group.add_argument("--batch-size", type=int, default=defaults.batch_size,
                       help="global batch size in chunks (default %(default)s)")
    group.add_argument("--learning-rate", type=float, default=defaults.learning_rate,
                       help="Adam learning rate (default %(default)g)")
    group.add_argument("--hidden-units", type=int, default=defaults.hidden_units,
                       help="units per (B)LSTM or dense layer (default %(default)s)")
    group.add_argument("--num-layers", "--layers", dest="num_layers", type=int, default=defaults.num_layers,
                       help="number of recurrent or dense layers (default %(default)s)")
    group.add_argument("--dropout", type=float, default=defaults.dropout,
                       help="dropout on layer inputs (default %(default)g)")
    group.add_argument("--strategy", default=defaults.strategy, choices=STRATEGIES,
                       help="tf.distribute strategy the model is built in (default %(default)s: one device); "
                            "multiworker needs TF_CONFIG: see python -m speechsep launch --help")
    group.add_argument("--join-timeout", type=float, default=None, metavar="SECONDS",
                       help="with --strategy multiworker: give up, naming the unreachable workers, if the "
                            "cluster has not formed after SECONDS (default 120)")
    add_throughput_arguments(group, defaults)
    group.add_argument("--out", metavar="DIR", default=None,
                       help="run folder; rerunning into it resumes the run, or reports it complete "
                            "(default: output/ next to the script)")
    group.add_argument("--fresh", action="store_true",
                       help="start over: delete the run's checkpoints, history and record in --out first")
    if experiment.model == "dc":
        group.add_argument("--embedding-dim", type=int, default=defaults.embedding_dim,
                           help="embedding size D (default %(default)s)")
        add_clusterer_argument(group, defaults.readout, "how embeddings become masks at test time", dest="readout")
        group.add_argument("--init", metavar="NAME|RUN_DIR", default=None,
                           help="start from the weights (and feature normalisation) of a shipped model "
                                "(python -m speechsep models) or a run folder, with a fresh optimizer; "
                                "the network's size must match; heads it lacks (mask, count) start fresh "
                                "(run.json records the source and the fresh layers)")
        group.add_argument("--meanshift-bandwidth", "--bandwidth", dest="meanshift_bandwidth", type=float,
                           default=defaults.meanshift_bandwidth,
                           help="mean-shift bandwidth on the unit sphere (default %(default)s: the tuned 0.1)")
        add_recipe_arguments(parser, defaults)
        counting = parser.add_argument_group("counting talkers")
        add_talkers_arguments(counting, defaults.talkers, defaults.talker_weights)
        counting.add_argument("--count-method", choices=COUNT_METHODS, default=defaults.count_method,
                              help="how a model trained on several --talkers counts them at test time "
                                   "(speechsep.separation.counting; default %(default)s)")
        counting.add_argument("--count-threshold", type=float, default=defaults.count_threshold,
                              help="the counting method's tuned setting: the eigenvalue share (eigenvalues), "
                                   "the directions one talker fills (participation), "
                                   "the least silhouette of several talkers (silhouette), the bandwidth "
                                   "(meanshift); default %(default)s: the method's own")
    else:
        group.add_argument("--loss", choices=("mse", "pit"), default=defaults.loss,
                           help="mse against the source-1 IBM (original) or permutation-invariant (uPIT) "
                                "(default %(default)s)")
    parser.set_defaults(seed=defaults.seed, num_speakers=defaults.num_speakers)  # the corpus options' config fields
    return parser


def add_throughput_arguments(group, defaults: ExperimentConfig) -> None:
    """``--recurrent``, ``--jit-compile/--no-jit-compile`` (alias ``--jit/--no-jit``) and ``--precision``
    (:class:`ExperimentConfig` throughput fields), defaulting to ``defaults``."""
    group.add_argument("--recurrent", choices=RECURRENT, default=defaults.recurrent,
                       help="LSTM implementation: fast (speechsep.nn.recurrent) or the stock keras layer "
                            "(default %(default)s)")
    group.add_argument("--jit-compile", "--jit", dest="jit_compile", action=argparse.BooleanOptionalAction,
                       default=defaults.jit_compile,
                       help=f"compile the training step with XLA (default: {'on' if defaults.jit_compile else 'off'})")
    group.add_argument("--precision", choices=PRECISIONS, default=defaults.precision,
                       help="bfloat16: large matmuls in bfloat16 on CPUs with native support, else float32 "
                            "with a warning (default %(default)s)")


def normalise_settings(settings: Mapping | None) -> dict:
    """A script's ``CONFIG`` (or ``settings``) keyed by option dest: an old spelling (:data:`SETTING_ALIASES`)
    becomes its field name; of two spellings of one field the later key wins (``CONFIG.update(layers=1)``)."""
    return {SETTING_ALIASES.get(key, key): value for key, value in dict(settings or {}).items()}


def config_from_args(experiment: Experiment, args) -> ExperimentConfig:
    """The frozen :class:`ExperimentConfig` of a parsed command line.

    Every parsed option named like a config field sets that field; the others
    keep ``ExperimentConfig.for_experiment(experiment.name)``'s values.
    ``--soft-mask-beta 0`` means binary masks (None), and ``--dynamic-mixing``
    without ``--steps-per-epoch`` trains :data:`DYNAMIC_STEPS_PER_EPOCH` steps per epoch.
    """
    given = {field: value for field, value in vars(args).items() if field in CONFIG_FIELDS}
    given["steps_per_epoch"] = args.steps_per_epoch or (DYNAMIC_STEPS_PER_EPOCH if args.dynamic_mixing else None)
    if "soft_mask_beta" in given:
        given["soft_mask_beta"] = given["soft_mask_beta"] or None  # 0: binary masks
    return ExperimentConfig.for_experiment(experiment.name, **given)


def add_recipe_arguments(parser: argparse.ArgumentParser, defaults: ExperimentConfig) -> None:
    """The deep-clustering recipe options (:class:`ExperimentConfig` fields), defaulting to ``defaults``."""
    group = parser.add_argument_group("deep-clustering recipe")
    group.add_argument("--dc-loss", choices=DC_LOSSES, default=defaults.dc_loss,
                       help="embedding objective: dc (Hershey et al. 2016) or dc_whitened (Wang et al. 2018) "
                            "(default %(default)s)")
    group.add_argument("--mask-head", action=argparse.BooleanOptionalAction, default=defaults.mask_head,
                       help="Chimera++: add a mask-inference head beside the embeddings "
                            "(read it out with --readout mask_head)")
    group.add_argument("--count-head", action=argparse.BooleanOptionalAction, default=defaults.count_head,
                       help="add a head that learns the number of talkers (softmax over 1..max of --talkers, "
                            "count with --count-method head)")
    group.add_argument("--count-loss-weight", type=float, default=defaults.count_loss_weight, metavar="W",
                       help="weight of the count head's cross-entropy, added to the loss (default %(default)s)")
    group.add_argument("--freeze-stack", action=argparse.BooleanOptionalAction, default=defaults.freeze_stack,
                       help="train only the added mask/count heads, the BLSTM stack and embedding layer frozen "
                            "(a warm-up of heads added to a trained network with --init)")
    group.add_argument("--mask-loss", choices=MASK_LOSSES, default=defaults.mask_loss,
                       help="loss of the mask head: msa or tpsa (truncated phase-sensitive; default %(default)s)")
    group.add_argument("--mask-loss-weight", type=float, default=defaults.mask_loss_weight, metavar="W",
                       help="total loss (1 - W)·L_DC + W·L_MI (default %(default)s)")
    group.add_argument("--soft-mask-beta", type=float, default=defaults.soft_mask_beta, metavar="BETA",
                       help="k-means/mean-shift give soft masks p(c|v) ∝ exp(BETA·vᵀμ_c); 0 or None: binary "
                            "masks, as in the paper (default %(default)s)")
    group.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=defaults.lr_schedule,
                       help="constant, or cosine decay to 0 over the epochs or the --minutes budget "
                            "(default %(default)s)")
    group.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps,
                       help="linear learning-rate warm-up over this many batches (default %(default)s)")
    group.add_argument("--clip-norm", type=float, default=defaults.clip_norm,
                       help="gradient clipping norm (default %(default)s)")
    group.add_argument("--long-chunk-frames", type=int, default=defaults.long_chunk_frames, metavar="FRAMES",
                       help="curriculum: from --curriculum-epoch on, train on chunks of FRAMES frames "
                            "instead of 100, as many frames per batch (e.g. 400: a 4 s crop has 501 frames)")
    group.add_argument("--curriculum-epoch", type=int, default=defaults.curriculum_epoch, metavar="EPOCH",
                       help="first epoch (0-based) on --long-chunk-frames chunks")


def check_long_chunks(config: ExperimentConfig, train_mixing) -> None:
    """Refuse a long-chunk stage that no training mixture could fill (its pipeline would never yield)."""
    if train_mixing.crop_seconds is None:
        return
    frames = signal.num_frames(int(round(train_mixing.crop_seconds * signal.SAMPLE_RATE)))
    if frames < config.long_chunk_frames:
        raise ValueError(f"--long-chunk-frames {config.long_chunk_frames} exceeds the {frames} frames of the "
                         f"{train_mixing.crop_seconds:g} s training crops (--crop-seconds)")


def check_dataset_talkers(data_dir, config: ExperimentConfig) -> None:
    """Refuse a pickle dataset whose talker counts differ from the run's (when either varies), naming both sets."""
    from speechsep.data.shards import DatasetConfig, read_index

    talkers = DatasetConfig.from_json(read_index(data_dir)["config"]).mixing.talker_set
    if (len(talkers) > 1 or config.counts_talkers) and talkers != config.talker_set:
        raise ValueError(f"--data {data_dir} holds mixtures of {format_talkers(talkers)} talkers, this run trains "
                         f"on {format_talkers(config.talker_set)} (--talkers): build a dataset with the same "
                         "--talkers (DataGenerator/datagenerator.py) or leave out --data")


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
        settings = normalise_settings(settings)
        known = set(vars(parser.parse_args([])))  # every option's dest
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"CONFIG of {script_file or name}: unknown setting(s) {unknown}; "
                             f"known: {sorted(known)}")
        parser.set_defaults(**settings)
        args = parser.parse_args(script_argv(script_file) if argv is None else argv)
        if args.quick:
            for key, value in QUICK.items():
                if parser.get_default(key) == getattr(args, key):
                    setattr(args, key, value)
        self.args = args
        self.config = config_from_args(self.experiment, args)
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
        from speechsep.data import pipeline, testset
        from speechsep.data.mixing import MixingConfig, split_composition, split_speakers
        from speechsep.data.shards import load_stats, read_index
        from speechsep.training import distribute

        args, config = self.args, self.config
        print(f"{self.experiment.title}: run folder {self.out}", flush=True)
        self.strategy = distribute.make_strategy(  # before TensorFlow runs anything (multiworker needs that)
            config.strategy, join_timeout=args.join_timeout,
            batch_sizes={"--batch-size": config.batch_size, "the long-chunk batch": config.long_batch_size})
        if config.dynamic_mixing:
            corpus = corpus_from_args(args)
            print(f"Corpus: {describe_corpus(corpus)}", flush=True)
            mixing = MixingConfig(num_speakers=config.max_talkers, seed=config.seed,  # training and validation
                                  talkers=config.talkers or (), talker_weights=config.talker_weights or ())
            train_mixing = dataclasses.replace(mixing, speed_range=tuple(args.speed_perturb),
                                               same_sex_share=args.same_sex_share,
                                               crop_seconds=args.crop_seconds or None,
                                               level_range_db=tuple(args.train_level_range))
            splits = split_speakers(corpus, seed=config.seed, min_speakers=config.max_talkers)
            mean, std = self.init_source.stats if self.init_source else pipeline.estimate_stats(
                corpus, splits["train"], mixing)
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
                           "train_same_sex_share": train_mixing.same_sex_share,
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
        check_dataset_talkers(data_dir, config)
        stats = self.init_source.stats if self.init_source else load_stats(data_dir)
        train_input = functools.partial(pipeline.make_dataset, data_dir, "train", chunk_frames=config.chunk_frames,
                                        seed=config.seed, mask_target=config.mask_target, stats=stats)
        train = train_input(config.batch_size)
        valid = pipeline.make_dataset(data_dir, "valid", config.batch_size, config.chunk_frames, shuffle=False,
                                      mask_target=config.mask_target, stats=stats)
        long_train = long_train_input = None
        if config.long_chunk_frames:
            long_train_input = functools.partial(pipeline.make_dataset, data_dir, "train",
                                                 chunk_frames=config.long_chunk_frames, seed=config.seed,
                                                 mask_target=config.mask_target, stats=stats)
            long_train = long_train_input(config.long_batch_size)
        test = testset.from_dataset(data_dir, args.test_mixtures)
        index = read_index(data_dir)
        description = {"dynamic_mixing": False, "data_dir": str(data_dir), "corpus": index["corpus"],
                       "splits": {k: v["speakers"] for k, v in index["splits"].items()},
                       "train_crop_seconds": index["config"]["mixing"].get("crop_seconds"),
                       **index.get("corpora", {})}
        self.data = ExperimentData(train, valid, stats, test.records, description, long_train,
                                   train_input, long_train_input)
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
        """After a smoke test: the shipped model's SDRi on this run's test mixtures whose voices it never heard,
        beside this run's on the same mixtures (printed; returned as a dict, None without a shipped model)."""
        from speechsep import pretrained
        from speechsep.eval import evaluation

        name = pretrained.DEFAULT_MODEL
        corpus = self.data.description.get("corpus") or {}
        if self.config.num_speakers != 2 or corpus.get("is_toy") or name not in pretrained.available():
            return None  # the shipped model separates two talkers of real speech
        records = self.data.test_records
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
        page = write_run_page(self.output_dir, self.experiment, self.results, self.example, self.history or {},
                              beside_players)
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
    """Parse, train, evaluate, write results/figures/wavs; user errors become one line and exit status 2.

    The body of a training script's ``main()`` (an entry point: it ends the
    process on a user error, :func:`speechsep.cli.run_guarded`). From Python,
    use :class:`ExperimentRun`, which raises exceptions instead.
    """
    def run():
        return ExperimentRun(name, script_file, settings, argv, description).run_all()

    return run_guarded(run)
