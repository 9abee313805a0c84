# Its constructor ends the process. The compile phase's construction (prebuild) must not turn
# that into a compile error: the run phase judges it (runtime_error/crash).
import os
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        os._exit(3)

    def forward(self, x, y):
        return x * 1.5 + y
