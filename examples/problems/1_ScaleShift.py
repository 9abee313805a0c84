import torch
import torch.nn as nn


class Model(nn.Module):
    """Scales and shifts a tensor: out = x * alpha + beta (two elementwise ops in PyTorch)."""

    def __init__(self, alpha, beta):
        super().__init__()
        self.alpha = alpha
        self.beta = beta

    def forward(self, x):
        return x * self.alpha + self.beta


def get_inputs():
    return [torch.randn(64, 256)]


def get_init_inputs():
    return [1.5, -0.25]
