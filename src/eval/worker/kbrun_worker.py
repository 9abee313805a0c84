"""kbrun's evaluation worker: runs in a child process that the C++ supervisor controls.

It measures; it does not decide. The supervisor (src/eval/supervisor.cc) reads the
measurements this worker writes and decides the verdict. Phases:
  compile  import the candidate (its load_inline builds run here); no GPU work
  run      reload the candidate (the build is cached in the same private dir),
           check correctness against the reference, then time both
  all      both, in one process

Progress lines go to fd 3 ("stage <name>") so the supervisor can start the run
clock when compiling ends. Only torch (and the standard library) is used.
"""

import argparse
import contextlib
import importlib.util
import io
import json
import math
import os
import random
import statistics
import sys
import time
import traceback

T0 = time.perf_counter()

PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
# KernelBench's tolerances: atol = rtol.
DEFAULT_TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 1e-2}
MAX_TEXT = 20000
CHUNK = 1 << 26  # elements compared at a time


def progress(line):
    try:
        os.write(3, (line + "\n").encode())
    except OSError:
        pass


def clip(text, limit=MAX_TEXT):
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + "\n[... %d characters omitted ...]\n" % (len(text) - limit) + text[-half:]


class Failure(Exception):
    """A classified failure: status is the supervisor's vocabulary."""

    def __init__(self, status, category, message, detail=""):
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.detail = detail


class _Deferred(Exception):
    pass


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def classify_exception(exc, phase):
    """Maps an exception to (status, category)."""
    text = "%s: %s" % (type(exc).__name__, exc)
    low = text.lower()
    if isinstance(exc, SyntaxError):
        return "compile_error", "syntax_error"
    if "error building extension" in low or "ninja: build stopped" in low:
        return "compile_error", "build_failed"
    if "out of memory" in low or type(exc).__name__ == "OutOfMemoryError":
        return "runtime_error", "out_of_memory"
    if "illegal memory access" in low or "cuda error" in low or "device-side assert" in low \
            or "misaligned address" in low or "unspecified launch failure" in low:
        return "runtime_error", "cuda_error"
    if phase == "compile":
        return "runtime_error", "import_error"
    return "runtime_error", "exception"


def failure_from_exception(exc, phase):
    status, category = classify_exception(exc, phase)
    tb = traceback.format_exc()
    message = "%s: %s" % (type(exc).__name__, exc)
    return Failure(status, category, clip(message, 8000), clip(tb, 8000))


def reuse_compile_phase_builds(build_root):
    """In the run phase, load what the compile phase built instead of building again.

    load_inline rewrites its sources on every call (torch 1.13 always does), so ninja
    sees new mtimes and rebuilds. The compile phase already built these exact
    sources in this private directory, so the run phase skips ninja where a
    library from that build exists.
    """
    from torch.utils import cpp_extension

    original = cpp_extension._run_ninja_build

    def run_ninja_build(build_directory, *args, **kwargs):
        built = [f for f in os.listdir(build_directory) if f.endswith((".so", ".pyd"))]
        if built and os.path.abspath(build_directory).startswith(os.path.abspath(build_root)):
            return None
        return original(build_directory, *args, **kwargs)

    cpp_extension._run_ninja_build = run_ninja_build


def seed_all(torch, seed):
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def make_inputs(torch, get_inputs, device, dtype):
    """Draws inputs directly on the device where torch allows it (fast for GB-sized inputs)."""
    if device.type == "cuda" and hasattr(torch.device, "__enter__"):
        with torch.device(device):
            values = get_inputs()
    else:
        values = get_inputs()
    return to_device(torch, values, device, dtype)


def to_device(torch, values, device, dtype):
    out = []
    for v in values:
        if isinstance(v, torch.Tensor):
            v = v.to(device)
            if dtype is not None and v.is_floating_point():
                v = v.to(dtype)
        out.append(v)
    return out


