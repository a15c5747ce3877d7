"""The one separation path (speechsep.separation.longform): blocks equal the whole, chunks keep each talker in its
file, the full band at the file's rate, and the CLI, ``PretrainedModel`` and ``speechsep.separate`` agree."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import soundfile

import speechsep
from speechsep import pretrained, signal
from speechsep.config import ExperimentConfig
from speechsep.separation import longform

from conftest import TINY_SIZES


def _noise(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(int(seconds * rate)) * 0.1


@pytest.mark.parametrize("rate", [16000, 44100, 8000, 11025])
def test_block_resampling_equals_one_resample_of_the_whole(rate):
    mono = _noise(3.3, rate)
    whole = scipy.signal.resample_poly(mono, 8000 // np.gcd(rate, 8000), rate // np.gcd(rate, 8000)) \
        if rate != 8000 else mono
    blocks = longform.resampled(longform.ArrayAudio(mono, rate), 8000, block_seconds=0.37)
    assert blocks.shape == whole.shape
    np.testing.assert_allclose(blocks, whole, atol=1e-6)


def test_stft_blocks_and_streamed_overlap_add_equal_the_whole_transform():
    mono = _noise(1.7, 8000, seed=1)
    audio, grid = longform.ArrayAudio(mono, 8000), longform.Grid(8000)
    whole = signal.stft(mono)
    assert grid.frames(len(mono)) == len(whole) and (grid.n_fft, grid.hop) == (signal.N_FFT, signal.HOP_LENGTH)
    parts = [longform.stft_frames(audio, grid, a, min(a + 37, len(whole))) for a in range(0, len(whole), 37)]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-5)
    masks = np.random.default_rng(2).random((2,) + whole.shape).astype(np.float32)
    ola = longform.OverlapAdd(grid, 2, len(mono))
    out = [ola.push(a, masks[:, a:a + 37] * whole[None, a:a + 37]) for a in range(0, len(whole), 37)]
    streamed = np.concatenate(out + [ola.finish()], axis=1)
    np.testing.assert_allclose(streamed, signal.istft(masks * whole[None], len(mono)), atol=1e-5)


@pytest.mark.parametrize("rate", [16000, 44100, 22050])
def test_the_grid_at_any_rate_reconstructs_the_signal(rate):
    mono = _noise(1.1, rate, seed=3)
    audio, grid = longform.ArrayAudio(mono, rate), longform.Grid(rate)
    total = grid.frames(len(mono))
    ola = longform.OverlapAdd(grid, 1, len(mono))
    out = [ola.push(a, longform.stft_frames(audio, grid, a, min(a + 50, total))[None]) for a in range(0, total, 50)]
    np.testing.assert_allclose(np.concatenate(out + [ola.finish()], axis=1)[0], mono, atol=1e-5)
    weights = longform.band_weights(grid)  # [130, bins]
    np.testing.assert_allclose(weights.sum(axis=0), 1.0)
    hz = np.arange(grid.bins) * rate / grid.n_fft
    assert np.all(weights[signal.N_BINS, hz > 4000 + 1e-6] == 1.0)  # above 4 kHz: the high-band mask only
    assert weights[signal.N_BINS, hz <= 4000].sum() == 0.0


def _band_network(folder):
    """A run folder of a tiny dc network (talkers {1, 2}) that embeds bins below 2 kHz along one axis and the
    bins above along another, whatever it hears: an oracle for two talkers on either side of 2 kHz."""
    from speechsep.io import atomic_save_model, atomic_write_json
    from speechsep.nn.models import build_model

    config = ExperimentConfig.for_experiment("meanshift", talkers=(1, 2), count_method="eigengap", readout="kmeans",
                                             jit_compile=False, **TINY_SIZES)
    model = build_model(config)
    layer = model.get_layer("embedding")
    kernel, bias = layer.get_weights()
    axes = np.eye(config.embedding_dim)
    per_bin = np.stack([axes[0] if f < 64 else axes[1] for f in range(signal.N_BINS)])  # [129, D]
    layer.set_weights([np.zeros_like(kernel), per_bin.reshape(-1).astype(bias.dtype)])
    folder.mkdir(parents=True)
    config.save(folder / "config.json")
    atomic_write_json(folder / "stats.json", {"mean": [0.0] * signal.N_BINS, "std": [1.0] * signal.N_BINS,
                                              "split": "train"})
    atomic_save_model(model, folder / "best.keras")
    return folder


def _two_tone_talkers(seconds: float, rate: int = 8000) -> np.ndarray:
    """[2, samples]: a low talker (300-900 Hz harmonics) and a high one (2.6-3.4 kHz), each on and off by turns."""
    t = np.arange(int(seconds * rate)) / rate
    low = sum(np.sin(2 * np.pi * f * t) for f in (300, 600, 900)) * 0.1
    high = sum(np.sin(2 * np.pi * f * t) for f in (2600, 3000, 3400)) * 0.1
    gate = lambda period, phase: (np.sin(2 * np.pi * t / period + phase) > -0.5).astype(float)  # noqa: E731
    return np.stack([low * gate(3.1, 0.0), high * gate(4.3, 1.0)])


def test_chunks_keep_each_talker_in_its_own_file_from_start_to_end(tmp_path, monkeypatch):
    model = pretrained.load(_band_network(tmp_path / "band"))
    sources = _two_tone_talkers(24.0)
    mixture = sources.sum(axis=0)
    monkeypatch.setattr(longform, "SINGLE_PASS_SECONDS", 2.0)  # 3001 frames in 13 windows of 250 + 2 x 30
    monkeypatch.setattr(longform, "CHUNK_FRAMES", 250)
    monkeypatch.setattr(longform, "CONTEXT_FRAMES", 30)
    estimates = model.separate(mixture, 8000)
    assert model.last.chunks == 13 and model.last.counted and model.last.n_found == 2 and len(estimates) == 2
    low = int(np.argmax([abs(np.dot(e, sources[0])) for e in estimates]))  # the estimate of the low talker
    for start in range(0, len(mixture), 8000):  # every second, the low talker is in that same estimate
        part = slice(start, start + 8000)
        if np.abs(sources[0, part]).max() > 0 and np.abs(sources[1, part]).max() > 0:
            assert np.dot(estimates[low, part], sources[0, part]) > 0.9 * np.dot(sources[0, part], sources[0, part])
            assert np.dot(estimates[1 - low, part], sources[1, part]) > 0.9 * np.dot(sources[1, part], sources[1, part])
    lone = model.separate(sources[0, :3 * 8000], 8000)  # the low talker alone: counted as 1
    assert len(lone) == 1 and model.last.n_found == 1


def test_full_band_at_the_files_rate_keeps_the_band_above_4khz(tmp_path):
    model = pretrained.load(_band_network(tmp_path / "band"))
    sources8 = _two_tone_talkers(3.0)
    rate = 16000
    t = np.arange(3 * rate) / rate
    sources = np.stack([scipy.signal.resample_poly(s, 2, 1) for s in sources8])
    sources[1] += 0.05 * np.sin(2 * np.pi * 5500 * t) * (np.abs(sources[1]) > 0)  # the high talker above 4 kHz
    estimates = model.separate(sources.sum(axis=0), rate, num_speakers=2)
    assert estimates.shape == (2, 3 * rate)
    high = int(np.argmax([abs(np.dot(e, sources[1])) for e in estimates]))
    band = lambda x: np.abs(np.fft.rfft(x))[int(5400 * 3):int(5600 * 3)].sum()  # noqa: E731  (bins of 1/3 Hz)
    assert band(estimates[high]) > 0.8 * band(sources[1])  # 5.5 kHz comes back, with its talker
    assert band(estimates[1 - high]) < 0.2 * band(sources[1])
    at_8k = model.separate(sources.sum(axis=0), rate, num_speakers=2, rate=8000)
    assert at_8k.shape == (2, 3 * 8000) and model.last.rate == 8000


def test_a_short_recording_at_8khz_is_the_separators_own_separation(trained_runs):
    from speechsep.separation.separator import Separator

    run = trained_runs / "deepclustering"
    mixture = _two_tone_talkers(1.5).sum(axis=0).astype(np.float32)
    reference, _ = Separator.from_run_dir(run).separate(mixture, 2)
    sink, result = longform.separate_audio(pretrained.load(run).separator, longform.ArrayAudio(mixture, 8000), 2)
    assert result.chunks == 1 and result.rate == 8000
    np.testing.assert_allclose(sink.estimates, reference, atol=1e-5)


def test_a_file_streamed_block_by_block_names_its_problems(tmp_path, monkeypatch):
    monkeypatch.setattr(longform, "SINGLE_PASS_SECONDS", 0.5)
    path = tmp_path / "long.wav"
    data = _noise(1.2, 16000)
    data[15000] = np.nan
    soundfile.write(path, data, 16000, subtype="FLOAT")
    audio = longform.open_audio(path)
    assert isinstance(audio, longform.FileAudio)
    with pytest.raises(ValueError, match="long.wav.*NaN or infinite"):
        longform.resampled(audio, 8000)
    audio.close()


# ----------------------------------------------------------------------------- the shipped model, three ways


@pytest.fixture(scope="module")
def shipped_model():
    return pretrained.load()


@pytest.mark.parametrize("talkers", [1, 2, 3])
def test_cli_python_and_speechsep_separate_count_the_same_and_agree(shipped_model, talkers, tmp_path):
    from speechsep.__main__ import main as cli_main

    records, _ = pretrained.regression_mixtures(talkers=talkers, count=1)
    mixture = records[0]["mixture"].astype(np.float64)
    at_16k = scipy.signal.resample_poly(mixture, 2, 1) * 0.5
    from_model = shipped_model.separate(at_16k, 16000)
    assert shipped_model.last.counted and shipped_model.last.n_found == len(from_model)
    from_top = speechsep.separate(at_16k, 16000, model=shipped_model)
    np.testing.assert_array_equal(from_top, from_model)
    soundfile.write(tmp_path / "mix.wav", at_16k, 16000, subtype="FLOAT")
    assert cli_main(["separate", "--out", str(tmp_path / "out"), str(tmp_path / "mix.wav")]) == 0
    written = sorted((tmp_path / "out").glob("mix_s*.wav"))
    assert len(written) == len(from_model)  # the same count
    for path, estimate in zip(written, from_model):
        data, rate = soundfile.read(path)
        assert rate == 16000 and len(data) == len(estimate)
        np.testing.assert_allclose(data, estimate / max(1.0, np.abs(from_model).max()), atol=1e-4)  # 16-bit files
    from_file = shipped_model.separate_file(tmp_path / "mix.wav")
    np.testing.assert_allclose(from_file, from_model, atol=1e-5)
    assert len(from_model) == talkers  # these three mixtures are counted right (regression_mixtures' first)


def test_a_long_recording_shows_a_progress_bar_when_asked(tmp_path, monkeypatch, capsys):
    model = pretrained.load(_band_network(tmp_path / "band"))
    monkeypatch.setattr(longform, "SINGLE_PASS_SECONDS", 2.0)
    mixture = _two_tone_talkers(6.0).sum(axis=0)
    sink, result = longform.separate_audio(model.separator, longform.ArrayAudio(mixture, 8000), progress=True)
    assert result.chunks == 1 and "network" in capsys.readouterr().err  # tqdm's bar, on stderr
    longform.separate_audio(model.separator, longform.ArrayAudio(mixture, 8000))  # default: not on a pipe
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("run_name, readout", [("feedforward", None), ("deepclustering", "meanshift"),
                                               ("deepclustering", "pca_sign")])
def test_other_readouts_on_the_chunked_path(trained_runs, run_name, readout, monkeypatch):
    monkeypatch.setattr(longform, "SINGLE_PASS_SECONDS", 1.0)
    monkeypatch.setattr(longform, "CHUNK_FRAMES", 100)
    model = pretrained.load(trained_runs / run_name)
    stereo_44k = np.stack([scipy.signal.resample_poly(_two_tone_talkers(2.5).sum(axis=0), 441, 80)] * 2, axis=1)
    if readout == "pca_sign":  # no global readout for it: one line saying which to use
        with pytest.raises(ValueError, match="use kmeans or meanshift"):
            model.separate(stereo_44k, 44100, readout=readout)
        return
    estimates = model.separate(stereo_44k, 44100, readout=readout)
    assert estimates.shape[1] == len(stereo_44k) and model.last.chunks == 4 and np.all(np.isfinite(estimates))
    assert len(estimates) >= 1 and model.last.rate == 44100


def test_short_files_batched_through_the_network_get_their_own_outputs(shipped_model):
    from speechsep.signal import stft

    records, _ = pretrained.regression_mixtures(count=3)
    audios = [longform.ArrayAudio(r["mixture"][:16000 + 3000 * i], 8000) for i, r in enumerate(records)]
    for audio, (mixture8, output) in zip(audios, longform.network_outputs(shipped_model.separator, audios)):
        alone = shipped_model.separator.network_output(stft(mixture8))  # [T, F, D] of the recording alone
        assert output.shape == alone.shape
        np.testing.assert_allclose(output, alone, atol=1e-5)
        batched, _ = longform.separate_audio(shipped_model.separator, audio, prepared=(mixture8, output))
        single, _ = longform.separate_audio(shipped_model.separator, audio)
        np.testing.assert_allclose(batched.estimates, single.estimates, atol=1e-5)


def test_estimates_at_a_third_rate_have_its_length(tmp_path):
    model = pretrained.load(_band_network(tmp_path / "band"))
    at_16k = scipy.signal.resample_poly(_two_tone_talkers(1.5).sum(axis=0), 2, 1)
    estimates = model.separate(at_16k, 16000, num_speakers=2, rate=22050)
    assert estimates.shape == (2, -(-len(at_16k) * 441 // 320)) and model.last.rate == 22050  # resample_poly's length
    assert np.all(np.isfinite(estimates)) and np.abs(estimates).max() > 0.01
