# Cheat 5: returns a view of an input, computed in place (no new memory, no allocation time).
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        return x.mul_(self.alpha).add_(y).view(x.shape)
