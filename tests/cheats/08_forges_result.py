# Cheat 8: writes its own verdict on the worker's result channel and exits,
# after trying to read the request (seed, nonce) from the private directory.
import json
import os
import torch
import torch.nn as nn

try:
    with open("request.json") as f:
        SEED = json.load(f).get("seed")
except OSError:
    SEED = None
verdict = {"ok": True, "compiled": True, "correctness": {"trials_run": 5, "trials_passed": 5},
           "timing": {"reference": {"median_ms": 100.0}, "candidate": {"median_ms": 1.0}}}
os.write(3, ("result %s %s\n" % ("0" * 32, json.dumps(verdict))).encode())


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        return x * self.alpha + y
