# Cheat 6: writes its result into an input buffer (in place) and returns a copy.
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        y.add_(x * self.alpha)
        return y.clone()
