"""Shared by the worker's tests and GPU checks in this folder."""
import torch.nn as nn


class Fn(nn.Module):
    """A module whose forward is `fn`: a reference or candidate made from one function."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)
