# Wrong for tests/problems/4_Gemm_BatchNorm_ReLU.py: the right computation, but the scale
# parameter is drawn before nn.Linear, so after the same seed every weight differs from Model's.
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, in_features, out_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.scale = nn.Parameter(torch.randn(out_features))
        self.gemm = nn.Linear(in_features, out_features)
        self.bn = nn.BatchNorm1d(out_features, eps=eps, momentum=momentum)
        self.register_buffer("shift", 0.1 * torch.randn(out_features))

    def forward(self, x):
        y = self.bn(self.gemm(x) * self.scale) + self.shift
        return torch.relu(y), y.amax(dim=1)
