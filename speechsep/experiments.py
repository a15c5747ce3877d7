"""The six experiments of the original study, and the one runner behind every training script.

``run_experiment(name, script_file, argv)`` parses the common options, gets the
data (a pickle dataset, building the DataGenerator default one if none is
given, or dynamic mixing), trains, evaluates on the TEST speakers (never seen
in training), writes ``results.json``, the separated wavs of one test mixture
and the figures named after the original ones, and prints where they went.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import soundfile

from speechsep import signal
from speechsep.cli import add_corpus_arguments, build_dataset, run_guarded
from speechsep.config import ExperimentConfig


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    model: str
    loss: str
    readout: str
    figures: dict  # role -> PNG file name (roles: accuracy, ibm, wav, loss, embeddings, separation)


def _mask_figures(prefix: str) -> dict:
    return {"accuracy": f"{prefix}accuracy.png", "ibm": f"{prefix}ibm.png", "wav": f"{prefix}recoveredwav.png"}


EXPERIMENTS = {
    "feedforward": Experiment("feedforward", "Feedforward mask network", "feedforward", "mse", "mask",
                              _mask_figures("feedforward")),
    "rnn": Experiment("rnn", "LSTM mask network", "lstm", "mse", "mask", _mask_figures("rnn")),
    "bidirnn": Experiment("bidirnn", "BLSTM mask network", "blstm", "mse", "mask", _mask_figures("bidirnn")),
    "bidiloss": Experiment("bidiloss", "BLSTM + deep-clustering loss, PCA-sign readout", "dc", "dc", "pca_sign",
                           _mask_figures("bidiloss")),
    "deepclustering": Experiment(
        "deepclustering", "Deep clustering (k-means)", "dc", "dc", "kmeans",
        {"embeddings": "deepclustering_embeddings.png", "separation": "deepclustering_separation.png",
         "loss": "deepclusteringloss.png", "ibm": "deep_clustering_ibm.png",
         "wav": "deep_clustering_recoveredwav.png", "accuracy": "deepclusteringaccuracy.png"}),
    "meanshift": Experiment(
        "meanshift", "Deep clustering (mean-shift, counts speakers)", "dc", "dc", "meanshift",
        {"embeddings": "meanshift_embeddings.png", "separation": "meanshift_separation.png",
         "loss": "meanshiftloss.png", "ibm": "mean_shift_ibm.png",
         "wav": "mean_shift_recoveredwav.png", "accuracy": "meanshiftaccuracy.png"}),
}

QUICK = {"mixtures": 60, "epochs": 2, "test_mixtures": 6}


def build_parser(experiment: Experiment, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    add_corpus_arguments(parser)
    group = parser.add_argument_group("data")
    group.add_argument("--data", metavar="DIR", default=None, help="pickle dataset from datagenerator.py")
    group.add_argument("--dynamic-mixing", action="store_true", help="fresh training mixtures every epoch")
    group.add_argument("--mixtures", type=int, default=1000, help="size of the auto-built dataset (default 1000)")
    group.add_argument("--test-mixtures", type=int, default=100, help="test mixtures to evaluate (default 100)")
    group.add_argument("--speed-perturb", type=float, nargs=2, default=(0.9, 1.1), metavar=("LOW", "HIGH"),
                       help="with --dynamic-mixing: speed/pitch factor range of training sources "
                            "(virtual speakers; default 0.9 1.1; 1 1 = off)")
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int, default=10)
    group.add_argument("--minutes", type=float, default=None, help="wall-clock training budget")
    group.add_argument("--steps-per-epoch", type=int, default=None,
                       help="batches per epoch (default: the whole split; 200 with --dynamic-mixing)")
    group.add_argument("--quick", action="store_true", help="about a minute on tiny data")
    group.add_argument("--batch-size", type=int, default=32, help="global batch size")
    group.add_argument("--learning-rate", type=float, default=1e-3)
    group.add_argument("--hidden-units", type=int, default=300)
    group.add_argument("--layers", type=int, default=2)
    group.add_argument("--strategy", default="default", choices=("default", "mirrored", "multiworker", "cpu"))
    group.add_argument("--out", default=None, help="run/output folder (default: <script folder>/output)")
    if experiment.model == "dc":
        group.add_argument("--embedding-dim", type=int, default=40)
        group.add_argument("--clusterer", choices=("kmeans", "meanshift", "pca_sign"), default=experiment.readout)
        group.add_argument("--bandwidth", type=float, default=None, help="mean-shift bandwidth (default: cluster.py)")
    else:
        group.add_argument("--loss", choices=("mse", "pit"), default=experiment.loss,
                           help="mse against the source-1 IBM (original) or permutation-invariant (uPIT)")
    return parser


def config_from_args(experiment: Experiment, args) -> ExperimentConfig:
    is_dc = experiment.model == "dc"
    return ExperimentConfig(
        experiment=experiment.name, model=experiment.model,
        loss="dc" if is_dc else args.loss,
        readout=args.clusterer if is_dc else "mask",
        num_speakers=args.speakers, hidden_units=args.hidden_units, num_layers=args.layers,
        embedding_dim=getattr(args, "embedding_dim", 40), batch_size=args.batch_size,
        learning_rate=args.learning_rate, epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch or (200 if args.dynamic_mixing else None),
        minutes=args.minutes, seed=args.seed, dynamic_mixing=args.dynamic_mixing, strategy=args.strategy,
        meanshift_bandwidth=getattr(args, "bandwidth", None),
    )


def test_mixtures(corpus, speakers: list[str], mixing, count: int) -> list[dict]:
    """The fixed test mixtures of dynamic-mixing runs: same seed, same mixtures for every experiment."""
    from speechsep.mixing import make_mixture

    rng = np.random.default_rng([mixing.seed, 2, 777])
    by_speaker = {s: corpus.utterances_of(s) for s in speakers}
    return [make_mixture(corpus, speakers, mixing, rng, by_speaker) for _ in range(count)]


def prepare_data(args, config: ExperimentConfig):
    """(train dataset, valid dataset, (mean, std), test records, description)."""
    from speechsep import pipeline
    from speechsep.corpus import find_corpus
    from speechsep.mixing import MixingConfig, split_speakers
    from speechsep.shards import iter_records, load_stats

    if config.dynamic_mixing:
        corpus = find_corpus(args.timit, args.corpus)
        mixing = MixingConfig(num_speakers=config.num_speakers, seed=config.seed)
        train_mixing = dataclasses.replace(mixing, speed_range=tuple(args.speed_perturb))
        splits = split_speakers(corpus, seed=config.seed, min_speakers=config.num_speakers)
        mean, std = pipeline.estimate_stats(corpus, splits["train"], mixing)
        train = pipeline.make_dynamic_dataset(corpus, splits["train"], train_mixing, mean, std, config.batch_size,
                                              config.chunk_frames, seed=config.seed)
        valid = pipeline.make_dynamic_dataset(corpus, splits["valid"], mixing, mean, std, config.batch_size,
                                              config.chunk_frames, seed=config.seed + 1).take(8).cache()
        test = test_mixtures(corpus, splits["test"], mixing, args.test_mixtures)
        description = {"dynamic_mixing": True, "corpus": corpus.summary(), "splits": splits,
                       "train_speed_range": list(train_mixing.speed_range)}
        return train, valid, (mean, std), test, description
    data_dir = args.data
    if data_dir is None:
        print("No --data given: building the DataGenerator default dataset first.", flush=True)
        data_dir = build_dataset(args)
    train = pipeline.make_dataset(data_dir, "train", config.batch_size, config.chunk_frames, seed=config.seed)
    valid = pipeline.make_dataset(data_dir, "valid", config.batch_size, config.chunk_frames, shuffle=False)
    test = list(itertools.islice(iter_records(data_dir, "test"), args.test_mixtures))
    index = json.loads((Path(data_dir) / "index.json").read_text())
    description = {"dynamic_mixing": False, "data_dir": str(data_dir), "corpus": index["corpus"],
                   "splits": {k: v["speakers"] for k, v in index["splits"].items()}}
    return train, valid, load_stats(data_dir), test, description


def write_example(out: Path, experiment: Experiment, separator, record: dict, history: dict) -> list[Path]:
    """Wavs of one test mixture and every figure of the experiment."""
    from speechsep import metrics, plots

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
    estimated_first = readout.masks[order[0]] if order[0] < len(readout.masks) else np.zeros_like(log_magnitude)
    figures = {
        "ibm": lambda: plots.plot_masks(log_magnitude, (record["ibm"] == 0).astype(np.float32), estimated_first,
                                        active, title=f"{experiment.title}: masks for source 1 (test mixture)"),
        "wav": lambda: plots.plot_waveforms(record["mixture"], references, estimates, sdr, signal.SAMPLE_RATE,
                                            title=f"{experiment.title}: BSS Eval SDR of each estimate (test mixture)"),
        "accuracy": lambda: plots.plot_accuracy(history, prefix_title=experiment.title),
        "loss": lambda: plots.plot_history(history, [("loss", "train"), ("val_loss", "validation")],
                                           title=f"{experiment.title}: deep-clustering loss", ylabel="loss"),
        "embeddings": lambda: plots.plot_embeddings_pca(readout.embeddings, record["ibm"], active,
                                                        title=f"{experiment.title}: embeddings, PCA"),
        "separation": lambda: plots.plot_cluster_assignment(readout.labels, active, log_magnitude,
                                                            title=f"{experiment.title}: cluster per bin"),
    }
    for role, name in experiment.figures.items():
        written.append(plots.save_figure(figures[role](), out / name))
    return written


def run_experiment(name: str, script_file: str, argv=None, description: str = "") -> dict:
    """Parse, train, evaluate, write results/figures/wavs. Returns the results dict."""
    experiment = EXPERIMENTS[name]
    parser = build_parser(experiment, description or experiment.title)
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            if parser.get_default(key) == getattr(args, key):
                setattr(args, key, value)
    return run_guarded(_run, experiment, script_file, args)


def _run(experiment: Experiment, script_file: str, args) -> dict:
    from speechsep import evaluation
    from speechsep.separation import Separator
    from speechsep.shards import atomic_write_json
    from speechsep.train import history_from_run, train

    config = config_from_args(experiment, args)
    out = Path(args.out) if args.out else Path(script_file).resolve().parent / "output"
    out.mkdir(parents=True, exist_ok=True)
    print(f"{experiment.title}: run folder {out}", flush=True)
    train_data, valid_data, stats, test_records, data_description = prepare_data(args, config)
    if not test_records:
        raise ValueError("no test mixtures to evaluate")
    model, _ = train(config, out, train_data, valid_data, stats, data_description)
    separator = Separator.from_run_dir(out)
    print(f"Evaluating on {len(test_records)} test mixtures of unseen speakers...", flush=True)
    rows = evaluation.evaluate_records(test_records, evaluation.model_separate(separator))
    summary = evaluation.summarise(rows)
    results = {"experiment": experiment.name, "title": experiment.title, "config": config.to_json(),
               "test_speakers": data_description["splits"]["test"], **summary}
    atomic_write_json(out / "results.json", results)
    history = history_from_run(out)
    written = write_example(out, experiment, separator, test_records[0], history)
    overall = summary["overall"]
    print(evaluation.format_table({experiment.name: summary}))
    print(f"Wrote results.json, {sum(p.suffix == '.png' for p in written)} figures and "
          f"{sum(p.suffix == '.wav' for p in written)} wavs to {out}")
    if "speaker_count_accuracy" in overall:
        print(f"Speaker count right on {overall['speaker_count_accuracy']:.0%} of test mixtures")
    return results
