# Cheat 7b: makes itself look fast by patching the clock the CPU timer reads.
import time
import torch
import torch.nn as nn

_real = time.perf_counter
time.perf_counter = lambda: _real() * 0.5


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        return x * self.alpha + y
