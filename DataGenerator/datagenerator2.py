"""Feed batches from a pickle dataset (or from dynamic mixing) into TensorFlow.

A ``tf.data`` pipeline reads the shards (sha256-checked, restricted unpickler),
cuts each spectrogram into 100-frame chunks (dropping the remainder, or
``--pad`` to pad it with an inactive mask), shuffles, batches and prefetches.
It yields normalised log-magnitude features plus the IBM and the active-bin
mask. ``--dynamic-mixing`` draws fresh training mixtures every epoch instead.

Reference: Hershey et al., "Deep clustering", ICASSP 2016 (100-frame chunks).

    python DataGenerator/datagenerator2.py --data DIR [--split train] [--batch-size 32]
"""

import argparse
import sys
from pathlib import Path

try:
    import speechsep  # noqa: F401
except ImportError:  # running from a clone without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechsep.cli import (add_corpus_arguments, add_crop_argument, corpus_from_args, describe_corpus,
                           mixing_from_args, program_start, run_guarded)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="dataset folder written by datagenerator.py")
    parser.add_argument("--split", default="train", choices=("train", "valid", "test"), help="split to read")
    parser.add_argument("--batch-size", type=int, default=32, help="chunks per batch (default 32)")
    parser.add_argument("--chunk-frames", type=int, default=100, help="frames per chunk (default 100)")
    parser.add_argument("--pad", action="store_true", help="pad the last chunk instead of dropping it")
    parser.add_argument("--dynamic-mixing", action="store_true", help="fresh mixtures, nothing on disk")
    parser.add_argument("--batches", type=int, default=2, help="batches to print")
    add_corpus_arguments(parser)
    add_crop_argument(parser)
    args = parser.parse_args(argv)
    if args.data is not None and not args.dynamic_mixing:
        from speechsep.data.shards import verify_dataset

        run_guarded(verify_dataset, args.data)  # a bad shard is reported before TensorFlow loads
    from speechsep.data import pipeline

    def run():
        if args.dynamic_mixing:
            from speechsep.data.mixing import split_speakers

            corpus = corpus_from_args(args)
            mixing = mixing_from_args(args)
            speakers = split_speakers(corpus, seed=args.seed, min_speakers=args.num_speakers)["train"]
            mean, std = pipeline.estimate_stats(corpus, speakers, mixing)
            dataset = pipeline.make_dynamic_dataset(corpus, speakers, mixing, mean, std, args.batch_size,
                                                    args.chunk_frames, seed=args.seed)
            summary = f"fresh mixtures of the {len(speakers)} training speakers of {describe_corpus(corpus)}"
        else:
            if args.data is None:
                raise ValueError("--data DIR is required (or use --dynamic-mixing)")
            dataset = pipeline.make_dataset(args.data, args.split, args.batch_size, args.chunk_frames,
                                            pad_remainder=args.pad, seed=args.seed)
            counts = pipeline.describe(args.data)
            summary = (f"{counts['path']} ({counts['corpus']}, {counts['num_sources']} talkers; mixtures per split: "
                       + ", ".join(f"{k} {v}" for k, v in counts["splits"].items()) + ")")
        print(f"Dataset: {summary}")
        shapes = []
        for number, (features, targets) in enumerate(dataset.take(args.batches)):
            shapes.append({"features": tuple(features.shape), "ibm": tuple(targets["ibm"].shape),
                           "active": tuple(targets["active"].shape)})
            print(f"batch {number}: features {tuple(features.shape)} {features.dtype.name}, "
                  f"ibm {tuple(targets['ibm'].shape)}, active {tuple(targets['active'].shape)} "
                  f"({float(targets['active'].numpy().mean()):.0%} active bins)")
        return shapes

    return run_guarded(run)


if __name__ == "__main__":
    program_start()  # quiet TensorFlow start-up
    main()
