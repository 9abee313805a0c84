# Correct only if no secret reached the worker's environment and HOME is private.
import os
import torch.nn as nn

LEAKED = [k for k in os.environ if any(s in k.upper() for s in ("KEY", "TOKEN", "SECRET", "PASSWORD"))]


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        if LEAKED:
            raise RuntimeError("secrets visible to the candidate: %s" % LEAKED)
        return x * self.alpha + y
