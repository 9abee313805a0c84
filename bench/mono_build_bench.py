"""Build seconds of candidates' load_inline extensions: torch's own build (plain) against kbrun's
fast build (src/eval/worker/kbrun_eval/build.py), side by side, cold, on this machine's compilers.

    /usr/bin/python3 bench/mono_build_bench.py OUT_DIR CANDIDATE.py...

Needs no GPU and no kbrun binary: it runs the worker's build step directly, as the worker installs
it. For each candidate a child process runs the candidate's module with load_inline recorded
instead of run (torch.cuda.is_available() answers True so that GPU-only builds are seen; ModelNew
is constructed with the reference's get_init_inputs() when the module itself builds nothing, and
called once on get_inputs() when that builds nothing either: a `<name>.ref.py` beside it, else
tests/problems/1_ScaleAdd.py), then two children rebuild each
recorded call at once, one with torch's build and one with kbrun's, each in a fresh build folder
(kbrun's with an empty extension cache; with PCH_WARMUP=1 the precompiled headers come from
OUT_DIR/pch-cache, built by a warm-up first: the binding file's and those of split CUDA files' host
code, with torch's flags and with -O3). JOBS=N benches N candidates at once; a call repeated with
the same arguments counts once. A build counts as built when its library exists and loads
(on a machine without torch's CUDA libraries, Debian's CPU torch, the link uses empty stand-ins).

For Debian's torch 1.13 with nvcc 13 every call gets `-std=c++17` in its CUDA flags (both modes)
and TORCH_CUDA_ARCH_LIST defaults to 8.0. Rows go to OUT_DIR/rows.jsonl, the table to stdout.
"""
import concurrent.futures
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
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
real_cuda = torch.cuda.is_available()
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
        model = mod.ModelNew(*r.get_init_inputs())
        if not calls:  # builds on its first call (on a GPU machine, with the inputs there)
            device = "cuda" if real_cuda else "cpu"
            model.to(device)(*[x.to(device) if isinstance(x, torch.Tensor) else x for x in r.get_inputs()])
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
# A call repeated with the same arguments is one build (torch and kbrun both load the first one's result).
calls = [c for i, c in enumerate(calls) if c not in calls[:i]]
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
    row = {"name": call["name"], "seconds": round(seconds, 2), "built": os.path.exists(lib) and error is None,
           "error": error}
    if mode == "fast" and kbrun_build.builds:
        row["record"] = kbrun_build.builds[-1]
        kbrun_build.builds.clear()
    rows.append(row)
