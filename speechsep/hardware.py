"""The CPU this process runs on: its name and feature flags, read once from ``/proc/cpuinfo``.

The one CPU-feature probe of the kit: :mod:`speechsep.nn.recurrent` asks it
whether bfloat16 is native, the benchmarks name the CPU in their tables.
Elsewhere than on Linux the flags are empty and the name is
:func:`platform.processor` (or the machine type).
"""

from __future__ import annotations

import dataclasses
import functools
import platform

BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # native bfloat16 arithmetic
CPU_FLAGS_OF_NOTE = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")  # what decides this kit's training speed


@dataclasses.dataclass(frozen=True)
class CpuInfo:
    """``name`` (e.g. ``AMD EPYC 9B14``) and ``flags`` (the first processor's ``flags`` line, e.g. ``avx2``)."""

    name: str
    flags: frozenset


@functools.lru_cache(maxsize=None)
def cpu_info() -> CpuInfo:
    """This machine's :class:`CpuInfo` (cached: read once per process)."""
    name, flags = None, None
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name") and name is None:
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and flags is None:
                    flags = frozenset(line.split(":", 1)[1].split())
                if name is not None and flags is not None:
                    break
    except OSError:
        pass
    return CpuInfo(name or platform.processor() or platform.machine() or "unknown CPU", flags or frozenset())


def native_bfloat16() -> bool:
    """True when the CPU has native bfloat16 arithmetic (``avx512_bf16`` or ``amx_bf16``)."""
    return bool(cpu_info().flags & BF16_FLAGS)
