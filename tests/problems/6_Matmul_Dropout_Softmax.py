import torch
import torch.nn as nn


class Model(nn.Module):
    """KernelBench level 2's 66_Matmul_Dropout_Softmax, CPU sized: dropout with p = 0.2 in training mode
    (how KernelBench runs models) draws a new mask on every call, so no output can be checked against it."""

    def __init__(self, in_features, out_features, dropout_p):
        super().__init__()
        self.matmul = nn.Linear(in_features, out_features)
        self.dropout = nn.Dropout(dropout_p)

    def forward(self, x):
        x = self.matmul(x)
        x = self.dropout(x)
        return torch.softmax(x, dim=1)


batch_size = 32
in_features = 256
out_features = 512
dropout_p = 0.2


def get_inputs():
    return [torch.rand(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features, dropout_p]
