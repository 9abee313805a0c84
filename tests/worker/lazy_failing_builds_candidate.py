"""A candidate as real model output often is (KernelBench level 2): its kernels are built lazily, each
inside a try/except that falls back to torch, and none compiles (an identifier the code never
declares). The run phase sees a GPU and the compile phase does not, so each build below is one the
compile phase used to leave to the GPU lane:
  at import, only when a GPU is visible (`if torch.cuda.is_available():`);
  in a helper that __init__ calls after a step that needs a GPU (`.cuda()`): load_inline, its source
    formatted from `self` and from names unpacked in a tuple;
  in __init__ itself, below that step;
  on the first forward (with verbose=True).
test_failed_lazy_builds.py runs it (sources for load() go to the working directory, the only place
the sandbox lets a candidate write)."""
import os

import torch
import torch.nn as nn
from torch.utils.cpp_extension import load, load_inline

errors = {}  # what the candidate's own except clauses caught, by build


def cpp_file(name):
    path = os.path.join(os.getcwd(), name + ".cpp")
    with open(path, "w") as f:
        f.write("float %s(float x) { return x * UNDECLARED_SCALE; }\n" % name)
    return path


import_ext = None
if torch.cuda.is_available():
    try:
        import_ext = load(name="lazy_fail_import", sources=[cpp_file("at_import")])
    except Exception as exc:
        errors["import"] = str(exc)


class ModelNew(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale
        self.width = 4
        self.ones = torch.ones(self.width).cuda()  # the compile phase has no GPU: its constructor stops here
        try:
            self.helper_ext = self._load()
        except Exception as exc:
            self.helper_ext = None
            errors["helper"] = str(exc)
        try:
            self.init_ext = load(name="lazy_fail_init", sources=[cpp_file("in_init")])
        except Exception as exc:
            self.init_ext = None
            errors["init"] = str(exc)
        self.forward_ext = None
        self.tried = False

    def _load(self):
        rows, cols = self.width, 2
        source = f"torch::Tensor in_helper(torch::Tensor x) {{ return x * UNDECLARED_SCALE_{rows}x{cols}; }}\n"
        return load_inline(name="lazy_fail_helper", cpp_sources=source, functions=["in_helper"])

    def forward(self, x):
        if not self.tried:
            self.tried = True
            try:
                # verbose=True, as models often write it: torch then prints the compiler's lines
                # instead of putting them in the exception.
                self.forward_ext = load(name="lazy_fail_forward", sources=[cpp_file("in_forward")], verbose=True)
            except Exception as exc:
                errors["forward"] = str(exc)
        return x * self.scale  # no kernel built: torch
