"""Whose code the candidate's forward runs: its own, or a library's (kbrun_worker's
"fallback" measurement)."""

import re
import time

# Names only libraries produce: library time whatever the candidate declares.
LIBRARY_KERNEL_MARKERS = ("at::", "at_cuda_detail", "cutlass", "cublas", "cudnn", "xmma", "cub::", "triton_",
                          "memcpy", "memset", "nvjet")
# Words that library kernels contain but a candidate's own kernel may too (its "sgemm_tiled"):
# library time unless the candidate's source declares a __global__ of that name.
GENERIC_LIBRARY_MARKERS = ("gemm", "gemv", "elementwise_kernel", "reduce_kernel", "splitk", "softmax_warp",
                           "vectorized_layer_norm")
GLOBAL_DECL = re.compile(r"__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(?:[\w:<>,\s\*&]+?\s+)?"
                         r"(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(")


def own_kernel_names(source):
    return set(GLOBAL_DECL.findall(source or ""))


def kernel_base_name(name):
    base = name.split("(", 1)[0].strip()
    base = re.sub(r"<.*>", "", base)  # template arguments
    return base.split()[-1].split("::")[-1] if base.split() else base


# cuBLAS/cuDNN kernels are named after the architecture (ampere_sgemm_..., sm90_xmma_...).
ARCH_PREFIXED = re.compile(r"^(?:void\s+)?(?:maxwell|pascal|volta|turing|ampere|ada|hopper|blackwell|sm\d+)_")


def is_library_kernel(name, own=frozenset()):
    low = name.lower()
    if any(m in low for m in LIBRARY_KERNEL_MARKERS) or ARCH_PREFIXED.match(low):
        return True
    return any(m in low for m in GENERIC_LIBRARY_MARKERS) and kernel_base_name(name) not in own


def _library_share(torch, model, inputs, device, own=frozenset()):
    """The library-kernel share of the forward (see _library_share_once). On the CPU the
    figure is wall-clock based and a loaded machine lowers it (scheduling delays count as
    the candidate's own time), so the highest of three measurements is kept."""
    runs = [_library_share_once(torch, model, inputs, device, own) for _ in range(1 if device.type == "cuda" else 3)]
    return max(runs, key=lambda r: r["library_time_fraction"] if r["library_time_fraction"] is not None else -1.0)


def _library_share_once(torch, model, inputs, device, own=frozenset()):
    """Where the candidate's forward spends its time: its own code, or torch/library kernels.

    GPU: kernels recorded by the torch profiler, classified by name (ATen, cuBLAS, cuDNN,
    CUTLASS, Triton are library). CPU: time inside top-level aten:: operators over the
    forward's wall time (an extension's own loop is not an aten operator).
    """
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch.no_grad(), profile(activities=activities) as prof:
        t = time.perf_counter()
        for _ in range(3):
            model(*inputs)
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall_us = (time.perf_counter() - t) * 1e6
    kernels = {}
    if device.type == "cuda":
        for e in prof.events():
            if str(getattr(e, "device_type", "")).endswith("CUDA"):
                us = getattr(e, "device_time", None)
                if us is None:
                    us = getattr(e, "cuda_time", 0.0)
                kernels[e.name] = kernels.get(e.name, 0.0) + float(us or 0.0)
        total = sum(kernels.values())
        library = sum(us for name, us in kernels.items() if is_library_kernel(name, own))
    else:
        for e in prof.events():
            if e.cpu_parent is None and e.name.startswith("aten::"):
                kernels[e.name] = kernels.get(e.name, 0.0) + float(e.cpu_time_total)
        total = wall_us
        library = min(sum(kernels.values()), wall_us)
    top = sorted(kernels.items(), key=lambda kv: -kv[1])[:10]
    fraction = library / total if total > 0 else None
    # GPU kernel times are exact; on the CPU the profiler's own overhead counts as
    # non-library time, so a lower bar says "mostly torch" there.
    threshold = 0.9 if device.type == "cuda" else 0.5
    return {
        "library_time_fraction": fraction,
        "threshold": threshold,
        "uses_library_only": fraction is not None and fraction > threshold,
        "kernels": [{"name": n[:200], "time_us": round(us, 3),
                     "library": True if device.type == "cpu" else is_library_kernel(n, own)} for n, us in top],
    }


def library_share(torch, model, inputs, device, code_path):
    with open(code_path, errors="replace") as f:
        own = own_kernel_names(f.read())
    return _library_share(torch, model, inputs, device, own)
