# tests/problems/3_KLDiv.py with the batch size written in (64): right at the problem's own
# shapes, wrong at any other batch size. --shapes varied must catch it.
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, predictions, targets):
        return (targets * (torch.log(targets) - torch.log(predictions))).sum() / 64
