"""A built-in synthetic two-talker corpus: harmonic "voices" (NOT speech).

Each toy speaker has its own pitch range and formant set; an utterance is a
sequence of voiced "syllables" (a gliding harmonic tone shaped by one of the
speaker's vowel formant envelopes) separated by short pauses. Everything is
generated deterministically from the speaker and utterance index, in memory,
at 8 kHz. It exists for tests and offline demos; every run that uses it prints
:data:`TOY_WARNING`.
"""

from __future__ import annotations

import zlib

import numpy as np

from speechsep.data.corpus import Corpus, Utterance
from speechsep.signal import SAMPLE_RATE

TOY_WARNING = (
    "WARNING: using the built-in synthetic TOY corpus. It is NOT speech: numbers and "
    "sounds from it say nothing about real speech separation. Point --timit at a TIMIT "
    "folder (or set TIMIT_WAV) for real results."
)

# (pitch range in Hz, three vowel formant sets in Hz), alternating female/male.
_VOICES = {
    "F": ((170.0, 260.0), ((850, 1610, 2800), (390, 2300, 3000), (460, 1100, 2600))),
    "M": ((85.0, 140.0), ((700, 1220, 2600), (300, 2100, 2700), (370, 900, 2300))),
}


def _seed(text: str) -> int:
    return zlib.crc32(text.encode())


def synthesize(speaker_index: int, sex: str, utterance_index: int, seconds: float = 2.5) -> np.ndarray:
    """One toy utterance, float32 [samples] at 8 kHz, peak about 0.5."""
    rng = np.random.default_rng(_seed(f"toy-{speaker_index}-{utterance_index}"))
    speaker_rng = np.random.default_rng(_seed(f"toy-speaker-{speaker_index}"))
    (low, high), vowels = _VOICES[sex]
    base_pitch = speaker_rng.uniform(low, high)
    formant_shift = speaker_rng.uniform(0.9, 1.12)
    total = int(seconds * SAMPLE_RATE)
    output = np.zeros(total)
    position = int(rng.uniform(0.02, 0.1) * SAMPLE_RATE)
    while position < total - 800:
        length = int(rng.uniform(0.15, 0.35) * SAMPLE_RATE)
        length = min(length, total - position)
        time = np.arange(length) / SAMPLE_RATE
        glide = base_pitch * (1 + rng.uniform(-0.15, 0.15) * time / max(time[-1], 1e-3))
        phase = 2 * np.pi * np.cumsum(glide) / SAMPLE_RATE  # [length]
        formants = np.asarray(vowels[rng.integers(len(vowels))]) * formant_shift
        syllable = np.zeros(length)
        for harmonic in range(1, int(3800 / base_pitch)):
            frequency = harmonic * base_pitch
            gain = sum(np.exp(-0.5 * ((frequency - f) / (60 + 0.06 * f)) ** 2) for f in formants)
            syllable += (gain + 0.02) / harmonic**0.5 * np.sin(harmonic * phase)
        envelope = np.sin(np.pi * np.arange(length) / length) ** 0.6
        output[position : position + length] += syllable * envelope
        position += length + int(rng.uniform(0.03, 0.15) * SAMPLE_RATE)
    output += 1e-3 * rng.standard_normal(total)
    return (0.5 * output / np.max(np.abs(output))).astype(np.float32)


def toy_corpus(num_speakers: int = 12, utterances_per_speaker: int = 8) -> Corpus:
    """Synthetic corpus with alternating female/male toy speakers (ids like FTOY0, MTOY1)."""
    if num_speakers < 2:
        raise ValueError(f"toy corpus needs at least 2 speakers, got {num_speakers}")
    utterances = []
    for speaker_index in range(num_speakers):
        sex = "F" if speaker_index % 2 == 0 else "M"
        speaker = f"{sex}TOY{speaker_index}"
        for utterance_index in range(utterances_per_speaker):
            key = f"{speaker}/u{utterance_index}"
            utterances.append(Utterance(key, speaker, sex, f"toy:{speaker_index}:{sex}:{utterance_index}"))

    def load(utterance: Utterance) -> np.ndarray:
        _, speaker_index, sex, utterance_index = utterance.path.split(":")
        return synthesize(int(speaker_index), sex, int(utterance_index))

    return Corpus("toy", "<synthetic>", "toy", utterances, loader=load, is_toy=True)
