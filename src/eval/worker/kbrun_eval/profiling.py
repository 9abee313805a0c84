"""kbrun's profile step (kbrun eval --profile): runs after correctness and timing are decided.

Two modes, each its own process that the supervisor (src/eval/profile.cc) starts like the
run worker (private dir, clean environment, no network, process-group kill at the deadline):

  roofline  loads the problem only (never the candidate): the minimum bytes and FLOPs of the
            reference forward, and the GPU's measured peaks (cached per GPU). Answers with one
            line "result <nonce> <json>" on fd 3.
  kernels   runs under a profiler (ncu or rocprofv3): loads the problem and the candidate the
            way the run worker does (the compile phase's build is reused, nothing is rebuilt),
            warms both up once outside any range, then runs the reference inside the NVTX
            range "kbrun_reference" and the candidate inside "kbrun_candidate". Its output is
            the profiler's report; it reports nothing itself (the candidate runs in it).

Only torch and the standard library are used.
"""

import argparse
import json
import os
import re
import sys
import time

from . import compile_phase
from . import problem as kp
from .protocol import progress

PEAK_GEMM_N = 8192


def setup_torch(req):
    import torch
    device = kp.use_device(torch, req["device"])
    dtype = kp.precision_dtype(torch, req["precision"])
    return torch, device, dtype


def build_models(torch, problem, model_new, device, dtype, seed):
    """Reference (and candidate) built as the checker and the run worker build them
    (problem.build_model: same seed, same casts)."""
    init_inputs = kp.init_inputs(torch, problem, seed)
    ref = kp.build_model(torch, problem.Model, init_inputs, seed, device, dtype)
    new = kp.build_model(torch, model_new, init_inputs, seed, device, dtype) if model_new is not None else None
    return ref, new


def tensor_bytes(torch, values):
    return sum(v.numel() * v.element_size() for v in values if isinstance(v, torch.Tensor))


def count_flops(torch, model, inputs):
    """FLOPs torch's FlopCounterMode counts in the forward (matmul, conv, attention...);
    None where torch has no flop counter (torch < 2.1, e.g. Debian's 1.13)."""
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    return int(counter.get_total_flops())


def best_seconds(torch, fn, n):
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    best = float("inf")
    for _ in range(n):
        start.record()
        fn()
        end.record()
        end.synchronize()
        best = min(best, start.elapsed_time(end) / 1e3)
    return best


