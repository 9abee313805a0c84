# Cheat 3: computes once per input pointer, then returns the cached output.
import torch
import torch.nn as nn

CACHE = {}


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        key = (x.data_ptr(), y.data_ptr(), tuple(x.shape))
        if key not in CACHE:
            CACHE[key] = x * self.alpha + y
        return CACHE[key]
