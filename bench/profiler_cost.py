"""What the torch profiler costs per candidate on the GPU (the library-share check,
kbrun_eval/library_share.py, runs it once per run phase): the profiler's phases (enter, three
forwards, exit, events()) cold and again in the same process, under CUPTI teardown settings and
activity sets, each variant in a fresh interpreter as a run worker is. "dynamo first" imports
torch._dynamo before the profiler, as kbrun's warm worker does (the profiler's first start imports
it otherwise: docs/device-runs/2026-12-02-session12-h200.txt). TEARDOWN_CUPTI=1 is not run: it hung
for 300 s on an H200 (2026-12-02).
Usage (GPU machine): python3 bench/profiler_cost.py [--size N]
"""
import argparse
import json
import os
import subprocess
import sys
import time

CHILD = r"""
import json, os, sys, time
t0 = time.perf_counter()
import torch
if os.environ.get("BENCH_DYNAMO_FIRST"):
    import torch._dynamo  # noqa: F401
from torch.profiler import ProfilerActivity, profile
acts = {"cpu+cuda": [ProfilerActivity.CPU, ProfilerActivity.CUDA], "cuda": [ProfilerActivity.CUDA],
        "cpu": [ProfilerActivity.CPU]}[sys.argv[1]]
n = int(sys.argv[2])
torch.cuda.init()
x = torch.randn(n, device="cuda")
model = torch.nn.ReLU()
model(x); torch.cuda.synchronize()
out = {"import_and_init_s": time.perf_counter() - t0, "rounds": []}
for _ in range(3):
    r = {}
    t = time.perf_counter()
    p = profile(activities=acts)
    p.__enter__()
    r["enter_s"] = time.perf_counter() - t; t = time.perf_counter()
    with torch.no_grad():
        for _ in range(3):
            model(x)
    torch.cuda.synchronize()
    r["forwards_s"] = time.perf_counter() - t; t = time.perf_counter()
    p.__exit__(None, None, None)
    r["exit_s"] = time.perf_counter() - t; t = time.perf_counter()
    ev = p.events()
    r["events_s"] = time.perf_counter() - t
    r["kernels"] = sum(1 for e in ev if str(getattr(e, "device_type", "")).endswith("CUDA"))
    out["rounds"].append(r)
print(json.dumps(out))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1 << 20)
    args = ap.parse_args()
    variants = [("default", {}, "cpu+cuda"), ("TEARDOWN_CUPTI=0", {"TEARDOWN_CUPTI": "0"}, "cpu+cuda"),
                ("dynamo first", {"BENCH_DYNAMO_FIRST": "1"}, "cpu+cuda"), ("cuda only", {}, "cuda"),
                ("cpu only", {}, "cpu")]
    print("%-18s %-9s %8s %8s %8s %8s %8s  (seconds; rounds 1, 2, 3 of the same process)" % (
        "variant", "round", "enter", "forwards", "exit", "events", "kernels"))
    for name, env, acts in variants:
        t = time.perf_counter()
        try:
            p = subprocess.run([sys.executable, "-c", CHILD, acts, str(args.size)], capture_output=True, text=True,
                               env=dict(os.environ, **env), timeout=300)
        except subprocess.TimeoutExpired:
            print("%-18s did not end within 300 s" % name)
            continue
        wall = time.perf_counter() - t
        try:
            out = json.loads(p.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            print("%-18s failed: %s" % (name, p.stderr[-600:]))
            continue
        for i, r in enumerate(out["rounds"]):
            print("%-18s %-9d %8.3f %8.3f %8.3f %8.3f %8d" % (
                name, i + 1, r["enter_s"], r["forwards_s"], r["exit_s"], r["events_s"], r["kernels"]))
        print("%-18s process wall %.2f s, import torch + CUDA init %.2f s" % (name, wall, out["import_and_init_s"]))


if __name__ == "__main__":
    main()
