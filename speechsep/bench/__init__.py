"""Benchmarks that print a table: ``python -m speechsep.bench BENCHMARK``.

BENCHMARK is data, discovery, separate, meanshift, softmask, quality, workers, train, longform or shortfiles.

Each subcommand lives in its own module and only calls the library. Default
paths are relative to the current folder (run them from the repository root):
the shared TIMIT sample at ``../shared/data/timit-sample`` and trained runs in
``runs/quality``. The README's benchmark section quotes their output.
"""

SHARED_SAMPLE = "../shared/data/timit-sample"
SHARED_LIBRISPEECH = "../shared/data/librispeech-sample"
QUALITY_DIR = "runs/quality"
