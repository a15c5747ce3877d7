"""Speaker-disjoint splits and multi-talker mixture records.

The record schema (what every shard holds, and what dynamic mixing yields) is
documented in :mod:`speechsep.data.shards`.
"""

from __future__ import annotations

import dataclasses
import fractions

import numpy as np
import scipy.signal

from speechsep import signal
from speechsep.data.corpus import NAMESPACE_SEPARATOR, AudioFileError, Corpus, Utterance

SPLITS = ("train", "valid", "test")
PEAK_LEVEL = 0.9  # every mixture is scaled (with its sources) to this peak


@dataclasses.dataclass(frozen=True)
class MixingConfig:
    """How mixtures are drawn. Saved in every dataset index and run folder.

    ``num_speakers`` talkers per mixture; or, with ``talkers`` (a sorted tuple
    of counts such as ``(1, 2, 3)``; empty = off), K talkers drawn per mixture
    from that set with probabilities ``talker_weights`` (empty: equal), and
    then ``num_speakers`` must be the largest K. A one-talker "mixture" is that
    talker alone.
    """

    num_speakers: int = 2
    level_range_db: tuple[float, float] = (0.0, 5.0)
    length_mode: str = "min"  # "min": shortest source; "max": zero-pad the shorter ones
    seed: int = 0
    # speed/pitch perturbation of every source by a factor uniform in this range (resampling shifts
    # pitch and formants together: "virtual speakers"); (1, 1) = off. Used for training mixtures only.
    speed_range: tuple[float, float] = (1.0, 1.0)
    # every source is a random crop of this many seconds (shorter utterances: whole, at a random
    # position, zeros around), so the mixture has this length whatever length_mode says; None = off.
    # Used for training mixtures only.
    crop_seconds: float | None = None
    # a varying number of talkers per mixture (see the class docstring); () = always num_speakers
    talkers: tuple[int, ...] = ()
    talker_weights: tuple[float, ...] = ()
    # every other source quieter than source 0 by a level from level_range_db (False: louder or quieter, a
    # random sign); the stress test set's mixtures (speechsep.data.testset.stress_mixtures)
    others_quieter: bool = False
    # the share of mixtures of two or more talkers drawn from one sex only (None: every speaker equally likely,
    # whatever the sex); a training-only option for same-sex pairs, the hardest ones
    same_sex_share: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "talkers", tuple(int(k) for k in self.talkers))
        object.__setattr__(self, "talker_weights", tuple(float(w) for w in self.talker_weights))
        if self.num_speakers < 1:
            raise ValueError(f"num_speakers must be >= 1, got {self.num_speakers}")
        if self.talkers and (list(self.talkers) != sorted(set(self.talkers)) or self.talkers[0] < 1
                             or self.talkers[-1] != self.num_speakers):
            raise ValueError(f"talkers must be sorted distinct counts >= 1 ending with num_speakers "
                             f"({self.num_speakers}), got {self.talkers}")
        if self.talker_weights and (len(self.talker_weights) != len(self.talkers)
                                    or min(self.talker_weights) < 0 or not sum(self.talker_weights) > 0):
            raise ValueError(f"talker_weights must be one non-negative weight per talker count of {self.talkers}, "
                             f"not all 0; got {self.talker_weights}")
        if self.same_sex_share is not None and not 0.0 <= self.same_sex_share <= 1.0:
            raise ValueError(f"same_sex_share must be None (off) or in [0, 1], got {self.same_sex_share}")
        if self.length_mode not in ("min", "max"):
            raise ValueError(f"length_mode must be 'min' or 'max', got {self.length_mode!r}")
        low, high = self.level_range_db
        if not 0 <= low <= high:
            raise ValueError(f"level_range_db must satisfy 0 <= low <= high, got {self.level_range_db}")
        if not 0.5 <= self.speed_range[0] <= self.speed_range[1] <= 2.0:
            raise ValueError(f"speed_range must satisfy 0.5 <= low <= high <= 2, got {self.speed_range}")
        shortest_crop = signal.N_FFT / signal.SAMPLE_RATE
        if self.crop_seconds is not None and not self.crop_seconds >= shortest_crop:  # also refuses NaN
            raise ValueError(f"crop_seconds must be None (off) or at least {shortest_crop} s, got {self.crop_seconds}")

    def held_out(self) -> "MixingConfig":
        """This config without the training-only options (crops, speed): for validation and test mixtures."""
        return dataclasses.replace(self, crop_seconds=None, speed_range=(1.0, 1.0), same_sex_share=None)

    @property
    def talker_set(self) -> tuple[int, ...]:
        """The talker counts a mixture may have: ``talkers``, or ``(num_speakers,)``."""
        return self.talkers or (self.num_speakers,)

    def draw_talkers(self, rng: np.random.Generator) -> int:
        """The number of talkers of the next mixture: ``num_speakers``, or a draw from ``talkers``.

        With no ``talkers`` nothing is drawn, so ``rng`` (and every mixture
        after) stays what it was before the option existed.
        """
        if not self.talkers:
            return self.num_speakers
        weights = np.asarray(self.talker_weights or [1.0] * len(self.talkers), np.float64)
        return int(self.talkers[rng.choice(len(self.talkers), p=weights / weights.sum())])


