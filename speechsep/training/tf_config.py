"""TF_CONFIG: the cluster of a multi-worker run and this process's place in it (no TensorFlow needed).

Every worker of ``--strategy multiworker`` runs the same command with its own
``TF_CONFIG`` environment variable (TensorFlow's format)::

    {"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]},
     "task": {"type": "worker", "index": 0}}

Worker 0 is the chief (or the one ``"chief"`` task, if the cluster has one).
This module reads and checks ``TF_CONFIG`` before TensorFlow loads, so a bad
one is a one-line error, and holds the start-up watchdog: a worker whose
peers never join is stopped with a message naming their addresses (run as
``python -m speechsep.training.tf_config --watch PID SECONDS PEERS``, a separate
process, because creating the strategy blocks inside TensorFlow's C++ code).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import sys
import time
from typing import Mapping, Sequence

JOBS = ("chief", "worker")  # the task types MultiWorkerMirroredStrategy trains with


@dataclasses.dataclass(frozen=True)
class ClusterTask:
    """This process's place in a TF_CONFIG cluster: ``cluster`` maps a job to its ``host:port`` addresses."""

    cluster: Mapping[str, tuple[str, ...]]
    task_type: str
    index: int

    @property
    def addresses(self) -> list[str]:
        """Every task's address, the chief first (if there is a ``chief`` job), then the workers."""
        return [address for job in JOBS for address in self.cluster.get(job, ())]

    @property
    def num_workers(self) -> int:
        """Tasks that train (chief and workers)."""
        return len(self.addresses)

    @property
    def rank(self) -> int:
        """Position of this task in :attr:`addresses` (0: the chief)."""
        return (len(self.cluster.get("chief", ())) if self.task_type == "worker" else 0) + self.index

    @property
    def is_chief(self) -> bool:
        """The one task that writes the run folder: the ``chief`` task, else worker 0."""
        return self.rank == 0

    @property
    def address(self) -> str:
        return self.cluster[self.task_type][self.index]

    def peers(self) -> list[tuple[str, str]]:
        """(name, address) of every other task, e.g. ``("worker 1", "10.0.0.2:12345")``."""
        return [(f"{job} {index}", address) for job in JOBS
                for index, address in enumerate(self.cluster.get(job, ()))
                if (job, index) != (self.task_type, self.index)]

    def describe(self) -> str:
        """``worker 1 of 2 (127.0.0.1:40001)``."""
        return f"{self.task_type} {self.index} of {self.num_workers} ({self.address})"


def _check_address(job: str, index: int, address) -> str:
    host, _, port = address.rpartition(":") if isinstance(address, str) else ("", "", "")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"TF_CONFIG: cluster {job} {index} is {address!r}, not a host:port address "
                         "(e.g. \"10.0.0.1:12345\")")
    return address


def parse_tf_config(text: str | None) -> ClusterTask | None:
    """The :class:`ClusterTask` of a ``TF_CONFIG`` value; None if it is unset or empty.

    Raises ``ValueError`` naming the problem: not JSON, no ``cluster`` or
    ``task``, a job other than chief/worker, a bad address, a task index
    outside its job.
    """
    if text is None or not text.strip():
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}): {text[:120]!r}") from None
    if not isinstance(data, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object with \"cluster\" and \"task\", got {text[:120]!r}")
    cluster, task = data.get("cluster"), data.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise ValueError("TF_CONFIG has no \"cluster\" object (e.g. {\"worker\": [\"host1:port\", \"host2:port\"]})")
    if not isinstance(task, dict):
        raise ValueError("TF_CONFIG has no \"task\" object (e.g. {\"type\": \"worker\", \"index\": 0})")
    unknown = sorted(set(cluster) - set(JOBS))
    if unknown:
        raise ValueError(f"TF_CONFIG: cluster job(s) {unknown} are not supported by --strategy multiworker; "
                         "use \"worker\" (and at most one \"chief\")")
    jobs = {}
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            raise ValueError(f"TF_CONFIG: cluster {job!r} must be a non-empty list of host:port addresses")
        jobs[job] = tuple(_check_address(job, index, address) for index, address in enumerate(addresses))
    if len(jobs.get("chief", ())) > 1:
        raise ValueError(f"TF_CONFIG: the cluster has {len(jobs['chief'])} chief tasks; at most one is allowed")
    every = [address for addresses in jobs.values() for address in addresses]
    repeated = sorted({address for address in every if every.count(address) > 1})
    if repeated:
        raise ValueError(f"TF_CONFIG: address(es) {repeated} appear more than once in the cluster")
    task_type, index = task.get("type"), task.get("index")
    if task_type not in jobs:
        raise ValueError(f"TF_CONFIG: task type {task_type!r} is not a job of the cluster {sorted(jobs)}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(jobs[task_type]):
        raise ValueError(f"TF_CONFIG: task index {index!r} is outside the {len(jobs[task_type])} "
                         f"{task_type} address(es) of the cluster")
    return ClusterTask(jobs, task_type, index)


def cluster_task(environ: Mapping[str, str] | None = None) -> ClusterTask | None:
    """The :class:`ClusterTask` of this process's ``TF_CONFIG`` (None when unset)."""
    return parse_tf_config((os.environ if environ is None else environ).get("TF_CONFIG"))


def tf_config(addresses: Sequence[str], index: int) -> str:
    """The ``TF_CONFIG`` of worker ``index`` in a cluster of ``addresses`` (worker 0 is the chief)."""
    return json.dumps({"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": index}})


