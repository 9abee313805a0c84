"""What a run worker's end costs on the GPU: the time from a process's last line (the result line,
after which kbrun's worker calls os._exit) to its parent's waitpid, by what the process did (CUDA
init only, a large allocation, a profiled forward), and whether a second process's CUDA init is
slower while the first one's context is being torn down (what releasing a GPU lane at the result
line, before the worker's exit, would cost the next candidate). stages.run_worker_after_result_s
measures the same span in kbrun (0.24 s median on level-2 candidates on an H200, 0.03 s on the CPU).
Usage (GPU machine): python3 bench/exit_cost.py [--reps 3]
"""
import argparse
import json
import statistics
import subprocess
import sys
import time

CHILD = r"""
import os, sys, time
import torch
what = sys.argv[1]
torch.cuda.init()
x = torch.ones(1, device="cuda")
if what in ("alloc", "profiled"):
    big = torch.empty(4 << 30, dtype=torch.uint8, device="cuda")
    big.fill_(1)
if what == "profiled":
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
        y = torch.relu(big[: 1 << 24].float())
    torch.cuda.synchronize()
    p.events()
torch.cuda.synchronize()
sys.stdout.write("ready\n")
sys.stdout.flush()
os._exit(0)
"""

# Imports torch, waits for "go", then reports how long CUDA init and a first kernel take.
INIT_TIMER = r"""
import os, sys, time
import torch
sys.stdout.write("imported\n")
sys.stdout.flush()
sys.stdin.readline()
t = time.perf_counter()
z = torch.zeros(1 << 20, device="cuda") + 1
torch.cuda.synchronize()
sys.stdout.write("init %.6f\n" % (time.perf_counter() - t))
sys.stdout.flush()
os._exit(0)
"""


def exit_seconds(what):
    """From the child's "ready" line to waitpid's return."""
    p = subprocess.Popen([sys.executable, "-c", CHILD, what], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    t = time.perf_counter()
    p.wait()
    if line.strip() != "ready":
        raise RuntimeError("child %s said %r" % (what, line))
    return time.perf_counter() - t


def init_seconds(beside):
    """A fresh process's CUDA init and first kernel, started as another process (`beside`) exits
    after its ready line, or alone (beside=None)."""
    timer = subprocess.Popen([sys.executable, "-c", INIT_TIMER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    timer.stdout.readline()  # its torch import is over
    other = None
    if beside:
        other = subprocess.Popen([sys.executable, "-c", CHILD, beside], stdout=subprocess.PIPE, text=True)
        other.stdout.readline()
    timer.stdin.write("go\n")
    timer.stdin.flush()
    line = timer.stdout.readline()
    timer.wait()
    if other:
        other.wait()
    return float(line.split()[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    rows = {}
    for what in ("init", "alloc", "profiled"):
        rows["exit after " + what] = [exit_seconds(what) for _ in range(args.reps)]
    for beside in (None, "alloc", "profiled"):
        rows["next CUDA init, %s" % ("alone" if beside is None else "beside the exit of " + beside)] = [
            init_seconds(beside) for _ in range(args.reps)]
    for name, values in rows.items():
        print("%-48s median %.3f s  (%s)" % (name, statistics.median(values), " ".join("%.3f" % v for v in values)))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
