#!/usr/bin/env python3
"""Writes the recorded LLM answers of the batch makespan benchmark (bench/makespan_bench.sh):
bench/replay/makespan/<problem>/attempt<N>_sample<S>.txt for 12 KernelBench level1
element-wise problems, served by `kbrun batch --provider replay`.

Every answer is a split-layout CUDA kernel (docs/PROMPTS.md): the kernel and a raw-pointer
launcher in cuda_sources without torch headers, the torch glue in cpp_sources. The three
samples of an attempt differ (block size, extension name), as a model's samples do, so no
sample is a compile-cache hit of another. Per problem:
  - most problems, attempt 1: two correct samples and one that fails (a compile error for
    odd-numbered problems, a wrong result for even-numbered ones);
  - REFLECTED problems, attempt 1: compile error, wrong result, compile error; attempt 2: three
    correct samples (a reflection round, as the batch runs it on real models).
"""
import os
import sys

from replay_ops import OPS, model_new

REFLECTED = {"19_ReLU", "26_GELU_", "31_ELU"}
THREADS = {1: 256, 2: 512, 3: 128}

TEMPLATE = r'''@PROSE@

```python
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cuda_source = r"""
#include <cuda_runtime.h>
#include <cstdint>
#include <math.h>

__device__ __forceinline__ float op(float v, float p) { return @EXPR@; }

__global__ void ew_vec4(const float4* __restrict__ x, float4* __restrict__ y, int64_t n4, float p) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n4; i += (int64_t)gridDim.x * blockDim.x) {
    float4 v = x[i];
    v.x = op(v.x, p); v.y = op(v.y, p); v.z = op(v.z, p); v.w = op(v.w, p);
    y[i] = v;
  }
}

__global__ void ew_scalar(const float* __restrict__ x, float* __restrict__ y, int64_t start, int64_t n, float p) {
  for (int64_t i = start + blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    y[i] = op(x[i], p);
  }
}

void ew_launch(const float* x, float* y, int64_t n, float p, cudaStream_t stream) {
  const int threads = @THREADS@;
  const int64_t max_blocks = 132 * 32;
  bool aligned = ((uintptr_t)x % 16 == 0) && ((uintptr_t)y % 16 == 0);
  int64_t n4 = aligned ? n / 4 : 0;
  if (n4 > 0) {
    int64_t blocks = (n4 + threads - 1) / threads;
    ew_vec4<<<(unsigned)(blocks < max_blocks ? blocks : max_blocks), threads, 0, stream>>>(
        (const float4*)x, (float4*)y, n4, p);
  }
  int64_t rest = n - n4 * 4;
  if (rest > 0) {
    int64_t blocks = (rest + threads - 1) / threads;
    ew_scalar<<<(unsigned)(blocks < max_blocks ? blocks : max_blocks), threads, 0, stream>>>(x, y, n4 * 4, n, p);
  }@BUG@
}
"""

cpp_source = r"""
#include <ATen/cuda/CUDAContext.h>

void ew_launch(const float* x, float* y, int64_t n, float p, cudaStream_t stream);

torch::Tensor ew_forward(torch::Tensor x, double p) {
  TORCH_CHECK(x.is_cuda() && x.scalar_type() == torch::kFloat32, "float32 CUDA tensor expected");
  auto xc = x.contiguous();
  auto y = torch::empty_like(xc);
  ew_launch(xc.data_ptr<float>(), y.data_ptr<float>(), xc.numel(), (float)p, at::cuda::getCurrentCUDAStream());
  cudaError_t err = cudaGetLastError();
  TORCH_CHECK(err == cudaSuccess, "ew kernel: ", cudaGetErrorString(err));
  return y;
}
"""

'''


def render(problem, attempt, sample, kind):
    expr = OPS[problem][3]
    bug = ""
    prose = ("Here is a CUDA kernel for this element-wise operation: float4 loads in a grid-stride loop, "
             "%d threads per block, and a scalar kernel for any tail." % THREADS[sample])
    if kind == "compile_error":
        bug = "\n  cudaStreamSynchronizeAll(stream);  // does not exist: a compile error"
    elif kind == "wrong":
        expr = expr.replace("v", "(0.5f * v)")  # scales the input: wrong for every nonzero input
        prose += " (It halves the input first, a bug the evaluator catches.)"
    if attempt > 1:
        prose = "You are right, the previous version was broken. Fixed:\n\n" + prose
    name = "kb_%s_a%d_s%d_ext" % (problem.split("_", 1)[1].strip("_").lower(), attempt, sample)
    return (TEMPLATE.replace("@PROSE@", prose).replace("@EXPR@", expr).replace("@THREADS@", str(THREADS[sample]))
            .replace("@BUG@", bug) + model_new(problem, name))


def main(out_dir):
    for number, problem in enumerate(OPS):
        d = os.path.join(out_dir, problem)
        os.makedirs(d, exist_ok=True)
        if problem in REFLECTED:
            plan = {1: ["compile_error", "wrong", "compile_error"], 2: ["correct"] * 3}
        else:
            failing = "compile_error" if int(problem.split("_")[0]) % 2 else "wrong"
            plan = {1: ["correct", "correct", failing]}
        for attempt, kinds in plan.items():
            for sample, kind in enumerate(kinds, 1):
                with open(os.path.join(d, "attempt%d_sample%d.txt" % (attempt, sample)), "w") as f:
                    f.write(render(problem, attempt, sample, kind))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "bench", "replay", "makespan"))