def check_strategy_arguments(strategy: str, batch_sizes: Mapping[str, int | None],
                             environ: Mapping[str, str] | None = None) -> ClusterTask | None:
    """Refuse, before TensorFlow loads, a ``--strategy`` that ``TF_CONFIG`` and the batch sizes cannot run.

    ``batch_sizes`` maps an option name (``"--batch-size"``) to its global
    batch size (None: unused). Refused: a malformed ``TF_CONFIG``;
    ``multiworker`` without ``TF_CONFIG``; a cluster ``TF_CONFIG`` with another
    strategy (every worker would train alone into the same folder); a global
    batch not divisible by the workers. Returns this process's task, if any.
    """
    task = cluster_task(environ)
    if strategy == "multiworker" and task is None:
        raise ValueError("--strategy multiworker needs TF_CONFIG, the cluster and this worker's place in it: "
                         "start the workers with `python -m speechsep launch --workers N -- COMMAND`, or set "
                         "TF_CONFIG on each machine (README: Training on several machines)")
    if strategy != "multiworker" and task is not None and task.num_workers > 1:
        raise ValueError(f"TF_CONFIG describes a cluster of {task.num_workers} workers but --strategy is "
                         f"{strategy}: pass --strategy multiworker, or unset TF_CONFIG")
    if strategy == "multiworker":
        for option, size in batch_sizes.items():
            if size is not None and size % task.num_workers:
                raise ValueError(f"{option} {size} (the global batch) is not divisible by the "
                                 f"{task.num_workers} workers of TF_CONFIG: use a multiple of {task.num_workers}")
    return task


# ----------------------------------------------------------------------------- start-up watchdog


def probe(address: str, timeout: float = 1.0) -> str | None:
    """None if ``host:port`` accepts a TCP connection, else why not (e.g. ``connection refused``)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return None
    except OSError as error:
        return (error.strerror or str(error) or type(error).__name__).lower()


def watch(pid: int, seconds: float, peers: Sequence[tuple[str, str]], address: str) -> None:
    """Wait ``seconds``; if process ``pid`` (our parent) still runs, print which peers are unreachable and kill it.

    Returns early, doing nothing, when the parent ends (it then kills this
    watchdog itself on success).
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.getppid() != pid:  # the worker is gone: never signal a recycled pid
            return
        time.sleep(0.2)
    unreachable = [f"{name} at {peer} ({why})" for name, peer in peers for why in [probe(peer)] if why]
    reason = ("cannot reach " + "; ".join(unreachable) if unreachable
              else "every peer accepts connections but the cluster did not form (do all workers share one "
                   "TF_CONFIG cluster?)")
    print(f"error: the worker at {address} gave up after {seconds:g} s waiting for the cluster to form: "
          f"{reason}", file=sys.stderr, flush=True)
    os.kill(pid, signal.SIGKILL)


if __name__ == "__main__" and sys.argv[1:2] == ["--watch"]:
    watch(int(sys.argv[2]), float(sys.argv[3]), [tuple(peer) for peer in json.loads(sys.argv[4])], sys.argv[5])
