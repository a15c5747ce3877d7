"""Shipped separation models: one folder per model inside this package, and loading one in one line.

    from speechsep import pretrained
    model = pretrained.load("dc-librispeech")       # a shipped name, or a training run folder
    estimates = model.separate_file("mix.wav")       # [talkers, samples] at the file's sample rate
    estimates = model.separate(waveform, 44100)      # waveform [samples] or [samples, channels]

A shipped model's folder ``speechsep/pretrained/<name>/`` holds:

* ``weights.npz``: the network's weights, float16, as ``w000, w001, ...`` in
  ``keras.Model.get_weights()`` order (computed in float32 after loading);
* ``config.json``: the :class:`~speechsep.config.ExperimentConfig` that builds
  the network (``speechsep.nn.models.build_model``);
* ``stats.json``: the per-bin feature normalisation (mean [129], std [129]);
* ``model.json``: the weights' sha256, the training data and its speaker
  splits (same schema as a run's ``run.json`` ``data``), the optimizer steps,
  hours and CPU, and the headline scores;
* ``MODEL_CARD.md``: what it is, its data and licence, how it was trained,
  its learning curve and scores, with the commands that reproduce them.

:func:`load` checks the sha256 before anything else reads the weights, so a
corrupt or truncated file is one ``ValueError`` naming it.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np

from speechsep.config import ExperimentConfig
from speechsep.io import atomic_write_json, atomic_write_weights, read_json_object, sha256_of
from speechsep.io import read_weights as read_weights_file
from speechsep.signal import SAMPLE_RATE

FOLDER = Path(__file__).resolve().parent
DEFAULT_MODEL = "dc-librispeech"
"""What ``python -m speechsep separate`` uses when no ``--model`` is given."""
WEIGHTS_FILE, INFO_FILE, CARD_FILE = "weights.npz", "model.json", "MODEL_CARD.md"
ARCHITECTURE_FIELDS = ("model", "hidden_units", "num_layers", "embedding_dim")
"""The :class:`ExperimentConfig` fields that decide the shape of the shared weights (``--init`` must match them;
heads that only one of the two networks has, the Chimera++ mask and count heads, start fresh)."""


def available() -> list[str]:
    """Names of the models shipped in this package, sorted."""
    return sorted(p.name for p in FOLDER.iterdir() if (p / INFO_FILE).is_file())


def read_info(folder) -> dict:
    """A shipped model's ``model.json`` (a ``ValueError`` naming the file if it does not parse)."""
    return read_json_object(Path(folder) / INFO_FILE, "model description")


