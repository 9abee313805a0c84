"""The checker's baselines (kbrun_eval/baselines.py, --baseline compile|cudagraph) on the CPU.

Debian's torch 1.13 has no torch.compile and the CPU no CUDA graphs: both must come out as
unavailable with the reason, without waiting for the worker. The timing path itself is exercised
with stand-ins for torch.compile and its inductor config: the same rounds as the checker's timing,
on the same values call by call, the compile time apart, the output checked.
Run: /usr/bin/python3 -m pytest -q tests/worker/test_baselines.py
"""
import json
import os
import sys
import tempfile
import types

import pytest
import torch

from kbrun_eval import baselines as kb  # src/eval/worker, on sys.path by conftest.py
from kbrun_eval import checker as kc
from kbrun_eval import timing

PROBLEM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "problems", "1_ScaleAdd.py")
WARMUP, TIMED = 2, 5


def make_checker():
    """A checker as the run phase builds it (reference from the problem, judge), whose timing rounds
    ran as Checker.timing runs them: WARMUP warm-up rounds and TIMED timed ones, inputs made by
    next_timed_inputs. Returns it and the values each round had."""
    req = {"problem": PROBLEM, "seed": 3, "precision": "fp32", "tolerance": "evidence"}
    result = {"checks": {k: {"run": 0, "passed": 0} for k in ("trial", "extra", "shape", "timed", "warmup")},
              "failure": None}
    checker = kc.Checker(torch, req, torch.device("cpu"), chan=None, result=result)
    methods = timing.timing_methods(checker.device, TIMED)
    checker.timing_rounds = [("warmup", None)] * WARMUP + [("timed", m) for m in methods]
    live = checker.draw("timed")
    checker.input_recipes = [("draw", checker.seeds[-1])]
    seen = [[x.clone() for x in live]]
    for n, (kind, _) in enumerate(checker.timing_rounds[1:]):
        live = checker.next_timed_inputs(live, checker.timing_rounds[n][0], n - WARMUP)
        seen.append([x.clone() for x in live])
    checker.timed_ok = checker.done = True
    return checker, seen


def lines_of(emitted, name):
    """The JSON of the `baseline <nonce> <name> ...` line."""
    found = [json.loads(line.split(" ", 3)[3]) for line in emitted if line.startswith("baseline n0nce %s " % name)]
    assert len(found) == 1, emitted
    return found[0]


@pytest.fixture
def private_env(monkeypatch):
    """compile_baseline points HOME, TMPDIR and the compile caches at a fresh folder: undone after."""
    for var in ("HOME", "TMPDIR", "TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR", "TORCHINDUCTOR_COMPILE_THREADS"):
        if var in os.environ:
            monkeypatch.setenv(var, os.environ[var])
        else:
            monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", tempfile.tempdir)


def stand_in_compile(monkeypatch, make):
    """torch.compile replaced by `make(model)`, and a torch._inductor.config to set."""
    config = types.ModuleType("torch._inductor.config")
    inductor = types.ModuleType("torch._inductor")
    inductor.config = config
    monkeypatch.setitem(sys.modules, "torch._inductor", inductor)
    monkeypatch.setitem(sys.modules, "torch._inductor.config", config)
    monkeypatch.setattr(torch, "_inductor", inductor, raising=False)
    monkeypatch.setattr(torch, "compile", make, raising=False)
    return config


def test_replayed_inputs_are_the_values_of_every_timing_round():
    checker, seen = make_checker()
    replayed = list(checker.replay_timed_inputs())
    assert len(replayed) == len(seen) == WARMUP + TIMED
    assert [h for h, _ in checker.input_recipes].count("swap") >= 2  # both kinds of round are replayed
    for before, again in zip(seen, replayed):
        assert all(torch.equal(a, b) for a, b in zip(before, again))
    assert not torch.equal(seen[-1][0], seen[-2][0])  # the values do change from round to round


@pytest.mark.skipif(hasattr(torch, "compile"), reason="this torch has torch.compile")
def test_torch_without_compile_and_no_gpu_leave_both_unavailable_without_waiting():
    checker, _ = make_checker()
    emitted = []

    def wait():
        raise AssertionError("nothing can run here: no need to wait for the worker")

    kb.run(checker, ["compile", "cudagraph"], "n0nce", wait, emit=emitted.append)
    graph, compiled = lines_of(emitted, "cudagraph"), lines_of(emitted, "compile")
    assert graph["status"] == "unavailable" and "need a GPU" in graph["reason"], graph
    assert compiled["status"] == "unavailable", compiled
    assert "torch %s has no torch.compile" % torch.__version__ in compiled["reason"], compiled
    # The graph is tried first (before torch.compile could import dynamo), and no deadline starts.
    assert emitted.index("stage baseline cudagraph") < emitted.index("stage baseline compile")
    assert "stage baselines" not in emitted


def test_compile_is_timed_like_the_reference_on_the_same_values(monkeypatch, private_env):
    checker, seen = make_checker()
    calls = []

    def make(model):
        def compiled(*args):
            calls.append([a.clone() for a in args])
            return model(*args)
        return compiled

    config = stand_in_compile(monkeypatch, make)
    emitted, waited = [], []
    kb.run(checker, ["compile"], "n0nce", lambda: waited.append(1), emit=emitted.append)
    doc = lines_of(emitted, "compile")
    assert doc["status"] == "measured", doc
    assert waited == [1] and emitted.index("stage baselines") < emitted.index("stage baseline compile")
    # The same rounds as the reference: the warm-ups untimed, every timed call by the same method.
    assert doc["trials"] == TIMED and doc["method"] == timing.CPU_METHOD and doc["median_ms"] > 0
    assert doc["compile_s"] > 0 and doc["checked_calls"] == 2
    # The first call compiles (on the first round's values), then every round's values in order.
    assert len(calls) == 1 + WARMUP + TIMED
    for got, want in zip(calls[1:], seen):
        assert all(torch.equal(a, b) for a, b in zip(got, want))
    # Compiled in this process, with its caches in a folder of its own.
    assert config.compile_threads == 1
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"].startswith(doc["cache_dir"])
    assert os.environ["TRITON_CACHE_DIR"].startswith(doc["cache_dir"])
    assert tempfile.gettempdir().startswith(doc["cache_dir"])


def test_a_compiled_reference_whose_output_differs_is_unavailable(monkeypatch, private_env):
    checker, _ = make_checker()
    stand_in_compile(monkeypatch, lambda model: (lambda *args: model(*args) + 1e-2))
    emitted = []
    kb.run(checker, ["compile"], "n0nce", lambda: None, emit=emitted.append)
    doc = lines_of(emitted, "compile")
    assert doc["status"] == "unavailable" and "differs from the eager reference" in doc["reason"], doc
    assert "median_ms" not in doc


def test_a_compile_that_fails_is_unavailable_with_its_error(monkeypatch, private_env):
    checker, _ = make_checker()

    def make(model):
        def compiled(*args):
            raise RuntimeError("inductor: no C++ compiler found")
        return compiled

    stand_in_compile(monkeypatch, make)
    emitted = []
    kb.run(checker, ["compile"], "n0nce", lambda: None, emit=emitted.append)
    doc = lines_of(emitted, "compile")
    assert doc["status"] == "unavailable", doc
    assert doc["reason"] == "compile failed: RuntimeError: inductor: no C++ compiler found", doc
    assert "Traceback" in doc["detail"]
