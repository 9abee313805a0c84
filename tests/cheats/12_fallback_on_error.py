# Cheat 12: its own kernel fails, it catches the error and quietly uses torch instead.
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        try:
            raise RuntimeError("my kernel failed to launch")
        except RuntimeError:
            return torch.add(torch.mul(x, self.alpha), y)