def read_weights(folder) -> list[np.ndarray]:
    """The float32 weights of a shipped model's folder, after checking their sha256 against ``model.json``."""
    folder = Path(folder)
    path = folder / WEIGHTS_FILE
    if not path.is_file():
        raise ValueError(f"{path}: no such file (the model folder is incomplete)")
    expected = read_info(folder).get("weights_sha256")
    payload = path.read_bytes()  # read once: checked, then parsed
    actual = sha256_of(payload)
    if actual != expected:
        raise ValueError(f"{path}: sha256 {actual[:16]}… does not match model.json's {str(expected)[:16]}… "
                         "(corrupt or truncated file; reinstall the package)")
    try:
        return read_weights_file(io.BytesIO(payload))
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{path}: cannot read the weights ({error})") from None


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a model comes from: a shipped name or a run folder, and what it holds.

    ``weights`` are float32 arrays in ``get_weights()`` order; ``stats`` the
    (mean [129], std [129]) normalisation; ``info`` the shipped ``model.json``
    (for a run folder: its ``run.json``).
    """

    name: str
    folder: Path
    config: ExperimentConfig
    stats: tuple[np.ndarray, np.ndarray]
    info: dict
    weights: list[np.ndarray] | None = None  # None for a run folder: its Keras checkpoint holds them
    shipped: bool = True

    @property
    def optimizer_steps(self) -> int | None:
        return self.info.get("optimizer_steps")


def resolve(name_or_dir) -> Source:
    """The model ``name_or_dir`` names: a shipped model (see :func:`available`) or a training run folder.

    Raises ``ValueError`` listing the shipped models when it is neither.
    """
    from speechsep.data.shards import load_stats

    text = str(name_or_dir)
    if text in available():
        folder = FOLDER / text
        config = ExperimentConfig.load(folder / "config.json")
        return Source(text, folder, config, load_stats(folder), read_info(folder), read_weights(folder))
    folder = Path(text).expanduser()
    if (folder / "config.json").is_file():
        run_file = folder / "run.json"
        info = read_json_object(run_file, "run record") if run_file.is_file() else {}
        return Source(str(folder), folder, ExperimentConfig.load(folder / "config.json"), load_stats(folder),
                      info, None, shipped=False)
    shipped = ", ".join(available()) or "none"
    raise ValueError(f"unknown model {text!r}: not a shipped model (shipped: {shipped}) "
                     "nor a training run folder (no config.json)")


def build_network(source: Source):
    """The Keras network of ``source`` with its weights (shipped: built from the config; run: its checkpoint)."""
    from speechsep.nn.models import build_model, load_run_checkpoint

    if source.weights is None:
        return load_run_checkpoint(source.folder)
    network = build_model(source.config)
    shapes = [tuple(w.shape) for w in network.get_weights()]
    if shapes != [tuple(w.shape) for w in source.weights]:
        raise ValueError(f"{source.folder / WEIGHTS_FILE}: its weights do not fit the network of its config.json")
    network.set_weights(source.weights)
    return network


def architecture_mismatch(config: ExperimentConfig, other: ExperimentConfig) -> str | None:
    """The first :data:`ARCHITECTURE_FIELDS` field where two configs differ, or None when the weights fit."""
    return next((field for field in ARCHITECTURE_FIELDS if getattr(config, field) != getattr(other, field)), None)


class PretrainedModel:
    """A loaded model that separates waveforms at any sample rate and channel count.

    ``separator`` is the :class:`~speechsep.separation.separator.Separator`
    (8 kHz), ``source`` where the model came from (:class:`Source`).
    """

    def __init__(self, source: Source):
        from speechsep.separation.separator import Separator

        self.source = source
        self.name = source.name
        self.config = source.config.replace(precision="float32")  # inference in float32 on any CPU
        self.separator = Separator(build_network(source), self.config, *source.stats)
        self.last = None  # the Separation of the last call: talkers, count, rate (speechsep.separation.longform)

    def __repr__(self) -> str:
        return f"PretrainedModel({self.name!r}, {self.config.model}, D={self.config.embedding_dim})"

    def separate(self, waveform, sample_rate: int, num_speakers: int | None = None, rate: int | None = None,
                 readout: str | None = None, talkers=None) -> np.ndarray:
        """waveform [samples] or [samples, channels] at ``sample_rate`` -> estimates [talkers, samples] float32.

        The one separation path of ``python -m speechsep separate``
        (:func:`speechsep.separation.longform.separate_audio`): channels are
        averaged; a model trained on a varying number of talkers counts them
        unless ``num_speakers`` forces K (``readout``, ``talkers``: see
        :func:`~speechsep.separation.longform.plan`); any length, in bounded
        memory. The estimates are at ``rate`` (default ``sample_rate``) with
        the full band of that rate (``rate=8000``: the 8 kHz band the network
        sees) and as long as the input there. NaN or infinite samples, a
        silent waveform or a bad count raise ``ValueError``.
        """
        from speechsep.separation import longform

        waveform = np.asarray(waveform, dtype=np.float64)
        if waveform.ndim == 2:
            waveform = waveform.mean(axis=1)
        if waveform.ndim != 1 or waveform.size == 0:
            raise ValueError(f"expected a non-empty waveform [samples] or [samples, channels], got shape "
                             f"{np.shape(waveform)}")
        if not np.all(np.isfinite(waveform)):
            raise ValueError(f"{int(np.count_nonzero(~np.isfinite(waveform)))} NaN or infinite sample(s)")
        if sample_rate < 1:
            raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
        sink, self.last = longform.separate_audio(self.separator, longform.ArrayAudio(waveform, sample_rate),
                                                  num_speakers, readout, talkers, rate)
        return sink.estimates

    def separate_file(self, path, num_speakers: int | None = None, rate: int | None = None,
                      readout: str | None = None, talkers=None) -> np.ndarray:
        """The talkers of an audio file, [talkers, samples] at the file's own sample rate (or ``rate``).

        As :meth:`separate`; a file that cannot be read, or holds NaN or
        infinite samples, raises a ``ValueError`` naming it. A long file is
        read block by block (the estimates are the one array kept whole).
        """
        from speechsep.data.audio import AudioFileError
        from speechsep.separation import longform

        path = Path(path)
        audio = longform.open_audio(path)  # every problem of the file, named, before any work
        try:
            sink, self.last = longform.separate_audio(self.separator, audio, num_speakers, readout, talkers, rate)
            return sink.estimates
        except AudioFileError:
            raise
        except ValueError as error:
            raise AudioFileError(path, str(error)) from None
        finally:
            audio.close()


def bare_speaker(speaker) -> str:
    """A speaker id without its corpus namespace (``librispeech-sample:103`` -> ``103``)."""
    from speechsep.data.corpus import NAMESPACE_SEPARATOR

    return str(speaker).split(NAMESPACE_SEPARATOR)[-1]


def split_speakers_of(info: dict, split: str) -> set[str]:
    """The bare ids of the ``split`` speakers a model description (``model.json``) lists."""
    return {bare_speaker(s) for s in info["data"]["splits"][split]}


def regression_mixtures(name: str = DEFAULT_MODEL, count: int = 12, talkers: int = 2) -> tuple[list[dict], list[str]]:
    """(``count`` fixed mixture records of ``talkers`` talkers each, their speakers) of the built-in LibriSpeech
    mini, drawn only from the speakers that the shipped model ``name`` lists as test speakers (never trained on).

    The mixtures every installation has, so a regression test can pin the model's score on them.
    """
    from speechsep.data.mixing import MixingConfig
    from speechsep.data.sources import find_corpus
    from speechsep.data.testset import draw_mixtures

    info = read_info(FOLDER / name)
    unseen, trained = split_speakers_of(info, "test"), split_speakers_of(info, "train")
    corpus = find_corpus(None, "librispeech-mini", [])
    speakers = sorted(s for s in corpus.speakers if s in unseen and s not in trained)
    return draw_mixtures(corpus, speakers, MixingConfig(num_speakers=talkers, seed=0), count), speakers


def unseen_records(name: str, records: list[dict]) -> list[dict]:
    """The mixture records none of whose speakers the shipped model ``name`` trained on (bare ids compared)."""
    trained = split_speakers_of(read_info(FOLDER / name), "train")
    return [r for r in records if not trained & {bare_speaker(s) for s in r["speakers"]}]


def load(name_or_dir: str = DEFAULT_MODEL) -> PretrainedModel:
    """Load a shipped model by name (default :data:`DEFAULT_MODEL`) or a training run folder.

    TensorFlow's start-up lines are not printed (:func:`speechsep._quiet.quiet_loading`) unless the user set
    ``TF_CPP_MIN_LOG_LEVEL``; the variables set for that are put back afterwards.
    """
    from speechsep._quiet import quiet_loading

    source = resolve(name_or_dir)  # an unknown name or a corrupt file: a ValueError before TensorFlow loads
    with quiet_loading():
        return PretrainedModel(source)


def export(network, config: ExperimentConfig, stats: tuple[np.ndarray, np.ndarray], folder, info: dict) -> Path:
    """Write a model folder (weights float16, config, stats, ``model.json`` with the sha256) and return it.

    ``info`` goes into ``model.json`` beside ``weights_sha256``. Each file is
    written atomically; ``MODEL_CARD.md`` is the caller's. A weights file
    that already holds the same float16 arrays is kept byte for byte, so an
    export that changes only the config (say, how the model counts talkers)
    adds no new copy of the weights to git history.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / WEIGHTS_FILE
    arrays = [np.asarray(w).astype(np.float16) for w in network.get_weights()]
    if not (weights.is_file() and _same_arrays(read_weights_file(weights), arrays)):
        atomic_write_weights(weights, arrays, "float16")
    config.replace(precision="float32", minutes=None).save(folder / "config.json")
    mean, std = stats
    atomic_write_json(folder / "stats.json", {"mean": np.asarray(mean).tolist(), "std": np.asarray(std).tolist(),
                                              "split": "train"})
    atomic_write_json(folder / INFO_FILE, {**info, "weights_sha256": sha256_of(weights.read_bytes())})
    return folder


def _same_arrays(stored: list, arrays: list) -> bool:
    """Whether two lists of arrays have the same shapes and values (``stored`` read back as float32)."""
    return len(stored) == len(arrays) and all(
        a.shape == b.shape and np.array_equal(a, np.asarray(b, dtype=a.dtype)) for a, b in zip(stored, arrays))
