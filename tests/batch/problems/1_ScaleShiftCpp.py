import torch
import torch.nn as nn


class Model(nn.Module):
    """MARKER_ONE: out = x * alpha + beta. Solved at attempt 1 by a compiled C++ extension."""

    def __init__(self, alpha, beta):
        super().__init__()
        self.alpha = alpha
        self.beta = beta

    def forward(self, x):
        return x * self.alpha + self.beta


def get_inputs():
    return [torch.randn(32, 64)]


def get_init_inputs():
    return [1.5, -0.25]
