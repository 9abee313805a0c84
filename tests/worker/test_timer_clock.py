"""Timer's clock rule (kbrun_eval/timing.py, Timer._note_clock): the spin before each GPU call grows while
the SM clock measured during it is below FULL_CLOCK of the fastest rate seen. The arithmetic is
checked here on the CPU with the measured figures given; the GPU runs are in
docs/device-runs/2026-12-01-session8-h200.txt."""
import torch

from kbrun_eval import timing as kw  # src/eval/worker, on sys.path by conftest.py


def gpu_timer(cycles_per_ms=1_980_000.0, spin_ms=kw.MIN_SPIN_MS):
    t = kw.Timer(torch, torch.device("cpu"))
    t.cycles_per_ms = cycles_per_ms
    t.spin_ms = spin_ms
    return t


def spin_at(t, mhz):
    """What time_once measures when the spin's part of `cycles` ran at `mhz`."""
    cycles = t.spin_cycles - t.spin_cycles // 4
    return cycles / (mhz * 1000.0), cycles


def test_a_call_at_full_clock_keeps_the_spin():
    t = gpu_timer()
    t._note_clock(*spin_at(t, 1975), warm_up=False)
    assert t.spin_ms == kw.MIN_SPIN_MS
    assert t.clock_summary()["calls_below_full"] == 0
    assert abs(t.clock_summary()["median"] - 1975) < 1


def test_a_call_below_full_clock_doubles_the_spin_up_to_the_cap():
    t = gpu_timer()
    for _ in range(10):
        t._note_clock(*spin_at(t, 1495), warm_up=False)
    assert t.spin_ms == kw.MAX_SPIN_MS
    assert t.spin_cycles == int(kw.MAX_SPIN_MS * t.cycles_per_ms)
    s = t.clock_summary()
    assert s["calls_below_full"] == 10 and abs(s["max_rate"] - 1980) < 1e-6


def test_warm_up_calls_grow_the_spin_but_are_not_reported():
    t = gpu_timer()
    t._note_clock(*spin_at(t, 1000), warm_up=True)
    assert t.spin_ms == 2 * kw.MIN_SPIN_MS
    assert t.clock_summary() is None


def test_just_above_the_threshold_is_full():
    t = gpu_timer()
    t._note_clock(*spin_at(t, kw.FULL_CLOCK * 1980 + 1), warm_up=False)
    assert t.spin_ms == kw.MIN_SPIN_MS
    t._note_clock(*spin_at(t, kw.FULL_CLOCK * 1980 - 1), warm_up=False)
    assert t.spin_ms == 2 * kw.MIN_SPIN_MS
