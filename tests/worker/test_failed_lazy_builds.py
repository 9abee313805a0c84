"""A lazy build that fails to compile is tried once, in the compile phase, and never compiled again on
the GPU lane: the run phase's call fails at once with the compiler's lines, so the candidate's own
fallback and kbrun's record of the failed build come out as they would after compiling. The compile
phase runs as kbrun runs it (kbrun_worker.py, no GPU); the run phase imports, constructs and calls the
candidate as run_phase.py does, with stand-ins for a GPU (torch.cuda.is_available, Tensor.cuda), in a
process of its own, on the same private dir. A g++ wrapper counts the compiler's runs.
Fixture: lazy_failing_builds_candidate.py. Run: /usr/bin/python3 -m pytest -q tests/worker
"""
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "..", "..", "src", "eval", "worker")
NAMES = ["lazy_fail_import", "lazy_fail_helper", "lazy_fail_init", "lazy_fail_forward"]
PROBLEM = '''import torch
import torch.nn as nn
class Model(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale
    def forward(self, x):
        return x * self.scale
def get_inputs():
    return [torch.ones(4)]
def get_init_inputs():
    return [2.0]
'''
RUN_PHASE = '''import json, sys
sys.path.insert(0, sys.argv[1])
import torch
from kbrun_eval import build, compile_phase, problem as kp
compile_phase.prepare_build({"mode": "fast"}, reuse_earlier_builds=True)
torch.cuda.is_available = lambda: True  # the run phase sees a GPU
torch.Tensor.cuda = lambda self, *args, **kwargs: self
candidate = kp.load_module(sys.argv[2], "kbrun_candidate")
problem = kp.load_module(sys.argv[3], "kbrun_problem")
model = candidate.ModelNew(*kp.init_inputs(torch, problem, 0))
out = model(*problem.get_inputs())
print(json.dumps({"attempts": build.build_attempts, "builds": build.builds, "caught": candidate.errors,
                  "out": out.tolist()}))
'''


def private_dir_and_env(tmp_path):
    """The private dir, the candidate and problem files, and an environment whose C++ compiler
    (CXX, as torch reads it) logs each compile it runs."""
    private = tmp_path / "private"
    private.mkdir()
    shutil.copy(os.path.join(HERE, "lazy_failing_builds_candidate.py"), tmp_path / "candidate.py")
    (tmp_path / "problem.py").write_text(PROBLEM)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "g++"  # a name torch takes for g++ without asking it
    wrapper.write_text('#!/bin/sh\ncase " $* " in *" -c "*) echo "$*" >> %s ;; esac\nexec %s "$@"\n'
                       % (tmp_path / "compiles.log", shutil.which("g++") or shutil.which("c++")))
    wrapper.chmod(0o755)
    env = dict(os.environ, TORCH_EXTENSIONS_DIR=str(private), CXX=str(wrapper), CUDA_VISIBLE_DEVICES="")
    return private, env


def compiles(tmp_path):
    log = tmp_path / "compiles.log"
    return log.read_text().splitlines() if log.exists() else []


