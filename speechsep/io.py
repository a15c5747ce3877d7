"""Small, dependency-free file I/O shared by the whole kit.

* :func:`atomic_write_bytes` / :func:`atomic_write_json` / :func:`atomic_write_text`:
  write through a temporary file in the same folder, ``fsync``, then rename
  (atomic on POSIX), so a killed process never leaves a half-written file;
* :func:`sha256_of`: the checksum stored for every dataset shard and shipped model;
* :func:`atomic_write_weights` / :func:`read_weights`: a network's weights as
  one npz of ``w000, w001, ...`` arrays (``get_weights()`` order);
* :class:`RestrictedUnpickler` / :func:`safe_loads`: unpickling that admits only
  numpy arrays, dtypes, scalars and builtin containers, and refuses any other
  global (``os.system``, ``builtins.eval`` ...) before anything runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
from pathlib import Path


class UnsafePickleError(ValueError):
    """A pickle that is corrupt or references a global outside the allow-list (names the source)."""


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(descriptor, 0o666 & ~umask)  # mkstemp creates 0600; use normal permissions
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def read_json_object(path: Path, what: str, advice: str = "") -> dict:
    """The JSON object in ``path``; a ``ValueError`` ``"<path>: damaged <what> (<why>)<advice>"`` otherwise."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: damaged {what} ({error}){advice}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: damaged {what} (not a JSON object){advice}")
    return data


def atomic_write_weights(path: Path, weights, dtype="float16") -> Path:
    """Write ``weights`` (a list of arrays, ``keras.Model.get_weights()`` order) as ``dtype`` into one npz."""
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **{f"w{i:03d}": np.asarray(w).astype(dtype) for i, w in enumerate(weights)})
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def read_weights(path: Path) -> list:
    """The float32 arrays of a file written by :func:`atomic_write_weights`, in order."""
    import numpy as np

    with np.load(path) as archive:
        return [archive[key].astype(np.float32) for key in sorted(archive.files)]


def atomic_save_model(model, path: Path) -> None:
    """``model.save(path)`` through a temporary ``.keras`` file beside it and an atomic rename.

    A process killed while saving leaves the previous ``path`` intact (and at
    most a ``.<name>.*.tmp.keras`` file), never a truncated checkpoint.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.keras", dir=path.parent)
    os.close(descriptor)
    try:
        model.save(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def atomic_write_json(path: Path, data) -> None:
    """Write ``data`` as indented, key-sorted JSON, atomically."""
    atomic_write_bytes(Path(path), (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) atomically."""
    atomic_write_bytes(Path(path), text.encode())


def sha256_of(payload: bytes) -> str:
    """Hex sha256 of ``payload``."""
    return hashlib.sha256(payload).hexdigest()


# ----------------------------------------------------------------------------- safe pickle

_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "bytearray"),
    ("_codecs", "encode"),  # protocol-2 pickles of bytes
}
_NUMPY_DTYPE_MODULES = ("numpy.dtypes",)  # numpy 2 dtype classes, e.g. numpy.dtypes.Float32DType


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only resolves numpy array/dtype/scalar reconstructors and builtin containers."""

    def __init__(self, file, source: str = "<bytes>"):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS or (
            module in _NUMPY_DTYPE_MODULES and name.endswith("DType")
        ):
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"{self.source}: refused to unpickle the global {module}.{name}; dataset shards may only "
            "hold numpy arrays and builtin containers (this file is corrupt or malicious)"
        )


def safe_loads(payload: bytes, source: str = "<bytes>"):
    """Unpickle ``payload`` with :class:`RestrictedUnpickler`; any failure is an :class:`UnsafePickleError`."""
    try:
        return RestrictedUnpickler(io.BytesIO(payload), source).load()
    except UnsafePickleError:
        raise
    except Exception as error:
        raise UnsafePickleError(f"{source}: not a valid shard pickle ({type(error).__name__}: {error})") from None
