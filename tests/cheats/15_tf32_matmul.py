# Cheat (GPU only, sm_80+): an fp32 GEMM done on TF32 tensor cores (WMMA m16n16k8, inputs
# rounded to 10-bit mantissas) for tests/problems/2_Matmul.py. Fast, but below fp32
# accuracy: with K = 1024 the error is ~1e-2, about 220 times the fp32 reference's own
# error against float64 (measured on the CPU with TF32-rounded inputs; the evidence rule allows 128), so kbrun must say
# incorrect/precision_downgrade (incorrect/value_mismatch under --tolerance fixed).
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cuda_source = r"""
#include <cuda_runtime.h>
#include <mma.h>
#include <cstdint>
using namespace nvcuda;

__global__ void tf32_gemm(const float* A, const float* B, float* C, int M, int N, int K) {
  int tm = blockIdx.y * 16, tn = blockIdx.x * 16;
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> a;
  wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> b;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> c;
  wmma::fill_fragment(c, 0.0f);
  for (int k = 0; k < K; k += 8) {
    wmma::load_matrix_sync(a, A + (int64_t)tm * K + k, K);
    wmma::load_matrix_sync(b, B + (int64_t)k * N + tn, N);
    for (int i = 0; i < a.num_elements; ++i) a.x[i] = wmma::__float_to_tf32(a.x[i]);
    for (int i = 0; i < b.num_elements; ++i) b.x[i] = wmma::__float_to_tf32(b.x[i]);
    wmma::mma_sync(c, a, b, c);
  }
  wmma::store_matrix_sync(C + (int64_t)tm * N + tn, c, N, wmma::mem_row_major);
}

void tf32_gemm_launch(const float* A, const float* B, float* C, int M, int N, int K, cudaStream_t stream) {
  tf32_gemm<<<dim3(N / 16, M / 16), 32, 0, stream>>>(A, B, C, M, N, K);
}
"""

cpp_source = r"""
#include <ATen/cuda/CUDAContext.h>

void tf32_gemm_launch(const float* A, const float* B, float* C, int M, int N, int K, cudaStream_t stream);

torch::Tensor matmul_tf32(torch::Tensor a, torch::Tensor b) {
  TORCH_CHECK(a.size(0) % 16 == 0 && b.size(1) % 16 == 0 && a.size(1) % 8 == 0, "sizes must be multiples of 16/8");
  auto ac = a.contiguous(), bc = b.contiguous();
  auto c = torch::empty({ac.size(0), bc.size(1)}, ac.options());
  tf32_gemm_launch(ac.data_ptr<float>(), bc.data_ptr<float>(), c.data_ptr<float>(), (int)ac.size(0),
                   (int)bc.size(1), (int)ac.size(1), at::cuda::getCurrentCUDAStream());
  TORCH_CHECK(cudaGetLastError() == cudaSuccess, "tf32_gemm launch failed");
  return c;
}
"""

ext = load_inline(name="cheat_tf32_ext", cpp_sources=cpp_source, cuda_sources=cuda_source,
                  functions=["matmul_tf32"], extra_cuda_cflags=["-O3"], verbose=False)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return ext.matmul_tf32(A, B)
