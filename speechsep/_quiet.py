"""Quiet TensorFlow start-up for the entry points: the console shows the kit's own output, not TensorFlow's boot chatter.

Installed by :func:`speechsep.cli.program_start` (the scripts, ``python -m speechsep``,
the benchmarks); importing the library installs nothing.

What prints what (TensorFlow 2.21, CPU-only Linux), and what silences it:

* ``cpu_feature_guard`` and other INFO/WARNING lines logged after start-up:
  ``TF_CPP_MIN_LOG_LEVEL=2`` (set by default, users can override).
* ``E0000 ... failed call to cuInit`` when a GPU build finds no NVIDIA
  driver: ``TF_ENABLED_DEVICE_TYPES=CPU``, set only when no driver library
  (``libcuda.so.1``) can be loaded, i.e. when no GPU could be used anyway.
* ``WARNING: All log messages before absl::InitializeLog() ...``, ``oneDNN
  custom operations are on`` and ``Could not find cuda drivers``: written to
  file descriptor 2 while ``import tensorflow`` loads its libraries, before
  any setting is read. :func:`install` filters them during that one import,
  honouring ``TF_CPP_MIN_LOG_LEVEL`` (I, W, E lines below the level are
  dropped); every other line written meanwhile is passed on unchanged.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

_ABSL_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ [^\]\s]+:\d+\] ")
_ABSL_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_SEVERITIES = "IWEF"


def set_environment() -> None:
    """Defaults (never overriding the user's) that silence TensorFlow's start-up logging."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "TF_ENABLED_DEVICE_TYPES" not in os.environ and _no_gpu_driver():
        os.environ["TF_ENABLED_DEVICE_TYPES"] = "CPU"


def _no_gpu_driver() -> bool:
    """True on Linux when the NVIDIA driver library cannot be loaded (TensorFlow could use no GPU)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return True
    return False


def min_log_level() -> int:
    """``TF_CPP_MIN_LOG_LEVEL`` as an int (0 when unset or not a number)."""
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def is_chatter(line: str, level: int) -> bool:
    """Whether ``line`` is a C++ log line TensorFlow should have filtered at ``TF_CPP_MIN_LOG_LEVEL=level``."""
    if line.startswith(_ABSL_NOTICE):
        return level >= 1
    match = _ABSL_LINE.match(line)
    return match is not None and _SEVERITIES.index(match.group(1)) < level


@contextlib.contextmanager
def filtered_stderr():
    """Capture file descriptor 2; on exit, pass on every captured line except :func:`is_chatter` ones."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no usable stderr: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            level = min_log_level()
            kept = [line for line in capture.read().decode(errors="replace").splitlines(keepends=True)
                    if not is_chatter(line, level)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietLoader:
    """Wraps TensorFlow's loader: executes the package inside :func:`filtered_stderr`."""

    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        try:
            with filtered_stderr():
                self.loader.exec_module(module)
        finally:
            module.__loader__ = self.loader
            if module.__spec__ is not None:
                module.__spec__.loader = self.loader


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder that hands the first ``import tensorflow`` a :class:`_QuietLoader`, then retires."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _QuietLoader(spec.loader)
        return spec


@contextlib.contextmanager
def quiet_loading():
    """For the library's own TensorFlow load (``speechsep.pretrained.load``): no start-up chatter, nothing kept.

    While the block runs, :func:`set_environment`'s defaults apply (a value
    the user set wins) and the first ``import tensorflow`` is filtered like an
    entry point's (:func:`filtered_stderr`); afterwards the environment is as
    it was. TensorFlow reads its log level once, at start-up, so it stays
    quiet after the block unless the user set ``TF_CPP_MIN_LOG_LEVEL``.
    """
    names = ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLED_DEVICE_TYPES")
    saved = {name: os.environ.get(name) for name in names}
    set_environment()
    try:
        if "tensorflow" in sys.modules:
            yield
        else:
            with filtered_stderr():
                import tensorflow  # noqa: F401  (its start-up lines, filtered)
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def install() -> None:
    """Set the environment defaults and filter the start-up lines of the first ``import tensorflow``."""
    set_environment()
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())
