# For tests/problems/1_ScaleAdd.py: writes its scale into a folder of its own under /tmp when it is
# imported and reads it back when constructed, as real candidates that build in /tmp/<name> do
# (plain torch: needs --allow-library-kernels). The folder exists only inside its sandbox.
import os

import torch
import torch.nn as nn

FOLDER = "/tmp/kbrun-candidate-%s" % os.urandom(6).hex()
os.makedirs(FOLDER, exist_ok=True)


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        with open(os.path.join(FOLDER, "alpha.txt"), "w") as f:
            f.write(repr(alpha))
        with open(os.path.join(FOLDER, "alpha.txt")) as f:
            self.alpha = float(f.read())

    def forward(self, x, y):
        return torch.add(y, x, alpha=self.alpha)
