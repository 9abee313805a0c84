import torch
import torch.nn as nn


class Model(nn.Module):
    """C = A @ B for square 1024 x 1024 matrices; the device check runs it with --precision bf16."""

    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return torch.matmul(A, B)


N = 1024


def get_inputs():
    return [torch.randn(N, N), torch.randn(N, N)]


def get_init_inputs():
    return []
