import torch
import torch.nn as nn


class Model(nn.Module):
    """A level-2-style fused operator (KernelBench 33_Gemm_Scale_BatchNorm and 41_Gemm_BatchNorm_GELU_ReLU,
    CPU sized). Weights drawn at construction (nn.Linear, then a scale parameter, then a buffer), init inputs
    that are not all sizes, BatchNorm in training mode (how KernelBench runs models: batch statistics, the
    running stats updated in place) and two outputs: the activation and each row's largest value before it."""

    def __init__(self, in_features, out_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.gemm = nn.Linear(in_features, out_features)
        self.scale = nn.Parameter(torch.randn(out_features))
        self.bn = nn.BatchNorm1d(out_features, eps=eps, momentum=momentum)
        self.register_buffer("shift", 0.1 * torch.randn(out_features))

    def forward(self, x):
        y = self.bn(self.gemm(x) * self.scale) + self.shift
        return torch.relu(y), y.amax(dim=1)


batch_size = 64
in_features = 256
out_features = 128


def get_inputs():
    return [torch.rand(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features, 1e-5, 0.1]
