"""Benchmarks that print a table: ``python -m speechsep.bench data|quality``.

* ``data``: mixtures per second and peak RSS of the dataset generator (by
  default on the shared TIMIT sample, reusing its utterances as often as needed).
* ``separate``: real-time factor of ``Separator.separate`` on a 3 s mixture
  with each readout (k-means, mean-shift), median of repeated runs.
* ``meanshift``: speaker-count accuracy and time of mean-shift per bandwidth on
  a trained deep-clustering run: tuned on VALIDATION mixtures, reported on test
  mixtures of 2 and 3 speakers.
* ``quality``: trains every experiment with dynamic mixing under a wall-clock
  budget on the training speakers, evaluates all of them and the oracle masks
  on the SAME test mixtures of unseen speakers, and prints the table overall
  and by pair type (also written to ``<out>/quality.md`` and ``quality.json``).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_SAMPLE = str(REPO_ROOT.parent / "shared" / "data" / "timit-sample")
QUALITY_DIR = REPO_ROOT / "runs" / "quality"


def bench_data(args) -> dict:
    from speechsep.corpus import find_corpus
    from speechsep.mixing import MixingConfig
    from speechsep.shards import DatasetConfig, write_dataset

    corpus = find_corpus(args.timit, args.corpus)
    config = DatasetConfig.from_total(args.mixtures, shard_size=args.shard_size, mixing=MixingConfig(seed=0))
    out = Path(tempfile.mkdtemp(prefix="speechsep-bench-", dir=args.scratch))
    try:
        start = time.perf_counter()
        write_dataset(corpus, out, config, progress=not args.quiet)
        seconds = time.perf_counter() - start
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    row = {"corpus": corpus.name, "mixtures": args.mixtures, "seconds": seconds,
           "mixtures_per_second": args.mixtures / seconds, "peak_rss_mb": peak_mb, "disk_mb": size / 2**20}
    print(f"{'corpus':<16}{'mixtures':>10}{'seconds':>10}{'mix/s':>10}{'peak RSS MB':>14}{'disk MB':>10}")
    print(f"{row['corpus']:<16}{row['mixtures']:>10}{row['seconds']:>10.1f}{row['mixtures_per_second']:>10.1f}"
          f"{row['peak_rss_mb']:>14.0f}{row['disk_mb']:>10.0f}")
    return row


def bench_separate(args) -> list[dict]:
    import numpy as np

    from speechsep.corpus import find_corpus
    from speechsep.experiments import test_mixtures
    from speechsep.mixing import MixingConfig, split_speakers
    from speechsep.separation import Separator

    separator = Separator.from_run_dir(args.model)
    corpus = find_corpus(args.timit, args.corpus)
    speakers = split_speakers(corpus, seed=0)["test"]
    record = next(r for r in test_mixtures(corpus, speakers, MixingConfig(length_mode="max"), 20)
                  if len(r["mixture"]) >= 3 * 8000)
    mixture = record["mixture"][: 3 * 8000]
    readouts = ["kmeans", "meanshift"] if separator.config.model == "dc" else ["mask"]
    rows = []
    print(f"{'model':<20}{'readout':<12}{'seconds (3 s mix)':>20}{'RTF':>8}")
    for readout in readouts:
        separator.separate(mixture, readout=readout)  # warm-up (graph tracing)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            separator.separate(mixture, readout=readout)
            times.append(time.perf_counter() - start)
        seconds = float(np.median(times))
        rows.append({"model": separator.config.experiment, "readout": readout, "seconds": seconds,
                     "rtf": seconds / 3.0})
        print(f"{separator.config.experiment:<20}{readout:<12}{seconds:>20.3f}{seconds / 3.0:>8.3f}")
    return rows


def bench_meanshift(args) -> list[dict]:
    import numpy as np

    from speechsep import cluster, signal
    from speechsep.corpus import find_corpus
    from speechsep.experiments import test_mixtures
    from speechsep.mixing import MixingConfig, split_speakers
    from speechsep.separation import Separator

    separator = Separator.from_run_dir(args.model)
    corpus = find_corpus(args.timit, args.corpus)
    seed = separator.config.seed
    sets = {}
    for split, speakers_per_mix in (("valid", 2), ("test", 2), ("test", 3)):
        speakers = split_speakers(corpus, seed=seed)[split]
        if len(speakers) < speakers_per_mix:
            continue
        mixing = MixingConfig(num_speakers=speakers_per_mix, seed=seed + 100 * speakers_per_mix)
        embedded = []
        for record in test_mixtures(corpus, speakers, mixing, args.mixtures):
            spectrum = signal.stft(record["mixture"])
            embedded.append((separator.network_output(spectrum), signal.active_bins(spectrum)))
        sets[f"{split} {speakers_per_mix}-spk"] = (speakers_per_mix, embedded)
    rows = []
    print(f"{'bandwidth':>10}{'min frac':>10}" + "".join(f"{name + ' count ok':>22}" for name in sets)
          + f"{'ms / 3 s mix':>14}")
    for bandwidth in args.bandwidths:
        for fraction in args.min_fractions:
            row = {"bandwidth": bandwidth, "min_cluster_fraction": fraction}
            times = []
            for name, (speakers_per_mix, embedded) in sets.items():
                right = 0
                for embeddings, active in embedded:
                    start = time.perf_counter()
                    found = cluster.cluster_embeddings(embeddings, active, method="meanshift", bandwidth=bandwidth,
                                                       min_cluster_fraction=fraction).n_found
                    times.append((time.perf_counter() - start) * 3 * signal.SAMPLE_RATE / signal.HOP_LENGTH
                                 / embeddings.shape[0])
                    right += found == speakers_per_mix
                row[name] = right / len(embedded)
            row["ms_per_3s"] = 1000 * float(np.median(times))
            rows.append(row)
            print(f"{bandwidth:>10.3f}{fraction:>10.2f}" + "".join(f"{row[name]:>22.0%}" for name in sets)
                  + f"{row['ms_per_3s']:>14.0f}")
    return rows


REUSE_DC_NETWORK = {"meanshift": "meanshift", "bidiloss": "pca_sign"}  # row -> readout


def reuse_dc_network(dc_run: Path, run_dir: Path, experiment: str, readout: str, records: list[dict],
                     test_speakers: list[str]) -> None:
    """A row that shares the deep-clustering network (same architecture and loss) with another readout.

    The mean-shift and BLSTM+DC-loss experiments train exactly that network;
    reusing it isolates the readout and saves two 30-minute retrainings on 2 CPU
    cores (the README says so). Evaluated on ``records``; results go to
    ``run_dir/results.json``.
    """
    import shutil

    from speechsep import evaluation
    from speechsep.config import ExperimentConfig
    from speechsep.separation import Separator
    from speechsep.shards import atomic_write_json

    if not (dc_run / "config.json").is_file():
        raise ValueError(f"the {experiment} row reuses {dc_run}: train the deepclustering row first")
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("best.keras", "stats.json", "run.json"):
        shutil.copyfile(dc_run / name, run_dir / name)
    config = ExperimentConfig.load(dc_run / "config.json").replace(experiment=experiment, readout=readout)
    config.save(run_dir / "config.json")
    separator = Separator.from_run_dir(run_dir)
    summary = evaluation.summarise(evaluation.evaluate_records(records, evaluation.model_separate(separator)))
    atomic_write_json(run_dir / "results.json", {"experiment": experiment, "reuses_network_of": str(dc_run),
                                                 "config": config.to_json(), "test_speakers": test_speakers,
                                                 **summary})


QUALITY_RUNS = (  # (row name, script, extra arguments, budget kind)
    ("deepclustering", "Deep-clustering/train_deep_clustering.py", [], "dc"),
    ("meanshift", "Deep-clustering-with-mean-shift-clustering/train_deep_clustering.py", [], "dc"),
    ("bidiloss", "Bi-Directional-RNN-with-loss-function/train_bi_with_loss_function.py", [], "dc"),
    ("bidirnn", "Bi-Directional-RNN/train_bi_directional_RNN.py", [], "mask"),
    ("bidirnn-pit", "Bi-Directional-RNN/train_bi_directional_RNN.py", ["--loss", "pit"], "mask"),
    ("rnn", "RNN/train_rnn.py", [], "mask"),
    ("feedforward", "Feedforward/train_net.py", [], "mask"),
)


def bench_quality(args) -> dict:
    import importlib.util
    import json

    from speechsep.compare import oracle_summaries, tables_markdown
    from speechsep.corpus import find_corpus
    from speechsep.experiments import test_mixtures
    from speechsep.mixing import MixingConfig, split_speakers
    from speechsep.shards import atomic_write_json

    out = Path(args.out)
    corpus = find_corpus(args.timit)
    splits = split_speakers(corpus, seed=args.seed)
    records = test_mixtures(corpus, splits["test"], MixingConfig(seed=args.seed), args.test_mixtures)
    summaries = {}
    for name, script, extra, budget in QUALITY_RUNS:
        run_dir = out / name
        selected = not args.only or name in args.only
        if selected and name in REUSE_DC_NETWORK and (args.retrain or not (run_dir / "results.json").is_file()):
            reuse_dc_network(out / "deepclustering", run_dir, name, REUSE_DC_NETWORK[name], records, splits["test"])
        elif selected and (args.retrain or not (run_dir / "results.json").is_file()):
            spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO_ROOT / script)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            minutes = args.dc_minutes if budget == "dc" else args.mask_minutes
            module.main(["--timit", args.timit, "--dynamic-mixing", "--minutes", str(minutes), "--epochs", "1000",
                         "--steps-per-epoch", str(args.steps_per_epoch), "--test-mixtures", str(args.test_mixtures),
                         "--seed", str(args.seed), "--out", str(run_dir)] + extra)
        if (run_dir / "results.json").is_file():  # rows trained earlier (e.g. another --only) are reported too
            summaries[name] = json.loads((run_dir / "results.json").read_text())
    summaries.update(oracle_summaries(records))
    header = (f"Test speakers never seen in training: {', '.join(splits['test'])}; {args.test_mixtures} "
              f"mixtures; seed {args.seed}; DC budget {args.dc_minutes} min, mask nets {args.mask_minutes} min "
              "of 2-core CPU training with dynamic mixing.")
    text = tables_markdown(summaries, header)
    print(text)
    (out / "quality.md").write_text(text)
    atomic_write_json(out / "quality.json", summaries)
    return summaries


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m speechsep.bench", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="dataset generation speed and memory")
    data.add_argument("--timit", default=SHARED_SAMPLE)
    data.add_argument("--corpus", choices=("timit", "nltk", "toy"), default=None)
    data.add_argument("--mixtures", type=int, default=2000)
    data.add_argument("--shard-size", type=int, default=100)
    data.add_argument("--scratch", default=None, help="folder for the temporary dataset (deleted after)")
    data.add_argument("--quiet", action="store_true")
    separate = commands.add_parser("separate", help="separation real-time factor on a 3 s mixture")
    separate.add_argument("--model", default=str(QUALITY_DIR / "deepclustering"), help="a training run folder")
    separate.add_argument("--timit", default=SHARED_SAMPLE)
    separate.add_argument("--corpus", choices=("timit", "nltk", "toy"), default=None)
    separate.add_argument("--repeats", type=int, default=7)
    meanshift = commands.add_parser("meanshift", help="mean-shift speaker counting per bandwidth")
    meanshift.add_argument("--model", default=str(QUALITY_DIR / "deepclustering"))
    meanshift.add_argument("--timit", default=SHARED_SAMPLE)
    meanshift.add_argument("--corpus", choices=("timit", "nltk", "toy"), default=None)
    meanshift.add_argument("--mixtures", type=int, default=50)
    meanshift.add_argument("--bandwidths", type=float, nargs="+", default=[0.05, 0.1, 0.15, 0.2])
    meanshift.add_argument("--min-fractions", type=float, nargs="+", default=[0.05, 0.1, 0.15])
    quality = commands.add_parser("quality", help="train all experiments, evaluate with the oracles")
    quality.add_argument("--timit", default=SHARED_SAMPLE)
    quality.add_argument("--out", default=str(QUALITY_DIR))
    quality.add_argument("--dc-minutes", type=float, default=30.0)
    quality.add_argument("--mask-minutes", type=float, default=8.0)
    quality.add_argument("--steps-per-epoch", type=int, default=150)
    quality.add_argument("--test-mixtures", type=int, default=100)
    quality.add_argument("--seed", type=int, default=0)
    quality.add_argument("--only", nargs="*", default=None, help="rows to train now (others are reported if their results.json exists)")
    quality.add_argument("--retrain", action="store_true", help="retrain even if results.json exists")
    args = parser.parse_args(argv)
    return {"data": bench_data, "separate": bench_separate, "meanshift": bench_meanshift,
            "quality": bench_quality}[args.command](args)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
