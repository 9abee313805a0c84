"""How one call is timed, the same way for the reference (in the checker) and the candidate (in
the worker): the Timer (spin, L2 flush, events, drain) and the statistics of its samples.

The Timer class is one block, kept as it was in kbrun_worker.py; the guard (guards.Guard) watches
Timer.time_once here.
"""
import statistics
import time


def stats(samples_ms):
    s = sorted(samples_ms)
    return {
        "median_ms": statistics.median(s),
        "mean_ms": statistics.fmean(s),
        "std_ms": statistics.pstdev(s) if len(s) > 1 else 0.0,
        "min_ms": s[0],
        "max_ms": s[-1],
        "trials": len(s),
    }


# Timing methods (result.json timing.method). On the GPU every run has both: kbrun's figure,
# and KernelBench's cuda_event method on a quarter as many calls, interleaved, for comparison.
GPU_METHOD = "cuda_events_launch_hidden_l2_flush"
KERNELBENCH_METHOD = "kernelbench_cuda_event_l2_flush"
CPU_METHOD = "wall_clock_cache_flush"
# The spin before each call: at least MIN_SPIN_MS, twice the call's host time, longer while the
# clock during it stays below FULL_CLOCK of the fastest rate seen (Timer._note_clock).
MIN_SPIN_MS = 0.1
MAX_SPIN_MS = 2.0
FULL_CLOCK = 0.95
# A call's window (spin's release to drain's barrier, less an empty call's) beyond its events by
# less than this is the window's jitter, not the call's work (Timer.time_once).
OUTSIDE_EVENTS_SLACK_MS = 0.001


def timing_methods(device, n):
    """The method of each timed call, in order."""
    if device.type != "cuda":
        return [CPU_METHOD] * n
    methods = []
    for i in range(n):
        methods.append(GPU_METHOD)
        if i % 4 == 3:
            methods.append(KERNELBENCH_METHOD)
    return methods


