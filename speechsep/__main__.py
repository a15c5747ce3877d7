"""Command line: ``python -m speechsep evaluate|separate|export|models|report|launch``.

evaluate
    ``python -m speechsep evaluate --model NAME|RUN_DIR [--timit PATH | --data DIR] [--mixtures N] [--seed S]``
    evaluates a shipped model (``python -m speechsep models``), a training run
    folder (any of the six experiments) or an oracle
    (``--model oracle:ibm|oracle:irm|oracle:mixture``) on test mixtures of the
    test speakers, prints a table overall and by pair type, and writes
    ``evaluation.csv`` (per utterance) and ``evaluation.json`` (summary).

separate
    ``python -m speechsep separate [--model NAME|RUN_DIR] [--out DIR] [--clusterer kmeans|meanshift] [--speakers K]
    [--talkers SET] [--rate HZ] [--overwrite] [--shard I/N] MIX.wav|DIR ...``
    separates recordings (any sample rate, channel count and length) into
    ``<name>_s1.wav``, ``<name>_s2.wav``, ... at the file's own rate, full
    band (``--rate 8000``: the 8 kHz band, as before), with the shipped model
    ``dc-librispeech`` unless ``--model`` names another
    (:mod:`speechsep.separation.longform`, the path of the Python API too). A
    model trained on a varying number of talkers counts them unless
    ``--speakers K`` forces K: a lone voice comes back as one file. Folders
    are walked and mirrored under ``--out`` (:mod:`speechsep.separation.files`);
    files already done are skipped unless ``--overwrite``; ``--shard I/N``
    takes every N-th. A bad file (unreadable, or NaN/infinite samples) is
    reported in one line and skipped; the others are still processed, and a
    summary ends the run.

export
    ``python -m speechsep export NAME|RUN_DIR --format saved_model|tflite OUT [--overwrite]`` writes a
    TensorFlow SavedModel that separates an 8 kHz waveform with everything in the graph (:mod:`speechsep.export`).

models
    ``python -m speechsep models`` lists the shipped models and their cards' headline scores.

report
    ``python -m speechsep report RUN [RUN ...] [--model NAME ...] [--out DIR] [--mixtures N] [--oracles]``
    evaluates the runs (and shipped models) on the same test mixtures and writes ``DIR/index.html``,
    a static listening report (players, spectrograms, masks, a sortable table;
    :mod:`speechsep.report`) that opens from ``file://``.

launch
    ``python -m speechsep launch --workers N [--timeout S] -- COMMAND ...`` runs
    COMMAND (e.g. a training script with ``--strategy multiworker``) as N
    workers on loopback, each with its ``TF_CONFIG``, and prints their output
    prefixed ``[worker i]``; exits with the first failing worker's status
    (:mod:`speechsep.launch`).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from speechsep.cli import (TalkersAction, add_clusterer_argument, add_corpus_arguments, check_out_dir, program_start,
                           run_guarded, test_set_from_args)
from speechsep.config import format_talkers
from speechsep.io import atomic_write_json
from speechsep.pretrained import DEFAULT_MODEL

ORACLE_PREFIX = "oracle:"


def evaluate_command(args) -> dict:
    from speechsep.eval import evaluation

    if args.model.startswith(ORACLE_PREFIX):
        args.seed = 0 if args.seed is None else args.seed
        kind = args.model[len(ORACLE_PREFIX):]
        if kind not in evaluation.ORACLES:
            raise ValueError(f"unknown oracle {kind!r}: use oracle:ibm, oracle:irm or oracle:mixture")
        test = test_set_from_args(args, args.speakers or 2)
        separate, name = evaluation.oracle_separate(kind), f"oracle-{kind}"
        out = Path(args.out or f"evaluation-{name}")
    else:
        from speechsep import pretrained

        model = pretrained.load(args.model)  # a shipped name or a run folder
        separator = model.separator
        if args.seed is None:
            args.seed = separator.config.seed  # the split the run was trained with
        test = test_set_from_args(args, args.speakers or separator.config.num_speakers)
        evaluation.check_unseen(model.source.folder, test.speakers, test.corpus)
        readout = args.clusterer or separator.config.readout
        separate = evaluation.model_separate(separator, readout, counted=args.counted)
        how = f"{readout}-counted" if args.counted else readout
        name = f"{model.name}-{how}" if model.source.shipped else f"{separator.config.experiment}-{how}"
        out = Path(args.out or (f"evaluation-{model.name}" if model.source.shipped else model.source.folder / "evaluation"))
    check_out_dir(out)  # before the evaluation: a bad --out is one line, not a lost run
    rows = evaluation.evaluate_records(test.records, separate)
    summary = evaluation.summarise(rows)
    summary.update({"method": name, "test_speakers": test.speakers, "seed": args.seed})
    out.mkdir(parents=True, exist_ok=True)
    fields = sorted({key for row in rows for key in row}, key=lambda k: (k not in ("id", "pair_type"), k))
    with open(out / "evaluation.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_json(out / "evaluation.json", summary)
    print(evaluation.format_table({name: summary}))
    for pair, block in summary["by_pair_type"].items():
        print(f"\n{pair}\n" + evaluation.format_table({name: {"overall": block}}))
    print(f"\nWrote {out / 'evaluation.csv'} ({len(rows)} mixtures) and {out / 'evaluation.json'}")
    return summary


def separate_command(args) -> int:
    """``python -m speechsep separate``: files and folders, each through
    :func:`speechsep.separation.longform.separate_audio`."""
    from speechsep import pretrained
    from speechsep.data.audio import AudioFileError
    from speechsep.separation import files, longform
    from speechsep.separation.separator import prefetched

    shard = files.parse_shard(args.shard) if args.shard is not None else None  # a bad --shard: one line, first
    if args.out:
        check_out_dir(args.out)
    if args.rate is not None and args.rate < 1:
        raise ValueError(f"--rate must be a positive number of Hz, got {args.rate}")
    separator = pretrained.load(args.model or DEFAULT_MODEL).separator
    config, readout = separator.config, args.clusterer
    if config.model != "dc" and readout not in (None, "mask"):
        print(f"note: {args.model} is a mask network; --clusterer {readout} is ignored", file=sys.stderr)
        readout = None
    readout, estimate_count = longform.plan(config, args.speakers, readout, args.talkers)  # bad counts: one line
    listed = files.jobs(args.mixtures, args.out)
    if shard is not None:
        listed = files.shard_of(listed, *shard)
    todo = [job for job in listed
            if args.overwrite or not job.walked or not longform.is_done(job.folder, job.path.stem)]
    skipped, failures, found = len(listed) - len(todo), 0, {}
    # the next files are opened (a short one decoded whole) in a thread while the network separates these; short
    # recordings go through the network FILES_PER_BATCH at a time (longform.network_outputs)
    for group in _groups(prefetched(lambda job: longform.open_audio(job.path), todo, longform.FILES_PER_BATCH),
                         longform.FILES_PER_BATCH):
        opened = {}
        for job, loaded in group:
            try:
                opened[job] = loaded.result()
            except (AudioFileError, ValueError, OSError) as error:
                opened[job] = error
        short = [job for job, audio in opened.items() if not isinstance(audio, Exception) and longform.is_short(audio)]
        prepared = dict(zip(short, longform.network_outputs(separator, [opened[job] for job in short]))) if short \
            else {}
        for job, _ in group:
            sources = _separate_one(job, opened[job], prepared.get(job), separator, args, readout, estimate_count)
            if sources is None:
                failures += 1
            else:
                found[sources] = found.get(sources, 0) + 1
    if len(listed) > 1 or skipped or any(job.walked for job in listed):
        talkers = ", ".join(f"{count} talker{'s' if count > 1 else ''}: {n}" for count, n in sorted(found.items()))
        print(f"separated {sum(found.values())} of {len(listed)} files ({skipped} already done, {failures} failed)"
              + (f"; {talkers}" if talkers else ""))
    return 1 if failures else 0


def export_command(args) -> int:
    """``python -m speechsep export NAME|RUN_DIR --format saved_model|tflite OUT``: :func:`speechsep.export.export`."""
    from speechsep import pretrained
    from speechsep.export import export

    out = Path(args.out)
    if out.exists() and not args.overwrite:  # before loading anything: one line, nothing written
        raise ValueError(f"{out}: already exists (--overwrite replaces it)")
    check_out_dir(out.parent, what="the folder of OUT")
    written = export(pretrained.load(args.model), out, args.format, args.overwrite)
    print(f"Wrote {written} ({args.format}): tf.saved_model.load it; signatures serving_default(waveform) and "
          "separate_k(waveform, num_speakers), 8 kHz in and out" if args.format == "saved_model"
          else f"Wrote {written} (tflite)")
    return 0


def _separate_one(job, audio, prepared, separator, args, readout, estimate_count) -> int | None:
    """Separate one opened recording (or the error opening it) into its files; print what was written, or one
    ``error:`` line naming it. Returns the number of sources written, None when it failed."""
    from speechsep.data.audio import AudioFileError
    from speechsep.separation import longform

    sink = longform.FileSink(job.folder, job.path.stem)
    try:
        if isinstance(audio, Exception):
            raise audio
        _, result = longform.separate_audio(separator, audio, args.speakers, readout, args.talkers, args.rate,
                                            sink=sink, prepared=prepared)
        written = sink.commit()
    except (AudioFileError, ValueError, OSError) as error:  # one line naming the file; the others go on
        sink.abort()
        text = str(error)
        print(f"error: {text if str(job.path) in text else f'{job.path}: {text}'}", file=sys.stderr)
        return None
    except BaseException:
        sink.abort()  # interrupted: nothing half-written under a final name
        raise
    finally:
        if not isinstance(audio, Exception):
            audio.close()
    config = separator.config
    if result.counted:
        talker_word = "talker" if result.n_found == 1 else "talkers"
        how = f" (found {result.n_found} {talker_word}: {config.count_method} count)"
    else:
        how = f" (mean-shift found {result.n_found} speakers)" if estimate_count else ""
    clipped = f"; {sink.clipped} samples clipped at ±1" if sink.clipped else ""
    print(f"{job.path}: wrote {', '.join(p.name for p in written)} to {job.folder} at {result.rate} Hz{how}{clipped}",
          flush=True)
    return result.sources


def _groups(pairs, size: int):
    """Consecutive lists of at most ``size`` items of the iterator ``pairs``."""
    group = []
    for pair in pairs:
        group.append(pair)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def models_command(args) -> int:
    from speechsep import pretrained

    for name in pretrained.available():
        info = pretrained.read_info(pretrained.FOLDER / name)
        default = " (default)" if name == pretrained.DEFAULT_MODEL else ""
        print(f"{name}{default}: {info.get('summary', '')}")
        for line in info.get("headline", []):
            print(f"    {line}")
    if not pretrained.available():
        print("no shipped models in this installation")
    return 0


def report_command(args) -> int:
    """``python -m speechsep report RUN ...``: the listening report of the runs on their common test mixtures."""
    from speechsep.report import build

    if not args.runs and not args.model:
        raise ValueError("report needs a RUN folder or --model NAME")
    runs = build.load_runs(args.runs) if args.runs else []  # not a run, no results.json, other test sets: one line
    runs += [build.load_model(name) for name in args.model or []]  # shipped models, evaluated beside the runs
    out = check_out_dir(args.out)
    if args.mixtures < 1 or args.test_mixtures < 1:
        raise ValueError("--mixtures and --test-mixtures must be at least 1")
    if args.seed is None:
        args.seed = runs[0].config.get("seed", 0)
    data_dir = (runs[0].record.get("data") or {}).get("data_dir")
    if not (args.data or args.timit or args.corpus_root or args.corpus) and data_dir and Path(data_dir).is_dir():
        args.data = data_dir  # the runs' own pickle dataset, if it is still there
    test = test_set_from_args(argparse.Namespace(**{**vars(args), "mixtures": args.test_mixtures}),
                              args.speakers or runs[0].config.get("num_speakers") or 2)
    page = build.write_report(runs, out, test, args.mixtures, args.oracles)
    print(f"Wrote {page}: open {page.resolve().as_uri()} in a browser")
    return 0


def launch_command(args) -> int:
    from speechsep.launch import launch

    command = args.worker_command[1:] if args.worker_command[:1] == ["--"] else args.worker_command
    return launch(command, args.workers, args.timeout)


def main(argv=None) -> int:
    program_start()  # the entry point (also of the `speechsep` console script): quiet TensorFlow start-up
    parser = argparse.ArgumentParser(
        prog="python -m speechsep",
        description="Evaluate a training run (or an oracle) on unseen test speakers, separate wav files with it, "
                    "or launch a training script as several local workers.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     help="evaluate, separate, export, models, report or launch; "
                                          "python -m speechsep COMMAND --help lists its options")
    evaluate = commands.add_parser(
        "evaluate", help="metrics of a run or an oracle on unseen test speakers",
        description="Metrics of a training run (or an oracle) on test mixtures of speakers it never heard; "
                    "writes evaluation.csv (per mixture) and evaluation.json (summary).")
    evaluate.add_argument("--model", required=True,
                          help="a shipped model NAME, a RUN_DIR or oracle:ibm|oracle:irm|oracle:mixture")
    add_corpus_arguments(evaluate, speakers=False, seed=False)
    evaluate.add_argument("--data", default=None, help="pickle dataset: evaluate on its test split")
    evaluate.add_argument("--mixtures", type=int, default=100, help="test mixtures (default 100)")
    evaluate.add_argument("--seed", type=int, default=None, help="split and mixing seed (default: the run's)")
    evaluate.add_argument("--speakers", type=int, default=None, help="talkers per test mixture (default: the run's)")
    add_clusterer_argument(evaluate)
    evaluate.add_argument("--counted", action="store_true",
                          help="a model trained with --talkers: separate into the number of talkers it counts, as "
                               "separate does, not the true number (a talker the count missed scores as the "
                               "mixture, 0 dB; of too many estimates the best-matching ones are scored)")
    evaluate.add_argument("--out", default=None, help="output folder (default: RUN_DIR/evaluation)")
    separate = commands.add_parser(
        "separate", help="separate recordings (files or folders) with a shipped model or a trained run",
        description="Separate recordings (any sample rate, channel count and length) into <name>_s1.wav, "
                    "<name>_s2.wav, ... at the file's own rate, full band. Folders are walked for .wav and .flac "
                    "files and their tree is mirrored under --out. A bad file is reported in one line and the "
                    "others go on; the exit status is 1 if any failed.")
    separate.add_argument("--model", default=None, metavar="NAME|RUN_DIR",
                          help="a shipped model (python -m speechsep models) or the --out folder of a training "
                               f"script (default: the shipped model {DEFAULT_MODEL})")
    separate.add_argument("--out", default=None, help="folder for the separated wavs (default: next to each input); "
                                                      "a folder input's tree is mirrored under it")
    add_clusterer_argument(separate)
    separate.add_argument("--speakers", type=int, default=None,
                          help="number of talkers (default: a model trained with --talkers counts them, mean-shift "
                               "estimates them, any other the run's)")
    separate.add_argument("--talkers", action=TalkersAction, default=None, metavar="SET",
                          help="a model trained with --talkers counts among these talker counts only, one word "
                               "before the files (e.g. 1-2 or 1,3; default: all it was trained for)")
    separate.add_argument("--rate", type=int, default=None, metavar="HZ",
                          help="sample rate of the estimates (default: each file's own, full band; 8000: the 8 kHz "
                               "band the network hears, as before)")
    separate.add_argument("--overwrite", action="store_true",
                          help="separate files found in a folder again even if their <name>_s1.wav exists "
                               "(default: skip them, so a rerun picks up where a killed run stopped)")
    separate.add_argument("--shard", default=None, metavar="I/N",
                          help="take every N-th file from the I-th (I counted from 0), e.g. "
                               "$SLURM_ARRAY_TASK_ID/4: the tasks of a job array split the files between them")
    separate.add_argument("mixtures", nargs="+", metavar="MIX.wav|DIR", help="the recordings, or folders of them")
    export = commands.add_parser(
        "export", help="write a model as a TensorFlow SavedModel (STFT, network, count, k-means, iSTFT in-graph)",
        description="Write a shipped model or a run as a SavedModel folder whose serving signature takes an 8 kHz "
                    "waveform and returns the estimates [K, samples] (separate_k also takes the number of talkers); "
                    "it loads with plain tf.saved_model.load, without speechsep.")
    export.add_argument("model", metavar="NAME|RUN_DIR", help="a shipped model or a training run folder")
    export.add_argument("out", metavar="OUT", help="the SavedModel folder (or .tflite file) to write")
    export.add_argument("--format", choices=("saved_model", "tflite"), default="saved_model",
                        help="saved_model (default) or tflite")
    export.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    commands.add_parser("models", help="list the shipped models and their headline scores",
                        description="List the models shipped inside the package, with the scores of their cards.")
    report = commands.add_parser(
        "report", help="a static HTML listening report of one or more runs",
        description="Evaluate the runs on the same test mixtures and write DIR/index.html (opens from file://, "
                    "no network): the comparison table and figure, a sortable per-mixture table, and for the "
                    "best and worst mixture of each pair type players for the mixture, the references and every "
                    "run's estimates with spectrograms and masks, and each run's config and training curve.")
    report.add_argument("runs", nargs="*", metavar="RUN", help="training run folders (holding results.json)")
    report.add_argument("--model", action="append", default=None, metavar="NAME",
                        help="a shipped model (python -m speechsep models) to listen to beside the runs, evaluated on "
                             "the same mixtures (repeatable)")
    report.add_argument("--out", default="report", metavar="DIR", help="output folder (default: ./report)")
    report.add_argument("--mixtures", type=int, default=6, metavar="N",
                        help="mixtures to listen to (default 6: the best and worst of each pair type)")
    report.add_argument("--test-mixtures", type=int, default=100, metavar="M",
                        help="test mixtures to evaluate and choose from (default 100)")
    report.add_argument("--oracles", action="store_true",
                        help="add the oracle IRM and mixture rows (the oracle IBM row is always there)")
    add_corpus_arguments(report, speakers=False, seed=False)
    report.add_argument("--data", default=None, help="pickle dataset: use its test split (default: the runs' own "
                                                     "dataset, if there is one)")
    report.add_argument("--seed", type=int, default=None, help="split and mixing seed (default: the first run's)")
    report.add_argument("--speakers", type=int, default=None, help="talkers per test mixture (default: the run's)")
    launch = commands.add_parser(
        "launch", help="run a training command as N local workers (--strategy multiworker)",
        description="Run COMMAND as N workers on free 127.0.0.1 ports, each with the TF_CONFIG of its place in "
                    "the cluster (worker 0 is the chief); print their output prefixed [worker i]. Exits non-zero "
                    "as soon as any worker fails, after stopping the others.")
    launch.add_argument("--workers", type=int, default=2, help="number of worker processes (default 2)")
    launch.add_argument("--timeout", type=float, default=None, metavar="S",
                        help="stop every worker after S seconds and exit with status 124")
    launch.add_argument("worker_command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...",
                        help="the command every worker runs, e.g. -- python Deep-clustering/train_deep_clustering.py "
                             "--quick --strategy multiworker")
    args = parser.parse_args(argv)
    if args.command == "launch":
        return run_guarded(launch_command, args)
    if args.command == "models":
        return run_guarded(models_command, args)
    if args.command == "export":
        return run_guarded(export_command, args)
    if args.command == "report":
        return run_guarded(report_command, args)
    if args.command == "evaluate":
        run_guarded(evaluate_command, args)
        return 0
    return run_guarded(separate_command, args)


if __name__ == "__main__":
    sys.exit(main())
