# Writes its source file in __init__ and builds it with torch.utils.cpp_extension.load, as real
# model output does (the cuda-l1 corpus's level-2 42_): the file is written again, newer, each time
# ModelNew is constructed. The run phase must find the compile phase's build, not build again.
import os

import torch.nn as nn
from torch.utils.cpp_extension import load

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
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("scale_add", &scale_add); }
"""


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha
        with open("scale_add_ext.cpp", "w") as f:
            f.write(cpp_source)
        self.ext = load(name="lazy_build_load_files_ext", sources=[os.path.abspath("scale_add_ext.cpp")],
                        extra_cflags=["-O2"], verbose=False)

    def forward(self, x, y):
        return self.ext.scale_add(x, y, self.alpha)
