# For tests/problems/1_ScaleAdd.py: correct, and like torch.compile it leaves a tqdm progress bar
# open after its first call. tqdm's monitor thread would outlive the call; kbrun keeps it off
# (guards.keep_library_monitors_off), so this is judged on its outputs (plain torch: needs
# --allow-library-kernels).
import os

import torch
import torch.nn as nn
from tqdm import tqdm


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha
        self.bar = None

    def forward(self, x, y):
        if self.bar is None:
            self.bar = tqdm(total=1, desc="compiling", file=open(os.devnull, "w"))
            self.bar.update(1)
        return torch.add(y, x, alpha=self.alpha)
