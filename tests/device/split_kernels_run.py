"""On the GPU machine, after bench/mono_build_bench.py: the mono-layout fixtures' extensions as kbrun's
split built them (a kernel file without torch, a host file launching through cudaLaunchKernelEx) run
their kernels on the GPU and give torch's answer, as torch's own build of the same call does (the
fixtures take float32 only; AT_DISPATCH instantiates the template kernel for double too, which the
split's link resolves).

    python3 tests/device/split_kernels_run.py BENCH_OUT_DIR
Exit 1 when an extension is missing, was not split, or differs from torch.
"""
import importlib.util
import os
import sys

import torch


def load(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    out, bad = sys.argv[1], 0
    for fixture in ("mono_layout_light", "mono_layout_pybind"):
        for mode in ("plain", "fast"):
            d = os.path.join(out, fixture, mode, "0")
            libs = [f for f in os.listdir(d) if f.endswith(".so")] if os.path.isdir(d) else []
            if not libs:
                print("%s %s: no extension built" % (fixture, mode))
                bad += 1
                continue
            split = os.path.exists(os.path.join(d, "cuda.cuda.host.o"))
            ext = load(os.path.join(d, libs[0]))
            for dtype in (torch.float32,):
                x = torch.randn(1 << 20, device="cuda", dtype=dtype)
                y = torch.randn(1 << 20, device="cuda", dtype=dtype)
                got = ext.scale_add(x, y, 1.5)
                torch.cuda.synchronize()
                err = (got - (x * 1.5 + y)).abs().max().item()
                ok = err < 1e-5 and (split == (mode == "fast"))
                bad += not ok
                print("%s %s split=%s %s max_abs_err=%.3g %s" % (fixture, mode, split, dtype, err,
                                                                 "ok" if ok else "WRONG"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
