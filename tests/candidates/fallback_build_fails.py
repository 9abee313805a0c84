# As real model output often is: the kernel is built in __init__ inside try/except, its build
# fails (a C++ error), and the forward falls back to torch. Expected: rejected/uses_library_only
# with fallback_reason "build_failed" and the compiler's error line.
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cpp_source = r"""
#include <torch/extension.h>
torch::Tensor scale_add(torch::Tensor x, torch::Tensor y, double alpha) {
  return x * alpha + y  // missing semicolon
}
"""


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha
        try:
            self.ext = load_inline(name="fallback_build_fails_ext", cpp_sources=cpp_source, functions=["scale_add"],
                                   verbose=False)
        except Exception:
            self.ext = None

    def forward(self, x, y):
        if self.ext is not None:
            return self.ext.scale_add(x, y, self.alpha)
        return x * self.alpha + y
