"""Make the comparison pictures: every trained experiment and the oracles on the same test mixtures.

Writes Pictures/snr_comparison.png (SNR and SDR improvement per method with
error bars, in the order the study runs, oracle IBM/IRM/mixture rows last),
Pictures/results.md (the numbers, overall and by pair type),
Pictures/report/index.html (the listening report: every run's estimates of the
best and worst mixtures of each pair type, with players; git-ignored, since its
wavs come from the test corpus), the flow
schematics generated from the real models (Feed_forward.png, RNN.png,
Bi-directional-RNN.png, Bi-directional-RNN-with-loss-function.png,
deep_clustering.png) and FolderStructure.png.

Metrics: SNR as in the original comparison; SDR from BSS Eval (Vincent,
Gribonval, Févotte, IEEE TASLP 2006) via fast-bss-eval; SI-SDR (Le Roux et al.,
ICASSP 2019); STOI (Taal et al., IEEE TASLP 2011).

    python Pictures/make_pictures.py                       # runs in the scripts' output folders
    python Pictures/make_pictures.py --runs runs/quality --timit ../shared/data/timit-sample
    python Pictures/make_pictures.py --timit ../shared/data/timit-sample --pretrained dc-librispeech --add
"""

import argparse
import sys
from pathlib import Path

try:
    import speechsep  # noqa: F401
except ImportError:  # running from a clone without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechsep.cli import add_corpus_arguments, program_start, run_guarded, test_set_from_args

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # schematics.py, beside this script


def make_pictures(args) -> dict:
    from speechsep.config import ExperimentConfig
    from speechsep.eval.compare import compare, discover_runs, pretrained_row_name
    from schematics import write_all  # beside this script

    if args.add:
        return add_pretrained(args)
    runs = discover_runs(args.runs, repository=HERE.parent)
    if args.pretrained:
        runs[pretrained_row_name(args.pretrained)] = args.pretrained
    seeds = {ExperimentConfig.load(p / "config.json").seed for p in runs.values() if isinstance(p, Path)}
    if args.seed is None:
        if len(seeds) > 1:
            raise ValueError(f"the runs were trained with different seeds {sorted(seeds)}: pass --seed")
        args.seed = seeds.pop()
    test = test_set_from_args(args, args.speakers)
    out = Path(args.out)
    summaries = compare(runs, test.records, test.speakers, out, test_corpus=test.corpus)
    if not args.no_schematics:
        write_all(out)
    print((out / "results.md").read_text())
    print(f"Wrote {out / 'snr_comparison.png'}, {out / 'results.md'} and the schematics to {out}")
    if args.report_mixtures:
        write_study_report(runs, test, out / "report", args.report_mixtures)
    return summaries


def add_pretrained(args) -> dict:
    """Add the shipped model's row to the comparison already in ``--out``, on the same test mixtures."""
    from speechsep.eval.compare import add_rows, pretrained_row_name

    if not args.pretrained:
        raise ValueError("--add needs --pretrained NAME (the row to add)")
    args.seed = 0 if args.seed is None else args.seed
    test = test_set_from_args(args, args.speakers)
    out = Path(args.out)
    summaries = add_rows({pretrained_row_name(args.pretrained): args.pretrained}, test.records, test.speakers, out,
                         test.corpus)
    print((out / "results.md").read_text())
    print(f"Added {args.pretrained} to {out / 'results.md'} and {out / 'snr_comparison.png'}")
    return summaries


def write_study_report(runs: dict, test, out: Path, mixtures: int) -> None:
    """The study's listening report (``out/index.html``) of every run on the same test mixtures, oracles included.

    Its wavs are cut from the test corpus: ``Pictures/report/`` is in .gitignore,
    because TIMIT audio (CC BY-NC-SA) must never be committed.
    """
    from speechsep.report import build

    try:
        infos = build.load_runs([p for p in runs.values() if isinstance(p, Path)])  # run folders: shipped
        # models have no run record to show
    except ValueError as error:  # e.g. a run never evaluated: the pictures above still stand
        print(f"note: no listening report: {error}")
        return
    page = build.write_report(infos, out, test, mixtures, oracles=True,
                              title=f"The study: {len(infos)} runs on {test.description}")
    print(f"Wrote the listening report {page}: open {page.resolve().as_uri()} in a browser")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default=None, help="folder of run folders (default: the scripts' output folders)")
    add_corpus_arguments(parser, speakers=False, seed=False)
    parser.add_argument("--data", default=None, help="pickle dataset: use its test split")
    parser.add_argument("--mixtures", type=int, default=100, help="test mixtures (default 100)")
    parser.add_argument("--seed", type=int, default=None, help="split seed (default: the runs')")
    parser.add_argument("--speakers", type=int, default=2, help="talkers per test mixture (default 2)")
    parser.add_argument("--out", default=str(HERE), help="output folder (default: this Pictures folder)")
    parser.add_argument("--no-schematics", action="store_true", help="skip the flow schematics")
    parser.add_argument("--pretrained", default=None, metavar="NAME",
                        help="also compare a shipped model (python -m speechsep models), marked as pretrained")
    parser.add_argument("--add", action="store_true",
                        help="with --pretrained: add its row to the comparison already in --out (same test "
                             "mixtures) instead of re-evaluating every run")
    parser.add_argument("--report-mixtures", type=int, default=6, metavar="N",
                        help="mixtures to listen to in OUT/report/index.html, the study's listening report "
                             "(default 6; 0: no report)")
    return run_guarded(make_pictures, parser.parse_args(argv))


if __name__ == "__main__":
    program_start()  # quiet TensorFlow start-up
    main()
