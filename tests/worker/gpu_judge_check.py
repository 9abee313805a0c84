"""Device check of kbrun_judge's evidence rule on a GPU (not a pytest file: run it by hand).

  python3 tests/worker/gpu_judge_check.py

For cuBLAS/cuDNN fp32 references (TF32 off, as the checker runs them) it judges an honest
reordering, TF32 (torch's own allow_tf32), bf16 and fp16 arithmetic, and times the float64
reference. Expected: reordered passes; tf32, bf16, fp16 fail as precision_downgrade.
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "eval", "worker"))
from kbrun_eval import judge as kj  # noqa: E402  (a script: after the sys.path line above)
from worker_test_util import Fn  # noqa: E402  (beside this script)

dev = torch.device("cuda")
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def tf32(fn, *xs):
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        return fn(*xs)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False


def case(name, fn, inputs, candidates):
    judge = kj.Judge(torch, "evidence", "fp32", Fn(fn), dev)
    with torch.no_grad():
        expected = fn(*inputs)
        torch.cuda.synchronize()
        t = time.perf_counter()
        judge._reference64(inputs)
        torch.cuda.synchronize()
        fp64_s = time.perf_counter() - t
        for cname, make in candidates:
            v = judge.judge(inputs, expected, make(), "trial", cname)
            s = v.stats
            print("%-22s %-10s ok=%-5s %-20s err_new %.3g err_ref %.3g ratio %s mean ratio %s (fp64 ref %.3f s)" % (
                name, cname, v.ok, v.category or "-", s.get("err_candidate", float("nan")),
                s.get("err_reference", float("nan")), "%.1f" % s["error_ratio"] if s.get("error_ratio") else "-",
                "%.1f" % s["mean_error_ratio"] if s.get("mean_error_ratio") else "-", fp64_s), flush=True)


torch.manual_seed(0)
print(torch.cuda.get_device_name(0), torch.__version__)
for k in (1024, 4096, 16384):
    a, b = torch.randn(2048, k, device=dev), torch.randn(k, 2048, device=dev)
    case("matmul K=%d" % k, torch.matmul, [a, b], [
        ("reordered", lambda: a.flip(1) @ b.flip(0)),
        ("split-K", lambda: a[:, :k // 2] @ b[:k // 2] + a[:, k // 2:] @ b[k // 2:]),
        ("tf32", lambda: tf32(torch.matmul, a, b)),
        ("bf16", lambda: (a.bfloat16() @ b.bfloat16()).float()),
        ("fp16", lambda: (a.half() @ b.half()).float())])
x, w = torch.randn(32, 128, 56, 56, device=dev), torch.randn(256, 128, 3, 3, device=dev)
conv = torch.nn.functional.conv2d
case("conv 128->256 3x3", conv, [x, w], [
    ("channels-rev", lambda: conv(x.flip(1), w.flip(1))),
    ("tf32", lambda: tf32(conv, x, w)),
    ("bf16", lambda: conv(x.bfloat16(), w.bfloat16()).float())])
s = torch.randn(256, 1 << 20, device=dev)
case("sum n=2^20", lambda t: t.sum(1), [s], [
    ("halves", lambda: s[:, :1 << 19].sum(1) + s[:, 1 << 19:].sum(1)),
    ("bf16", lambda: s.bfloat16().sum(1).float())])
