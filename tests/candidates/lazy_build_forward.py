# Builds its kernel on the first forward call, as much real model output does: kbrun makes that
# load_inline call in the compile phase (kbrun_deferred_builds), so the run phase finds the
# build in the cache.
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cpp_source = r"""
#include <torch/extension.h>
torch::Tensor scale_add(torch::Tensor x, torch::Tensor y, double alpha) {
  auto xc = x.contiguous(), yc = y.contiguous();
  auto out = torch::empty_like(xc);
  const float* px = xc.data_ptr<float>();
  const float* py = yc.data_ptr<float>();
  float* po = out.data_ptr<float>();
  const float a = static_cast<float>(alpha);
  for (int64_t i = 0, n = xc.numel(); i < n; ++i) po[i] = px[i] * a + py[i];
  return out;
}
"""


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha
        self._ext = None

    def _build(self):
        flags = ["-O2"]
        return load_inline(name="lazy_build_forward_ext", cpp_sources=cpp_source, functions=["scale_add"],
                           extra_cflags=flags, verbose=False)

    def forward(self, x, y):
        if self._ext is None:
            self._ext = self._build()
        return self._ext.scale_add(x, y, self.alpha)
