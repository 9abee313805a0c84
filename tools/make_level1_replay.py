#!/usr/bin/env python3
"""Writes recorded LLM answers for a device batch over KernelBench level1 element-wise
problems (tests/device/replay/level1/<problem>/attemptN.txt, read by tests/device/batch_replay_report.sh),
for `kbrun batch --provider replay`.

Each answer is prose plus a ```python block, as a model writes it. 19_ReLU's first answer
does not compile, so the batch shows a reflection round on the GPU too.
"""
import os
import sys

from replay_ops import OPS, model_new

PROBLEMS = ["19_ReLU", "20_LeakyReLU", "21_Sigmoid", "22_Tanh", "25_Swish", "32_HardTanh"]

TEMPLATE = r'''Here is an optimised CUDA kernel for this element-wise operation. It processes four
floats per thread with vectorised float4 loads and a grid-stride loop.

```python
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cuda_source = r"""
#include <torch/extension.h>
#include <c10/cuda/CUDAException.h>

__device__ __forceinline__ float op(float v, float p) { return @EXPR@; }

__global__ void ew_kernel(const float4* __restrict__ x, float4* __restrict__ y, int64_t n4, float slope) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n4; i += (int64_t)gridDim.x * blockDim.x) {
    float4 v = x[i];
    v.x = op(v.x, slope); v.y = op(v.y, slope); v.z = op(v.z, slope); v.w = op(v.w, slope);
    y[i] = v;
  }
}

__global__ void ew_tail(const float* __restrict__ x, float* __restrict__ y, int64_t start, int64_t n, float slope) {
  int64_t i = start + threadIdx.x;
  if (i < n) y[i] = op(x[i], slope);
}

torch::Tensor ew_forward(torch::Tensor x, double slope) {
  TORCH_CHECK(x.is_cuda() && x.scalar_type() == torch::kFloat32, "float32 CUDA tensor expected");
  auto xc = x.contiguous();
  auto y = torch::empty_like(xc);
  int64_t n = xc.numel(), n4 = n / 4;
  int threads = 256;
  int blocks = (int)std::min<int64_t>((n4 + threads - 1) / threads, 132 * 16);
  if (n4 > 0) ew_kernel<<<blocks, threads>>>((const float4*)xc.data_ptr<float>(), (float4*)y.data_ptr<float>(), n4, (float)slope);
  if (n > n4 * 4) ew_tail<<<1, 4>>>(xc.data_ptr<float>(), y.data_ptr<float>(), n4 * 4, n, (float)slope);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  @BUG@
  return y;
}
"""
cpp_source = "torch::Tensor ew_forward(torch::Tensor x, double slope);"

'''


def render(problem, bug=""):
    expr = OPS[problem][3]
    return (TEMPLATE.replace("@EXPR@", expr).replace("@BUG@", bug)
            + model_new(problem, problem.split("_", 1)[1].lower() + "_ext"))


def main(out_dir):
    for problem in PROBLEMS:
        d = os.path.join(out_dir, problem)
        os.makedirs(d, exist_ok=True)
        if problem == "19_ReLU":
            with open(os.path.join(d, "attempt1.txt"), "w") as f:
                f.write(render(problem, bug="cudaDeviceSynchronizeX();"))
            with open(os.path.join(d, "attempt2.txt"), "w") as f:
                f.write("You are right, cudaDeviceSynchronizeX does not exist; the launch check is enough.\n\n"
                        + render(problem))
        else:
            with open(os.path.join(d, "attempt1.txt"), "w") as f:
                f.write(render(problem))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1
         else os.path.join(os.path.dirname(__file__), "..", "tests", "device", "replay", "level1"))
