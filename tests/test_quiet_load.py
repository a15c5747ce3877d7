"""``pretrained.load()`` from Python prints no TensorFlow start-up lines, unless the user set TF_CPP_MIN_LOG_LEVEL,
and puts back the variables it set for that; ``import speechsep`` loads no TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from conftest import REPO_ROOT

PROGRAM = textwrap.dedent("""
    import json, os, sys
    import speechsep
    light = "tensorflow" not in sys.modules
    before = dict(os.environ)
    from speechsep import pretrained
    model = pretrained.load()
    print(json.dumps({"light": light, "environ": sorted(k for k in set(before) | set(os.environ)
                                                        if before.get(k) != os.environ.get(k))}))
""")


def _run(extra_env: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLED_DEVICE_TYPES")}
    return subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=300,
                          cwd=REPO_ROOT, env={**env, **extra_env})


def test_loading_a_model_prints_nothing_and_changes_no_variable():
    process = _run({})
    assert process.returncode == 0, process.stderr
    facts = json.loads(process.stdout.strip().splitlines()[-1])
    assert facts["light"]  # import speechsep loaded no TensorFlow
    # TensorFlow sets variables of its own (TF2_BEHAVIOR, ...); the quiet start-up's are put back
    assert not {"TF_CPP_MIN_LOG_LEVEL", "TF_ENABLED_DEVICE_TYPES"} & set(facts["environ"])
    assert process.stderr == ""  # no oneDNN, cuda, cpu_feature_guard or absl lines


def test_a_log_level_the_user_set_is_respected():
    process = _run({"TF_CPP_MIN_LOG_LEVEL": "0"})
    assert process.returncode == 0, process.stderr
    assert "I0000" in process.stderr or "oneDNN" in process.stderr  # the user asked for TensorFlow's lines
