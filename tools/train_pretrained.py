"""Train the shipped deep-clustering model in pieces, one piece ("stage") per working session.

The model is the study's deep-clustering network trained on the training
speakers of the LibriSpeech sample only (CC BY 4.0), with the kit's speaker
split (seed 0). Each stage is one run folder ``runs/pretrained/<name>/stage-N``:

* stage 1 starts from scratch; stage N > 1 starts from the weights the
  previous stage exported into ``speechsep/pretrained/<name>/`` (``--init``),
  with a fresh Adam state (the model card says where the optimizer restarted);
* a stage killed midway resumes from its own ``backup/`` when rerun;
* every ``--snapshot-steps`` optimizer steps the weights go to
  ``stage-N/snapshots/`` (float16), scored afterwards by ``curve``.

    nice python tools/train_pretrained.py train --stage N --minutes M > runs/pretrained/stage-N.log 2>&1 &
    python tools/train_pretrained.py curve --stage N      # validation loss + SDRi of every snapshot
    python tools/train_pretrained.py export --stage N     # into speechsep/pretrained/<name>/
    python tools/train_pretrained.py speed                # load time and real-time factor, alone on the CPU
    python tools/train_pretrained.py score                # test scores and the regression mixtures
    python tools/train_pretrained.py card                 # MODEL_CARD.md and learning_curve.png

then set the new regression score in tests/test_pretrained.py (PINNED_SDRI) and
commit the model folder once (each commit of the weights stays in git history).

Maintainers only: users load the result with ``speechsep.pretrained.load``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NAME = "dc-librispeech"  # the model this run of the tool works on (--name)
STARTS_FROM = {"dc-librispeech": None, "chimera-librispeech": "dc-librispeech"}
"""The shipped models the tool trains, and the shipped model each one's stage 1 starts from (None: scratch).
chimera-librispeech adds a Chimera++ mask head and a count head to dc-librispeech's network."""
CORPUS = ROOT.parent / "shared" / "data" / "librispeech-sample"
# The recipe of the long run: the Deep-clustering script's defaults (whitened objective, soft masks), on
# dynamic mixing of the LibriSpeech sample's training speakers; one stage per session.
CONFIG = dict(
    corpus_root=[str(CORPUS)],
    dynamic_mixing=True,
    epochs=100,            # 200 steps each: 20,000 optimizer steps in all stages together
    steps_per_epoch=200,
    learning_rate=1e-3,
    precision="bfloat16",  # 9 % more steps per second where the CPU has avx512_bf16 (docs/recipe.md)
)


VALID_MIXTURES = 50  # validation mixtures scored at every snapshot (the validation speakers only)
CURVE_FILE = "curve.csv"
CURVE_FIELDS = ("stage", "val_mixtures", "optimizer_steps", "minutes", "learning_rate", "train_loss", "val_loss",
                "val_acc_pit", "val_sdri", "val_sdri_ff", "val_sdri_mm", "val_sdri_fm", "dc_loss",
                "val_sdri_mask_head", "val_sdri_blend", "val_count_1", "val_count_2", "val_count_3")
"""val_sdri is the k-means readout's (the guard no stage may lower); a Chimera++ network is also scored with its
mask head and with the blend of both, and its count head counts validation mixtures of 1, 2 and 3 talkers."""
FIRST_OBJECTIVE = "dc_whitened"  # the objective of the stages recorded before curve.csv and model.json named it
OBJECTIVES = {"dc_whitened": "whitened k-means objective (Wang, Le Roux, Hershey, ICASSP 2018)",
              "dc": "paper's objective ‖VVᵀ − YYᵀ‖² (Hershey et al., ICASSP 2016)"}
OBJECTIVE_SHORT = {"dc_whitened": "whitened", "dc": "paper's"}  # the card's tables


def objective(row: dict) -> str:
    """The embedding objective (``ExperimentConfig.dc_loss``) of a curve row or a model.json stage."""
    return row.get("dc_loss") or FIRST_OBJECTIVE


def short_objective(row: dict) -> str:
    """The objective of a curve row or a stage in a word or two (the card's tables, the figure's legend)."""
    return OBJECTIVE_SHORT[objective(row)]


def stage_talkers(stage: dict) -> tuple[int, ...]:
    """The talker counts a model.json stage trained on (the stages recorded before the field: two)."""
    return tuple(stage.get("talkers") or (2,))


def heads_record(config) -> dict:
    """The Chimera++ heads of ``config`` and how a stage trained them, as a model.json stage records them
    (``{}`` for a plain deep-clustering network)."""
    if not (config.mask_head or config.count_head):
        return {}
    return {"mask_head": config.mask_head, "count_head": config.count_head, "freeze_stack": config.freeze_stack,
            "mask_loss": config.mask_loss if config.mask_head else None,
            "mask_loss_weight": config.mask_loss_weight if config.mask_head else None,
            "count_loss_weight": config.count_loss_weight if config.count_head else None}


def stage_training(stage: dict) -> str:
    """What a stage trained, for the card's stage table: "all layers", or "the heads (stack frozen)", with the
    Chimera++ loss weights."""
    if "mask_head" not in stage:
        return "all layers"
    what = "the heads only (stack frozen)" if stage["freeze_stack"] else "all layers"
    weights = []
    if stage["mask_head"]:
        weights.append(f"{stage['mask_loss']} x {stage['mask_loss_weight']:g}")
    if stage["count_head"]:
        weights.append(f"count x {stage['count_loss_weight']:g}")
    return f"{what}; " + ", ".join(weights)


def chunk_record(config) -> dict:
    """The training chunks of ``config``, as a model.json stage records them."""
    return {"batch_size": config.batch_size, "chunk_frames": config.chunk_frames,
            "long_chunk_frames": config.long_chunk_frames, "curriculum_epoch": config.curriculum_epoch,
            "long_batch_size": config.long_batch_size if config.long_chunk_frames else None}


def stage_chunks(stage: dict) -> str:
    """The training chunks of a model.json stage: "32 × 100 frames", or with the curriculum
    "32 × 100, then 8 × 400 frames from epoch 3" (the stages recorded before the field: 32 × 100)."""
    short = f"{stage.get('batch_size', 32)} × {stage.get('chunk_frames', 100)}"
    long_frames, first = stage.get("long_chunk_frames"), stage.get("curriculum_epoch")
    if long_frames is None:
        return short + " frames"
    long = f"{stage['long_batch_size']} × {long_frames}"
    return long + " frames" if first == 0 else f"{short}, then {long} frames from epoch {first + 1}"


