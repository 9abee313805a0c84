# Builds a working kernel in __init__ and keeps it as a "fallback" it never calls: the forward
# prefers torch. Expected: rejected/uses_library_only with fallback_reason "never_launched".
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cpp_source = r"""
#include <torch/extension.h>
torch::Tensor scale_add(torch::Tensor x, torch::Tensor y, double alpha) { return x * alpha + y; }
"""


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha
        self.ext = load_inline(name="fallback_never_launched_ext", cpp_sources=cpp_source, functions=["scale_add"],
                               verbose=False)

    def forward(self, x, y):
        if x.numel() < 0:  # never: the kernel stays unused
            return self.ext.scale_add(x, y, self.alpha)
        return torch.add(y, x, alpha=self.alpha)
