"""Benchmarks that print a table: ``python -m benchmarks BENCHMARK``, run from the repository root.

BENCHMARK is data, discovery, separate, meanshift, softmask, quality, workers, train, longform or shortfiles.

This folder is the lab, not the library: it is not installed with the package, and
nothing under ``speechsep/`` imports it. Each subcommand lives in its own module and
only calls the library. Default paths are relative to the current folder: the TIMIT
sample at ``$SPEECHSEP_TIMIT_SAMPLE`` (default ``../shared/data/timit-sample``), the
LibriSpeech sample at ``$SPEECHSEP_LIBRISPEECH_SAMPLE`` (default
``../shared/data/librispeech-sample``) and trained runs in ``runs/quality``.
docs/benchmarks.md quotes their output.
"""

import os

SHARED_SAMPLE = os.environ.get("SPEECHSEP_TIMIT_SAMPLE", "../shared/data/timit-sample")
SHARED_LIBRISPEECH = os.environ.get("SPEECHSEP_LIBRISPEECH_SAMPLE", "../shared/data/librispeech-sample")
QUALITY_DIR = "runs/quality"
