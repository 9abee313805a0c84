# Correct, but prints megabytes on every call.
import sys
import torch.nn as nn

LINE = "x" * 1023 + "\n"


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        sys.stdout.write(LINE * 2048)  # 2 MiB
        return x * self.alpha + y
