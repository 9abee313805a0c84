# Computes tests/problems/1_ScaleAdd.py (fp32) in bf16 and returns fp32: fast on tensor cores,
# but 8 mantissa bits. The evidence rule must call it incorrect/precision_downgrade.
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        return (x.bfloat16() * self.alpha + y.bfloat16()).float()
