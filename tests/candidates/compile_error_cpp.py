# Does not compile: an undeclared identifier in the C++ source.
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cpp_source = r"""
#include <torch/extension.h>
torch::Tensor scale_add(torch::Tensor x, torch::Tensor y, double alpha) {
  return x * alpha + y + undeclared_thing;
}
"""

ext = load_inline(name="broken_ext", cpp_sources=cpp_source, functions=["scale_add"], verbose=False)


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        return ext.scale_add(x, y, self.alpha)
