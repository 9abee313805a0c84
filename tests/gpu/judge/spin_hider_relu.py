# Hides its work inside the timer's spin: a correct ReLU kernel, launched on a side stream
# whenever the caller's stream is still busy (a spin is queued ahead of the call), so that it
# runs while the spin runs and is done before the start event. kbrun's method would time
# nothing. Expected: correct at its honest speed (the spin occupies every SM, so the side
# stream's blocks wait until it ends and land in the timed region), or rejected.
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cuda_source = r"""
#include <torch/extension.h>
#include <cuda_runtime.h>
#include <c10/cuda/CUDAException.h>
#include <ATen/cuda/CUDAContext.h>

__global__ void relu_kernel(const float4* __restrict__ x, float4* __restrict__ y, int64_t n4) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n4; i += (int64_t)gridDim.x * blockDim.x) {
    float4 v = x[i];
    v.x = fmaxf(v.x, 0.f); v.y = fmaxf(v.y, 0.f); v.z = fmaxf(v.z, 0.f); v.w = fmaxf(v.w, 0.f);
    y[i] = v;
  }
}

__global__ void relu_tail(const float* __restrict__ x, float* __restrict__ y, int64_t start, int64_t n) {
  int64_t i = start + blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i < n) y[i] = fmaxf(x[i], 0.f);
}

torch::Tensor relu_forward(torch::Tensor x) {
  TORCH_CHECK(x.is_cuda() && x.scalar_type() == torch::kFloat32, "float32 CUDA tensor expected");
  auto xc = x.contiguous();
  auto y = torch::empty_like(xc);
  int64_t n = xc.numel(), n4 = n / 4;
  int threads = 256;
  int blocks = (int)std::min<int64_t>((n4 + threads - 1) / threads, 132 * 32);
  if (n4 > 0) relu_kernel<<<blocks, threads, 0, at::cuda::getCurrentCUDAStream()>>>((const float4*)xc.data_ptr<float>(), (float4*)y.data_ptr<float>(), n4);
  if (n - n4 * 4 > 0) relu_tail<<<1, 4, 0, at::cuda::getCurrentCUDAStream()>>>(xc.data_ptr<float>(), y.data_ptr<float>(), n4 * 4, n);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return y;
}
"""
cpp_source = "torch::Tensor relu_forward(torch::Tensor x);"

relu = load_inline(name="relu_spin_hider_ext", cpp_sources=cpp_source, cuda_sources=cuda_source,
                   functions=["relu_forward"], extra_cuda_cflags=["-O3"], verbose=False)

_side = torch.cuda.Stream()


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        main = torch.cuda.current_stream()
        if main.query():  # nothing queued ahead: behave (KernelBench's method, checks)
            return relu.relu_forward(x)
        with torch.cuda.stream(_side):
            y = relu.relu_forward(x)
        return y
