"""The GPU's own figure for a GEMM: CUDA events around 100 back-to-back torch.matmul calls (no
flush, no sync between them), TF32 off. Prints one line per dtype: ms per call and TFLOP/s."""
import sys

import torch

n = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
torch.backends.cuda.matmul.allow_tf32 = False
for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    for _ in range(10):
        torch.matmul(a, b)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(100):
        torch.matmul(a, b)
    end.record()
    end.synchronize()
    ms = start.elapsed_time(end) / 100
    print("back_to_back %s n=%d %.4f ms %.1f TFLOP/s" % (name, n, ms, 2 * n ** 3 / ms / 1e9))
