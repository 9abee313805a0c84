"""kbrun_eval.busy_check's arithmetic on kernel records shaped like the profiler's (us), and its
decision; the profiled calls themselves run on the GPU (tests/device/judge_floor_and_cheats.sh)."""
import types

import pytest

from kbrun_eval import busy_check as bc


def call(at, kernels, spin=200.0, drain=5.0, window=5.0):
    """One timed call's records from `at`: the L2 flush, the spin, then `kernels` as (name,
    start after the spin's end, length), then the drain, which ends `window` after the spin."""
    spin_end = at + 10.0 + spin
    out = [("fill_flush", at, at + 10.0), (bc.SPIN, at + 10.0, spin_end)]
    last = max([spin_end + s + n for _, s, n in kernels] + [spin_end])
    out += [(name, spin_end + s, spin_end + s + n) for name, s, n in kernels]
    out.append((bc.DRAIN, max(last, spin_end + window - drain), max(last, spin_end + window - drain) + drain))
    return out


def test_each_call_is_the_union_of_its_kernels_on_every_stream():
    records = call(0.0, [("relu", 1.0, 3.0)]) + call(1000.0, [("a", 1.0, 2.0), ("b_other_stream", 2.0, 2.0)])
    assert bc.calls_busy(records) == pytest.approx([3.0, 3.0])  # 1..4 and 1..3 | 2..4


def test_a_kernel_that_starts_as_the_spins_first_blocks_leave_is_in_its_call():
    """The spin's recorded end is its last block's; another stream's kernel starts on the SMs
    its first blocks left."""
    records = call(0.0, [("hider", -0.5, 3.0)])
    assert bc.calls_busy(records) == [3.0]


def test_the_flush_spin_and_drain_are_not_the_call_nor_is_what_runs_after_the_drain():
    records = call(0.0, []) + [("snapshot_copy", 400.0, 401.0)]
    assert bc.calls_busy(records) == [0.0]


def test_a_kernel_that_starts_before_the_drain_ends_is_in_its_call():
    records = call(0.0, [("late_side_kernel", 5.0, 4.0)], window=5.0)  # overlaps the drain
    assert bc.calls_busy(records) == [4.0]


def test_a_spin_without_a_drain_is_not_a_call():
    records = [(bc.SPIN, 0.0, 100.0), ("clock_probe", 100.0, 101.0)] + call(200.0, [("k", 1.0, 2.0)])
    assert bc.calls_busy(records) == [2.0]


def test_a_hider_is_raised_to_its_kernel_plus_what_events_add():
    """The events add 2.5 us to a known 1 us kernel; the hider's events see 1.3 us for 3 us of
    kernel on another stream, so 4.2 us is added."""
    known_ms, known_busy = [0.0035] * 5, [1.0] * 5
    added, events_add = bc.shortfall_ms(known_ms, known_busy, [0.0013] * 5, [3.0] * 5)
    assert events_add == pytest.approx(0.0025)
    assert added == pytest.approx(0.0055 - 0.0013)


def test_an_honest_call_is_left_as_it_is():
    known_ms, known_busy = [0.0035] * 5, [1.0] * 5
    added, _ = bc.shortfall_ms(known_ms, known_busy, [0.0064, 0.0063, 0.0066, 0.0064, 0.0065], [3.9] * 5)
    assert added == 0.0


def test_it_runs_only_where_the_timers_own_time_matters():
    timer = types.SimpleNamespace(cuda=True, empty_window_ms=0.005)
    assert bc.busy_check(None, timer, None, None, 0.2) is None  # 40 windows: < 5% can hide
    assert bc.busy_check(None, types.SimpleNamespace(cuda=False), None, None, 0.001) is None
    assert bc.busy_check(None, types.SimpleNamespace(cuda=True, empty_window_ms=None), None, None, 0.001) is None


class FakeProfile:
    """torch.profiler.profile's stand-in: the kernel records FakeTimer's calls leave."""
    records = []

    def __init__(self, activities=None):
        FakeProfile.records = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def events(self):
        return [types.SimpleNamespace(name=n, device_type="DeviceType.CUDA", is_user_annotation=False,
                                      time_range=types.SimpleNamespace(start=s, end=e)) for n, s, e in self.records]


class FakeTimer:
    """Timer.time_once's stand-in: each call is a spin, the kernels `kernels_of(fn)` names, a
    drain; its figure is what `events_ms_of(fn)` says."""

    def __init__(self, kernels_of, events_ms_of, lose_a_drain=False):
        import torch
        self.cuda, self.empty_window_ms, self.flush_buf = True, 0.005, torch.zeros(1024)
        self.kernels_of, self.events_ms_of, self.lose_a_drain = kernels_of, events_ms_of, lose_a_drain
        self.at, self.calls = 0.0, 0

    def time_once(self, fn, args, record=True):
        assert record is False  # busy_check's calls leave the Timer's notes alone
        out = fn(*args)
        self.calls += 1
        records = call(self.at, self.kernels_of(fn))
        if self.lose_a_drain and self.calls == 3:
            records = records[:-1]
        FakeProfile.records += records
        self.at += 1000.0
        return self.events_ms_of(fn), out, None


@pytest.fixture
def fake_profiler(monkeypatch):
    import torch.profiler
    monkeypatch.setattr(torch.profiler, "profile", FakeProfile)


def hider_timer(**kw):
    def model(x):
        return x

    timer = FakeTimer(lambda fn: [("hider", -0.5, 3.0)] if fn is model else [("fill", 0.3, 1.0)],
                      lambda fn: 0.0013 if fn is model else 0.0035, **kw)
    return timer, model


def test_busy_check_raises_a_hider_through_the_profilers_records(fake_profiler):
    import torch
    timer, model = hider_timer()
    r = bc.busy_check(torch, timer, model, (torch.ones(4),), 0.0013)
    assert timer.calls == 2 * bc.CALLS
    assert r["busy_median_ms"] == pytest.approx(0.003) and r["events_add_ms"] == pytest.approx(0.0025)
    assert r["added_ms"] == pytest.approx(0.0055 - 0.0013)


def test_busy_check_that_cannot_match_its_calls_adds_nothing_and_says_so(fake_profiler):
    import torch
    timer, model = hider_timer(lose_a_drain=True)
    r = bc.busy_check(torch, timer, model, (torch.ones(4),), 0.0013)
    assert r["added_ms"] == 0.0 and "9 timed calls of 10" in r["error"]
