"""Start N local workers of one command on loopback, each with its ``TF_CONFIG`` (``python -m speechsep launch``).

    python -m speechsep launch --workers 2 -- python Deep-clustering/train_deep_clustering.py --quick \\
        --strategy multiworker

Each worker gets a free port on 127.0.0.1 and the ``TF_CONFIG`` of its place
in the cluster (worker 0 is the chief). Their output (stdout and stderr) is
printed line by line, prefixed ``[worker i]``. The first worker that fails
stops the others (SIGTERM, then SIGKILL: TensorFlow's multi-worker runtime
ignores SIGTERM), and the launcher exits with its status; so does a
``timeout``. On several machines, start the command on each with its own
``TF_CONFIG`` instead (README: Training on several machines).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Sequence, TextIO

from speechsep.training.tf_config import tf_config

LOOPBACK = "127.0.0.1"
TIMEOUT_STATUS = 124  # like coreutils timeout
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL when stopping workers


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct TCP ports that were free on ``host`` a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            handle = socket.socket()
            handle.bind((host, 0))
            sockets.append(handle)
        return [handle.getsockname()[1] for handle in sockets]
    finally:
        for handle in sockets:
            handle.close()


def exit_status(returncode: int) -> int:
    """A shell-style exit status: 128 + N for a worker killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


class LocalCluster:
    """N processes of ``command`` on loopback ports, with their ``TF_CONFIG``; output prefixed ``[worker i]``.

    ``start()`` starts them; ``wait()`` returns 0 once all have exited with
    status 0, or stops the others as soon as one fails and returns its status;
    ``stop()`` ends every worker still running. ``processes`` holds the
    ``subprocess.Popen`` of each worker (index = worker index).
    """

    def __init__(self, command: Sequence[str], workers: int, out: TextIO | None = None,
                 env: dict | None = None, kill_grace: float = KILL_GRACE):
        if workers < 1:
            raise ValueError(f"--workers must be at least 1, got {workers}")
        if not command:
            raise ValueError("no command to launch: give it after --, e.g. -- python script.py --strategy multiworker")
        self.command, self.workers, self.out = list(command), workers, out or sys.stdout
        self.env, self.kill_grace = env, kill_grace
        self.addresses = [f"{LOOPBACK}:{port}" for port in free_ports(workers)]
        self.processes: list[subprocess.Popen] = []
        self._pumps: list[threading.Thread] = []
        self._lock = threading.Lock()

    def say(self, text: str) -> None:
        """Print a line of the launcher's own, prefixed ``[launch]``."""
        self._write(f"[launch] {text}\n")

    def _write(self, text: str) -> None:
        with self._lock:
            self.out.write(text)
            self.out.flush()

    def _pump(self, index: int, stream) -> None:
        for line in iter(stream.readline, b""):
            self._write(f"[worker {index}] {line.decode(errors='replace').rstrip()}\n")
        stream.close()

    def start(self) -> "LocalCluster":
        for index in range(self.workers):
            environ = dict(os.environ if self.env is None else self.env)
            environ["TF_CONFIG"] = tf_config(self.addresses, index)
            environ.setdefault("PYTHONUNBUFFERED", "1")  # lines appear as they are printed
            try:
                process = subprocess.Popen(self.command, env=environ, stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as error:
                self.stop()
                raise ValueError(f"cannot start {self.command[0]!r}: {error.strerror or error}") from None
            self.processes.append(process)
            pump = threading.Thread(target=self._pump, args=(index, process.stdout), daemon=True)
            pump.start()
            self._pumps.append(pump)
        self.say(f"started {self.workers} worker(s) on {', '.join(self.addresses)}")
        return self

    def wait(self, timeout: float | None = None) -> int:
        """Wait for every worker; returns 0, the status of the first that failed, or 124 after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                codes = [process.poll() for process in self.processes]
                failed = [(index, code) for index, code in enumerate(codes) if code not in (None, 0)]
                if failed:
                    index, code = failed[0]
                    status = exit_status(code)
                    self.say(f"worker {index} exited with status {status}"
                             + ("; stopping the others" if None in codes else ""))
                    return status
                if all(code == 0 for code in codes):
                    return 0
                if deadline is not None and time.monotonic() > deadline:
                    self.say(f"timeout after {timeout:g} s; stopping the workers")
                    return TIMEOUT_STATUS
                time.sleep(0.1)
        finally:
            self.stop()

    def stop(self) -> None:
        """SIGTERM every running worker's process group, then SIGKILL what is left after the grace period."""
        running = [process for process in self.processes if process.poll() is None]
        for process in running:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + self.kill_grace
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        for pump in self._pumps:
            pump.join(2.0)


def _signal_group(process: subprocess.Popen, number: int) -> None:
    try:
        os.killpg(process.pid, number)  # the worker and its children (e.g. its start-up watchdog)
    except ProcessLookupError:
        pass


def launch(command: Sequence[str], workers: int, timeout: float | None = None, out: TextIO | None = None,
           env: dict | None = None) -> int:
    """Run ``command`` as ``workers`` local workers (:class:`LocalCluster`); returns 0 or the first failure's status."""
    cluster = LocalCluster(command, workers, out, env).start()
    try:
        return cluster.wait(timeout)
    except KeyboardInterrupt:
        cluster.say("interrupted; stopping the workers")
        cluster.stop()
        return 130
