# bf16 C = A @ B with ThunderKittens on Hopper (split layout): one warpgroup per 64 x 64
# output tile, A and B tiles staged in shared memory, warpgroup MMA (wgmma) accumulating in
# fp32 registers over K. Simple rather than fast: it checks that kbrun's thunderkittens
# backend (include paths, -std=c++20, -DKITTENS_HOPPER, sm_90a, -lcuda) builds and runs TK.
# kbrun adds those flags (--backend thunderkittens --tk-root DIR); the candidate adds none.
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cuda_source = r"""
#include "kittens.cuh"
using namespace kittens;

constexpr int BLOCK = 64;
constexpr int NUM_THREADS = 4 * kittens::WARP_THREADS;  // one warpgroup

struct globals {
    using tile = st_bf<BLOCK, BLOCK>;
    using tile_gl = gl<bf16, 1, 1, -1, -1, tile>;
    tile_gl A, B, C;
    int K;
};

__global__ void __launch_bounds__(NUM_THREADS) tk_gemm_kernel(const __grid_constant__ globals g) {
    extern __shared__ alignment_dummy __shm[];
    shared_allocator al((int*)&__shm[0]);
    st_bf<BLOCK, BLOCK> &As = al.allocate<st_bf<BLOCK, BLOCK>>();
    st_bf<BLOCK, BLOCK> &Bs = al.allocate<st_bf<BLOCK, BLOCK>>();
    rt_fl<16, BLOCK> acc;  // each of the 4 warps holds 16 rows of the 64 x 64 tile
    warp::zero(acc);
    const int row = blockIdx.y, col = blockIdx.x;
    for (int k = 0; k < g.K / BLOCK; ++k) {
        warpgroup::load(As, g.A, {0, 0, row, k});
        warpgroup::load(Bs, g.B, {0, 0, k, col});
        __syncthreads();
        warpgroup::mma_AB(acc, As, Bs);  // acc += As * Bs (accumulates)
        warpgroup::mma_async_wait();
        __syncthreads();                  // nobody overwrites a tile still being read
    }
    warpgroup::store(g.C, acc, {0, 0, row, col});
}

// Raw-pointer launcher: nothing from the framework here, so this file compiles in seconds.
// Returns the launch error (cudaSuccess when it went well).
int tk_gemm_launch(const void* A, const void* B, void* C, int M, int N, int K, cudaStream_t stream) {
    auto* pa = reinterpret_cast<bf16*>(const_cast<void*>(A));
    auto* pb = reinterpret_cast<bf16*>(const_cast<void*>(B));
    auto* pc = reinterpret_cast<bf16*>(C);
    globals g{globals::tile_gl{pa, nullptr, nullptr, (size_t)M, (size_t)K},
              globals::tile_gl{pb, nullptr, nullptr, (size_t)K, (size_t)N},
              globals::tile_gl{pc, nullptr, nullptr, (size_t)M, (size_t)N}, K};
    const int smem = 2 * sizeof(st_bf<BLOCK, BLOCK>) + 1024;  // + room for 1024-byte alignment
    cudaFuncSetAttribute(tk_gemm_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    dim3 grid(N / BLOCK, M / BLOCK);
    tk_gemm_kernel<<<grid, NUM_THREADS, smem, stream>>>(g);
    return (int)cudaGetLastError();
}
"""

cpp_source = r"""
#include <ATen/cuda/CUDAContext.h>

int tk_gemm_launch(const void* A, const void* B, void* C, int M, int N, int K, cudaStream_t stream);

torch::Tensor tk_matmul(torch::Tensor A, torch::Tensor B) {
    TORCH_CHECK(A.is_cuda() && B.is_cuda() && A.dim() == 2 && B.dim() == 2, "2-D CUDA tensors expected");
    TORCH_CHECK(A.scalar_type() == torch::kBFloat16 && B.scalar_type() == torch::kBFloat16,
                "bf16 expected (run with --precision bf16)");
    auto a = A.contiguous();
    auto b = B.contiguous();
    const int64_t M = a.size(0), K = a.size(1), N = b.size(1);
    TORCH_CHECK(b.size(0) == K, "inner dimensions differ");
    TORCH_CHECK(M % 64 == 0 && N % 64 == 0 && K % 64 == 0, "sizes must be multiples of 64");
    auto c = torch::empty({M, N}, a.options());
    int err = tk_gemm_launch(a.data_ptr(), b.data_ptr(), c.data_ptr(), (int)M, (int)N, (int)K,
                             at::cuda::getCurrentCUDAStream());
    TORCH_CHECK(err == 0, "tk_gemm_kernel launch: ", cudaGetErrorString((cudaError_t)err));
    return c;
}
"""

tk_ext = load_inline(name="kb_tk_gemm_ext", cpp_sources=cpp_source, cuda_sources=cuda_source,
                     functions=["tk_matmul"], verbose=False)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return tk_ext.tk_matmul(A, B)
