"""``bench longform`` and ``bench shortfiles``: separating real recordings the way users bring them.

``longform`` builds a two-talker recording of ``--minutes`` at ``--rate``
from two test speakers of the model (one female, one male, never trained on)
of a LibriSpeech folder (each talker's utterances looped with random pauses,
equal level), separates it with ``python -m speechsep separate`` in a child
process (counting, as a user would run it) and prints one table: the child's
peak memory (``VmHWM``, its own high-water resident set) and wall time (start-up included),
the real-time factor, the count, talker continuity (the share of 1-minute
segments whose best-matching estimate per talker is the whole file's), the
whole-file SI-SDRi, and the mean SI-SDRi of ``--clips`` 4-s clips cut from
the same recording and separated one by one in this process (2 talkers),
scored at the full rate and in the 8 kHz band (``rate=8000``, references and
mixture resampled to 8 kHz). The generated audio lives in a temporary folder
(``--work`` keeps it).

``shortfiles`` writes ``--files`` mixtures of ``--seconds`` (two test
speakers each) at ``--rate`` into a folder and times ``separate DIR --out
OUT``: cold (a child process: start-up, model load and compiling included)
and warm (in this process, after a separate call on other files has compiled the network for a batch of
files and for one).
"""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from speechsep.signal import SAMPLE_RATE

CLIP_SECONDS = 4.0
PEAK_PROGRAM = """
import re, sys
from speechsep.__main__ import main
try:
    code = main(sys.argv[1:])
finally:  # the child's own high-water mark: VmHWM of its address space, not ru_maxrss (see below)
    status = open("/proc/self/status").read()
    print("peak-kb", re.search(r"VmHWM:\\s+(\\d+)", status)[1], file=sys.stderr)
sys.exit(code)
"""
"""Runs ``python -m speechsep separate`` and prints its peak resident memory. ``ru_maxrss`` of a child is
not that: Python starts children with vfork, and at exec Linux records the high-water mark of the address space
left behind, which is the benchmark's own (it holds the hour's references), into the child's ``ru_maxrss``."""


def _speakers(model: str, root: Path, chosen: str | None) -> tuple[list[Path], list[Path]]:
    """The audio files of two speakers of the LibriSpeech folder ``root``: ``chosen`` ("ID,ID"), or the first
    female and first male test speaker of ``model`` (sorted ids). Refuses a speaker the model trained on."""
    from speechsep import pretrained

    trained = pretrained.split_speakers_of(pretrained.read_info(pretrained.FOLDER / model), "train")
    sexes = {}
    for line in (root / "SPEAKERS.TXT").read_text().splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) >= 2 and not line.startswith(";"):
            sexes[parts[0]] = parts[1]
    folders = {p.name: p for p in (root / "train-clean-100").iterdir() if p.is_dir()}
    if chosen:
        ids = [s.strip() for s in chosen.split(",")]
    else:
        test = pretrained.split_speakers_of(pretrained.read_info(pretrained.FOLDER / model), "test")
        ids = [next(i for i in sorted(folders) if i in test and sexes.get(i) == sex) for sex in "FM"]
    if len(ids) != 2 or any(i not in folders for i in ids) or set(ids) & trained:
        raise ValueError(f"--speakers {chosen}: two speaker ids of {root} that {model} never trained on")
    return tuple(sorted(folders[i].rglob("*.flac")) for i in ids)


def _talker_track(files: list[Path], samples: int, rate: int, rng) -> np.ndarray:
    """One talker speaking for ``samples``: their utterances in turn, with pauses of 0.2-1.5 s, float32."""
    from speechsep.data.audio import load_audio

    utterances = [load_audio(f, rate) for f in files]
    track = np.zeros(samples, np.float32)
    position = int(rng.uniform(0.0, 2.0) * rate)
    for utterance in itertools.cycle(utterances):
        if position >= samples:
            break
        piece = utterance[:samples - position]
        track[position:position + len(piece)] = piece / max(np.sqrt(np.mean(utterance ** 2)), 1e-9) * 0.05
        position += len(piece) + int(rng.uniform(0.2, 1.5) * rate)
    return track


def _si_sdr(reference, estimate) -> float:
    reference, estimate = np.asarray(reference, np.float64), np.asarray(estimate, np.float64)
    scale = np.dot(estimate, reference) / max(np.dot(reference, reference), 1e-20)
    target = scale * reference
    return float(10 * np.log10(max(np.dot(target, target), 1e-20) / max(np.sum((estimate - target) ** 2), 1e-20)))


def _best_improvements(sources, estimates, mixture) -> tuple[list[float], tuple]:
    """SI-SDRi of each source with its best estimate (the permutation of the largest sum) and that permutation."""
    best = max(itertools.permutations(range(len(estimates)), len(sources)),
               key=lambda order: sum(_si_sdr(s, estimates[j]) for s, j in zip(sources, order)))
    return [_si_sdr(s, estimates[j]) - _si_sdr(s, mixture) for s, j in zip(sources, best)], best


