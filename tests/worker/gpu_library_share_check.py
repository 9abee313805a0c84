"""Device check of kbrun_library_share's GPU path (needs a CUDA GPU and nvcc; not run in CI).

Run from the repository root: python3 tests/worker/gpu_library_share_check.py
Expects: an own CUDA kernel is own (fraction ~0), a kernel named like CUTLASS/GEMM and built
by the candidate is own, torch's conv3d (cuDNN) is library (~1), an own extension that calls
torch inside is library, and the profiler links kernels to the operators that launched them
(the "launched from aten" rule depends on it). Exits non-zero on any miss.
"""
import json
import os
import sys
import tempfile

import torch
import torch.nn as nn
from torch.profiler import ProfilerActivity, profile
from torch.utils.cpp_extension import load_inline

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "eval", "worker"))
from kbrun_eval import build as kbrun_build  # noqa: E402  (a script: after the sys.path line above)
from kbrun_eval import library_share as ls  # noqa: E402
from kbrun_eval import timing  # noqa: E402
from worker_test_util import Fn  # noqa: E402  (beside this script)

os.environ.setdefault("TORCH_EXTENSIONS_DIR", tempfile.mkdtemp(prefix="kbrun-gpu-libshare-"))
kbrun_build.watch_loads()
dev = torch.device("cuda:0")
CODE = os.path.abspath(__file__)  # the Triton kernels below are "the candidate's file"

CUDA = r"""
#include <torch/extension.h>
template <int N> struct cutlass_gemm_tile {};
template <typename T, int N>
__global__ void cutlass_sgemm_like_kernel(const T* a, T* b, int n, cutlass_gemm_tile<N>) {
  int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) b[i] = a[i] * N; }
__global__ void scale_kernel(const float* a, float* b, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) b[i] = 2.f * a[i]; }
torch::Tensor scale(torch::Tensor x) { auto y = torch::empty_like(x); int n = x.numel();
  scale_kernel<<<(n + 255) / 256, 256>>>(x.data_ptr<float>(), y.data_ptr<float>(), n); return y; }
torch::Tensor gemm_named(torch::Tensor x) { auto y = torch::empty_like(x); int n = x.numel();
  cutlass_sgemm_like_kernel<float, 4><<<(n + 255) / 256, 256>>>(x.data_ptr<float>(), y.data_ptr<float>(), n,
                                                                cutlass_gemm_tile<4>()); return y; }
torch::Tensor conv_inside(torch::Tensor x, torch::Tensor w) { return at::conv3d(x, w); }
"""
ext = load_inline(name="kbrun_gpu_libshare", cpp_sources="torch::Tensor scale(torch::Tensor x);"
                  "torch::Tensor gemm_named(torch::Tensor x);"
                  "torch::Tensor conv_inside(torch::Tensor x, torch::Tensor w);",
                  cuda_sources=CUDA, functions=["scale", "gemm_named", "conv_inside"])


x = torch.randn(1 << 22, device=dev)
vol, w = torch.randn(8, 16, 32, 32, 32, device=dev), torch.randn(32, 16, 3, 3, 3, device=dev)
cases = [("own CUDA kernel", Fn(ext.scale), (x,), "own"),
         ("CUTLASS/GEMM-named own kernel", Fn(ext.gemm_named), (x,), "own"),
         ("torch conv3d", nn.Conv3d(16, 32, 3).to(dev), (vol,), "library"),
         ("own extension calling at::conv3d", Fn(ext.conv_inside), (vol, w), "library")]
try:
    import triton
    import triton.language as tl

    @triton.jit
    def double_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n) * 2, mask=offs < n)

    def triton_double(t):
        y = torch.empty_like(t)
        double_kernel[(triton.cdiv(t.numel(), 1024),)](t, y, t.numel(), BLOCK=1024)
        return y

    cases.append(("own Triton kernel", Fn(triton_double), (x,), "own"))
except ImportError:
    print("triton not installed: its case is skipped")

failed = 0
# Each case twice: with the run's Timer (call_events first, as the run phase does) and without
# (the profiler alone); both must give the expected side.
for label, model, inputs, expect in cases:
    for with_timer in (True, False):
        timer = None
        if with_timer:
            timer = timing.Timer(torch, dev)
            with torch.no_grad():
                timer.warm_up(model, inputs)
        # Only the Triton case names this file as the candidate's: its Triton kernels would send
        # every other case to the profiler.
        r = ls.library_share(torch, model, inputs, dev, CODE if "Triton" in label else os.devnull, timer)
        fraction = r["library_time_fraction"]
        ok = fraction is not None and ((fraction < 0.1) if expect == "own" else (fraction > ls.THRESHOLD["cuda"]))
        failed += not ok
        print("%-4s %-34s %-7s library share %s (expected %s) by %s%s; seconds %s" % (
            "ok" if ok else "FAIL", label, "timer" if with_timer else "alone", fraction, expect, r["method"],
            " (call_events: %s)" % r["call_events_not_used"] if "call_events_not_used" in r else "",
            {k: round(v, 3) for k, v in r["seconds"].items()}))
        print("     " + json.dumps(r["kernels"][:4])[:600])

# The "launched from inside an aten operator" rule needs the profiler's kernel-to-operator links.
with torch.no_grad(), profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    nn.functional.conv3d(vol, w)
    torch.cuda.synchronize()
linked = [(e.name, [k.name[:60] for k in e.kernels]) for e in prof.events() if getattr(e, "kernels", None)]
ok = any(name.startswith("aten::") for name, _ in linked)
failed += not ok
print("%-4s kernels linked to their aten operators: %s" % ("ok" if ok else "FAIL", linked[:3]))
sys.exit(1 if failed else 0)
