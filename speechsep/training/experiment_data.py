"""What a training run trains and tests on: the two data paths (fresh dynamic mixtures, or a pickle dataset),
each giving an :class:`ExperimentData`, and their checks."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from speechsep import signal
from speechsep.cli import build_dataset, corpus_from_args, dataset_config_from_args, default_data_dir, describe_corpus
from speechsep.config import ExperimentConfig, format_talkers

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



def dynamic_mixing_data(args, config: ExperimentConfig, init_stats=None) -> ExperimentData:
    """Fresh mixtures of the corpus' training and validation speakers (``--dynamic-mixing``), and the test
    mixtures of its test speakers. ``init_stats``: the (mean, std) of the model a run starts from (``--init``),
    else estimated on training mixtures."""
    from speechsep.data import pipeline, testset
    from speechsep.data.mixing import MixingConfig, split_composition, split_speakers

    corpus = corpus_from_args(args)
    print(f"Corpus: {describe_corpus(corpus)}", flush=True)
    mixing = MixingConfig(num_speakers=config.max_talkers, seed=config.seed,  # training and validation
                          talkers=config.talkers or (), talker_weights=config.talker_weights or ())
    train_mixing = dataclasses.replace(mixing, speed_range=tuple(args.speed_perturb),
                                       same_sex_share=args.same_sex_share,
                                       crop_seconds=args.crop_seconds or None,
                                       level_range_db=tuple(args.train_level_range))
    splits = split_speakers(corpus, seed=config.seed, min_speakers=config.max_talkers)
    mean, std = init_stats if init_stats is not None else pipeline.estimate_stats(corpus, splits["train"], mixing)
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
    return ExperimentData(train, valid, (mean, std), test.records, description, long_train, train_input,
                          long_train_input)


def dataset_data(args, config: ExperimentConfig, init_stats=None, cluster=None) -> ExperimentData:
    """The pickle dataset of ``--data`` (built from the corpus options when none is given; under multi-worker
    training each worker other than the chief builds its own copy: ``cluster``), and its test split."""
    from speechsep.data import pipeline, testset
    from speechsep.data.shards import load_stats, read_index

    data_dir = args.data
    if data_dir is None:
        corpus = corpus_from_args(args)
        dataset_config = dataset_config_from_args(args)
        print("No --data given: using the DataGenerator default dataset.", flush=True)
        target = default_data_dir(corpus, dataset_config)
        if cluster is not None and not cluster.is_chief:  # no two workers write one folder
            target = target.with_name(f"{target.name}-worker{cluster.rank}")
        data_dir = build_dataset(corpus, dataset_config, target)
    check_dataset_talkers(data_dir, config)
    stats = init_stats if init_stats is not None else load_stats(data_dir)
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
    return ExperimentData(train, valid, stats, test.records, description, long_train, train_input,
                          long_train_input)
