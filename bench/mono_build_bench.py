"""Build seconds of candidates' load_inline extensions: torch's own build (plain) against kbrun's
fast build (src/eval/worker/kbrun_eval/build.py), side by side, cold, on this machine's compilers.

    /usr/bin/python3 bench/mono_build_bench.py OUT_DIR CANDIDATE.py...

Needs no GPU and no kbrun binary: it runs the worker's build step directly, as the worker installs
it. For each candidate a child process runs the candidate's module with load_inline recorded
instead of run (torch.cuda.is_available() answers True so that GPU-only builds are seen; ModelNew
is constructed with the reference's get_init_inputs() when the module itself builds nothing: a
`<name>.ref.py` beside it, else tests/problems/1_ScaleAdd.py), then two children rebuild each
recorded call at once, one with torch's build and one with kbrun's, each in a fresh build folder
(kbrun's with an empty extension cache; with PCH_WARMUP=1 the precompiled header comes from
OUT_DIR/pch-cache, built by a warm-up first). A build counts as built when its library exists: on a
machine without torch's CUDA libraries (Debian's CPU torch) the link uses empty stand-ins and the load
may then fail; that does not change the build's seconds.

For Debian's torch 1.13 with nvcc 13 every call gets `-std=c++17` in its CUDA flags (both modes)
and TORCH_CUDA_ARCH_LIST defaults to 8.0. Rows go to OUT_DIR/rows.jsonl, the table to stdout.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "src", "eval", "worker")

CAPTURE = r'''
import importlib.util, json, os, sys
import torch
from torch.utils import cpp_extension as ce
calls = []
keys = ["name", "cpp_sources", "cuda_sources", "functions", "extra_cflags", "extra_cuda_cflags",
        "extra_ldflags", "extra_include_paths", "build_directory", "verbose", "with_cuda", "is_python_module",
        "with_pytorch_error_handling", "keep_intermediates", "use_pch"]


class Dummy:
    def __getattr__(self, name):
        return lambda *a, **k: None


def record(*args, **kwargs):
    call = dict(zip(keys, args))
    call.update(kwargs)
    calls.append({k: v for k, v in call.items() if isinstance(v, (str, list, bool, int, type(None)))})
    return Dummy()


ce.load_inline = record
torch.cuda.is_available = lambda: True
torch.nn.Module.cuda = lambda self, *a, **k: self
torch.Tensor.cuda = lambda self, *a, **k: self
cand, ref, out = sys.argv[1:4]
try:
    spec = importlib.util.spec_from_file_location("candidate", cand)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if not calls:
        rs = importlib.util.spec_from_file_location("reference", ref)
        r = importlib.util.module_from_spec(rs)
        rs.loader.exec_module(r)
        mod.ModelNew(*r.get_init_inputs())
except Exception as exc:
    print("capture stopped: %r" % (exc,), file=sys.stderr)
json.dump(calls, open(out, "w"))
'''

BUILD = r'''
import json, os, sys, time
mode, calls_path, build_root, cache, worker, out = sys.argv[1:7]
sys.path.insert(0, worker)
import torch
from torch.utils import cpp_extension as ce
if mode == "fast":
    from kbrun_eval import build as kbrun_build
    kbrun_build.install(cache)
calls = json.load(open(calls_path))
rows = []
for i, call in enumerate(calls):
    call = dict(call)
    call["build_directory"] = os.path.join(build_root, str(i))
    os.makedirs(call["build_directory"], exist_ok=True)
    call["verbose"] = False
    flags = call.get("extra_cuda_cflags") or []
    call["extra_cuda_cflags"] = (flags if isinstance(flags, list) else [flags]) + ["-std=c++17"]
    t = time.perf_counter()
    error = None
    try:
        ce.load_inline(**call)
    except Exception as exc:
        error = str(exc)[-600:]
    seconds = time.perf_counter() - t
    lib = os.path.join(call["build_directory"], call["name"] + ".so")
    row = {"name": call["name"], "seconds": round(seconds, 2), "built": os.path.exists(lib), "error": error}
    if mode == "fast" and kbrun_build.builds:
        row["record"] = kbrun_build.builds[-1]
        kbrun_build.builds.clear()
    rows.append(row)
json.dump(rows, open(out, "w"))
'''


def stub_libs(d):
    """Empty stand-ins for torch's CUDA libraries where this torch has none (for the link only)."""
    import torch
    lib_dir = os.path.join(os.path.dirname(torch.__file__), "lib")
    os.makedirs(d, exist_ok=True)
    for lib in ("c10_cuda", "torch_cuda"):
        if not os.path.exists(os.path.join(lib_dir, "lib%s.so" % lib)):
            subprocess.run(["cc", "-shared", "-x", "c", "/dev/null", "-o", os.path.join(d, "lib%s.so" % lib)],
                           check=True)
    return d