def copy_seconds(torch, device, n):
    src = torch.empty(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    return best_seconds(torch, lambda: dst.copy_(src), 20)


def matmul_seconds(torch, device, dtype):
    a = torch.randn(PEAK_GEMM_N, PEAK_GEMM_N, device=device, dtype=dtype)
    b = torch.randn_like(a)
    return best_seconds(torch, lambda: torch.mm(a, b), 10)


def measure_peaks(torch, device):
    """Device-to-device copy bandwidth and dense matmul rates (fp32 without TF32, bf16, fp16):
    what this GPU reaches with torch, not the datasheet."""
    peaks = {"copy_gbs": None, "tflops": {}}
    for n in (1 << 28, 1 << 26):  # 1 GiB buffers, smaller where memory is short
        try:
            peaks["copy_gbs"] = round(2 * n * 4 / copy_seconds(torch, device, n) / 1e9, 1)
            break
        except RuntimeError:
            torch.cuda.empty_cache()
    for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
        try:
            peaks["tflops"][name] = round(2 * PEAK_GEMM_N ** 3 / matmul_seconds(torch, device, dt) / 1e12, 1)
        except RuntimeError:
            peaks["tflops"][name] = None
        torch.cuda.empty_cache()
    return peaks


def cached_peaks(torch, device, peaks_dir):
    """Peaks for this GPU from <peaks_dir>/<name>-<uuid>.json, measured once and written atomically."""
    props = torch.cuda.get_device_properties(device)
    uuid = str(getattr(props, "uuid", "") or "")
    key = re.sub(r"[^A-Za-z0-9_.-]+", "_", "%s-%s" % (props.name, uuid or "nouuid")).strip("_")
    path = os.path.join(peaks_dir, key + ".json") if peaks_dir else None
    if path and os.path.exists(path):
        try:
            with open(path) as f:
                cached = json.load(f)
            if cached.get("copy_gbs"):
                cached["source"] = "cache"
                cached["cache_file"] = path
                return cached
        except (OSError, ValueError):
            pass
    peaks = measure_peaks(torch, device)
    peaks.update({"device": props.name, "uuid": uuid, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "torch_version": torch.__version__})
    if path:
        try:
            os.makedirs(peaks_dir, exist_ok=True)
            tmp = "%s.tmp.%d" % (path, os.getpid())
            with open(tmp, "w") as f:
                json.dump(peaks, f, indent=2)
            os.replace(tmp, path)
        except OSError as exc:
            peaks["cache_error"] = str(exc)
    peaks["source"] = "measured"
    peaks["cache_file"] = path
    return peaks


def roofline(req):
    """The minimum work of the problem: bytes of inputs, parameters and outputs, and FLOPs."""
    torch, device, dtype = setup_torch(req)
    problem = kp.load_module(req["problem"], "kbrun_problem")
    seed = int(req["seed"])
    ref, _ = build_models(torch, problem, None, device, dtype, seed)
    kp.seed_all(torch, seed)
    inputs = kp.make_inputs(torch, problem.get_inputs, device, dtype)
    with torch.no_grad():
        outputs = kp.flatten_outputs(torch, ref(*inputs))
    params = list(ref.parameters()) + list(ref.buffers())
    fig = {
        "inputs_bytes": tensor_bytes(torch, inputs),
        "params_bytes": tensor_bytes(torch, params),
        "outputs_bytes": tensor_bytes(torch, outputs),
        "output_elements": sum(o.numel() for o in outputs),
    }
    fig["min_bytes"] = fig["inputs_bytes"] + fig["params_bytes"] + fig["outputs_bytes"]
    counted = count_flops(torch, ref, inputs)
    fig["counted_flops"] = counted
    # At least one operation per output element (elementwise work the counter does not see).
    fig["min_flops"] = max(counted, fig["output_elements"]) if counted is not None else None
    fig["peaks"] = cached_peaks(torch, device, req.get("peaks_dir")) if device.type == "cuda" else None
    return fig


def kernels(req):
    """The profiled run: warm-up outside any range, then one reference and one candidate call
    inside their NVTX ranges, each followed by a synchronize so every kernel lands inside."""
    torch, device, dtype = setup_torch(req)
    # As the run worker does: the backend's flags, then the compile phase's build.
    compile_phase.prepare_build(req.get("build") or {}, reuse_earlier_builds=True)
    problem = kp.load_module(req["problem"], "kbrun_problem")
    candidate = kp.load_module(req["code"], "kbrun_candidate")
    seed = int(req["seed"])
    ref, new = build_models(torch, problem, candidate.ModelNew, device, dtype, seed)
    kp.seed_all(torch, seed)
    inputs = kp.make_inputs(torch, problem.get_inputs, device, dtype)
    # On the CPU (kbrun's own tests of this pipeline, no GPU) there are no ranges to mark.
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    with torch.no_grad():
        ref(*inputs)
        new(*inputs)
        sync()
        for name, model in (("kbrun_reference", ref), ("kbrun_candidate", new)):
            if cuda:
                torch.cuda.nvtx.range_push(name)
            model(*inputs)
            sync()
            if cuda:
                torch.cuda.nvtx.range_pop()
            print("kbrun_profile: %s ran" % name, flush=True)
    print("kbrun_profile: ranges done", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--request", required=True)
    args = parser.parse_args()
    with open(args.request) as f:
        req = json.load(f)
    nonce = req.pop("nonce", "")
    if req["mode"] == "kernels":
        try:
            kernels(req)
        except BaseException as exc:  # the profiler's log carries it
            print("kbrun_profile: %s: %s" % (type(exc).__name__, str(exc)[:2000]), flush=True)
            sys.stdout.flush()
            os._exit(3)
        sys.stdout.flush()
        os._exit(0)
    try:
        result = {"roofline": roofline(req)}
    except BaseException as exc:  # the result line carries it
        result = {"error": "%s: %s" % (type(exc).__name__, str(exc)[:2000])}
    progress("result %s %s" % (nonce, json.dumps(result)))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