def talkers_text(talkers, weights=None) -> str:
    """``(1, 2, 3)``, ``(1, 1, 2)`` -> "1, 2 or 3 talkers (probabilities 1:1:2)"; ``(2,)`` -> "2 talkers"."""
    counts = [str(k) for k in talkers]
    text = (", ".join(counts[:-1]) + " or " + counts[-1] if len(counts) > 1 else counts[0]) + " talkers"
    if weights and len(set(weights)) > 1:
        text += " (probabilities " + ":".join(f"{w:g}" for w in weights) + ")"
    return text


def summary_text(config, stages: list[dict]) -> str:
    """The one-line description of the exported model (``model.json`` ``summary``, the card's first line)."""
    objectives = ", then the ".join(dict.fromkeys(short_objective(s) for s in stages))
    talkers = (f"counts and separates {talkers_text(config.talker_set)}" if config.counts_talkers
               else f"{config.num_speakers} talkers")
    heads = " and ".join(name for name, present in (("a mask head", config.mask_head),
                                                    ("a count head", config.count_head)) if present)
    kind = f"Chimera++: deep clustering with {heads}" if heads else "deep clustering"
    readout = {"kmeans": "k-means with soft masks", "mask_head": "masks from its mask head",
               "blend": "the mean of k-means and mask-head masks"}.get(config.readout, config.readout)
    return (f"{kind} ({config.num_layers} x BLSTM {config.hidden_units}, D={config.embedding_dim}, "
            f"{objectives} objective, {readout}), {talkers}, trained on LibriSpeech")


def mixing_text(stages: list[dict]) -> str:
    """How many talkers each stage's training mixtures held, as a phrase of the card."""
    return stages_text(stages, lambda s: talkers_text(stage_talkers(s), s.get("talker_weights")), "; ")


def stages_text(stages: list[dict], phrase, separator: str = ", then ") -> str:
    """``phrase(stage)`` of each stage, consecutive equal phrases once: "A in stages 1-4, then B in stage 5"
    (a single phrase alone)."""
    runs = []  # [phrase, first stage, last stage]
    for stage in stages:
        text = phrase(stage)
        if runs and runs[-1][0] == text:
            runs[-1][2] = stage["stage"]
        else:
            runs.append([text, stage["stage"], stage["stage"]])
    if len(runs) == 1:
        return runs[0][0]
    return separator.join(f"{text} in stage{'s' if last > first else ''} {first}{'-' + str(last) if last > first else ''}"
                          for text, first, last in runs)


def stage_dir(stage: int) -> Path:
    return ROOT / "runs" / "pretrained" / NAME / f"stage-{stage}"


def model_dir() -> Path:
    from speechsep import pretrained

    return pretrained.FOLDER / NAME


def stage_argv(stage: int, minutes: float) -> list[str]:
    argv = ["--out", str(stage_dir(stage)), "--minutes", str(minutes)]
    if stage > 1:
        argv += ["--init", NAME]  # the previous stage's export, committed in the package
    elif STARTS_FROM[NAME]:
        argv += ["--init", STARTS_FROM[NAME]]  # the shipped model this one grows from
    return argv


def start_steps() -> int:
    """Optimizer steps of the shipped model stage 1 started from (0 from scratch)."""
    from speechsep import pretrained

    start = STARTS_FROM[NAME]
    return int(pretrained.read_info(pretrained.FOLDER / start)["optimizer_steps"]) if start else 0


def train(args) -> None:
    from speechsep.training.runner import ExperimentRun
    from speechsep.training.trainer import WeightSnapshots

    if args.stage > 1 and not (model_dir() / "model.json").is_file():
        raise SystemExit(f"stage {args.stage} starts from {model_dir()}, which holds no exported model")
    out = stage_dir(args.stage)
    offset = earlier_steps(args.stage)
    run = ExperimentRun("deepclustering", None, CONFIG, stage_argv(args.stage, args.minutes) + list(args.extra))
    run.extra_callbacks.append(WeightSnapshots(out / "snapshots", args.snapshot_steps, step_offset=offset))
    run.train()


def start_hours() -> float:
    """CPU hours of the shipped model stage 1 started from (0 from scratch)."""
    from speechsep import pretrained

    start = STARTS_FROM[NAME]
    return float(pretrained.read_info(pretrained.FOLDER / start)["hours"]) if start else 0.0


def earlier_stages(stage: int) -> list[dict]:
    """The exported record (``model.json`` ``stages``) of every stage before ``stage``."""
    if stage == 1 or not (model_dir() / "model.json").is_file():
        return []
    from speechsep import pretrained

    return [s for s in pretrained.read_info(model_dir()).get("stages", []) if s["stage"] < stage]


def earlier_steps(stage: int) -> int:
    """Optimizer steps of the stages before ``stage`` (and of the model stage 1 started from)."""
    return start_steps() + sum(s["optimizer_steps"] for s in earlier_stages(stage))


def validation_set(mixtures: int, talkers: int = 2):
    from speechsep.data import testset
    from speechsep.data.sources import find_corpus

    corpus = find_corpus(None, None, [str(CORPUS)])
    return testset.from_corpus(corpus, mixtures, seed=0, num_speakers=talkers, split="valid")


def score(network, config, stats, records, readout: str | None = None) -> dict:
    """Validation SDRi (overall and per pair type) of ``network`` on ``records`` (with ``readout``, default its own)."""
    from speechsep.eval import evaluation
    from speechsep.separation.separator import Separator

    separator = Separator(network, config.replace(precision="float32"), *stats)
    return evaluation.summarise(evaluation.evaluate_records(records, evaluation.model_separate(separator, readout)))


def counted(separator, record: dict, method: str | None = None) -> int:
    """The talkers ``separator`` counts in ``record`` with ``method`` (default: its config's, at its setting),
    without separating."""
    from speechsep import signal
    from speechsep.separation import counting

    config = separator.config
    params = counting.config_params(config) if method in (None, config.count_method) else {}
    spectrum = signal.stft(record["mixture"])
    return counting.count_output(separator.network_output(spectrum), signal.active_bins(spectrum),
                                 method or config.count_method, config.talker_set, **params)


def head_count_right(network, config, stats, records) -> float:
    """The share of ``records`` whose talkers the count head counts right."""
    from speechsep.separation.separator import Separator

    separator = Separator(network, config.replace(precision="float32"), *stats)
    return sum(counted(separator, record, "head") == len(record["sources"]) for record in records) / len(records)