def split_speakers(
    corpus: Corpus, seed: int = 0, valid_fraction: float = 0.15, test_fraction: float = 0.3,
    min_speakers: int = 2,
) -> dict[str, list[str]]:
    """Speaker-disjoint train/valid/test split, deterministic from ``seed``.

    Speakers with an official split are never trained on: full LDC TIMIT's
    TEST speakers and LibriSpeech's ``test-*`` speakers are the test split,
    LibriSpeech's ``dev-*`` speakers the validation split. The other speakers
    are held out whole, sex-balanced (sex "?" is a group of its own),
    ``max(min_speakers, round(fraction * n))`` per held-out split that has no
    official speakers. For the 12-speaker NLTK sample this gives 6 train /
    2 valid / 4 test speakers.

    A combined corpus (:func:`speechsep.data.corpus.combine_corpora`) is split
    corpus by corpus with this rule and the splits are united, so each corpus
    contributes in proportion and its part of every split is the split it
    gets alone. Raises ValueError if a split would get fewer than
    ``min_speakers`` speakers.
    """
    if corpus.parts:
        splits: dict[str, list[str]] = {name: [] for name in SPLITS}
        for part in corpus.parts:
            for name, speakers in _split_one(part, seed, valid_fraction, test_fraction, min_speakers).items():
                splits[name] += [f"{part.name}{NAMESPACE_SEPARATOR}{speaker}" for speaker in speakers]
        splits = {name: sorted(speakers) for name, speakers in splits.items()}
    else:
        splits = _split_one(corpus, seed, valid_fraction, test_fraction, min_speakers)
    for name, speakers in splits.items():
        if len(speakers) < min_speakers:
            raise ValueError(
                f"corpus {corpus.root} has {len(corpus.speakers)} speakers: the {name} split would get "
                f"{len(speakers)} (< {min_speakers} needed to mix); use a larger corpus or fewer --speakers"
            )
    return splits


def _split_one(corpus: Corpus, seed: int, valid_fraction: float, test_fraction: float,
               min_speakers: int) -> dict[str, list[str]]:
    """The rule of :func:`split_speakers` for one corpus, without the size check."""
    rng = np.random.default_rng([seed, 7919])
    sexes = corpus.speakers
    official_test = sorted({u.speaker for u in corpus.utterances if u.official_split == "test"})
    official_valid = sorted({u.speaker for u in corpus.utterances if u.official_split == "valid"}
                            - set(official_test))
    pool = sorted(s for s in sexes if s not in official_test and s not in official_valid)

    def take(candidates: list[str], count: int) -> list[str]:
        by_sex: dict[str, list[str]] = {}
        for speaker in candidates:
            by_sex.setdefault(sexes[speaker], []).append(speaker)
        queues = [list(rng.permutation(group)) for _, group in sorted(by_sex.items())]
        chosen: list[str] = []
        while len(chosen) < count and any(queues):
            for queue in queues:
                if queue and len(chosen) < count:
                    chosen.append(str(queue.pop(0)))
        return sorted(chosen)

    total = len(sexes)
    if official_test:
        test = official_test
    else:
        test = take(pool, max(min_speakers, round(test_fraction * total)))
    rest = [s for s in pool if s not in test]
    if official_valid:
        valid = official_valid
    else:
        valid = take(rest, max(min_speakers, round(valid_fraction * total)))
    train = sorted(s for s in rest if s not in valid)
    return {"train": train, "valid": valid, "test": sorted(test)}


