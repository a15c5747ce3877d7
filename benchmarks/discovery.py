"""``bench discovery``: how long corpus discovery takes on a LibriSpeech-sized folder.

Writes a synthetic LibriSpeech tree (``LibriSpeech/train-clean-100/<speaker>/<chapter>/
<speaker>-<chapter>-<utt>.flac`` of 0.05 s each, a ``.trans.txt`` per chapter and
``SPEAKERS.TXT``; 251 speakers like the real train-clean-100) or takes an existing
folder (``--root``), then times :func:`speechsep.data.corpus.discover_corpus`
reading names only and reading every header (the default, which also gives the
durations). The page cache is warm: the tree was just written or listed.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

SPEAKERS = 251  # as in train-clean-100
CHAPTERS_PER_SPEAKER = 4


def write_synthetic_librispeech(out, files: int = 30_000) -> Path:
    """A LibriSpeech folder under ``out`` with ``files`` tiny FLAC files; returns the LibriSpeech folder."""
    root = Path(out) / "LibriSpeech"
    subset = root / "train-clean-100"
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).standard_normal(800) * 3000  # 0.05 s at 16 kHz
    soundfile.write(buffer, noise.astype(np.int16), 16000, format="FLAC", subtype="PCM_16")
    payload = buffer.getvalue()
    chapters = SPEAKERS * CHAPTERS_PER_SPEAKER
    lines = [";ID  |SEX| SUBSET           |MINUTES| NAME"]
    for index in range(SPEAKERS):
        speaker = 100 + 7 * index
        lines.append(f"{speaker:<5}| {'F' if index % 2 else 'M'} | train-clean-100  | 25.00 | Reader {index}")
        for chapter_index in range(CHAPTERS_PER_SPEAKER):
            chapter = 1000 + 13 * index + chapter_index
            folder = subset / str(speaker) / str(chapter)
            folder.mkdir(parents=True)
            names = []
            number = index * CHAPTERS_PER_SPEAKER + chapter_index
            for utterance in range(files // chapters + (number < files % chapters)):
                name = f"{speaker}-{chapter}-{utterance:04d}"
                (folder / f"{name}.flac").write_bytes(payload)
                names.append(f"{name} SOME WORDS")
            (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(names) + "\n")
    (root / "SPEAKERS.TXT").write_text("\n".join(lines) + "\n")
    return root


def bench_discovery(args) -> list[dict]:
    from speechsep.data.corpus import discover_corpus

    scratch = None
    if args.root:
        root = Path(args.root)
    else:
        scratch = Path(tempfile.mkdtemp(prefix="speechsep-discovery-", dir=args.scratch))
        start = time.perf_counter()
        root = write_synthetic_librispeech(scratch, args.files)
        print(f"Wrote {args.files} FLAC files to {root} in {time.perf_counter() - start:.1f} s", flush=True)
    rows = []
    try:
        for label, check_files in (("names only", False), ("headers (soundfile.info)", True)):
            times, corpus = [], None
            for _ in range(args.repeats):
                start = time.perf_counter()
                corpus = discover_corpus(root, check_files=check_files)
                times.append(time.perf_counter() - start)
            seconds = float(np.median(times))
            rows.append({"probe": label, "layout": corpus.layout, "files": len(corpus.utterances),
                         "speakers": len(corpus.speakers), "seconds": seconds,
                         "files_per_second": len(corpus.utterances) / seconds})
    finally:
        if scratch is not None and not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"{'probe':<26}{'layout':>13}{'files':>8}{'speakers':>10}{'seconds':>9}{'files/s':>10}")
    for row in rows:
        print(f"{row['probe']:<26}{row['layout']:>13}{row['files']:>8}{row['speakers']:>10}"
              f"{row['seconds']:>9.2f}{row['files_per_second']:>10.0f}")
    print(f"(median of {args.repeats} runs, warm page cache)")
    return rows