class Timer:
    """Times one call of fn, the same way for the reference (in the checker) and the candidate
    (in the worker).

    GPU, kbrun's method: the L2 cache is flushed (a buffer twice its size is zeroed) and the
    device synchronised; a spin kernel then holds the stream while the call's launches queue
    up behind it (nvbench's blocking kernel), so the events measure the GPU's time for the
    call, not the host's launch latency. The spin fills every multiprocessor and is one kernel
    whose blocks end together (kbrun_eval.spin), so work the call puts on another stream cannot run
    before the start event. It lasts at least MIN_SPIN_MS and twice the call's host time seen
    in the warm-up (at most MAX_SPIN_MS): host time beyond that is still counted. It measures
    its last three quarters itself, so each call also tells the SM
    clock it ran at (`clock_mhz`): the GPU lowers its clock within milliseconds of idling
    (the host's work between calls), and a call that starts at a low clock runs slower, so the
    spin grows until the clock during it is full (`_note_clock`); it keeps reference and
    candidate at the same clock. KernelBench's method is the same without the spin (launch
    latency and clock ramp counted). Both record the end event in
    stream order. kbrun's method then queues the drain (kbrun_eval.spin), whose barrier completes
    only when no other kernel runs; the GPU's own timer from the spin's release to that barrier,
    less the same for an empty call, covers the call's work on every stream, so work the events
    did not bracket (on another stream, before the start event or past the end event) is counted
    in the call. `snapshot(out)` is queued after, outside the timed region, and the whole device is
    synchronised before anything else runs, so such work never overlaps the next measurement.
    CPU: wall clock, with a cache flush by writing a buffer larger than the last-level cache.
    """

    def __init__(self, torch, device):
        self.torch = torch
        self.cuda = device.type == "cuda"
        self.host_ms = []
        self.spin_ms = MIN_SPIN_MS if self.cuda else 0.0
        self.clock_mhz = []
        if self.cuda:
            props = torch.cuda.get_device_properties(device)
            l2 = getattr(props, "L2_cache_size", 0) or 64 * 1024 * 1024
            self.flush_buf = torch.empty(int(2 * l2) // 4, dtype=torch.int32, device=device)
            self.start = torch.cuda.Event(enable_timing=True)
            self.end = torch.cuda.Event(enable_timing=True)
            self.end_all = torch.cuda.Event(enable_timing=True)
            from kbrun_eval import spin as kbrun_spin
            self.spin = kbrun_spin.Spin(torch, device)
            self.cycles_per_ms = self._spin_cycles_per_ms()
            self.empty_window_ms = self._empty_window_ms() if self.spin.can_drain else None
            self.outside_events_ms = []  # work the timed calls ran outside their events, counted
            self.window_excess_ms = []  # every timed call's window beyond its events (the noise)
            self.late_drains = 0  # counted calls whose drain the host queued after the GPU's end
        else:
            self.flush_buf = torch.empty(32 * 1024 * 1024 // 4, dtype=torch.int32)

    @property
    def spin_cycles(self):
        """The spin's length in SM clock cycles: spin_ms at the fastest rate seen (0 off the GPU,
        which has no rate)."""
        return int(self.spin_ms * getattr(self, "cycles_per_ms", 0.0))

    def _spin_cycles_per_ms(self, cycles=1000000):
        """How many of the spin's clock cycles pass per millisecond at the SM clock right now."""
        torch = self.torch
        torch.cuda.synchronize()
        self.start.record()
        self.spin(cycles)
        self.end.record()
        self.end.synchronize()
        ms = self.start.elapsed_time(self.end)
        return cycles / ms if ms > 0 else 2000000.0

    def _empty_window_ms(self, runs=5):
        """The window of an empty call (spin, start and end events, drain) on an otherwise idle
        GPU at full clock: the least of a few, so that anything beyond it in a call is counted."""
        torch = self.torch
        samples = []
        for _ in range(runs):
            torch.cuda.synchronize()
            self.spin(int(0.05 * getattr(self, "cycles_per_ms", 2000000.0)))
            self.start.record()
            self.end.record()
            self.spin.drain()
            self.end_all.record()
            self.end_all.synchronize()
            self.spin.measured_ms()
            samples.append(self.spin.release_to_drain_ms())
        return min(samples)

    def warm_up(self, fn, args):
        """One untimed call (a warm-up), spun and flushed like a timed one: measures how long
        the host takes to issue it, which sizes the spin. Returns its output."""
        if not self.cuda:
            return fn(*args)
        _, out, _ = self.time_once(fn, args, warm_up=True)
        # Calibrated again right after a call, at the clock the timed calls will see: a rate
        # taken at an idle clock (an H200 idles at 345 MHz, boosts to 1980) would make the
        # spin several times shorter than meant, and launch latency would leak into the
        # figure. The fastest rate seen wins: a spin too long costs nothing.
        self.cycles_per_ms = max(self.cycles_per_ms, self._spin_cycles_per_ms(200000))
        self.spin_ms = min(max(2 * statistics.median(self.host_ms) + 0.01, self.spin_ms), MAX_SPIN_MS)
        if self.empty_window_ms is not None:
            self.empty_window_ms = min(self.empty_window_ms, self._empty_window_ms(2))
        return out

    def time_once(self, fn, args, method=None, snapshot=None, warm_up=False, record=True):
        """Returns (milliseconds, output, snapshot(output) or None). record=False: a call outside
        the measurement (busy_check's), which leaves the Timer's notes and spin as they were."""
        torch = self.torch
        self.flush_buf.zero_()
        snap = None
        if self.cuda:
            torch.cuda.synchronize()
            cycles = self.spin_cycles if method != KERNELBENCH_METHOD else 0
            if cycles:
                self.spin(cycles)
            self.start.record()
            t = time.perf_counter()
            out = fn(*args)
            if warm_up and record:
                self.host_ms.append((time.perf_counter() - t) * 1000.0)
            self.end.record()
            drained = bool(cycles) and self.empty_window_ms is not None
            if drained:
                # A call whose end the GPU passed before the drain was queued (the host was late:
                # a Python pause, the scheduler) has that idle gap in the drain's figure too.
                late = self.end.query()
                self.spin.drain()
                self.end_all.record()
            if snapshot is not None:
                snap = snapshot(out)
            (self.end_all if drained else self.end).synchronize()
            ms = self.start.elapsed_time(self.end)
            if cycles:
                spin_ms = self.spin.measured_ms()
                if record:
                    self._note_clock(spin_ms, self.spin.measured_cycles, warm_up)
            if drained:
                # The events bracket the caller's stream only. Work the call put on another stream
                # starts when the spin releases the GPU (before the start event, if it was queued
                # already) and ends before the drain's barrier: beyond an empty call's window and
                # its jitter, the window is the call.
                outside = self.spin.release_to_drain_ms() - self.empty_window_ms - ms
                if record and not warm_up:
                    self.window_excess_ms.append(outside)
                if outside > OUTSIDE_EVENTS_SLACK_MS:
                    ms += outside
                    if record and not warm_up:
                        self.outside_events_ms.append(outside)
                        self.late_drains += late
            torch.cuda.synchronize()
        else:
            t = time.perf_counter()
            out = fn(*args)
            ms = (time.perf_counter() - t) * 1000.0
        return ms, out, snap

    def _note_clock(self, spin_ms, cycles, warm_up):
        """The SM clock over the spin's measured part. Below FULL_CLOCK of the fastest rate
        seen, the GPU has not reached its clock after the idle gap before the call (the host's
        work between calls; the clock falls within milliseconds), or the host's launches ran
        past the spin: either way a longer spin, up to MAX_SPIN_MS, for the calls after."""
        if spin_ms <= 0:
            return
        mhz = cycles / spin_ms / 1000.0
        if not warm_up:
            self.clock_mhz.append(mhz)
        if mhz < FULL_CLOCK * self.cycles_per_ms / 1000.0 and self.spin_ms < MAX_SPIN_MS:
            self.spin_ms = min(2 * self.spin_ms, MAX_SPIN_MS)

    def spin_summary(self):
        """result.json timing.spin for this side: the spin's kind, an empty call's window, and
        the timed calls whose work ran outside their events (counted)."""
        d = self.spin.describe()
        d["empty_window_ms"] = self.empty_window_ms
        d["calls_with_work_outside_events"] = len(self.outside_events_ms)
        if self.outside_events_ms:
            d["work_outside_events_ms"] = stats(self.outside_events_ms)
            d["calls_counted_with_late_drain"] = self.late_drains
        if self.window_excess_ms:
            d["window_excess_ms"] = stats(self.window_excess_ms)
        return d

    def clock_summary(self):
        """result.json timing.sm_clock_mhz for this side, or None off the GPU."""
        if not self.clock_mhz:
            return None
        s = sorted(self.clock_mhz)
        full = FULL_CLOCK * self.cycles_per_ms / 1000.0
        return {"median": statistics.median(s), "min": s[0], "max": s[-1],
                "max_rate": self.cycles_per_ms / 1000.0, "calls_below_full": sum(1 for m in s if m < full)}
