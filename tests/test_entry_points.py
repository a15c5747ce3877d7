"""The library leaves the process alone; the entry points quieten TensorFlow and turn errors into one line.

Importing :mod:`speechsep` (or any of its modules) must not touch
``os.environ``, ``sys.excepthook`` or the import machinery: a notebook, or a
user's own training code, keeps its process as it was. What the scripts and
the CLI need (quiet TensorFlow start-up, the error hook, exit statuses) is
done by :func:`speechsep.cli.program_start` and :func:`speechsep.cli.run_guarded`.
Each check runs in a fresh interpreter: the test process has long imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO_ROOT

# Modules that need no TensorFlow: importing them must not load it either.
LIGHT_MODULES = ("speechsep", "speechsep.cli", "speechsep.config", "speechsep.experiments", "speechsep.io",
                 "speechsep.signal", "speechsep.hardware", "speechsep.launch", "speechsep.data.audio",
                 "speechsep.data.corpus", "speechsep.data.sources", "speechsep.data.mixing", "speechsep.data.shards",
                 "speechsep.data.toy", "speechsep.data.testset", "speechsep.eval.metrics", "speechsep.eval.evaluation",
                 "speechsep.eval.compare", "speechsep.separation.cluster", "speechsep.training.runner",
                 "speechsep.training.script_args", "speechsep.training.experiment_data", "speechsep.training.outputs",
                 "speechsep.training.tf_config", "speechsep.errors", "speechsep.figures.plots",
                 "benchmarks", "benchmarks.quality")
# Modules that import TensorFlow (which sets a few variables of its own, e.g. TF2_BEHAVIOR).
TENSORFLOW_MODULES = ("speechsep.data.pipeline", "speechsep.nn.models", "speechsep.separation.separator",
                      "speechsep.training.trainer", "speechsep.training.distribute")
QUIET_VARIABLES = ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLED_DEVICE_TYPES")  # what speechsep._quiet sets

# Imports the modules named on the command line and prints what changed in the process.
PROBE = textwrap.dedent("""
    import importlib, json, os, sys
    import matplotlib.figure  # third party: installs six's meta-path importer, which is not ours
    environ, hook = dict(os.environ), sys.excepthook
    meta_path, path_hooks, path = list(sys.meta_path), list(sys.path_hooks), list(sys.path)
    {before}
    for name in sys.argv[1:]:
        importlib.import_module(name)
    print(json.dumps({{
        "environ": sorted(key for key in set(environ) | set(os.environ) if environ.get(key) != os.environ.get(key)),
        "excepthook": sys.excepthook is hook,
        "new_finders": [type(finder).__module__ + "." + type(finder).__name__
                        for finder in sys.meta_path if finder not in meta_path],
        "path_hooks": sys.path_hooks == path_hooks, "path": sys.path == path,
        "tensorflow": "tensorflow" in sys.modules,
        "quiet": {{key: os.environ.get(key) for key in {quiet!r}}},
    }}))
""")


def probe(modules, before: str = "") -> dict:
    """Import ``modules`` in a fresh interpreter (after ``before``); what changed in it."""
    environ = {key: value for key, value in os.environ.items() if key not in QUIET_VARIABLES}
    process = subprocess.run([sys.executable, "-c", PROBE.format(before=before, quiet=QUIET_VARIABLES), *modules],
                             capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, env=environ)
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout.strip().splitlines()[-1])


def test_importing_the_library_leaves_the_process_alone():
    changed = probe(LIGHT_MODULES)
    assert changed["environ"] == []
    assert changed["excepthook"] and changed["new_finders"] == []
    assert changed["path_hooks"] and changed["path"]
    assert not changed["tensorflow"]  # nothing heavy at import time


@pytest.mark.slow
def test_modules_that_load_tensorflow_set_nothing_of_their_own():
    changed = probe(TENSORFLOW_MODULES)
    assert changed["tensorflow"]
    assert changed["quiet"] == {key: None for key in QUIET_VARIABLES}  # no quiet start-up: the user's console
    assert not any(set(changed["environ"]) & set(QUIET_VARIABLES))
    assert changed["excepthook"] and changed["path_hooks"] and changed["path"]
    assert not [finder for finder in changed["new_finders"] if finder.startswith("speechsep")]


def test_program_start_is_what_quietens_the_entry_points():
    started = probe([], before="from speechsep.cli import program_start; program_start()")
    assert started["quiet"]["TF_CPP_MIN_LOG_LEVEL"] == "2" and "TF_CPP_MIN_LOG_LEVEL" in started["environ"]
    assert started["new_finders"] == ["speechsep._quiet._QuietTensorFlowFinder"]  # filters `import tensorflow`
    assert started["excepthook"]  # the error hook is for a script run from a shell only
    untouched = probe([], before="import speechsep.cli")
    assert untouched["environ"] == [] and untouched["new_finders"] == []


def test_a_lost_peer_is_an_exception_in_the_library_and_one_line_and_status_3_at_an_entry_point():
    from speechsep.errors import LOST_PEER_STATUS, PeerLostError

    assert issubclass(PeerLostError, RuntimeError) and LOST_PEER_STATUS == 3
    program = textwrap.dedent("""
        from speechsep.cli import run_guarded
        from speechsep.errors import PeerLostError

        def train():
            raise PeerLostError("worker 1 of 2 lost the cluster (worker 0 at 127.0.0.1:1 stopped responding)")

        run_guarded(train)
        print("not reached")
    """)
    process = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120,
                             cwd=REPO_ROOT)
    assert process.returncode == LOST_PEER_STATUS and process.stdout == ""
    assert process.stderr == ("error: worker 1 of 2 lost the cluster (worker 0 at 127.0.0.1:1 stopped "
                              "responding)\n")
