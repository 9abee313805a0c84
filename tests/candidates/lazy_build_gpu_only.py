# Builds its kernel in __init__ only when it sees a GPU. The compile phase (no GPU) still builds
# it, so that on a GPU machine the run phase finds it ready; on the CPU its forward uses torch.
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
        self.ext = None
        if torch.cuda.is_available():
            self.ext = load_inline(name="lazy_build_gpu_only_ext", cpp_sources=cpp_source, functions=["scale_add"],
                                   verbose=False)
            self.scale = torch.ones(1, device="cuda")  # fails without a GPU: noted, never a verdict

    def forward(self, x, y):
        if self.ext is not None:
            return self.ext.scale_add(x, y, self.alpha)
        return torch.add(y, x, alpha=self.alpha)
