# LayerNorm over the trailing (features, dim1, dim2) in CUDA (split layout): rows are long
# (4M elements), so each row is split over many blocks: partial sums in fp64, a finalising
# kernel for mean and 1/std, then an element-wise normalise with the module's weight and bias.
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cuda_source = r"""
#include <cuda_runtime.h>
#include <cstdint>

__global__ void ln_partial(const float* __restrict__ x, double* __restrict__ part, int64_t cols, int chunks) {
  int row = blockIdx.y, chunk = blockIdx.x;
  int64_t per = (cols + chunks - 1) / chunks;
  int64_t begin = chunk * per, end = begin + per < cols ? begin + per : cols;
  const float* p = x + (int64_t)row * cols;
  double s = 0.0, q = 0.0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    double v = p[i];
    s += v;
    q += v * v;
  }
  for (int off = 16; off > 0; off >>= 1) {
    s += __shfl_down_sync(0xffffffff, s, off);
    q += __shfl_down_sync(0xffffffff, q, off);
  }
  __shared__ double ss[32], qq[32];
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) { ss[warp] = s; qq[warp] = q; }
  __syncthreads();
  if (threadIdx.x == 0) {
    double ts = 0.0, tq = 0.0;
    for (int w = 0; w < (int)(blockDim.x / 32); ++w) { ts += ss[w]; tq += qq[w]; }
    part[((int64_t)row * chunks + chunk) * 2] = ts;
    part[((int64_t)row * chunks + chunk) * 2 + 1] = tq;
  }
}

__global__ void ln_stats(const double* __restrict__ part, float* __restrict__ stats, int rows, int chunks,
                         int64_t cols, double eps) {
  int row = blockIdx.x * blockDim.x + threadIdx.x;
  if (row >= rows) return;
  double s = 0.0, q = 0.0;
  for (int c = 0; c < chunks; ++c) { s += part[((int64_t)row * chunks + c) * 2]; q += part[((int64_t)row * chunks + c) * 2 + 1]; }
  double mean = s / cols;
  double var = q / cols - mean * mean;
  if (var < 0) var = 0;
  stats[2 * row] = (float)mean;
  stats[2 * row + 1] = (float)(1.0 / sqrt(var + eps));
}

__global__ void ln_apply(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b,
                         const float* __restrict__ stats, float* __restrict__ y, int64_t rows, int64_t cols) {
  int64_t n = rows * cols;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t row = i / cols, c = i % cols;
    y[i] = (x[i] - stats[2 * row]) * stats[2 * row + 1] * w[c] + b[c];
  }
}

void layernorm_launch(const float* x, const float* w, const float* b, float* y, double* part, float* stats,
                      int64_t rows, int64_t cols, int chunks, double eps, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return;
  ln_partial<<<dim3(chunks, (unsigned)rows), 512, 0, stream>>>(x, part, cols, chunks);
  ln_stats<<<(unsigned)((rows + 127) / 128), 128, 0, stream>>>(part, stats, (int)rows, chunks, cols, eps);
  ln_apply<<<132 * 16, 256, 0, stream>>>(x, w, b, stats, y, rows, cols);
}
"""

cpp_source = r"""
#include <ATen/cuda/CUDAContext.h>

void layernorm_launch(const float* x, const float* w, const float* b, float* y, double* part, float* stats,
                      int64_t rows, int64_t cols, int chunks, double eps, cudaStream_t stream);

torch::Tensor layernorm(torch::Tensor x, torch::Tensor w, torch::Tensor b, double eps) {
  TORCH_CHECK(x.is_cuda() && x.scalar_type() == torch::kFloat32, "float32 CUDA tensor expected");
  auto xc = x.contiguous(), wc = w.contiguous(), bc = b.contiguous();
  int64_t cols = wc.numel();
  TORCH_CHECK(cols > 0 && xc.numel() % cols == 0, "shape mismatch");
  int64_t rows = xc.numel() / cols;
  int chunks = 256;
  auto part = torch::empty({rows * chunks * 2}, xc.options().dtype(torch::kFloat64));
  auto stats = torch::empty({rows * 2}, xc.options());
  auto y = torch::empty_like(xc);
  layernorm_launch(xc.data_ptr<float>(), wc.data_ptr<float>(), bc.data_ptr<float>(), y.data_ptr<float>(),
                   part.data_ptr<double>(), stats.data_ptr<float>(), rows, cols, chunks, eps,
                   at::cuda::getCurrentCUDAStream());
  cudaError_t err = cudaGetLastError();
  TORCH_CHECK(err == cudaSuccess, "layernorm: ", cudaGetErrorString(err));
  return y;
}
"""

ext = load_inline(name="kb_layernorm_ext", cpp_sources=cpp_source, cuda_sources=cuda_source,
                  functions=["layernorm"], extra_cuda_cflags=["-O3"], verbose=False)


class ModelNew(nn.Module):
    def __init__(self, normalized_shape):
        super().__init__()
        self.ln = nn.LayerNorm(normalized_shape=normalized_shape)  # same parameters as the reference

    def forward(self, x):
        return ext.layernorm(x, self.ln.weight, self.ln.bias, self.ln.eps)
