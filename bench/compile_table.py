"""Prints the compile benchmark's table from bench/compile_bench.sh's result files."""
import glob
import json
import os
import statistics
import sys

d = sys.argv[1]


def load(name):
    try:
        return json.load(open(os.path.join(d, name + ".json")))
    except (OSError, ValueError):
        return None


def overhead_s(r):
    """A run's seconds beyond compiling, checking and timing: process starts, imports, CUDA
    init, loading the problem. The one-time start of the warm worker itself (once per kbrun
    process, not per candidate) is reported apart."""
    st = r["stages"]
    run_part = st["run_worker_total_s"] - st["correctness_s"] - st["timing_s"]
    if "compile_worker_total_s" in st:
        return st["compile_worker_total_s"] - st["compile_s"] + run_part - st.get("warm_worker_setup_s", 0.0)
    return st["worker_start_s"] + run_part  # results from before the worker wall was recorded


rows, plain_s, fast_s, warm_s, overhead = [], [], [], [], []
warm_worker, cold_worker, server_start = [], [], []
breakdown, parts = [], []  # cold builds' timings; the warm run workers' own parts
for path in sorted(glob.glob(os.path.join(d, "c*_plain.json")),
                   key=lambda p: int(os.path.basename(p)[1:].split("_")[0])):
    label = os.path.basename(path)[: -len("_plain.json")]
    p, c, w = load(label + "_plain"), load(label + "_cold"), load(label + "_warm")
    if not (p and c and w):
        rows.append("%-36s missing results" % label)
        continue
    ext = (c["build"]["extensions"] or [{}])[0]
    ps, cs, ws = (r["stages"]["compile_s"] for r in (p, c, w))
    plain_s.append(ps)
    fast_s.append(cs)
    warm_s.append(ws)
    for r in (p, c, w):
        overhead.append(overhead_s(r))
    # Side by side on the same cached build: forks of the warm worker vs fresh interpreters.
    cw = load(label + "_coldworker")
    if cw and w["stages"].get("run_worker_start") == "warm":
        warm_worker.append(overhead_s(w))
        cold_worker.append(overhead_s(cw))
    for r in (p, c, w):
        if r["stages"].get("warm_worker_setup_s", 0) > 0:
            server_start.append(r["stages"]["warm_worker_setup_s"])
    # Where a cold build's time goes (kbrun_build's record): compile_s beyond the build step is
    # torch's own work around it (checks, writing sources, loading the module).
    for e in c["build"]["extensions"]:
        if "ninja_steps" in e:
            steps = ", ".join("%s %.2f-%.2f" % (name, start, end) for name, start, end in e["ninja_steps"])
            breakdown.append(
                "  %-34s compile_s %.2f = build %.2f (key %.2f, ninja %.2f: %s; store %.2f) + torch %.2f" % (
                    c["problem"][:34], cs, e["seconds"], e.get("key_s", 0), e["ninja_s"], steps, e.get("store_s", 0),
                    cs - e["seconds"]))
    if "run_cuda_init_s" in w["stages"]:  # results from before they were recorded lack them
        parts.append(w["stages"])
    rows.append("%-36s %-14s %8.1f %8.1f %8.1f %6.2f   %-9s %-9s %-9s %s" % (
        p["problem"][:36], ",".join(ext.get("cuda_headers", [])) or "-", ps, cs, ws, cs / ps,
        p["status"], c["status"], w["status"], (w["build"]["extensions"] or [{}])[0].get("cache", "-")))

warm = load("warmup")
print("kbrun compile benchmark: plain load_inline vs kbrun fast build, same sources")
if warm:
    ext = (warm["build"]["extensions"] or [{}])[0]
    print("device: %s, torch %s, CUDA %s"
          % (warm["device"]["name"], warm["env"]["torch_version"], warm["env"]["cuda_version"]))
    print("one-time precompiled header build: %s s (%s)" % (ext.get("pch_build_s", "-"), ext.get("pch", "-")))
print()
print("%-36s %-14s %8s %8s %8s %6s   %-9s %-9s %-9s %s" % (
    "problem", "cuda headers", "plain s", "cold s", "warm s", "cold/p", "plain", "cold", "warm", "warm cache"))
for r in rows:
    print(r)
if plain_s:
    mp, mc, mw = statistics.median(plain_s), statistics.median(fast_s), statistics.median(warm_s)
    print()
    print("median compile s: plain %.1f, kbrun cold %.1f (%.2fx of plain), kbrun warm %.2f (%.3fx of plain)" % (
        mp, mc, mc / mp, mw, mw / mp))
    print("per-candidate overhead (worker starts + loading, excluding compile, checks and timing): "
          "median %.2f s, max %.2f s over %d evaluations" % (statistics.median(overhead), max(overhead), len(overhead)))
if breakdown:
    print("cold builds, where the time went (ninja steps: output start-end s):")
    print("\n".join(breakdown))
if parts:
    print("per-candidate overhead, the warm run worker's parts (medians, n=%d): GPU set-up %.2f s, "
          "importing the candidate %.2f s, "
          "building the models %.2f s" % (len(parts), statistics.median(p["run_cuda_init_s"] for p in parts),
                                          statistics.median(p["run_load_candidate_s"] for p in parts),
                                          statistics.median(p["run_load_models_s"] for p in parts)))
if warm_worker:
    print("overhead on the same cached builds: warm worker median %.2f s (max %.2f), cold starts median %.2f s "
          "(max %.2f), n=%d each; warm/cold %.2fx" % (
              statistics.median(warm_worker), max(warm_worker), statistics.median(cold_worker), max(cold_worker),
              len(warm_worker), statistics.median(warm_worker) / statistics.median(cold_worker)))
if server_start:
    print("warm worker start (once per kbrun process, not per candidate): median %.2f s over %d processes" % (
        statistics.median(server_start), len(server_start)))
