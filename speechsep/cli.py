"""Argument groups and entry points shared by the experiment scripts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from speechsep.corpus import REPO_ROOT, CorpusError, find_corpus
from speechsep.shards import DatasetConfig, ShardError, dataset_summary, write_dataset
from speechsep.mixing import MixingConfig

DEFAULT_DATA_ROOT = REPO_ROOT / "DataGenerator" / "output"


def add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("corpus")
    group.add_argument("--timit", metavar="PATH", default=None,
                       help="TIMIT folder (LDC, NLTK-sample or <speaker>/*.wav layout); "
                            "default: $TIMIT_WAV, ./TIMIT_WAV, then the NLTK sample")
    group.add_argument("--corpus", choices=("timit", "nltk", "toy"), default=None,
                       help="force a corpus source; 'toy' is synthetic, NOT speech")
    group.add_argument("--seed", type=int, default=0, help="seed for splits, mixing and training")
    group.add_argument("--speakers", type=int, default=2, help="talkers per mixture (default 2)")


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("mixtures")
    group.add_argument("--mixtures", type=int, default=1000,
                       help="total mixtures, split 80/10/10 into train/valid/test (default 1000)")
    group.add_argument("--level-range", type=float, nargs=2, default=(0.0, 5.0), metavar=("LOW", "HIGH"),
                       help="relative level between talkers in dB, uniform (default 0 5)")
    group.add_argument("--length", choices=("min", "max"), default="min",
                       help="mixture length: shortest source (min, default) or longest (max)")
    group.add_argument("--shard-size", type=int, default=100, help="mixtures per pickle shard")


def dataset_config_from_args(args) -> DatasetConfig:
    """DataGenerator options; training scripts lack the mixing flags and get the generator defaults."""
    mixing = MixingConfig(num_speakers=args.speakers, level_range_db=tuple(getattr(args, "level_range", (0.0, 5.0))),
                          length_mode=getattr(args, "length", "min"), seed=args.seed)
    return DatasetConfig.from_total(args.mixtures, shard_size=getattr(args, "shard_size", 100), mixing=mixing)


def default_data_dir(corpus_name: str, config: DatasetConfig) -> Path:
    total = sum(config.mixtures.values())
    return DEFAULT_DATA_ROOT / f"{corpus_name}-{config.mixing.num_speakers}spk-{total}mix-seed{config.mixing.seed}"


def build_dataset(args, out=None, progress=True) -> Path:
    """Resolve the corpus and write (or resume) the dataset. Returns its folder."""
    corpus = find_corpus(args.timit, args.corpus)
    config = dataset_config_from_args(args)
    out_dir = Path(out) if out else default_data_dir(corpus.name, config)
    print(f"Corpus: {corpus.summary()}")
    print(f"Writing {sum(config.mixtures.values())} mixtures to {out_dir} (resumes if interrupted)")
    write_dataset(corpus, out_dir, config, overwrite=getattr(args, "overwrite", False), progress=progress)
    if corpus.skipped:
        print(f"Skipped {len(corpus.skipped)} unusable file(s); listed in {out_dir / 'index.json'}")
    print(dataset_summary(out_dir))
    return out_dir


def run_guarded(function, *args):
    """Run ``function``; print user errors (bad corpus, bad shard, bad value) cleanly, exit code 2."""
    try:
        return function(*args)
    except (CorpusError, ShardError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
