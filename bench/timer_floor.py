"""Where does the timer's floor come from? One process, kbrun's own Timer (kbrun_worker.py), a
tiny ReLU (16 x 4096 fp32) and a larger one (64 x 16384), each timed 200 times per variant:
  back_to_back   events around 100 calls in a row, no flush, no sync (the GPU's own figure)
  events_only    sync, start, call, end (no flush, no spin)
  kbrun          Timer.time_once as the worker runs it (L2 flush, sync, spin, start, call, end)
  kbrun_noflush  the same without the L2 flush
  kbrun_spinx4   the same with a spin four times as long
  kernelbench    Timer.time_once with KernelBench's method (flush, sync, start, call, end)
  idle_peer      kbrun's method while a second process holds an idle CUDA context (as the checker)
Prints the median and min in microseconds. Run on the GPU machine from the repository root:
  python3 bench/timer_floor.py [worker dir]"""
import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "src/eval/worker")
import kbrun_worker as kw  # noqa: E402  (from the folder named on the command line)

dev = torch.device("cuda")
timer = kw.Timer(torch, dev)
print("spin calibration at start: %.0f cycles/ms" % timer.cycles_per_ms, flush=True)


def report(name, shape, samples_ms):
    us = [s * 1000 for s in samples_ms]
    print("%-14s %-10s median %8.2f us  min %8.2f us" % (name, "x".join(map(str, shape)), statistics.median(us),
                                                         min(us)), flush=True)


def measure(shape):
    x = torch.randn(*shape, device=dev)
    fn = torch.relu
    for _ in range(5):
        timer.warm_up(fn, (x,))
    print("  spin calibration after warm-up: %.0f cycles/ms" % timer.cycles_per_ms, flush=True)
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
    cycles = timer.spin_cycles
    timer.spin_cycles = cycles * 4
    report("kbrun_spinx4", shape, [timer.time_once(fn, (x,))[0] for _ in range(200)])
    timer.spin_cycles = cycles
    report("kernelbench", shape, [timer.time_once(fn, (x,), method=kw.KERNELBENCH_METHOD)[0] for _ in range(200)])
    print("  spin %.3f ms (%d cycles), host time per call %.1f us" % (
        timer.spin_ms, timer.spin_cycles, 1000 * statistics.median(timer.host_ms)), flush=True)


for shape in ((16, 4096), (64, 16384)):
    measure(shape)
peer = subprocess.Popen([sys.executable, "-c", "import torch, time; torch.zeros(1, device='cuda'); "
                         "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
peer.stdout.readline()
x = torch.randn(16, 4096, device=dev)
report("idle_peer", (16, 4096), [timer.time_once(torch.relu, (x,))[0] for _ in range(200)])
peer.kill()
time.sleep(0.1)
