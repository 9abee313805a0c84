"""busy_check: the GPU's own record of a short call's kernels, against the Timer's figure.

The Timer's figure covers a call's work on every stream except what runs while the timer itself
keeps the GPU busy: from the spin's release to the drain's barrier an empty call takes about 5 us
of the GPU's pipeline (events, the drain's dispatch: Timer.empty_window_ms). A kernel that a
candidate queues on another stream when it sees its own stream held by the spin starts as the
spin releases the GPU and can end within that time, in neither the events nor the window
(tests/gpu/judge/spin_hider_relu.py timed at 4.7x on a ReLU of 64x16384 on an H200, its honest
kernel 0.96x). Where that time matters (a median under BELOW_WINDOWS empty windows), a few calls
made as the timed ones are, under the profiler, give each call's kernels on every stream
(CUPTI's records); a known kernel timed the same way gives what the events add to a kernel's own
time. A call takes at least its kernels' busy time plus that; where the profiled calls' events
fall short of it, the shortfall is added to every timed sample, and `timing.busy_check` says so.
A candidate that notices the profiler, or counts its calls (these come after the timed ones), can
still behave while it runs (docs/EVALUATION.md).
"""
import statistics

from .library_share import merged_spans

CALLS = 5
# Checked below this many empty windows (~0.1 ms on an H200): above, what can hide is < 5%.
BELOW_WINDOWS = 20
# A shortfall below this (ms), or below this share of the figure, is noise.
SLACK_MS = 0.001
SLACK_SHARE = 0.05
SPIN, DRAIN = "kbrun_occupy", "kbrun_drain"


def calls_busy(kernels):
    """Each call's busy time: the union of the kernels (name, start, end), on any stream, that
    start after a spin starts and before the drain after it ends (one figure per spin with a
    drain, in the kernels' unit). After the spin's start, not its end: the spin fills every SM, so
    nothing else starts before it releases them, and a kernel queued on another stream starts as
    the first of its blocks leave, before the last one has (the spin's recorded end)."""
    calls = []
    for name, start, end in sorted(kernels, key=lambda k: k[1]):
        if name == SPIN:
            calls.append([start, None, []])
        elif not calls:
            continue
        elif name == DRAIN and calls[-1][1] is None:
            calls[-1][1] = end
        elif start >= calls[-1][0] and (calls[-1][1] is None or start < calls[-1][1]):
            calls[-1][2].append((start, end))
    return [sum(stop - start for start, stop in merged_spans(spans)) for _, until, spans in calls if until is not None]


def shortfall_ms(known_ms, known_busy_us, call_ms, call_busy_us):
    """How far the calls' events fall short of their kernels' busy time plus what the events add
    to a known kernel (ms; 0 within the slack), and that addition (ms)."""
    added_us = statistics.median(k * 1000.0 - b for k, b in zip(known_ms, known_busy_us))
    need = statistics.median(call_busy_us) / 1000.0 + max(added_us, 0.0) / 1000.0
    seen = statistics.median(call_ms)
    short = need - seen
    return (short if short > max(SLACK_MS, SLACK_SHARE * seen) else 0.0), added_us / 1000.0


def _kernels(events):
    return [(e.name, float(e.time_range.start), float(e.time_range.end)) for e in events
            if str(getattr(e, "device_type", "")).endswith("CUDA") and not getattr(e, "is_user_annotation", False)]


def busy_check(torch, timer, model, inputs, timed_ms):
    """timing.busy_check for the candidate, or None where it is not needed (see the module's doc);
    `added_ms` is what the caller adds to every timed sample."""
    window = getattr(timer, "empty_window_ms", None)
    if not getattr(timer, "cuda", False) or window is None or timed_ms is None or timed_ms >= BELOW_WINDOWS * window:
        return None
    from torch.profiler import ProfilerActivity, profile
    probe = timer.flush_buf[:256]
    with torch.no_grad(), profile(activities=[ProfilerActivity.CUDA]) as prof:
        known_ms = [timer.time_once(probe.zero_, (), record=False)[0] for _ in range(CALLS)]
        call_ms = [timer.time_once(model, inputs, record=False)[0] for _ in range(CALLS)]
    busy = calls_busy(_kernels(prof.events()))
    if len(busy) != 2 * CALLS:
        return {"error": "the profiler saw %d timed calls of %d" % (len(busy), 2 * CALLS), "added_ms": 0.0}
    added, events_add = shortfall_ms(known_ms, busy[:CALLS], call_ms, busy[CALLS:])
    return {"calls": CALLS, "timer_median_ms": timed_ms, "profiled_median_ms": statistics.median(call_ms),
            "busy_median_ms": statistics.median(busy[CALLS:]) / 1000.0, "events_add_ms": events_add,
            "added_ms": added}
