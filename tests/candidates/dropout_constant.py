# For tests/problems/6_Matmul_Dropout_Softmax.py: a constant (uniform) distribution, whatever the
# input. Before kbrun ran the reference twice, the evidence rule passed it: the reference's float64
# run drew another dropout mask, and the bound grew with the randomness.
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, in_features, out_features, dropout_p):
        super().__init__()
        self.out_features = out_features

    def forward(self, x):
        return torch.full((x.shape[0], self.out_features), 1.0 / self.out_features)