def read_curve() -> list[dict]:
    import csv

    path = model_dir() / CURVE_FILE
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def curve(args) -> None:
    """Score every snapshot of a stage on the validation mixtures; rewrite the stage's rows of curve.csv."""
    import json

    from speechsep.config import ExperimentConfig
    from speechsep.data.shards import load_stats
    from speechsep.io import atomic_write_text, read_weights
    from speechsep.nn.models import build_model

    out = stage_dir(args.stage)
    config = ExperimentConfig.load(out / "config.json")
    stats = load_stats(out)
    record = json.loads((out / "run.json").read_text())
    history = record["history"]
    offset = earlier_steps(args.stage)
    steps_per_epoch = config.steps_per_epoch
    minutes_per_step = record["wall_seconds"] / 60.0 / max(1, int(record["optimizer_steps"]))  # validation included
    earlier_minutes = sum(s["minutes"] for s in earlier_stages(args.stage))
    records = validation_set(args.mixtures).records
    count_records = ({k: records if k == 2 else validation_set(args.mixtures, k).records for k in config.talker_set}
                     if config.count_head else {})
    network = build_model(config.replace(precision="float32"))
    final = offset + int(record["optimizer_steps"])
    if (out / "last.keras").is_file() and not (out / "snapshots" / f"step-{final:07d}.npz").is_file():
        from speechsep.io import atomic_write_weights
        from speechsep.nn.models import load_model

        # the stage's final weights (what export ships) are the curve's last point
        atomic_write_weights(out / "snapshots" / f"step-{final:07d}.npz", load_model(out / "last.keras").get_weights())
    rows = []
    for path in sorted((out / "snapshots").glob("step-*.npz")):
        step = int(path.stem.split("-")[1])
        # 1-based epochs done at the snapshot (a budget may end the last epoch early)
        epoch = min(record["epochs_done"], max(1, math.ceil((step - offset) / steps_per_epoch)))
        network.set_weights(read_weights(path))
        summary = score(network, config, stats, records)
        by_pair = summary["by_pair_type"]

        def sdri(block):
            return f"{block['sdr_improvement']['mean']:.2f}" if block and "sdr_improvement" in block else ""

        row = {"stage": args.stage, "val_mixtures": len(records), "optimizer_steps": step,
               "minutes": f"{earlier_minutes + (step - offset) * minutes_per_step:.1f}",
               "learning_rate": f"{history.get('learning_rate', [config.learning_rate] * epoch)[epoch - 1]:g}",
               "train_loss": f"{history['loss'][epoch - 1]:.4f}", "val_loss": f"{history['val_loss'][epoch - 1]:.4f}",
               "val_acc_pit": f"{history['val_acc_pit'][epoch - 1]:.3f}", "val_sdri": sdri(summary["overall"]),
               "val_sdri_ff": sdri(by_pair.get("female-female")), "val_sdri_mm": sdri(by_pair.get("male-male")),
               "val_sdri_fm": sdri(by_pair.get("female-male")), "dc_loss": config.dc_loss}
        if config.mask_head:
            for readout in ("mask_head", "blend"):
                row[f"val_sdri_{readout}"] = sdri(score(network, config, stats, records, readout)["overall"])
        if config.count_head:
            for talkers, talker_records in count_records.items():
                row[f"val_count_{talkers}"] = f"{head_count_right(network, config, stats, talker_records):.3f}"
        print(", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
        rows.append(row)
    kept = [{**r, "dc_loss": objective(r)} for r in read_curve() if int(r["stage"]) != args.stage]
    lines = [",".join(CURVE_FIELDS)] + [",".join(str(r.get(k) or "") for k in CURVE_FIELDS) for r in kept + rows]
    model_dir().mkdir(parents=True, exist_ok=True)
    atomic_write_text(model_dir() / CURVE_FILE, "\n".join(lines) + "\n")
    print(f"Wrote {model_dir() / CURVE_FILE}")


def export(args) -> None:
    """The stage's last weights, config, stats and model.json into the package's model folder."""
    import json
    import platform

    from speechsep import pretrained
    from speechsep.hardware import CPU_FLAGS_OF_NOTE, cpu_info
    from speechsep.config import ExperimentConfig
    from speechsep.data.shards import load_stats
    from speechsep.io import atomic_write_json
    from speechsep.nn.models import load_model

    out = stage_dir(args.stage)
    config = ExperimentConfig.load(out / "config.json")
    counting = {key: value for key, value in (("count_method", args.count_method),
                                              ("count_threshold", args.count_threshold)) if value is not None}
    try:
        config = config.replace(**counting)
    except ValueError as error:  # e.g. a threshold of 0: one line, nothing written
        raise SystemExit(f"export: {error}") from None
    record = json.loads((out / "run.json").read_text())
    network = load_model(out / f"{args.checkpoint}.keras")
    previous = pretrained.read_info(model_dir()) if (model_dir() / "model.json").is_file() else {}
    cpu = cpu_info()
    steps = int(record["optimizer_steps"])
    if args.checkpoint == "best":  # the best epoch's weights: the steps up to that epoch
        steps = steps * record["best_epoch"] // record["epochs_done"]
    stage = {"stage": args.stage, "optimizer_steps": steps, "checkpoint": args.checkpoint,
             "minutes": round(record["wall_seconds"] / 60.0, 1), "epochs": record["epochs_done"],
             "cpu": cpu.name, "cpu_flags": sorted(cpu.flags & set(CPU_FLAGS_OF_NOTE)), "precision": config.precision,
             "learning_rate": config.learning_rate, "lr_schedule": config.lr_schedule, "dropout": config.dropout,
             **chunk_record(config),
             "dc_loss": config.dc_loss, "talkers": list(config.talker_set), **heads_record(config),
             "talker_weights": list(config.talker_weights) if config.talker_weights else None,
             "optimizer": "fresh Adam" if args.stage > 1 else "Adam from scratch",
             "started_from": record.get("init", {}).get("source", "random initialisation"),
             "final_train_loss": record["history"]["loss"][-1], "final_val_loss": record["history"]["val_loss"][-1],
             "git_commit": record.get("git_commit"), "python": platform.python_version(),
             "tensorflow": record.get("tensorflow")}
    same = next((s for s in previous.get("stages", []) if s["stage"] == args.stage), {})
    if same.get("note"):  # re-exporting a stage (say, with a new counting setting) keeps what was written about it
        stage["note"] = same["note"]
    stages = [s for s in previous.get("stages", []) if s["stage"] != args.stage] + [stage]
    data = {key: record["data"][key] for key in ("corpus", "splits", "per_split", "corpora", "dynamic_mixing",
                                                  "train_crop_seconds", "train_level_range_db",
                                                  "train_speed_range") if key in record["data"]}
    info = {"name": NAME,
            "summary": summary_text(config, stages),
            "headline": previous.get("headline", []), "scores": previous.get("scores", {}),
            "optimizer_steps": start_steps() + sum(s["optimizer_steps"] for s in stages),
            "hours": round(start_hours() + sum(s["minutes"] for s in stages) / 60.0, 2), "stages": stages,
            "started_from": STARTS_FROM[NAME],
            "licence": "CC BY 4.0 (training data: LibriSpeech, (c) 2014 Vassil Panayotov)", "data": data}
    folder = pretrained.export(network, config.replace(epochs=config.epochs, minutes=None), load_stats(out),
                               model_dir(), info)
    written = pretrained.read_info(folder)
    if previous.get("speed") and written["weights_sha256"] == previous.get("weights_sha256"):
        atomic_write_json(folder / pretrained.INFO_FILE, {**written, "speed": previous["speed"]})  # same weights
    print(f"Exported stage {args.stage} ({stage['optimizer_steps']} steps, {info['optimizer_steps']} in all) "
          f"to {model_dir()}")


def speed(args) -> None:
    """Time loading and separating with ``bench separate`` and write it into ``model.json["speed"]``."""
    import datetime

    from speechsep import pretrained
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ sits at the repo root, not installed
    from benchmarks.__main__ import parse_args
    from benchmarks.separate import bench_separate
    from speechsep.hardware import CPU_FLAGS_OF_NOTE, cpu_info
    from speechsep.io import atomic_write_json

    rows = bench_separate(parse_args(["separate", "--model", NAME, "--corpus-root", str(CORPUS)]))
    kmeans = next(row for row in rows if row["readout"] == "kmeans")
    cpu = cpu_info()
    info = pretrained.read_info(model_dir())
    info["speed"] = {"cpu": f"{cpu.name} ({', '.join(sorted(cpu.flags & set(CPU_FLAGS_OF_NOTE)))})",
                     "date": datetime.date.today().isoformat(),
                     "first_call_seconds": round(kmeans["first_call_seconds"], 2),
                     "import_seconds": round(kmeans["import_seconds"], 2),
                     "kmeans_rtf": round(kmeans["rtf"], 3), "kmeans_seconds": round(kmeans["seconds"], 3),
                     "load_seconds": round(kmeans["load_seconds"], 2)}
    atomic_write_json(model_dir() / pretrained.INFO_FILE, info)
    print(f"Wrote the speed into {model_dir() / pretrained.INFO_FILE}: {info['speed']}")


TIMIT = ROOT.parent / "shared" / "data" / "timit-sample"
TEST_MIXTURES = 100


COUNTED_SETS = ("timit-sample", "librispeech-sample")
"""The two-talker sets a counting model is also scored on separated into the number it counts."""


def stress_set(talkers, count: int) -> list[dict]:
    """The stress set (:func:`speechsep.data.testset.stress_mixtures`): ``count`` mixtures of each number of
    ``talkers`` of the LibriSpeech test speakers and every TIMIT-sample speaker (never trained on), none of
    them with a voice the model trained on."""
    from speechsep import pretrained
    from speechsep.data import testset
    from speechsep.data.corpus import NAMESPACE_SEPARATOR
    from speechsep.data.mixing import split_speakers
    from speechsep.data.sources import find_corpus

    libri = find_corpus(None, None, [str(CORPUS)])
    both = find_corpus(str(TIMIT), None, [str(CORPUS)])
    tested = set(split_speakers(libri, seed=0)["test"])
    speakers = sorted(s for s in both.speakers if s.split(NAMESPACE_SEPARATOR)[0] != libri.name
                      or s.split(NAMESPACE_SEPARATOR, 1)[1] in tested)
    records = testset.stress_mixtures(both, speakers, talkers, count)
    unseen = pretrained.unseen_records(NAME, records)
    if len(unseen) != len(records):
        raise SystemExit(f"stress set: {len(records) - len(unseen)} mixtures hold a voice {NAME} trained on")
    return records


def stress_counts(separator, mixtures: int) -> list[tuple[int, int]]:
    """(true K, counted K) of every stress-set mixture (:func:`stress_set`, ``mixtures`` per trained count)."""
    return [(len(record["sources"]), counted(separator, record))
            for record in stress_set(separator.config.talker_set, mixtures)]


def stress(args) -> None:
    """Count the stress set with a model (no separation) and print its count confusion."""
    import time

    from speechsep import pretrained
    from speechsep.eval import metrics

    model = pretrained.load(args.model or NAME)
    config = model.separator.config
    start = time.perf_counter()
    pairs = stress_counts(model.separator, args.mixtures)
    matrix = metrics.confusion_matrix(pairs, config.max_talkers)
    print(metrics.format_confusion(matrix, f"{model.name}, counting with {count_setting(config)}, stress set "
                                           f"({args.mixtures} mixtures per count, {time.perf_counter() - start:.0f} s):"))


def count_set(talkers: int) -> str:
    """The name of ``model.json``'s score of the LibriSpeech test mixtures of ``talkers`` talkers (two: the main one)."""
    return "librispeech-sample" if talkers == 2 else f"librispeech-sample, {talkers} talker{'s' if talkers > 1 else ''}"


def score_sets(args) -> None:
    """Score the exported model on the test speakers of both samples and on the regression mixtures (and, for a
    model that counts talkers, the LibriSpeech test mixtures of each other talker count it trained on)."""
    import functools
    import time

    from speechsep import pretrained
    from speechsep.data import testset
    from speechsep.data.sources import find_corpus
    from speechsep.eval import evaluation
    from speechsep.io import atomic_write_json

    from speechsep.eval import metrics

    model = pretrained.load(NAME)
    info = pretrained.read_info(model_dir())
    scores, found = {}, {}  # found: set name -> [(true K, counted K)]

    def librispeech(talkers=2):
        return testset.from_corpus(find_corpus(None, None, [str(CORPUS)]), args.mixtures, 0, talkers).records

    sets = {"timit-sample": lambda: testset.from_corpus(find_corpus(str(TIMIT), None, []), args.mixtures, 0).records,
            "librispeech-sample": librispeech,
            "librispeech-mini (regression mixtures)": lambda: pretrained.regression_mixtures(NAME)[0]}
    config = model.separator.config
    for talkers in config.talker_set if config.counts_talkers else ():  # the count on each trained talker count
        if talkers != 2:
            sets[count_set(talkers)] = functools.partial(librispeech, talkers)
    separate = evaluation.model_separate(model.separator)
    counted = evaluation.model_separate(model.separator, counted=True) if config.counts_talkers else None
    counted_sets = COUNTED_SETS + tuple(count_set(k) for k in config.talker_set if k > 2)
    for name, records in sets.items():
        records = records()
        start = time.perf_counter()
        rows = evaluation.evaluate_records(records, separate)
        summary = evaluation.summarise(rows)
        overall = summary["overall"]
        scores[name] = {"mixtures": len(records), "sdri": (overall.get("sdr_improvement") or {}).get("mean"),
                        "si_sdri": (overall.get("si_sdr_improvement") or {}).get("mean"),
                        "stoii": (overall.get("stoi_improvement") or {}).get("mean"),
                        "by_pair_type": {k: v["sdr_improvement"]["mean"] for k, v in summary["by_pair_type"].items()},
                        "count_accuracy": overall.get("speaker_count_accuracy"),
                        "seconds": time.perf_counter() - start}
        if counted is not None and name in counted_sets:  # into the number it counts, as `separate` does
            counted_rows = evaluation.evaluate_records(records, counted)
            scores[name]["sdri_counted"] = evaluation.summarise(counted_rows)["overall"]["sdr_improvement"]["mean"]
        if config.counts_talkers:
            found[name] = [(len(record["sources"]), row["speakers_found"]) for record, row in zip(records, rows)]
        if config.mask_head and name in COUNTED_SETS:  # the other readouts, with the true count
            scores[name]["readouts"] = {config.readout: scores[name]["sdri"]}
            for readout in ("kmeans", "mask_head", "blend"):
                if readout != config.readout:
                    rows_readout = evaluation.evaluate_records(records, evaluation.model_separate(model.separator,
                                                                                                  readout))
                    summary_readout = evaluation.summarise(rows_readout)
                    scores[name]["readouts"][readout] = summary_readout["overall"]["sdr_improvement"]["mean"]
        print(f"{name}: {scores[name]}", flush=True)
    if config.counts_talkers:
        confusions = {"librispeech-sample": [pair for k in config.talker_set for pair in found[count_set(k)]]}
        confusions["stress"] = stress_counts(model.separator, args.mixtures)
        info["count_confusion"] = {}
        for name, pairs in confusions.items():
            matrix = metrics.confusion_matrix(pairs, config.max_talkers)
            info["count_confusion"][name] = matrix.tolist()
            print(metrics.format_confusion(matrix, f"count confusion, {name}:"), flush=True)
    info["scores"] = scores
    timit, libri = scores["timit-sample"], scores["librispeech-sample"]
    info["headline"] = [f"TIMIT sample (unseen corpus): SDRi {timit['sdri']:.2f} dB; "
                        f"LibriSpeech sample test speakers: {libri['sdri']:.2f} dB ({libri['mixtures']} mixtures each)",
                        f"{info['optimizer_steps']:,} optimizer steps, {info['hours']:.1f} h on 2 CPU cores"]
    if config.counts_talkers:
        info["headline"].insert(1, "talkers counted right on " + ", ".join(
            f"{100 * scores[count_set(k)]['count_accuracy']:.0f} % of {k}-talker"
            for k in config.talker_set) + " LibriSpeech test mixtures")
    atomic_write_json(model_dir() / pretrained.INFO_FILE, info)
    print(f"Wrote the scores into {model_dir() / pretrained.INFO_FILE}")


def plot_curve(rows: list[dict], path: Path) -> Path:
    """Validation loss and validation SDRi against optimizer steps, one mark per snapshot, stages shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from speechsep.figures.plots import save_figure
    from speechsep.nn.losses import LOSS_LABELS

    steps = [int(r["optimizer_steps"]) for r in rows]
    figure, (loss_axis, sdr_axis) = plt.subplots(1, 2, figsize=(13, 5))
    figure.subplots_adjust(wspace=0.45, bottom=0.27)  # room for the loss legend below its axes
    # each objective on its own y axis (their scales differ: about 38.3 whitened, 0.1 the paper's)
    axes = {}
    for index, name in enumerate(dict.fromkeys(objective(r) for r in rows)):
        axis = loss_axis if index == 0 else loss_axis.twinx()
        axes[name] = axis
        part = [r for r in rows if objective(r) == name]
        part_steps = [int(r["optimizer_steps"]) for r in part]
        suffix = "" if index == 0 else f" ({short_objective(part[0])} objective, right axis)"
        axis.plot(part_steps, [float(r["train_loss"]) for r in part], "o-", color=f"C{2 * index}",
                  label=f"training (epoch mean){suffix}")
        axis.plot(part_steps, [float(r["val_loss"]) for r in part], "s-", color=f"C{2 * index + 1}",
                  label=f"validation{suffix}")
        axis.set_ylabel(LOSS_LABELS[name][0])  # the library's name of the loss (speechsep.nn.losses)
        axis.ticklabel_format(axis="y", useOffset=False)
    loss_axis.set(xlabel="optimizer steps", title="Loss")
    sdr_axis.plot(steps, [float(r["val_sdri"]) for r in rows], "o-", color="black", label="all pairs")
    for key, label in (("val_sdri_fm", "female-male"), ("val_sdri_ff", "female-female"), ("val_sdri_mm", "male-male")):
        values = [float(r[key]) if r[key] else float("nan") for r in rows]
        sdr_axis.plot(steps, values, ".--", label=label)
    sdr_axis.set(xlabel="optimizer steps", ylabel="SDRi (dB)",
                 title=f"Validation SDRi ({rows[-1]['val_mixtures']} mixtures of the validation speakers)")
    # a stage's boundary is the previous stage's last point: the next stage starts from those weights
    boundaries = [(int(previous["optimizer_steps"]), row["stage"]) for row, previous in zip(rows[1:], rows)
                  if row["stage"] != previous["stage"]]
    for axis in (loss_axis, sdr_axis):
        for index, (step, stage) in enumerate(boundaries):
            axis.axvline(step, color="grey", linestyle=":",
                         label="a stage starts (fresh Adam)" if index == 0 else None)
            axis.text(step, 0.02, f"stage {stage} ", transform=axis.get_xaxis_transform(), color="grey",
                      fontsize=8, va="bottom", ha="right", rotation=90)
        axis.grid(alpha=0.3)
    # one legend for the loss axis and its twin (the stage boundaries are drawn on the first)
    handles, labels = zip(*[(h, l) for axis in axes.values() for h, l in zip(*axis.get_legend_handles_labels())])
    loss_axis.legend(handles, labels, fontsize=8,
                     loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)  # below: clear of every curve
    sdr_axis.legend(fontsize=8, loc="upper left")
    figure.suptitle(f"{NAME}: learning curve")
    return save_figure(figure, path)


def speed_text(info: dict) -> str:
    """The card's speed paragraph from ``model.json``'s ``speed`` (measured by ``bench separate``)."""
    speed = info.get("speed")
    if not speed:
        return "Not measured yet: `python -m benchmarks separate --corpus-root ../shared/data/librispeech-sample`."
    return (f"Measured {speed['date']} on a 2-core {speed['cpu']}, nothing else running, by "
            f"`python -m benchmarks separate --corpus-root ../shared/data/librispeech-sample`: "
            f"`pretrained.load()` takes {speed['load_seconds']:.2f} s once TensorFlow is imported (importing "
            f"TensorFlow and Keras took {speed['import_seconds']:.2f} s), and separating a 3 s mixture takes "
            f"{speed['kmeans_seconds']:.3f} s with k-means (real-time factor {speed['kmeans_rtf']:.3f}; the first "
            f"call also compiles, {speed['first_call_seconds']:.2f} s).")


def objectives_text(stages: list[dict]) -> str:
    """Which embedding objective trained which stages, as a phrase of the card."""
    return stages_text(stages, lambda s: f"the {OBJECTIVES[objective(s)]}")


def count_setting(config) -> str:
    """How the model counts talkers, as a phrase: its method and tuned setting (``config.count_*``)."""
    from speechsep.separation.counting import THRESHOLDS

    if config.count_method == "head":
        return "its count head's most probable count"
    name = THRESHOLDS.get(config.count_method, "threshold").replace("_", " ")
    threshold = (f"{name} {config.count_threshold:g}" if config.count_threshold is not None
                 else f"the method's default {name}")
    where = "its mask head's masks" if config.count_method == "mask_energy" else "the active bins' embeddings"
    return f"the {config.count_method} method, {threshold}, on {where}"


def counting_text(config, scores: dict, info: dict | None = None) -> str:
    """The card's paragraph and table on counting talkers (a model trained on several talker counts)."""
    rows = []
    for talkers in config.talker_set:
        block = scores.get(count_set(talkers))
        if not block:
            rows.append(f"| {talkers} | not measured yet | | |")
            continue
        sdri, counted = (f"{block[key]:.2f}" if talkers > 1 and block.get(key) is not None else "-"
                         for key in ("sdri", "sdri_counted"))
        right = f"{100 * block['count_accuracy']:.0f} %" if block.get("count_accuracy") is not None else "-"
        rows.append(f"| {talkers} | {block['mixtures']} | **{right}** | {sdri} | {counted} |")
    table = "\n".join(rows)
    timit = scores.get("timit-sample", {})
    timit_text = (f"\nOn the TIMIT test mixtures (two talkers, a corpus it never saw) it counts right on "
                  f"{100 * timit['count_accuracy']:.0f} %, and separates by {timit['sdri']:.2f} dB with the true "
                  f"count and {timit['sdri_counted']:.2f} dB counted.\n" if timit.get("sdri_counted") is not None
                  else "")  # a paragraph of its own: a line right after a table would be read as a row
    return f"""
### Counting talkers

Without `--speakers`, `separate` counts the talkers first ({count_setting(config)}) and returns one file per talker found. On mixtures of the
LibriSpeech test speakers (`python -m speechsep evaluate --model {NAME} --corpus-root
../shared/data/librispeech-sample --speakers K`: SDRi separated with the true count; with `--counted`:
separated into the number it counts, as `separate` does, a talker it missed scoring as the mixture, 0 dB):

| talkers | mixtures | counted right | SDRi (dB) | SDRi, counted (dB) |
|---|---|---|---|---|
{table}
{timit_text}{confusion_text(info or {})}"""


def started_text(info: dict) -> str:
    """", counting the N steps of the shipped model stage 1 started from" (nothing for a model from scratch)."""
    start = info.get("started_from")
    return f", counting the {start_steps():,} steps of `{start}`, which stage 1 started from" if start else ""


def heads_text(config, info: dict) -> str:
    """The card's paragraphs on the Chimera++ heads: what they are, how they were trained, how each readout and
    counter scores on the test sets."""
    scores = info.get("scores", {})
    lines = ["", "### The Chimera++ heads", "",
             "Beside the embeddings, the same BLSTM stack feeds"]
    if config.mask_head:
        lines.append(f"- a **mask head** (Wang, Le Roux, Hershey, ICASSP 2018): a dense layer to "
                     f"{config.max_talkers} masks per bin (softmax over the sources; a talker absent from a "
                     f"mixture is a silent target), trained under utterance-level permutation-invariant training "
                     f"with the {config.mask_loss} objective, weighted {config.mask_loss_weight:g} against "
                     f"{1 - config.mask_loss_weight:g} for the embeddings;")
    if config.count_head:
        lines.append(f"- a **count head**: the BLSTM features pooled over time (mean and max), a 64-unit ReLU layer "
                     f"and a softmax over 1-{config.max_talkers} talkers, trained with cross-entropy weighted "
                     f"{config.count_loss_weight:g} (a chunk's talkers: those dominating at least 1 % of its "
                     f"active bins).")
    lines.append("")
    readouts = {name: scores.get(name, {}).get("readouts") for name in COUNTED_SETS}
    if any(readouts.values()):
        lines += [f"Each readout with the true count (SDRi, dB, {TEST_MIXTURES} mixtures; k-means: masks from "
                  "the embeddings; mask head: its masks; blend: their mean; `python -m speechsep evaluate "
                  f"--model {NAME} --readout R`):", "",
                  "| test set | k-means | mask head | blend |", "|---|---|---|---|"]
        for name, block in readouts.items():
            if block:
                lines.append(f"| {name} | " + " | ".join(f"{block[r]:.2f}" if block.get(r) is not None else "-"
                                                         for r in ("kmeans", "mask_head", "blend")) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


def confusion_text(info: dict) -> str:
    """The card's count-confusion matrices (model.json ``count_confusion``), one table per set."""
    matrices = info.get("count_confusion") or {}
    if not matrices:
        return ""
    names = {"librispeech-sample": f"the LibriSpeech test speakers ({TEST_MIXTURES} mixtures per count)",
             "stress": (f"the stress set ({TEST_MIXTURES} mixtures per count of the LibriSpeech test speakers and "
                        "every TIMIT-sample speaker, 1.5-6 s, each talker 0-10 dB below the first, talkers "
                        "overlapping in part; `speechsep.data.testset.stress_mixtures`; nothing is chosen on it)")}
    parts = []
    for name, matrix in matrices.items():
        size = len(matrix)
        header = "| true K | " + " | ".join(f"counted {k}" for k in range(1, size + 1)) + " | right |"
        rows = [f"| {k} | " + " | ".join(str(n) for n in matrix[k - 1]) + " | "
                + (f"{100 * matrix[k - 1][k - 1] / sum(matrix[k - 1]):.0f} %" if sum(matrix[k - 1]) else "-") + " |"
                for k in range(1, size + 1)]
        parts.append(f"Count confusion on {names.get(name, name)}:\n\n{header}\n|" + "---|" * (size + 2) + "\n"
                     + "\n".join(rows) + "\n")
    return "\n" + "\n".join(parts)


def card(args) -> None:
    """Write MODEL_CARD.md from model.json and curve.csv (every number in it comes from those two files)."""
    from speechsep import pretrained
    from speechsep.config import ExperimentConfig
    from speechsep.io import atomic_write_text

    info, rows = pretrained.read_info(model_dir()), read_curve()
    plot_curve(rows, model_dir() / "learning_curve.png")
    per_split = info["data"]["per_split"]

    def split_line(split):
        block = per_split[split]["librispeech-sample"]
        return f"{block['speakers']} ({block['female']} female, {block['male']} male; {block['minutes']:.1f} min of audio)"

    stage_rows = "\n".join(
        f"| {s['stage']} | {s['optimizer_steps']:,} | {s['minutes']:.0f} | {s['cpu']} "
        f"({', '.join(s['cpu_flags'])}) | {s['precision']} | "
        f"{s['learning_rate']:g} ({s['lr_schedule']}) | {s['dropout']:g} | {short_objective(s)} | "
        f"{', '.join(map(str, stage_talkers(s)))} | {stage_chunks(s)} | {stage_training(s)} | "
        f"{s['started_from']}, {s['optimizer']} | "
        f"{s['final_train_loss']:.4f} | {s['final_val_loss']:.4f} |" for s in info["stages"])
    curve_rows = "\n".join(
        f"| {r['stage']} | {int(r['optimizer_steps']):,} | {float(r['minutes']):.0f} | {r['train_loss']} | "
        f"{r['val_loss']} | {r['val_acc_pit']} | {r['val_sdri']} | {r['val_sdri_ff']} | {r['val_sdri_mm']} | "
        f"{r['val_sdri_fm']} | {short_objective(r)} |" for r in rows)
    scores = info.get("scores", {})
    notes = "".join(f"Stage {s['stage']} {s['note']}.\n\n" for s in info["stages"] if s.get("note"))

    def score_row(name, command):
        block = scores.get(name)
        if not block:
            return f"| {name} | not measured yet | | | | | | |"
        pairs = block["by_pair_type"]
        return (f"| {name} | {block['mixtures']} | **{block['sdri']:.2f}** | {block['si_sdri']:.2f} | "
                f"{pairs.get('female-female', float('nan')):.2f} | {pairs.get('male-male', float('nan')):.2f} | "
                f"{pairs.get('female-male', float('nan')):.2f} | `{command}` |")

    config = ExperimentConfig.load(model_dir() / "config.json")
    if config.counts_talkers:
        shape_comment = "[K, samples], K the talkers it counted,"
        counted = {k: scores.get(count_set(k), {}).get("count_accuracy")
                   for k in config.talker_set}
        talker_limitation = (
            f"Counts {talkers_text(config.talker_set)} with {count_setting(config)}: right on " + ", ".join(
                f"{100 * value:.0f} % of {k}-talker" if value is not None else f"(not measured) {k}-talker"
                for k, value in counted.items()) + f" mixtures of the LibriSpeech test speakers ({TEST_MIXTURES} "
            "each; `python tools/train_pretrained.py score`). A miscounted mixture comes back with the wrong "
            "number of voices; `--speakers K` forces K.")
    else:
        shape_comment = f"[{config.num_speakers}, samples]"
        talker_limitation = (f"{config.num_speakers} talkers, always. A recording of one person is still split in "
                             f"{config.num_speakers}; a further talker is assigned to one of them.")
    counting_section = counting_text(config, scores, info) if config.counts_talkers else ""
    heads_section = heads_text(config, info) if (config.mask_head or config.count_head) else ""
    if NAME == pretrained.DEFAULT_MODEL:
        use = "Shipped inside the package; `python -m speechsep separate MIX.wav` uses it by default."
    else:
        use = (f"Shipped inside the package beside the default `{pretrained.DEFAULT_MODEL}`; "
               f"`python -m speechsep separate MIX.wav --model {NAME}` uses it.")
    text = f"""# Model card: `{NAME}`

{info['summary']}. {use}

```python
from speechsep import pretrained
model = pretrained.load("{NAME}")
estimates = model.separate_file("mix.wav")   # {shape_comment} at the file's sample rate
```

## Training data and licence

The training speakers of the LibriSpeech sample (`../shared/data/librispeech-sample`: 230 speakers of
LibriSpeech `train-clean-100`, one utterance each), with the kit's speaker split (seed 0), and nothing else:

- training: {split_line('train')}
- validation: {split_line('valid')}: the learning curve below is measured on them
- test: {split_line('test')}, never heard in training

LibriSpeech is (c) 2014 Vassil Panayotov, licensed **CC BY 4.0** (Panayotov, Chen, Povey, Khudanpur,
*LibriSpeech: an ASR corpus based on public domain audio books*, ICASSP 2015, http://www.openslr.org/12).
The weights are derived from it and carry the same licence and attribution; no TIMIT audio (CC BY-NC-SA)
was used, so the TIMIT score below measures a corpus the model never saw. Audio was resampled to 8 kHz.
`model.json` lists every speaker of each split.

Mixtures were drawn afresh for every batch (dynamic mixing) of different training speakers ({mixing_text(info['stages'])}), random
4-second crops, relative level uniform in 0-5 dB, speed perturbation 0.9-1.1; the network sees the chunks
of the stage table (100 frames are 0.8 s, 400 are 3.2 s).

## Network and recipe

The study's deep-clustering network (Hershey et al., ICASSP 2016): 2 BLSTM layers of 300 units per
direction on the 129-bin log-magnitude STFT (256-point FFT, hop 64, sqrt-Hann, 8 kHz), a dense layer to
D = 40 unit-norm embeddings per bin; trained with {objectives_text(info['stages'])} on the active bins (40 dB below the mixture's peak are silent); Adam, gradient-norm clipping
5; the batches' chunks are in the stage table below. Masks come from k-means on the active bins' embeddings, soft
(p(c|v) ∝ exp(5 vᵀμ_c)). Float16 storage of the weights ({(model_dir() / 'weights.npz').stat().st_size / 1e6:.1f} MB;
computed in float32 after loading); sha256 in `model.json`, checked at every load.

Training ran in stages, one per working session; each stage after the first started from the previous
stage's exported (float16) weights with a **fresh Adam state** (the optimizer restarted at each stage boundary).

| stage | optimizer steps | minutes | CPU | precision | learning rate | dropout | objective | talkers | chunks per batch | trained | started from | last training loss | last validation loss |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
{stage_rows}
{heads_section}
{notes}In all: **{info['optimizer_steps']:,} optimizer steps, {info['hours']:.1f} hours** of 2-core CPU training{started_text(info)}.

## Learning curve

Every 1,000 steps the weights were saved and later scored on {rows[-1]['val_mixtures'] if rows else VALID_MIXTURES} mixtures of the validation speakers
(`python tools/train_pretrained.py curve --stage N`). Losses are the epoch's mean (training) and the
validation chunks' loss at that epoch.

![learning curve](learning_curve.png)

| stage | optimizer steps | minutes | training loss | validation loss | validation PIT accuracy | validation SDRi (dB) | FF | MM | FM | objective |
|---|---|---|---|---|---|---|---|---|---|---|
{curve_rows}

## Scores on voices it never heard

{TEST_MIXTURES} test mixtures per set (two talkers, 0-5 dB, the shorter source's length, seed 0); SDRi is BSS Eval
SDR improvement (fast-bss-eval), SI-SDRi the scale-invariant one. FF, MM, FM: female-female, male-male,
female-male pairs.

| test set | mixtures | SDRi (dB) | SI-SDRi (dB) | FF | MM | FM | command |
|---|---|---|---|---|---|---|---|
{score_row('timit-sample', f'python -m speechsep evaluate --model {NAME} --timit ../shared/data/timit-sample')}
{score_row('librispeech-sample', f'python -m speechsep evaluate --model {NAME} --corpus-root ../shared/data/librispeech-sample')}
{score_row('librispeech-mini (regression mixtures)', 'python -m pytest -q tests/test_pretrained.py')}

The last row is the 12 fixed mixtures of the built-in LibriSpeech mini's speakers that this model never
trained on (`speechsep.pretrained.regression_mixtures`): `tests/test_pretrained.py` pins this score and
fails if the shipped model moves more than 0.3 dB away from it.
{counting_section}
## Speed

{speed_text(info)}

## Limitations

- {talker_limitation}
- 8 kHz, read English speech from audiobooks, no noise or reverberation in training.
- Trained on 127 voices with one utterance each: unusual voices, languages and recording conditions will
  separate worse than the scores above.
"""
    atomic_write_text(model_dir() / pretrained.CARD_FILE, text)
    print(f"Wrote {model_dir() / pretrained.CARD_FILE} and learning_curve.png")


def main(argv=None) -> None:
    from speechsep.cli import program_start
    from speechsep.config import COUNT_METHODS

    global NAME
    program_start()  # an entry point: the quiet TensorFlow start-up of the scripts
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    model = argparse.ArgumentParser(add_help=False)  # every command's --name
    model.add_argument("--name", choices=sorted(STARTS_FROM), default=NAME,
                       help="the shipped model to work on (default %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)

    def add_command(name: str, **kwargs) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[model], **kwargs)

    command = add_command("train", help="train (or resume) one stage")
    command.add_argument("--stage", type=int, required=True)
    command.add_argument("--minutes", type=float, required=True, help="this stage's wall-clock budget")
    command.add_argument("--snapshot-steps", type=int, default=1000)
    command.add_argument("extra", nargs="*", help="more training-script flags, after --")
    command = add_command("stress", help="count the stress set's mixtures and print the count confusion "
                                                 "(no separation; --model NAME|RUN_DIR, default the tool's model)")
    command.add_argument("--mixtures", type=int, default=TEST_MIXTURES, help="mixtures per talker count")
    command.add_argument("--model", default=None, help="a shipped model's name or a run folder")
    command = add_command("score", help="score the exported model on both samples' test speakers")
    command.add_argument("--mixtures", type=int, default=TEST_MIXTURES, help="test mixtures per set")
    add_command("speed", help="time loading and separating (bench separate) into model.json; "
                                      "run it with nothing else on the CPU")
    add_command("card", help="write MODEL_CARD.md and learning_curve.png from model.json and curve.csv")
    for name, function in (("curve", "score every snapshot of a stage on validation mixtures"),
                           ("export", "export a finished stage into the package")):
        command = add_command(name, help=function)
        command.add_argument("--stage", type=int, required=True)
        if name == "curve":
            command.add_argument("--mixtures", type=int, default=VALID_MIXTURES)
        else:
            command.add_argument("--checkpoint", choices=("last", "best"), default="last",
                                 help="the stage's final weights (default; the next stage continues from them) "
                                      "or its best on the validation loss")
            command.add_argument("--count-method", choices=COUNT_METHODS, default=None,
                                 help="a model trained on several talker counts: the counting method chosen on "
                                      "validation mixtures (default: the stage's own)")
            command.add_argument("--count-threshold", type=float, default=None,
                                 help="a model trained on several talker counts: the count threshold chosen on "
                                      "validation mixtures by `python -m benchmarks meanshift --model NAME` "
                                      "after a first export (the stage folder would load its best.keras, not the "
                                      "exported weights; default: the stage's own)")
    args = parser.parse_args(argv)
    NAME = args.name
    {"train": train, "curve": curve, "export": export, "score": score_sets, "stress": stress,
     "speed": speed, "card": card}[args.command](args)


if __name__ == "__main__":
    main()
