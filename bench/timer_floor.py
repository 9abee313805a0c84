"""Where does the timer's floor come from? One process, kbrun's own Timer (kbrun_eval/timing.py), a
tiny ReLU (16 x 4096 fp32) and a larger one (64 x 16384), each timed 200 times per variant:
  back_to_back   events around 100 calls in a row, no flush, no sync (the GPU's own figure)
  events_only    sync, start, call, end (no flush, no spin)
  kbrun          Timer.time_once as the worker runs it (L2 flush, sync, spin, start, call, end)
  kbrun_noflush  the same without the L2 flush
  kbrun_spinx4   the same with a spin four times as long
  kernelbench    Timer.time_once with KernelBench's method (flush, sync, start, call, end)
  kbrun_gap2ms   kbrun's method with the host idle 2 ms before each call (the checker's turn)
  kbrun_peer     kbrun's method, each call followed by a second process's call on the same GPU
                 (a reference's flush, draw and ReLU, as the checker runs them in kbrun)
and, under torch.profiler (CUPTI), the kernel's own duration and the idle gap between the spin's
end and the kernel's start in kbrun's method. Each line gives the median and min in
microseconds and the median SM clock the Timer saw during the spin. Run on the GPU machine from
the repository root:  python3 bench/timer_floor.py [worker dir]"""
import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "src/eval/worker")
from kbrun_eval import timing as kw  # noqa: E402  (from the folder named on the command line)

dev = torch.device("cuda")
timer = kw.Timer(torch, dev)
print("spin calibration at start: %.0f cycles/ms; spin %s" % (timer.cycles_per_ms, timer.spin.describe()), flush=True)

PEER = r"""
import sys, torch
x = torch.randn(64, 16384, device="cuda")
flush = torch.empty(2 * torch.cuda.get_device_properties(0).L2_cache_size // 4, dtype=torch.int32, device="cuda")
print("ready", flush=True)
for line in sys.stdin:
    flush.zero_(); x.normal_(); torch.relu(x); torch.cuda.synchronize()
    print("done", flush=True)
"""


def report(name, shape, samples_ms):
    us = [s * 1000 for s in samples_ms]
    clock = statistics.median(timer.clock_mhz) if timer.clock_mhz else float("nan")
    timer.clock_mhz.clear()
    print("%-14s %-10s median %8.2f us  min %8.2f us  SM clock during spin %6.0f MHz" % (
        name, "x".join(map(str, shape)), statistics.median(us), min(us), clock), flush=True)


def kernel_profile(fn, x):
    """The kernel's own duration and the gap from the spin's end to its start (CUPTI)."""
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(50):
            timer.time_once(fn, (x,))
    kernels = sorted((e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA),
                     key=lambda e: e.time_range.start)
    own, gaps = [], []
    for prev, e in zip(kernels, kernels[1:]):
        if "relu" in e.name.lower() or "clamp" in e.name.lower():
            own.append(e.time_range.end - e.time_range.start)
            if "sleep" in prev.name.lower() or "spin" in prev.name.lower():
                gaps.append(e.time_range.start - prev.time_range.end)
    if own:
        print("  CUPTI: kernel median %.2f us (n %d); spin end -> kernel start median %.2f us max %.2f us" % (
            statistics.median(own), len(own), statistics.median(gaps) if gaps else float("nan"),
            max(gaps) if gaps else float("nan")), flush=True)
    else:
        print("  CUPTI: no ReLU kernel seen; kernels: %s" % sorted({e.name for e in kernels})[:10], flush=True)


def measure(shape, peer):
    x = torch.randn(*shape, device=dev)
    fn = torch.relu
    for _ in range(5):
        timer.warm_up(fn, (x,))
    print("  spin calibration after warm-up: %.0f cycles/ms" % timer.cycles_per_ms, flush=True)
    timer.clock_mhz.clear()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(100):
        fn(x)
    end.record()
    end.synchronize()
    report("back_to_back", shape, [start.elapsed_time(end) / 100])
    ev = []
    for _ in range(200):
        torch.cuda.synchronize()
        start.record()
        fn(x)
        end.record()
        end.synchronize()
        ev.append(start.elapsed_time(end))
    report("events_only", shape, ev)
    report("kbrun", shape, [timer.time_once(fn, (x,))[0] for _ in range(200)])
    flush, timer.flush_buf = timer.flush_buf, torch.empty(1, dtype=torch.int32, device=dev)
    report("kbrun_noflush", shape, [timer.time_once(fn, (x,))[0] for _ in range(200)])
    timer.flush_buf = flush
    spin_ms = timer.spin_ms
    timer.spin_ms = spin_ms * 4
    report("kbrun_spinx4", shape, [timer.time_once(fn, (x,))[0] for _ in range(200)])
    timer.spin_ms = spin_ms
    report("kernelbench", shape, [timer.time_once(fn, (x,), method=kw.KERNELBENCH_METHOD)[0] for _ in range(200)])
    gap = []
    for _ in range(200):
        time.sleep(0.002)
        gap.append(timer.time_once(fn, (x,))[0])
    report("kbrun_gap2ms", shape, gap)
    alternating = []
    for _ in range(200):
        alternating.append(timer.time_once(fn, (x,))[0])
        peer.stdin.write("go\n")
        peer.stdin.flush()
        peer.stdout.readline()
    report("kbrun_peer", shape, alternating)
    print("  spin %.3f ms (%d cycles), host time per call %.1f us" % (
        timer.spin_ms, timer.spin_cycles, 1000 * statistics.median(timer.host_ms)), flush=True)
    kernel_profile(fn, x)


peer = subprocess.Popen([sys.executable, "-c", PEER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
peer.stdout.readline()
for shape in ((16, 4096), (64, 16384)):
    measure(shape, peer)
peer.kill()
