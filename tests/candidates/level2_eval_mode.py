# Wrong for tests/problems/4_Gemm_BatchNorm_ReLU.py, as several real candidates are: it switches
# itself to eval mode and folds BatchNorm's running statistics into the GEMM. KernelBench runs
# both models in training mode (BatchNorm normalises with the batch's statistics), so the
# folded model computes something else.
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, in_features, out_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.gemm = nn.Linear(in_features, out_features)
        self.scale = nn.Parameter(torch.randn(out_features))
        self.bn = nn.BatchNorm1d(out_features, eps=eps, momentum=momentum)
        self.register_buffer("shift", 0.1 * torch.randn(out_features))
        self.eval()

    def forward(self, x):
        k = self.scale * self.bn.weight * torch.rsqrt(self.bn.running_var + self.bn.eps)
        c = (self.gemm.bias * self.scale - self.bn.running_mean) * self.bn.weight \
            * torch.rsqrt(self.bn.running_var + self.bn.eps) + self.bn.bias + self.shift
        y = torch.addmm(c, x, (self.gemm.weight * k[:, None]).t())
        return torch.relu(y), y.amax(dim=1)
