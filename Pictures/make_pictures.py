"""Make the comparison pictures: every trained experiment and the oracles on the same test mixtures.

Writes Pictures/snr_comparison.png (SNR and SDR improvement per method with
error bars, oracle IBM/IRM/mixture rows included), Pictures/results.md (the
numbers, overall and by pair type), the flow schematics generated from the
real models (Feed_forward.png, RNN.png, Bi-directional-RNN.png,
Bi-directional-RNN-with-loss-function.png, deep_clustering.png) and
FolderStructure.png.

Metrics: SNR as in the original comparison; SDR from BSS Eval (Vincent,
Gribonval, Févotte, IEEE TASLP 2006) via fast-bss-eval; SI-SDR (Le Roux et al.,
ICASSP 2019); STOI (Taal et al., IEEE TASLP 2011).

    python Pictures/make_pictures.py                       # runs in the scripts' output folders
    python Pictures/make_pictures.py --runs runs/quality --timit ../shared/data/timit-sample
"""

import sys
from pathlib import Path

try:
    import speechsep  # noqa: F401
except ImportError:  # running from a clone without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechsep.cli import run_guarded


def main(argv=None):
    from speechsep.compare import main as compare_main

    return run_guarded(compare_main, argv)


if __name__ == "__main__":
    main()