json.dump(rows, open(out, "w"))
'''


# One mono-layout CUDA file of each kind the corpus has: the split's host file gets torch/types.h
# (names only what it declares) or torch/extension.h (here: PYBIND11_MODULE in the CUDA file).
WARM_KERNEL = """#include <torch/extension.h>
__global__ void kb_warm_kernel(float* x, int n) { if (threadIdx.x < n) x[threadIdx.x] += 1.0f; }
torch::Tensor kb_warm(torch::Tensor x) { kb_warm_kernel<<<1, 32>>>(x.data_ptr<float>(), 32); return x; }
"""
WARM_PYBIND = 'PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("kb_warm", &kb_warm); }\n'


def warm_up_calls():
    """The builds whose precompiled headers a warm kbrun cache holds: the binding file alone, and
    each kind of split CUDA file with torch's flags and with the corpus's usual -O3."""
    calls = [{"name": "kb_bench_warmup_ext", "cpp_sources": "torch::Tensor f(torch::Tensor x) { return x; }",
              "functions": ["f"]}]
    for i, flags in enumerate((None, ["-O3", "--use_fast_math"])):
        calls.append({"name": "kb_bench_warmup_types%d" % i, "cpp_sources": "torch::Tensor kb_warm(torch::Tensor x);",
                      "cuda_sources": WARM_KERNEL, "functions": ["kb_warm"], "extra_cuda_cflags": flags})
        calls.append({"name": "kb_bench_warmup_ext%d" % i, "cpp_sources": "", "cuda_sources": WARM_KERNEL + WARM_PYBIND,
                      "extra_cuda_cflags": flags})
    return calls


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


def bench_candidate(cand, out, env, py, pch_cache, rows_path, lock):
    """Builds one candidate's recorded calls plain and fast at once; appends its rows."""
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
        return
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
               "split_declined": rec.get("cuda_split_declined"), "split_pch": rec.get("split_pch"),
               "split_pch_build_s": rec.get("split_pch_build_s"), "fallback_text": rec.get("fallback", "")[-600:],
               "plain_error": (p["error"] or "")[-1500:], "fast_error": (f["error"] or "")[-1500:]}
        with lock, open(rows_path, "a") as fh:
            fh.write(json.dumps(row) + "\n")
            print("%-40s %-18s %7.1f %7.1f %5.2f  built %s/%s runs %s %s" % (
                label[:40], ",".join(row["cuda_headers"] or ["-"]), row["plain_s"], row["fast_s"],
                row["fast_s"] / row["plain_s"] if row["plain_s"] else 0, p["built"], f["built"], row["ninja_runs"],
                "; ".join((row["cuda_header_reasons"] or []) + (row["split_declined"] or []))), flush=True)


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
    # PCH_WARMUP=1: build the precompiled headers a warm kbrun cache holds first (warm_up_calls, at once; a
    # one-time cost per cache, reported apart). Without it the cache starts empty, as a fresh kbrun's does.
    if os.environ.get("PCH_WARMUP") == "1":
        warm = os.path.join(out, "warmup")
        shutil.rmtree(warm, ignore_errors=True)
        os.makedirs(warm)
        t, procs = time.time(), []
        for i, call in enumerate(warm_up_calls()):
            calls = os.path.join(warm, "calls%d.json" % i)
            with open(calls, "w") as f:
                json.dump([call], f)
            procs.append(subprocess.Popen([py, "-c", BUILD, "fast", calls, os.path.join(warm, "b%d" % i), pch_cache,
                                           WORKER, os.path.join(warm, "rows%d.json" % i)], env=env))
        for p in procs:
            p.wait()
        built = sum(row["built"] for i in range(len(procs))
                    for row in json.load(open(os.path.join(warm, "rows%d.json" % i))))
        print("warm-up (precompiled headers) %.1f s, %d of %d builds built" % (time.time() - t, built, len(procs)),
              flush=True)
    rows_path = os.path.join(out, "rows.jsonl")
    # JOBS candidates at once (each is two builds side by side): the corpus in one device call.
    lock = threading.Lock()
    with concurrent.futures.ThreadPoolExecutor(max_workers=int(os.environ.get("JOBS", "1"))) as pool:
        for f in [pool.submit(bench_candidate, c, out, env, py, pch_cache, rows_path, lock) for c in cands]:
            f.result()
    table(rows_path)


def table(rows_path):
    """Medians over all builds (a build that fails counts to its error: the time to the candidate's
    compile verdict), over those both built, and the builds whose outcome the fast path changed."""
    rows = [json.loads(line) for line in open(rows_path)] if os.path.exists(rows_path) else []
    same = [r for r in rows if r["plain_built"] == r["fast_built"] and r["plain_s"]]
    for label, part in (("all builds", same), ("built by both", [r for r in same if r["plain_built"]])):
        if not part:
            print("%s: none" % label)
            continue
        mp = statistics.median(r["plain_s"] for r in part)
        mf = statistics.median(r["fast_s"] for r in part)
        ratios = [r["fast_s"] / r["plain_s"] for r in part]
        print("%s: %d; median plain %.1f s, kbrun %.1f s (%.2fx); median ratio %.2fx, worst %.2fx; slower: %d"
              % (label, len(part), mp, mf, mf / mp, statistics.median(ratios), max(ratios),
                 sum(1 for x in ratios if x > 1)))
    print("outcome changed (built in one mode only): %d; second builds (ninja runs > 1): %d" % (
        len(rows) - len(same), sum(1 for r in rows if (r["ninja_runs"] or 0) > 1)))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        table(sys.argv[2])
    else:
        main()
