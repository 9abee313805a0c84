"""Does another process's CUDA start and end move a timed call? A timer process times two kernels
call by call (CUDA events, a synchronisation after each call) for three equal spans: quiet, while
other processes start and end CUDA contexts one after another (each child of a churner initialises
CUDA, runs one tiny kernel and exits, as a run worker's start and end do), quiet again. Prints, per
kernel and span, the calls timed and their median, p90, p99 and largest time, and how many contexts
were started. This is the measurement behind starting the next sample's run worker (its CUDA set-up,
before any candidate code loads) while the current sample still holds the GPU lane: if the medians
of the churn span match the quiet spans', that set-up need not wait for the lane.
Usage (GPU machine): python3 bench/context_churn.py [--span-s 4] [--churners 2]
"""
import argparse
import os
import statistics
import subprocess
import sys

TIMER = r"""
import sys, time
import torch
x = torch.randn(64, 16384, device="cuda")
a = torch.randn(2048, 2048, device="cuda")
b = torch.randn(2048, 2048, device="cuda")
kernels = {"relu_64x16384": lambda: torch.relu(x), "matmul_2048_fp32": lambda: a @ b}
start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
for f in kernels.values():
    for _ in range(50):
        f()
torch.cuda.synchronize()
sys.stdout.write("ready\n"); sys.stdout.flush()
span = float(sys.argv[1])
for phase in ("quiet", "churn", "quiet_again"):
    sys.stdin.readline()  # the parent says when the span starts (the churners are running by then)
    samples = {k: [] for k in kernels}
    t_end = time.perf_counter() + span
    while time.perf_counter() < t_end:
        for name, f in kernels.items():
            start.record(); f(); end.record(); end.synchronize()
            samples[name].append(start.elapsed_time(end) * 1000.0)
    for name, s in samples.items():
        sys.stdout.write("%s %s %s\n" % (phase, name, " ".join("%.2f" % v for v in s)))
    sys.stdout.write("done\n"); sys.stdout.flush()
"""

# Forks children (this process never initialises CUDA) that each start a context and end it.
CHURNER = r"""
import os, sys
import torch
n = 0
while True:
    pid = os.fork()
    if pid == 0:
        torch.zeros(1, device="cuda").add_(1)
        torch.cuda.synchronize()
        os._exit(0)
    os.waitpid(pid, 0)
    n += 1
    sys.stdout.write("%d\n" % n); sys.stdout.flush()
"""


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--span-s", type=float, default=4.0)
    ap.add_argument("--churners", type=int, default=2)
    args = ap.parse_args()
    timer = subprocess.Popen([sys.executable, "-c", TIMER, str(args.span_s)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert timer.stdout.readline().strip() == "ready"
    rows, contexts = [], {}
    for phase in ("quiet", "churn", "quiet_again"):
        churners = []
        if phase == "churn":
            churners = [subprocess.Popen([sys.executable, "-c", CHURNER], stdout=subprocess.PIPE, text=True)
                        for _ in range(args.churners)]
            for c in churners:
                c.stdout.readline()  # its first context came and went: the churn is on
        timer.stdin.write("go\n")
        timer.stdin.flush()
        while True:
            line = timer.stdout.readline().split()
            if line == ["done"] or not line:
                break
            rows.append((line[0], line[1], [float(v) for v in line[2:]]))
        for c in churners:
            c.kill()
            c.wait()
            contexts[phase] = contexts.get(phase, 0) + int((c.stdout.read().split() or ["0"])[-1])
    timer.stdin.close()
    timer.wait()
    print("%-12s %-18s %6s %9s %9s %9s %9s" % ("span", "kernel", "calls", "median us", "p90", "p99", "max"))
    for phase, name, s in sorted(rows, key=lambda r: (r[1], ["quiet", "churn", "quiet_again"].index(r[0]))):
        print("%-12s %-18s %6d %9.2f %9.2f %9.2f %9.2f" % (
            phase, name, len(s), statistics.median(s), percentile(s, 0.9), percentile(s, 0.99), max(s)))
    print("contexts started and ended during the churn span: about %d (%d churners, %.1f s)" % (
        contexts.get("churn", 0), args.churners, args.span_s))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
