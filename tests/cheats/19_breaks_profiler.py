# Cheat 19: only torch ops (as 01_calls_torch), and a forward that fails whenever a profiler records
# it, so that the check of whose kernels did the work cannot measure. Unmeasured is not a pass.
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        if torch._C._autograd._profiler_enabled():
            raise RuntimeError("not while profiled")
        return torch.add(torch.mul(x, self.alpha), y)
