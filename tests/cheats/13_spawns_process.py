# Cheat 13: starts a helper process from forward (which could do work off the clock).
import subprocess
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        subprocess.Popen(["sleep", "30"])
        return x * self.alpha + y
