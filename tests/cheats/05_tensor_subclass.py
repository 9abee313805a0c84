# Cheat 5b: returns a lazy tensor subclass instead of a materialised tensor.
import torch
import torch.nn as nn


class Lazy(torch.Tensor):
    pass


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        return (x * self.alpha + y).as_subclass(Lazy)
