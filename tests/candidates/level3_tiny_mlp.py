# Correct for tests/problems/5_TinyMLP.py: Model's layers built the same way (so the seeded
# construction gives the same weights), the forward written out layer by layer.
import torch
import torch.nn as nn
import torch.nn.functional as F


class ModelNew(nn.Module):
    def __init__(self, input_size, hidden_layer_sizes, output_size):
        super().__init__()
        layers = []
        current = input_size
        for hidden in hidden_layer_sizes:
            layers += [nn.Linear(current, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
            current = hidden
        layers += [nn.Dropout(p=0.0), nn.Linear(current, output_size)]
        self.network = nn.Sequential(*layers)

    def forward(self, x):
        for layer in self.network:
            if isinstance(layer, nn.Linear):
                x = F.linear(x, layer.weight, layer.bias)
            elif isinstance(layer, nn.BatchNorm1d):
                mean = x.mean(dim=0)
                var = x.var(dim=0, unbiased=False)
                x = (x - mean) * torch.rsqrt(var + layer.eps) * layer.weight + layer.bias
            elif isinstance(layer, nn.ReLU):
                x = torch.clamp_min(x, 0.0)
        return x
