"""The command line of the training scripts: their options, their CONFIG blocks, and the parsed result.

:func:`parse_options` turns a script's ``CONFIG`` and command line into
:class:`RunOptions`: the experiment, the parsed options and the frozen
:class:`~speechsep.config.ExperimentConfig`. The run
(:class:`speechsep.training.runner.ExperimentRun`) takes those, not an argv.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Mapping

from speechsep.cli import (add_clusterer_argument, add_corpus_arguments, add_crop_argument, add_talkers_arguments,
                           is_program)
from speechsep.config import (COUNT_METHODS, DC_LOSSES, LR_SCHEDULES, MASK_LOSSES, PRECISIONS, RECURRENT, STRATEGIES,
                              ExperimentConfig)
from speechsep.experiments import Experiment, get_experiment

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


def script_argv(script_file) -> list[str]:
    """``sys.argv[1:]`` when ``script_file`` is the program being run, else no flags."""
    return sys.argv[1:] if is_program(script_file) else []




@dataclasses.dataclass(frozen=True)
class RunOptions:
    """A parsed training-script command line: the experiment, every option (``args``), the frozen config, and
    the script it came from (None from Python)."""

    experiment: Experiment
    args: argparse.Namespace
    config: ExperimentConfig
    script_file: object = None


def parse_options(name: str, script_file=None, settings: Mapping | None = None, argv=None,
                  description: str = "") -> RunOptions:
    """Parse experiment ``name``'s options: ``settings`` (a script's ``CONFIG``, keyed by field or option name)
    set the defaults, then ``argv`` (default: the command line when ``script_file`` is the program being run).
    An unknown setting is a ``ValueError`` naming it; ``--quick`` shrinks the options the user left alone."""
    experiment = get_experiment(name)
    parser = build_parser(experiment, description or experiment.title)
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
    return RunOptions(experiment, args, config_from_args(experiment, args), script_file)
