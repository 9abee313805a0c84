# Slows the reference: replaces the tensor operators its forward uses (x * alpha + y) with
# versions that sleep first. Its own forward avoids them. Caught when the reference runs in a
# process that never loads this file: timed at its honest speed.
import time

import torch
import torch.nn as nn

_mul, _add = torch.Tensor.__mul__, torch.Tensor.__add__


def _slow(op):
    def slow(a, b):
        time.sleep(0.01)
        return op(a, b)
    return slow


torch.Tensor.__mul__ = _slow(_mul)
torch.Tensor.__add__ = _slow(_add)


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        return torch.add(y, x, alpha=self.alpha)
