# Cheat 4: returns at once and finishes the work on a background thread, so the timer misses it.
import threading
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        out = torch.empty_like(x)

        def work():
            torch.mul(x, self.alpha, out=out)
            out.add_(y)

        threading.Thread(target=work, daemon=True).start()
        return out
