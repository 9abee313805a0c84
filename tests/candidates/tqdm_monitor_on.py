# For tests/problems/1_ScaleAdd.py: the same open progress bar as tqdm_progress_bar.py, with tqdm's
# monitor thread turned back on: that thread outlives the call and is rejected as background work.
import os

import torch
import torch.nn as nn
import tqdm


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha
        self.bar = None

    def forward(self, x, y):
        if self.bar is None:
            tqdm.tqdm.monitor_interval = 10
            self.bar = tqdm.tqdm(total=1, desc="compiling", file=open(os.devnull, "w"))
            self.bar.update(1)
        return torch.add(y, x, alpha=self.alpha)
