"""The worker's helpers on the CPU (kbrun_eval: protocol, problem, guards): how failures are
classified, how models are built from the seed, and what the guard catches.
Run: /usr/bin/python3 -m pytest -q tests/worker/test_worker_helpers.py
"""
import os
import threading

import pytest
import torch

from kbrun_eval import guards  # src/eval/worker, on sys.path by conftest.py
from kbrun_eval import problem as kp
from kbrun_eval import protocol
from kbrun_eval import run_phase
from kbrun_eval import spin
from kbrun_eval import timing
from kbrun_eval.protocol import Failure

PROBLEM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "problems", "1_ScaleAdd.py")
CPU = torch.device("cpu")


def test_clip_keeps_head_and_tail():
    text = "a" * 50 + "b" * 50
    assert protocol.clip(text, 200) == text
    clipped = protocol.clip(text, 20)
    assert clipped.startswith("a" * 10) and clipped.endswith("b" * 10) and "80 characters omitted" in clipped


@pytest.mark.parametrize("exc, phase, expected", [
    (SyntaxError("bad"), "compile", ("compile_error", "syntax_error")),
    (RuntimeError("Error building extension 'x'"), "compile", ("compile_error", "build_failed")),
    (RuntimeError("CUDA out of memory"), "run", ("runtime_error", "out_of_memory")),
    (MemoryError(), "run", ("runtime_error", "out_of_memory")),
    (RuntimeError("an illegal memory access was encountered"), "run", ("runtime_error", "cuda_error")),
    (ImportError("no module"), "compile", ("runtime_error", "import_error")),
    (ValueError("x"), "run", ("runtime_error", "exception")),
])
def test_classify_exception(exc, phase, expected):
    assert protocol.classify_exception(exc, phase) == expected


def test_failure_from_exception_carries_the_message():
    try:
        raise ValueError("boom")
    except ValueError as exc:
        f = protocol.failure_from_exception(exc, "run")
    assert (f.status, f.category, f.message) == ("runtime_error", "exception", "ValueError: boom")
    assert "boom" in f.detail


def test_reference_and_candidate_get_the_same_weights():
    problem = kp.load_module(PROBLEM, "kbrun_test_problem")
    init = kp.init_inputs(torch, problem, 5)
    lin = (lambda *_: torch.nn.Linear(4, 4))
    a = kp.build_model(torch, lin, init, 5, CPU, kp.precision_dtype(torch, "fp16"))
    b = kp.build_model(torch, lin, init, 5, CPU, None)
    assert a.weight.dtype == torch.float16 and b.weight.dtype == torch.float32
    assert torch.equal(a.weight, b.weight.half())
    assert kp.precision_dtype(torch, "fp32") is None


def test_flatten_outputs_and_transformed_inputs():
    x = torch.ones(2)
    assert len(kp.flatten_outputs(torch, (x, [x, (x,)]))) == 3
    with pytest.raises(Failure) as e:
        kp.flatten_outputs(torch, 3)
    assert e.value.category == "bad_output_type"
    assert torch.equal(kp.transformed_inputs(torch, [x, 2], 4.0, 2.0)[0], torch.full((2,), 6.0))


def test_shares_memory():
    x = torch.arange(12.0).reshape(3, 4)
    assert guards.shares_memory(x[1], x)
    assert guards.shares_memory(x.t(), x)
    assert not guards.shares_memory(x[0], x[1])
    assert not guards.shares_memory(x.clone(), x)


def test_guard_catches_a_replaced_timer_progress_or_module_binding(monkeypatch):
    guard = guards.Guard(torch, CPU)
    guard.check_harness()
    for target, name, value in ((timing.Timer, "time_once", lambda *a, **k: (0.0, None, None)),
                                (protocol, "progress", lambda line: None),
                                (run_phase, "timing", object()),
                                (spin.Spin, "drain", lambda self: None)):
        with monkeypatch.context() as m:
            m.setattr(target, name, value)
            if target is spin.Spin:  # watched where a GPU is: the spin and the drain run only there
                guards.Guard(torch, CPU).check_harness()
                continue
            with pytest.raises(Failure) as e:
                guard.check_harness()
            assert e.value.category == "patched_harness" and "kbrun_eval." in e.value.message
    guard.check_harness()


def test_guard_sees_threads_and_outputs_it_does_not_own():
    guard = guards.Guard(torch, CPU)
    x = torch.ones(4)
    guard.check_after_call([x], None, x * 2)
    with pytest.raises(Failure) as e:
        guard.check_after_call([x], None, x[1:])
    assert e.value.category == "output_aliases_input"
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, name="candidate-thread")
    t.start()
    try:
        with pytest.raises(Failure) as e:
            guard.check_after_call([x], None, x * 2)
        assert e.value.category == "background_thread"
    finally:
        stop.set()
        t.join()


def test_timing_methods_interleave_kernelbench_on_the_gpu():
    assert timing.timing_methods(CPU, 3) == [timing.CPU_METHOD] * 3
    gpu = timing.timing_methods(torch.device("cuda"), 8)
    assert gpu.count(timing.GPU_METHOD) == 8 and gpu.count(timing.KERNELBENCH_METHOD) == 2
