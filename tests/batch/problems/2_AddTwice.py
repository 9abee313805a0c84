import torch
import torch.nn as nn


class Model(nn.Module):
    """MARKER_TWO: out = x + 2 * y. Solved at attempt 2 only when the reflection prompt carries the mismatch."""

    def __init__(self):
        super().__init__()

    def forward(self, x, y):
        return x + 2 * y


def get_inputs():
    return [torch.randn(32, 64), torch.randn(32, 64)]


def get_init_inputs():
    return []
