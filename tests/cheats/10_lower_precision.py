# Cheat 10: computes an fp32 problem in fp16.
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        return (x.half() * self.alpha + y.half()).float()
