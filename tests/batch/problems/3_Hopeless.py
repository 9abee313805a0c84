import torch
import torch.nn as nn


class Model(nn.Module):
    """MARKER_THREE: out = x - 1. The LLM never answers with code."""

    def __init__(self):
        super().__init__()

    def forward(self, x):
        return x - 1


def get_inputs():
    return [torch.randn(32, 64)]


def get_init_inputs():
    return []