def bench_longform(args) -> list[dict]:
    import soundfile

    from speechsep import pretrained
    from speechsep.data.audio import resample

    rate, samples = args.rate, int(args.minutes * 60 * args.rate)
    rng = np.random.default_rng(args.seed)
    female, male = _speakers(args.model, Path(args.corpus_root), args.speakers)
    work_context = tempfile.TemporaryDirectory(prefix="speechsep-bench-") if args.work is None else None
    work = Path(args.work or work_context.name)
    work.mkdir(parents=True, exist_ok=True)
    sources = np.stack([_talker_track(female, samples, rate, rng), _talker_track(male, samples, rate, rng)])
    mixture = sources.sum(axis=0)
    peak = float(np.abs(mixture).max())
    sources, mixture = sources * (0.9 / peak), mixture * (0.9 / peak)
    soundfile.write(work / "mixture.wav", mixture, rate, subtype="PCM_16")
    mixture = soundfile.read(work / "mixture.wav", dtype="float32")[0]  # what the child reads (16-bit)
    print(f"recording: {args.minutes:g} min at {rate} Hz, talkers {female[0].parent.parent.name} and "
          f"{male[0].parent.parent.name} of {args.corpus_root}, looped; {work / 'mixture.wav'}", flush=True)

    command = [sys.executable, "-c", PEAK_PROGRAM, "separate", "--model", args.model, "--out", str(work / "out"),
               "--overwrite", str(work / "mixture.wav")]
    start = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"separate failed: {process.stderr.strip()[-500:]}")
    peak_mb = int(re.search(r"^peak-kb (\d+)$", process.stderr, re.M)[1]) / 1024
    print(process.stdout.strip(), flush=True)
    estimates = np.stack([soundfile.read(p, dtype="float32")[0] for p in sorted((work / "out").glob("mixture_s*.wav"))])
    whole, order = _best_improvements(sources, estimates, mixture)
    minute = 60 * rate
    kept = total = 0
    for start_sample in range(0, samples - minute // 2, minute):
        part = slice(start_sample, start_sample + minute)
        _, local = _best_improvements(sources[:, part], estimates[:, part], mixture[part])
        total += 1
        kept += local == order
    model = pretrained.load(args.model)
    clip = int(CLIP_SECONDS * rate)
    starts = np.sort(rng.choice(samples - clip, args.clips, replace=False))
    full, band = [], []
    for s in starts:
        piece, refs = mixture[s:s + clip], sources[:, s:s + clip]
        full += _best_improvements(refs, model.separate(piece, rate, num_speakers=2), piece)[0]
        piece8 = resample(piece.astype(np.float64), rate, SAMPLE_RATE)
        refs8 = np.stack([resample(r.astype(np.float64), rate, SAMPLE_RATE) for r in refs])
        band += _best_improvements(refs8, model.separate(piece, rate, num_speakers=2, rate=SAMPLE_RATE), piece8)[0]
    row = {"minutes": args.minutes, "rate": rate, "peak_mb": peak_mb, "wall_seconds": wall,
           "rtf": wall / (samples / rate), "talkers_found": len(estimates), "continuity": kept / max(total, 1),
           "segments": total, "whole_si_sdri": float(np.mean(whole)), "clips": args.clips,
           "clip_si_sdri": float(np.mean(full)), "clip_si_sdri_8k": float(np.mean(band))}
    print(f"{'minutes':>8}{'rate':>7}{'peak MB':>9}{'wall s':>8}{'RTF':>7}{'talkers':>8}{'continuity':>12}"
          f"{'SI-SDRi whole':>15}{'clips full band':>17}{'clips 8 kHz band':>18}")
    print(f"{row['minutes']:>8g}{rate:>7}{peak_mb:>9.0f}{wall:>8.1f}{row['rtf']:>7.4f}{len(estimates):>8}"
          f"{kept:>7}/{total:<4}{row['whole_si_sdri']:>15.2f}{row['clip_si_sdri']:>17.2f}"
          f"{row['clip_si_sdri_8k']:>18.2f}")
    if work_context is not None:
        work_context.cleanup()
    return [row]


def bench_shortfiles(args) -> list[dict]:
    import soundfile

    from speechsep.__main__ import main as cli_main
    from speechsep.data.audio import resample
    from speechsep import pretrained

    from speechsep.separation.longform import FILES_PER_BATCH

    warmup = FILES_PER_BATCH + 1  # compiles the shapes of a full batch and of a lone file
    records, _ = pretrained.regression_mixtures(args.model, count=args.files + warmup, talkers=2)
    length = int(args.seconds * SAMPLE_RATE)
    with tempfile.TemporaryDirectory(prefix="speechsep-bench-") as work:
        work = Path(work)
        for index, record in enumerate(records):
            mixture = np.resize(record["mixture"], length)  # a shorter mixture repeats to the length
            folder = work / ("warmup" if index >= args.files else "files")
            folder.mkdir(exist_ok=True)
            soundfile.write(folder / f"mix{index:03d}.wav", resample(mixture.astype(np.float64), SAMPLE_RATE,
                                                                    args.rate) * 0.5, args.rate)
        audio_seconds = args.files * args.seconds
        command = [sys.executable, "-m", "speechsep", "separate", "--model", args.model, "--out",
                   str(work / "cold"), str(work / "files")]
        start = time.perf_counter()
        process = subprocess.run(command, capture_output=True, text=True)
        cold = time.perf_counter() - start
        if process.returncode != 0:
            raise RuntimeError(f"separate failed: {process.stderr.strip()[-500:]}")
        cli_main(["separate", "--model", args.model, "--out", str(work / "warm0"), str(work / "warmup")])
        start = time.perf_counter()
        cli_main(["separate", "--model", args.model, "--out", str(work / "warm"), str(work / "files")])
        warm = time.perf_counter() - start
    row = {"files": args.files, "seconds": args.seconds, "rate": args.rate, "cold_seconds": cold,
           "cold_rtf": cold / audio_seconds, "warm_seconds": warm, "warm_rtf": warm / audio_seconds}
    print(f"{'files':>6}{'s each':>8}{'rate':>7}{'cold s':>8}{'cold RTF':>10}{'warm s':>8}{'warm RTF':>10}")
    print(f"{args.files:>6}{args.seconds:>8g}{args.rate:>7}{cold:>8.1f}{row['cold_rtf']:>10.4f}{warm:>8.1f}"
          f"{row['warm_rtf']:>10.4f}")
    return [row]