def main():
    out, cands = sys.argv[1], sys.argv[2:]
    os.makedirs(out, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("TORCH_CUDA_ARCH_LIST", "8.0")
    stubs = stub_libs(os.path.join(out, "stub-libs"))
    env["LIBRARY_PATH"] = stubs + (":" + env["LIBRARY_PATH"] if env.get("LIBRARY_PATH") else "")
    old_ld = env.get("LD_LIBRARY_PATH")
    env["LD_LIBRARY_PATH"] = stubs + ":/usr/local/cuda/lib64" + (":" + old_ld if old_ld else "")
    py = sys.executable
    pch_cache = os.path.join(out, "pch-cache")
    # PCH_WARMUP=1: build the precompiled header for torch's default flags first (a one-time cost per cache,
    # reported apart). Without it the cache starts empty, as a fresh kbrun's does.
    if os.environ.get("PCH_WARMUP") == "1":
        warm = os.path.join(out, "warmup")
        shutil.rmtree(warm, ignore_errors=True)
        os.makedirs(warm)
        with open(os.path.join(warm, "calls.json"), "w") as f:
            json.dump([{"name": "kb_bench_warmup_ext", "cpp_sources": "torch::Tensor f(torch::Tensor x) { return x; }",
                        "functions": ["f"]}], f)
        t = time.time()
        subprocess.run([py, "-c", BUILD, "fast", os.path.join(warm, "calls.json"), os.path.join(warm, "b"),
                        pch_cache, WORKER, os.path.join(warm, "rows.json")], env=env)
        print("warm-up (precompiled header) %.1f s" % (time.time() - t), flush=True)
    rows_path = os.path.join(out, "rows.jsonl")
    for cand in cands:
        label = os.path.basename(cand).replace(".cand.py", "").replace(".py", "")
        d = os.path.join(out, label)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        ref = cand.replace(".cand.py", ".ref.py")
        if not os.path.exists(ref):
            ref = os.path.join(ROOT, "tests", "problems", "1_ScaleAdd.py")
        calls = os.path.join(d, "calls.json")
        subprocess.run([py, "-c", CAPTURE, cand, ref, calls], env=env, capture_output=True)
        if not os.path.exists(calls) or not json.load(open(calls)):
            print("%-40s no load_inline call recorded" % label, flush=True)
            continue
        cache = os.path.join(d, "cache")
        os.makedirs(cache)
        if os.path.isdir(os.path.join(pch_cache, "pch")):
            subprocess.run(["cp", "-al", os.path.join(pch_cache, "pch"), os.path.join(cache, "pch")])
        procs = {}
        for mode in ("plain", "fast"):
            procs[mode] = subprocess.Popen(
                [py, "-c", BUILD, mode, calls, os.path.join(d, mode), cache, WORKER, os.path.join(d, mode + ".json")],
                env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, mode + ".log"), "w"))
        for p in procs.values():
            p.wait()
        res = {}
        for mode in ("plain", "fast"):
            try:
                res[mode] = json.load(open(os.path.join(d, mode + ".json")))
            except (OSError, ValueError):
                res[mode] = []
        for i, (p, f) in enumerate(zip(res["plain"], res["fast"])):
            rec = f.get("record", {})
            row = {"candidate": label, "call": i, "name": p["name"], "plain_s": p["seconds"], "fast_s": f["seconds"],
                   "plain_built": p["built"], "fast_built": f["built"], "cuda_headers": rec.get("cuda_headers"),
                   "cuda_header_reasons": rec.get("cuda_header_reasons"), "binding_header": rec.get("binding_header"),
                   "path": rec.get("path"), "ninja_runs": rec.get("ninja_runs"), "fallback": "fallback" in rec,
                   "pch": rec.get("pch"), "pch_build_s": rec.get("pch_build_s"), "ninja_steps": rec.get("ninja_steps"),
                   "plain_error": (p["error"] or "")[-300:], "fast_error": (f["error"] or "")[-300:]}
            with open(rows_path, "a") as fh:
                fh.write(json.dumps(row) + "\n")
            print("%-40s %-18s %7.1f %7.1f %5.2f  built %s/%s runs %s %s" % (
                label[:40], ",".join(row["cuda_headers"] or ["-"]), row["plain_s"], row["fast_s"],
                row["fast_s"] / row["plain_s"] if row["plain_s"] else 0, p["built"], f["built"], row["ninja_runs"],
                "; ".join(row["cuda_header_reasons"] or [])), flush=True)
    table(rows_path)


def table(rows_path):
    rows = [json.loads(line) for line in open(rows_path)] if os.path.exists(rows_path) else []
    both = [r for r in rows if r["plain_built"] and r["fast_built"]]
    if both:
        mp = statistics.median(r["plain_s"] for r in both)
        mf = statistics.median(r["fast_s"] for r in both)
        print("built by both: %d of %d builds; median plain %.1f s, kbrun %.1f s (%.2fx); worst ratio %.2fx; "
              "second builds (ninja runs > 1): %d" % (
                  len(both), len(rows), mp, mf, mf / mp, max(r["fast_s"] / r["plain_s"] for r in both),
                  sum(1 for r in rows if (r["ninja_runs"] or 0) > 1)))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        table(sys.argv[2])
    else:
        main()