def split_composition(corpus: Corpus, splits: dict[str, list[str]]) -> dict:
    """Which corpora the speakers of each split come from, and how much audio they bring.

    Returns ``{"corpora": [{"name", "root", "layout", "speakers", "minutes"}],
    "per_split": {split: {corpus name: {"speakers", "female", "male", "minutes"}}}}``;
    minutes count every utterance of the split's speakers (None when a
    duration is unknown, e.g. the toy corpus).
    """
    parts = corpus.parts or [corpus]
    owner = {}
    for part in parts:
        for speaker in part.speakers:
            owner[f"{part.name}{NAMESPACE_SEPARATOR}{speaker}" if corpus.parts else speaker] = part.name
    seconds: dict[str, float | None] = {}
    for utterance in corpus.utterances:
        known = seconds.get(utterance.speaker, 0.0)
        seconds[utterance.speaker] = None if known is None or utterance.seconds is None else known + utterance.seconds
    sexes = corpus.speakers

    def tally(speakers) -> dict:
        speakers = list(speakers)
        durations = [seconds.get(s) for s in speakers]
        return {"speakers": len(speakers), "female": sum(sexes[s] == "F" for s in speakers),
                "male": sum(sexes[s] == "M" for s in speakers),
                "minutes": None if None in durations else round(sum(durations) / 60, 2)}

    corpora = []
    for part in parts:
        whole = tally(s for s in sexes if owner[s] == part.name)
        corpora.append({"name": part.name, "root": part.root, "layout": part.layout,
                        "speakers": whole["speakers"], "minutes": whole["minutes"]})
    return {
        "corpora": corpora,
        "per_split": {name: {part.name: tally(s for s in speakers if owner[s] == part.name) for part in parts}
                   for name, speakers in splits.items()},
    }


def _choose_speakers(speakers: list[str], config: MixingConfig, rng: np.random.Generator,
                     by_speaker: dict[str, list[Utterance]], count: int) -> np.ndarray:
    """Indices of ``count`` distinct speakers: uniform, or with ``config.same_sex_share`` that share of the
    mixtures of two or more talkers all of one sex (drawn in proportion to the sexes' speakers)."""
    if config.same_sex_share is None or count < 2:
        return rng.choice(len(speakers), size=count, replace=False)
    if rng.random() >= config.same_sex_share:
        return rng.choice(len(speakers), size=count, replace=False)
    by_sex: dict[str, list[int]] = {}
    for index, speaker in enumerate(speakers):
        by_sex.setdefault(by_speaker[speaker][0].sex, []).append(index)
    pools = [pool for sex, pool in sorted(by_sex.items()) if sex in ("F", "M") and len(pool) >= count]
    if not pools:  # no sex has enough speakers: any
        return rng.choice(len(speakers), size=count, replace=False)
    sizes = np.array([len(pool) for pool in pools], np.float64)
    pool = pools[rng.choice(len(pools), p=sizes / sizes.sum())]
    return np.asarray(pool)[rng.choice(len(pool), size=count, replace=False)]


def _draw_sources(
    corpus: Corpus, speakers: list[str], config: MixingConfig, rng: np.random.Generator,
    by_speaker: dict[str, list[Utterance]], count: int,
) -> tuple[list[Utterance], list[np.ndarray]]:
    """Pick distinct speakers and one usable, non-silent utterance each.

    A bad or all-zero file is recorded once in ``corpus.skipped`` and the draw
    is repeated. Nothing is removed from the candidate lists, so the result
    depends only on ``rng`` and the files (a resumed build draws the same).
    """
    for _ in range(100):
        chosen = _choose_speakers(speakers, config, rng, by_speaker, count)
        utterances, waves = [], []
        for index in chosen:
            candidates = by_speaker[speakers[index]]
            utterance = candidates[rng.integers(len(candidates))]
            try:
                audio = corpus.load(utterance)
                if not np.any(audio):
                    raise AudioFileError(utterance.path, "all-zero (silent) audio")
            except AudioFileError as error:
                if (error.path, error.reason) not in corpus.skipped:
                    corpus.skipped.append((error.path, error.reason))
                break
            utterances.append(utterance)
            waves.append(audio)
        else:
            return utterances, waves
    raise ValueError(
        f"could not draw {count} usable utterances from {corpus.root} in 100 tries; "
        f"unusable files so far: {corpus.skipped[:5]}"
    )


