# Cheat: reaches into the worker (the process it runs in) and replaces its correctness
# check, a function the harness-identity guard does not watch, so that every trial
# "passes" without looking at an output. The verdict is not the worker's to give: the
# checker process saw no trial, so kbrun must say incorrect/incomplete_checks.
# It patches check_trial wherever the worker keeps it (the script run as __main__, or the
# modules of the worker's package), found by name as a cheat would.
import sys

import torch.nn as nn

for name, module in list(sys.modules.items()):
    if (name == "__main__" or name.startswith("kbrun")) and callable(getattr(module, "check_trial", None)):
        module.check_trial = lambda *args, **kwargs: (True, "", "", 0.0, 0.0)


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        return x * self.alpha + y  # right, so that only the skipped trials could tell
