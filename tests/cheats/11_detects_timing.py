# Cheat 11: honest while it is being checked (first calls), then returns stale results.
import torch
import torch.nn as nn

STATE = {"calls": 0, "last": None}


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        STATE["calls"] += 1
        if STATE["calls"] <= 8 or STATE["last"] is None:
            STATE["last"] = x * self.alpha + y
        return STATE["last"].clone()
