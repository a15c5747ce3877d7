"""Build the two-talker pickle dataset from TIMIT (or another speech corpus).

Draws speaker-disjoint train/valid/test mixtures of 2 (or ``--num-speakers K``)
different talkers at a relative level uniform in [0, 5] dB (training mixtures:
random 4 s crops of each source, ``--crop-seconds``; validation and test: the
shorter source's length), and writes
``OUT/<split>/shard-NNNNN.pkl`` plus ``index.json`` (counts, config, sha256 per
shard), ``manifest.json`` (the split) and ``stats.json`` (training-split
normalisation). Interrupted runs resume where they stopped. The record schema
is documented in ``speechsep/shards.py``.

Reference: J. R. Hershey, Z. Chen, J. Le Roux, S. Watanabe, "Deep clustering:
Discriminative embeddings for segmentation and separation", ICASSP 2016
(the two-talker mixing recipe at 0-5 dB).

    python DataGenerator/datagenerator.py --timit PATH [--corpus-root PATH ...] --out DIR [--mixtures N] [--seed S]
"""

import argparse
import sys
from pathlib import Path

try:
    import speechsep  # noqa: F401
except ImportError:  # running from a clone without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechsep.cli import (add_corpus_arguments, add_dataset_arguments, build_dataset, corpus_from_args,
                           dataset_config_from_args, dataset_name, program_start, run_guarded)

HERE = Path(__file__).resolve().parent


def build(args) -> Path:
    corpus = corpus_from_args(args)
    config = dataset_config_from_args(args)
    out = Path(args.out) if args.out else HERE / "output" / dataset_name(corpus, config)
    return build_dataset(corpus, config, out, overwrite=args.overwrite, progress=not args.quiet)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_corpus_arguments(parser)
    add_dataset_arguments(parser)
    parser.add_argument("--out", default=None,
                        help="dataset folder (default: output/<corpus>-<K>spk-<N>mix-seed<S>[-crop<C>s] "
                             "next to this script)")
    parser.add_argument("--overwrite", action="store_true",
                        help="rebuild even if OUT holds a dataset with another config")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    out_dir = run_guarded(build, args)
    print(f"Dataset ready: {out_dir}")  # build_dataset said whether it wrote or reused it
    return out_dir


if __name__ == "__main__":
    program_start()  # quiet TensorFlow start-up
    main()