def compile_phase(tmp_path, private, env):
    """kbrun_worker.py's compile phase; its result line (fd 3)."""
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"phase": "compile", "nonce": "n", "device": "cpu", "seed": 0,
                                   "code": str(tmp_path / "candidate.py"), "problem": str(tmp_path / "problem.py"),
                                   "build": {"mode": "fast"}}))
    read, write = os.pipe()
    launch = "import os, sys; os.dup2(int(sys.argv[1]), 3); os.execv(sys.executable, [sys.executable] + sys.argv[2:])"
    proc = subprocess.Popen([sys.executable, "-c", launch, str(write),
                             os.path.join(WORKER, "kbrun_worker.py"), "--request", str(request)],
                            cwd=private, env=env, pass_fds=(write,), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    os.close(write)
    with os.fdopen(read) as f:
        lines = f.read().splitlines()
    output = proc.communicate(timeout=900)[0]
    results = [line for line in lines if line.startswith("result n ")]
    assert len(results) == 1, (lines, output)
    return json.loads(results[0][len("result n "):])


def run_phase(tmp_path, private, env):
    out = subprocess.run([sys.executable, "-c", RUN_PHASE, WORKER, str(tmp_path / "candidate.py"),
                          str(tmp_path / "problem.py")], cwd=private, env=env, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_a_failed_lazy_build_is_compiled_once_in_the_compile_phase_never_on_the_lane(tmp_path):
    private, env = private_dir_and_env(tmp_path)
    compiled = compile_phase(tmp_path, private, env)
    assert compiled["ok"], compiled
    first = compiles(tmp_path)
    # The run phase, as on a GPU: every build is asked for again, and none runs the compiler.
    run = run_phase(tmp_path, private, env)
    assert compiles(tmp_path)[len(first):] == []
    assert [a["name"] for a in run["attempts"]] == NAMES, run["attempts"]
    assert all(b["cache"] == "failed_before" for b in run["builds"]), run["builds"]

    # Every build was tried in the compile phase: at import (as on a GPU), below the line the
    # constructor stopped at (.cuda() without a GPU), in the helper it calls there, on the first
    # forward. Each failed with the compiler's error, which the run phase's call repeats.
    pre = compiled["prebuild"]
    assert pre["constructed"] is False and "note" in pre, pre
    assert pre["gpu_import"] == {"builds": 1} and pre["deferred"]["built"] == 0, pre
    errors = {b["name"]: b.get("error", "") for b in compiled["builds"]}
    assert sorted(errors) == sorted(NAMES), compiled["builds"]
    for name in NAMES:
        assert "UNDECLARED_SCALE" in errors[name] and "was not declared" in errors[name], errors[name]
    for source in ("at_import.cpp", "in_init.cpp", "in_forward.cpp", "lazy_fail_helper/main"):
        assert any(source in line for line in first), (source, first)
    for attempt in run["attempts"]:  # kbrun's record (fallback.builds[].error): the compiler's lines
        assert not attempt["ok"] and attempt["error"] == errors[attempt["name"]], attempt
    # The candidate's own except clauses caught the compiler's error and fell back to torch.
    assert sorted(run["caught"]) == ["forward", "helper", "import", "init"], run["caught"]
    for message in run["caught"].values():
        assert "UNDECLARED_SCALE" in message and "was not declared" in message, message
    assert run["out"] == [2.0] * 4


GPU_ONLY_AT_IMPORT = '''import torch
from kbrun_eval import build
def load_inline(name, **kwargs):  # a stand-in that records the call as kbrun's watch would
    build.build_attempts.append({"name": name, "gpu": torch.cuda.is_available()})
load_inline("always")
if torch.cuda.is_available():
    load_inline("gpu_only")
class ModelNew:
    def __init__(self, scale):
        self.scale = scale
'''


def test_an_import_that_skipped_a_build_is_made_again_as_on_a_gpu(tmp_path):
    """Only when the import made fewer build calls than the file has at its top level: a file whose
    import made them all is not imported again."""
    import torch
    from kbrun_eval import build, compile_phase, problem as kp
    (tmp_path / "problem.py").write_text(PROBLEM)
    saved = list(build.build_attempts)  # prebuild counts from the import's: this process's first
    try:
        for name, source, expected in [
                ("skips", GPU_ONLY_AT_IMPORT, {"builds": 2}),
                ("made_all", GPU_ONLY_AT_IMPORT.replace("if torch.cuda.is_available():\n    ", ""), None)]:
            path = tmp_path / (name + ".py")
            path.write_text(source)
            del build.build_attempts[:]
            candidate = kp.load_module(str(path), "kbrun_test_candidate")
            made = len(build.build_attempts)
            out = compile_phase.prebuild({"code": str(path), "problem": str(tmp_path / "problem.py")}, torch,
                                         candidate)
            assert out.get("gpu_import") == expected, (name, out)
            assert [a["gpu"] for a in build.build_attempts[made:]] == [True] * (expected or {"builds": 0})["builds"]
    finally:
        build.build_attempts[:] = saved
    assert not torch.cuda.is_available()  # answered true only during that import
