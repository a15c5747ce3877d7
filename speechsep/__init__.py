"""speechsep: a TensorFlow research kit for single-channel speech separation.

Nothing heavy runs at import time: TensorFlow is only imported by the modules
that need it (models, losses, training, pipeline), and by :func:`separate` when
it is first called. Importing the kit leaves the process alone (environment,
``sys.excepthook``, the import machinery): the quiet TensorFlow start-up and
the one-line errors belong to the entry points (the scripts, ``python -m
speechsep``, the benchmarks), which call :func:`speechsep.cli.program_start`;
``speechsep.pretrained.load`` quietens TensorFlow's start-up only while it loads.

    import speechsep
    estimates = speechsep.separate(waveform, 16000)   # [talkers, samples] at 16 kHz, the talkers counted
"""

__version__ = "0.1.0"

_MODELS = {}  # loaded models by name: separate() loads each once


def separate(audio, sample_rate: int, model=None, num_speakers: int | None = None):
    """The talkers of ``audio`` [samples] or [samples, channels] at ``sample_rate``: float32 [K, samples] there.

    ``model``: a shipped model's name or a training run folder (default
    ``dc-librispeech``; loaded once and kept), or a loaded
    :class:`speechsep.pretrained.PretrainedModel`. K is the number of talkers
    the model counts (a model trained on 1-3 talkers), or ``num_speakers``.
    The same path as ``python -m speechsep separate`` and
    ``PretrainedModel.separate`` (:mod:`speechsep.separation.longform`): full
    band, any length in bounded memory. Bad input raises ``ValueError``.
    """
    from speechsep import pretrained

    if model is None or isinstance(model, str) or hasattr(model, "__fspath__"):
        key = str(model or pretrained.DEFAULT_MODEL)
        if key not in _MODELS:
            _MODELS[key] = pretrained.load(key)
        model = _MODELS[key]
    return model.separate(audio, sample_rate, num_speakers)
