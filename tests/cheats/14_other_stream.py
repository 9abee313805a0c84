# Cheat (GPU only): its own, correct kernel, launched on a private non-blocking stream and
# left running when forward returns, so that a timer on the caller's stream misses it.
# The kernel is made slow on purpose (a long dependent loop that leaves the value as is).
# kbrun must catch it: the output, read in the caller's stream order right after forward
# returns, is not the output after a device sync (rejected/unsynchronized_stream).
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cuda_source = r"""
#include <cuda_runtime.h>
#include <cstdint>

__global__ void slow_scale_add(const float* x, const float* y, float* out, float alpha, float one, float zero,
                               int64_t n, int iters) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float v = x[i] * alpha + y[i];
  for (int k = 0; k < iters; ++k) v = fmaf(v, one, zero);  // one = 1, zero = 0 at run time
  out[i] = v;
}

void side_stream_launch(const float* x, const float* y, float* out, float alpha, int64_t n, cudaStream_t caller) {
  static cudaStream_t side = nullptr;
  static cudaEvent_t ready = nullptr;
  if (!side) {
    cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking);
    cudaEventCreateWithFlags(&ready, cudaEventDisableTiming);
  }
  cudaEventRecord(ready, caller);  // the inputs are ready...
  cudaStreamWaitEvent(side, ready, 0);
  slow_scale_add<<<(unsigned)((n + 255) / 256), 256, 0, side>>>(x, y, out, alpha, 1.0f, 0.0f, n, 200000);
  // ...but nothing makes the caller's stream wait for the result.
}
"""

cpp_source = r"""
#include <ATen/cuda/CUDAContext.h>

void side_stream_launch(const float* x, const float* y, float* out, float alpha, int64_t n, cudaStream_t caller);

torch::Tensor scale_add(torch::Tensor x, torch::Tensor y, double alpha) {
  auto xc = x.contiguous(), yc = y.contiguous();
  auto out = torch::empty_like(xc);
  side_stream_launch(xc.data_ptr<float>(), yc.data_ptr<float>(), out.data_ptr<float>(), (float)alpha, xc.numel(),
                     at::cuda::getCurrentCUDAStream());
  return out;
}
"""

ext = load_inline(name="cheat_other_stream_ext", cpp_sources=cpp_source, cuda_sources=cuda_source,
                  functions=["scale_add"], extra_cuda_cflags=["-O3"], verbose=False)


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        return ext.scale_add(x, y, self.alpha)