def make_mixture(
    corpus: Corpus, speakers: list[str], config: MixingConfig, rng: np.random.Generator,
    by_speaker: dict[str, list[Utterance]] | None = None,
) -> dict:
    """Draw one mixture of ``config.num_speakers`` different speakers (or of K drawn from
    ``config.talkers``: :meth:`MixingConfig.draw_talkers`) and build its record (sources [K, samples]).

    Its length is ``config.crop_seconds`` when set (every source a random crop
    of its utterance), else the shortest source's (``length_mode="min"``,
    longer ones randomly cropped) or the longest's (``"max"``, zero-padded).

    Source 0 keeps 0 dB; every other source gets a level drawn uniformly from
    ``level_range_db`` with a random sign (so either talker may be louder;
    with ``config.others_quieter`` always below source 0), measured as the
    energy ratio to source 0 over the mixed segment.
    """
    if by_speaker is None:
        by_speaker = {s: corpus.utterances_of(s) for s in speakers}
    if len(speakers) < config.num_speakers:
        raise ValueError(f"{len(speakers)} speakers cannot make {config.num_speakers}-talker mixtures")
    count = config.draw_talkers(rng)
    utterances, waves = _draw_sources(corpus, speakers, config, rng, by_speaker, count)
    if tuple(config.speed_range) != (1.0, 1.0):
        waves = [change_speed(wave, rng.uniform(*config.speed_range)) for wave in waves]
    lengths = [len(w) for w in waves]
    if config.crop_seconds is not None:
        length = int(round(config.crop_seconds * signal.SAMPLE_RATE))
    else:
        length = min(lengths) if config.length_mode == "min" else max(lengths)
    sources = np.zeros((count, length), dtype=np.float64)  # [K, T]
    for index, wave in enumerate(waves):
        offset = rng.integers(0, len(wave) - length + 1) if len(wave) > length else 0
        segment = wave[offset : offset + length]
        start = 0
        if config.crop_seconds is not None and len(segment) < length:  # a short utterance, somewhere in the crop
            start = rng.integers(0, length - len(segment) + 1)
        sources[index, start : start + len(segment)] = segment
    low, high = config.level_range_db
    levels_db = [0.0] + [float(rng.uniform(low, high) * (-1 if config.others_quieter else rng.choice([-1, 1])))
                         for _ in waves[1:]]
    energies = np.maximum(np.sum(sources**2, axis=1), 1e-20)  # [C]
    gains = np.sqrt(energies[0] / energies * 10.0 ** (np.asarray(levels_db) / 10.0))
    sources *= gains[:, None]
    mixture = sources.sum(axis=0)
    sources *= PEAK_LEVEL / max(np.max(np.abs(mixture)), 1e-12)
    return make_record(sources.astype(np.float32), utterances, levels_db)


def change_speed(waveform: np.ndarray, factor: float) -> np.ndarray:
    """Play ``waveform`` ``factor`` times faster (pitch and formants scale by ``factor``)."""
    ratio = fractions.Fraction(factor).limit_denominator(40)
    if ratio == 1:
        return waveform
    return scipy.signal.resample_poly(waveform, ratio.denominator, ratio.numerator).astype(np.float32)


def make_record(sources: np.ndarray, utterances: list[Utterance], levels_db: list[float]) -> dict:
    """Build the documented record (see :mod:`speechsep.data.shards`) from sources [C, T]."""
    mixture = sources.sum(axis=0).astype(np.float32)  # [T]
    mixture_spectrum = signal.stft(mixture)  # [frames, bins]
    source_spectra = signal.stft(sources)  # [C, frames, bins]
    return {
        "id": "+".join(u.key for u in utterances),
        "sample_rate": signal.SAMPLE_RATE,
        "mixture": mixture,
        "sources": sources,
        "log_magnitude": signal.log_magnitude(mixture_spectrum),
        "ibm": signal.ideal_binary_mask(source_spectra),
        "active": signal.active_bins(mixture_spectrum),
        "speakers": [u.speaker for u in utterances],
        "sexes": [u.sex for u in utterances],
        "utterances": [u.key for u in utterances],
        "levels_db": [float(x) for x in levels_db],
    }


def pair_type(sexes: list[str]) -> str:
    """"female-female", "male-male", "female-male" (or "mixed"/"unknown" beyond two)."""
    if "?" in sexes:
        return "unknown"
    if len(sexes) != 2:
        return "mixed" if len(set(sexes)) > 1 else {"F": "female", "M": "male"}[sexes[0]] + "-only"
    return {("F", "F"): "female-female", ("M", "M"): "male-male"}.get(tuple(sorted(sexes)), "female-male")
