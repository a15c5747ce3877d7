"""The test set: mixtures of speakers no model was trained on, built in one place.

Two sources, both deterministic:

* a pickle dataset's ``test`` split (:func:`from_dataset`);
* fresh mixtures of a corpus' test speakers (:func:`from_corpus`), drawn from a
  generator seeded by the split seed, so every experiment, the comparison and
  the benchmarks score the SAME mixtures for the same corpus and seed.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from speechsep.data.corpus import Corpus
from speechsep.data.mixing import MixingConfig, make_mixture, split_speakers
from speechsep.data.shards import iter_records, read_index


@dataclasses.dataclass
class TestSet:
    """Test mixture records (schema: :mod:`speechsep.data.shards`) and the speakers they use."""

    __test__ = False  # not a pytest class

    records: list[dict]
    speakers: list[str]
    description: str
    corpus: str | None = None  # the name of the corpus the speaker ids belong to (None: unknown)


def draw_mixtures(corpus: Corpus, speakers: list[str], mixing: MixingConfig, count: int,
                  stream: int = 777) -> list[dict]:
    """``count`` mixtures of ``speakers`` from the generator seeded by ``(mixing.seed, 2, stream)``."""
    rng = np.random.default_rng([mixing.seed, 2, stream])
    by_speaker = {s: corpus.utterances_of(s) for s in speakers}
    return [make_mixture(corpus, speakers, mixing, rng, by_speaker) for _ in range(count)]


def from_corpus(corpus: Corpus, count: int = 100, seed: int = 0, num_speakers: int = 2, split: str = "test",
                mixing: MixingConfig | None = None) -> TestSet:
    """Mixtures of the ``split`` speakers of ``corpus`` under the speaker split of ``seed``.

    ``mixing`` overrides how mixtures are drawn (its seed should be ``seed``);
    by default 0–5 dB, the shorter source's length.
    """
    mixing = mixing or MixingConfig(num_speakers=num_speakers, seed=seed)
    speakers = split_speakers(corpus, seed=seed, min_speakers=num_speakers)[split]
    records = draw_mixtures(corpus, speakers, mixing, count)
    return TestSet(records, speakers, f"{count} mixtures of the {len(speakers)} {split} speakers of "
                                      f"{corpus.name} (seed {seed})", corpus.name)


STRESS_SECONDS = (1.5, 6.0)
"""The length range of the stress set's mixtures, in seconds."""
STRESS_LEVELS_DB = (0.0, 10.0)
"""How far below the first talker each other talker of a stress mixture is, in dB."""


def stress_mixtures(corpus: Corpus, speakers: list[str], talkers=(1, 2, 3), count: int = 100,
                    seed: int = 0) -> list[dict]:
    """``count`` mixtures of each number of ``talkers`` that differ from the validation and test mixtures.

    Each lasts a length drawn uniformly from :data:`STRESS_SECONDS` and every
    source is a crop of that length (an utterance shorter than it sits at a
    random place, silence around it, so talkers overlap only in part); each
    talker after the first is :data:`STRESS_LEVELS_DB` below it (validation
    mixtures: 0–5 dB either way, the shortest utterance's length). Drawn
    from the generator seeded by ``(seed, 3, K)``: the same set every time.
    A set on which nothing is ever chosen: it only reports.
    """
    records = []
    by_speaker = {s: corpus.utterances_of(s) for s in speakers}
    for k in talkers:
        rng = np.random.default_rng([seed, 3, int(k)])
        for _ in range(count):
            mixing = MixingConfig(num_speakers=int(k), seed=seed, level_range_db=STRESS_LEVELS_DB,
                                  others_quieter=True, crop_seconds=float(rng.uniform(*STRESS_SECONDS)))
            records.append(make_mixture(corpus, speakers, mixing, rng, by_speaker))
    return records


def from_dataset(data_dir, count: int = 100) -> TestSet:
    """The first ``count`` records of the ``test`` split of a pickle dataset."""
    records = list(itertools.islice(iter_records(data_dir, "test"), count))
    index = read_index(data_dir)
    return TestSet(records, index["splits"]["test"]["speakers"], f"{len(records)} test mixtures of {data_dir}",
                   (index.get("corpus") or {}).get("name"))
