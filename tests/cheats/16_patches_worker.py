# Cheat: reaches into the worker (the process it runs in) and replaces its correctness
# check, a function the harness-identity guard does not watch, so that every trial
# "passes" without looking at an output. The verdict is not the worker's to give: the
# checker process saw no trial, so kbrun must say incorrect/incomplete_checks.
import sys

import torch.nn as nn

worker = sys.modules.get("__main__")
if worker is not None and hasattr(worker, "check_trial"):
    worker.check_trial = lambda *args, **kwargs: (True, "", "", 0.0, 0.0)


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        return x * self.alpha + y  # right, so that only the skipped trials could tell
