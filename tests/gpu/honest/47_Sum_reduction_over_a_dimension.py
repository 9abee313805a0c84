# Sum over one dimension with keepdim, in CUDA (split layout): the tensor is viewed as
# outer x reduced x inner; one thread per (outer, inner) output walks the reduced axis,
# so consecutive threads read consecutive addresses.
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cuda_source = r"""
#include <cuda_runtime.h>
#include <cstdint>

__global__ void sum_dim(const float* __restrict__ x, float* __restrict__ y, int64_t outer, int64_t reduce,
                        int64_t inner) {
  int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= outer * inner) return;
  int64_t o = idx / inner, i = idx % inner;
  const float* p = x + o * reduce * inner + i;
  float acc = 0.f, c = 0.f;  // Kahan: long sums stay within fp32 tolerance
  for (int64_t r = 0; r < reduce; ++r) {
    float v = p[r * inner] - c;
    float t = acc + v;
    c = (t - acc) - v;
    acc = t;
  }
  y[idx] = acc;
}

void sum_dim_launch(const float* x, float* y, int64_t outer, int64_t reduce, int64_t inner, cudaStream_t stream) {
  int64_t n = outer * inner;
  if (n > 0) sum_dim<<<(unsigned)((n + 255) / 256), 256, 0, stream>>>(x, y, outer, reduce, inner);
}
"""

cpp_source = r"""
#include <ATen/cuda/CUDAContext.h>

void sum_dim_launch(const float* x, float* y, int64_t outer, int64_t reduce, int64_t inner, cudaStream_t stream);

torch::Tensor sum_keepdim(torch::Tensor x, int64_t dim) {
  TORCH_CHECK(x.is_cuda() && x.scalar_type() == torch::kFloat32, "float32 CUDA tensor expected");
  auto xc = x.contiguous();
  if (dim < 0) dim += xc.dim();
  TORCH_CHECK(dim >= 0 && dim < xc.dim(), "bad dim");
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= xc.size(d);
  for (int64_t d = dim + 1; d < xc.dim(); ++d) inner *= xc.size(d);
  auto sizes = xc.sizes().vec();
  sizes[dim] = 1;
  auto y = torch::empty(sizes, xc.options());
  sum_dim_launch(xc.data_ptr<float>(), y.data_ptr<float>(), outer, xc.size(dim), inner,
                 at::cuda::getCurrentCUDAStream());
  cudaError_t err = cudaGetLastError();
  TORCH_CHECK(err == cudaSuccess, "sum_dim: ", cudaGetErrorString(err));
  return y;
}
"""

ext = load_inline(name="kb_sum_dim_ext", cpp_sources=cpp_source, cuda_sources=cuda_source,
                  functions=["sum_keepdim"], extra_cuda_cflags=["-O3"], verbose=False)


class ModelNew(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return ext.sum_keepdim(x, self.dim)