def flatten_outputs(torch, out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        flat = []
        for o in out:
            flat.extend(flatten_outputs(torch, o))
        return flat
    raise Failure("incorrect", "bad_output_type", "forward returned %s, not a tensor" % type(out).__name__)


def compare(torch, ref_out, new_out, atol, rtol):
    """Returns (ok, category, message, max_abs_diff, mean_abs_diff)."""
    refs = flatten_outputs(torch, ref_out)
    news = flatten_outputs(torch, new_out)
    if len(refs) != len(news):
        return False, "output_count_mismatch", "expected %d output tensors, got %d" % (len(refs), len(news)), None, None
    max_diff, mean_diffs = 0.0, []
    for i, (r, n) in enumerate(zip(refs, news)):
        if not isinstance(n, torch.Tensor):
            return False, "bad_output_type", "output %d is %s, not a tensor" % (i, type(n).__name__), None, None
        if tuple(r.shape) != tuple(n.shape):
            return False, "shape_mismatch", "output %d shape %s, expected %s" % (i, tuple(n.shape), tuple(r.shape)), None, None
        if r.dtype != n.dtype:
            return False, "dtype_mismatch", "output %d dtype %s, expected %s" % (i, n.dtype, r.dtype), None, None
        if n.device != r.device:
            return False, "device_mismatch", "output %d on %s, expected %s" % (i, n.device, r.device), None, None
        # Chunked so that a 6 GB output does not need 30 GB of temporaries.
        nonfinite, total_diff, close = 0, 0.0, True
        rflat, nflat = r.reshape(-1), n.reshape(-1)
        for start in range(0, rflat.numel(), CHUNK):
            rc = rflat[start:start + CHUNK].float()
            nc = nflat[start:start + CHUNK].float()
            rfin, nfin = torch.isfinite(rc), torch.isfinite(nc)
            nonfinite += int(((~nfin) & rfin).sum())
            diff = torch.where(rfin & nfin, (nc - rc).abs(), torch.zeros_like(rc))
            if diff.numel():
                max_diff = max(max_diff, float(diff.max()))
                total_diff += float(diff.double().sum())
            close = close and torch.allclose(nflat[start:start + CHUNK], rflat[start:start + CHUNK],
                                             atol=atol, rtol=rtol, equal_nan=True)
        if nonfinite:
            return False, "non_finite", "output %d has %d NaN/Inf values where the reference is finite" % (
                i, nonfinite), float("inf"), float("inf")
        mean_diffs.append(total_diff / max(1, rflat.numel()))
        if not close:
            mean = statistics.fmean(mean_diffs) if mean_diffs else 0.0
            return False, "value_mismatch", "output %d differs: max abs diff %.6g, mean abs diff %.6g (atol=rtol=%g)" % (
                i, max_diff, mean, atol), max_diff, mean
    mean = statistics.fmean(mean_diffs) if mean_diffs else 0.0
    return True, "", "", max_diff, mean


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


class Timer:
    """Times one call of fn, the same way for reference and candidate.

    GPU: the L2 cache is flushed (a buffer twice its size is zeroed), the device is
    synchronised, then the end event is recorded only after a device-wide synchronize,
    so work the call left on other streams is counted. CPU: wall clock, with a cache
    flush by writing a buffer larger than the last-level cache.
    """

    def __init__(self, torch, device):
        self.torch = torch
        self.cuda = device.type == "cuda"
        if self.cuda:
            props = torch.cuda.get_device_properties(device)
            l2 = getattr(props, "L2_cache_size", 0) or 64 * 1024 * 1024
            self.flush_buf = torch.empty(int(2 * l2) // 4, dtype=torch.int32, device=device)
            self.start = torch.cuda.Event(enable_timing=True)
            self.end = torch.cuda.Event(enable_timing=True)
        else:
            self.flush_buf = torch.empty(32 * 1024 * 1024 // 4, dtype=torch.int32)

    def time_once(self, fn, args):
        torch = self.torch
        self.flush_buf.zero_()
        if self.cuda:
            torch.cuda.synchronize()
            self.start.record()
            fn(*args)
            torch.cuda.synchronize()
            self.end.record()
            self.end.synchronize()
            return self.start.elapsed_time(self.end)
        t = time.perf_counter()
        fn(*args)
        return (time.perf_counter() - t) * 1000.0


def run_phase(req, result, stage_times, torch, module_candidate):
    device_kind = req["device"]
    precision = req["precision"]
    dtype = getattr(torch, PRECISIONS[precision]) if precision != "fp32" else None
    tol = req.get("atol")
    atol = tol if tol is not None else DEFAULT_TOLERANCE[precision]
    rtol = req.get("rtol")
    rtol = rtol if rtol is not None else DEFAULT_TOLERANCE[precision]
    seed = int(req["seed"])
    device = torch.device("cuda:0" if device_kind == "cuda" else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        # Honest fp32: no TF32 shortcuts for the reference (or the candidate's torch calls).
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        result["env"]["device_name"] = torch.cuda.get_device_name(device)
    else:
        result["env"]["device_name"] = "cpu"

    t = time.perf_counter()
    try:
        problem = load_module(req["problem"], "kbrun_problem")
        Model, get_inputs, get_init_inputs = problem.Model, problem.get_inputs, problem.get_init_inputs
    except Exception as exc:  # the problem itself is broken: not the candidate's fault
        raise Failure("runtime_error", "problem_error", "cannot load problem: %s: %s" % (type(exc).__name__, exc),
                      clip(traceback.format_exc(), 8000))
    ModelNew = getattr(module_candidate, "ModelNew", None)
    if ModelNew is None:
        raise Failure("compile_error", "no_model_new", "the candidate defines no ModelNew")

    seed_all(torch, seed)
    init_inputs = get_init_inputs()
    seed_all(torch, seed)
    ref_model = Model(*init_inputs)
    try:
        seed_all(torch, seed)
        new_model = ModelNew(*init_inputs)
    except Exception as exc:
        raise failure_from_exception(exc, "run")
    ref_model = ref_model.to(device)
    if dtype is not None:
        ref_model = ref_model.to(dtype)
    try:
        if hasattr(new_model, "to"):
            new_model = new_model.to(device)
            if dtype is not None:
                new_model = new_model.to(dtype)
    except Exception as exc:
        raise failure_from_exception(exc, "run")
    stage_times["load_models_s"] = time.perf_counter() - t

    # Correctness: fresh inputs for every trial.
    progress("stage correctness")
    t = time.perf_counter()
    trials = int(req["correctness_trials"])
    corr = {"trials_run": 0, "trials_passed": 0, "atol": atol, "rtol": rtol, "seed": seed,
            "max_abs_diff": None, "mean_abs_diff": None}
    result["correctness"] = corr
    max_diff, mean_diffs = 0.0, []
    inputs = ref_out = new_out = None
    for trial in range(trials):
        seed_all(torch, seed + 1 + trial)
        inputs = make_inputs(torch, get_inputs, device, dtype)
        with torch.no_grad():
            ref_out = ref_model(*inputs)
            try:
                new_out = new_model(*inputs)
                if device.type == "cuda":
                    torch.cuda.synchronize()
            except Exception as exc:
                raise failure_from_exception(exc, "run")
        corr["trials_run"] += 1
        ok, category, message, md, mean = compare(torch, ref_out, new_out, atol, rtol)
        if md is not None:
            max_diff = max(max_diff, md)
            mean_diffs.append(mean)
            corr["max_abs_diff"] = max_diff
            corr["mean_abs_diff"] = statistics.fmean(mean_diffs)
        if not ok:
            corr["failed_trial"] = trial
            stage_times["correctness_s"] = time.perf_counter() - t
            raise Failure("incorrect", category, "trial %d: %s" % (trial, message))
        corr["trials_passed"] += 1
    stage_times["correctness_s"] = time.perf_counter() - t

    # Timing: warm-up, then reference and candidate interleaved so that drift
    # (clocks, temperature, other tenants) hits both alike.
    progress("stage timing")
    t = time.perf_counter()
    del inputs, ref_out, new_out
    seed_all(torch, seed)
    inputs = make_inputs(torch, get_inputs, device, dtype)
    timer = Timer(torch, device)
    n = int(req["timing_trials"])
    ref_ms, new_ms = [], []
    with torch.no_grad():
        try:
            for _ in range(int(req["warmup_runs"])):
                ref_model(*inputs)
                new_model(*inputs)
            if device.type == "cuda":
                torch.cuda.synchronize()
            for _ in range(n):
                ref_ms.append(timer.time_once(ref_model, inputs))
                new_ms.append(timer.time_once(new_model, inputs))
        except Exception as exc:
            raise failure_from_exception(exc, "run")
    result["timing"] = {
        "method": "cuda_events_device_sync_l2_flush" if device.type == "cuda" else "wall_clock_cache_flush",
        "warmup_runs": int(req["warmup_runs"]),
        "reference": stats(ref_ms),
        "candidate": stats(new_ms),
    }
    stage_times["timing_s"] = time.perf_counter() - t


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--request", required=True)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    with open(args.request) as f:
        req = json.load(f)

    result = {"phase": req["phase"], "ok": False, "env": {}, "stage_times": {}}
    stage_times = result["stage_times"]

    def write_result():
        tmp = args.result + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, allow_nan=True)
        os.replace(tmp, args.result)

    try:
        import torch
        stage_times["import_torch_s"] = time.perf_counter() - T0
        result["env"].update({
            "python": sys.version.split()[0],
            "torch_version": torch.__version__,
            "cuda_version": torch.version.cuda,
            "hip_version": getattr(torch.version, "hip", None),
        })
        progress("stage compile")
        t = time.perf_counter()
        if req["phase"] == "run" and os.environ.get("TORCH_EXTENSIONS_DIR"):
            reuse_compile_phase_builds(os.environ["TORCH_EXTENSIONS_DIR"])
        try:
            candidate = load_module(req["code"], "kbrun_candidate")
        except Exception as exc:
            failure = failure_from_exception(exc, "compile")
            if req["phase"] == "compile" and failure.status != "compile_error":
                # The compile phase runs without a GPU; an import that needs one is
                # judged again in the run phase, where the GPU is visible.
                stage_times["compile_s"] = time.perf_counter() - t
                result["import_deferred"] = failure.message
                result["ok"] = True
                raise _Deferred()
            raise failure
        stage_times["compile_s"] = time.perf_counter() - t
        if getattr(candidate, "ModelNew", None) is None:
            raise Failure("compile_error", "no_model_new", "the candidate defines no ModelNew")
        result["compiled"] = True
        if req["phase"] in ("run", "all"):
            run_phase(req, result, stage_times, torch, candidate)
        result["ok"] = True
    except _Deferred:
        pass
    except Failure as f:
        result["failure"] = {"status": f.status, "category": f.category, "message": f.message, "detail": f.detail}
    except BaseException as exc:  # SystemExit from the candidate included
        status, category = classify_exception(exc, "run")
        result["failure"] = {"status": status, "category": category,
                             "message": clip("%s: %s" % (type(exc).__name__, exc), 8000),
                             "detail": clip(traceback.format_exc(), 8000)}
    stage_times["worker_total_s"] = time.perf_counter() - T0
    write_result()
    progress("done")
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: a broken CUDA context can hang or crash in it.
    os._exit(0)


if __name__ == "__main__":
    main()
