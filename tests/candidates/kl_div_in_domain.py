# Correct for tests/problems/3_KLDiv.py wherever its inputs are probabilities, and finite
# everywhere else (a term with a non-positive probability counts 0), where the reference is
# NaN. One C++ loop, summed in float sequentially: another order than torch's.
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cpp_source = r"""
#include <torch/extension.h>
#include <cmath>
torch::Tensor kl_div_batchmean(torch::Tensor p, torch::Tensor t) {
  auto pc = p.contiguous(), tc = t.contiguous();
  const float* pp = pc.data_ptr<float>();
  const float* pt = tc.data_ptr<float>();
  float sum = 0.0f;
  for (int64_t i = 0, n = pc.numel(); i < n; ++i) {
    if (pp[i] > 0.0f && pt[i] > 0.0f) sum += pt[i] * (std::log(pt[i]) - std::log(pp[i]));
  }
  return torch::full({}, sum / static_cast<float>(pc.size(0)), pc.options());
}
"""

ext = load_inline(name="kl_div_in_domain_ext", cpp_sources=cpp_source, functions=["kl_div_batchmean"],
                  extra_cflags=["-O2"], verbose=False)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, predictions, targets):
        return ext.kl_div_batchmean(predictions, targets)
