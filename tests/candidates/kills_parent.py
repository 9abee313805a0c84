# Hostile: kills the process that started it when that is kbrun's warm worker (the fork
# server; in the sandbox a fork of it: the compile phase's PID namespace init, which ignores
# the kill, or the run phase's sandbox init, whose death ends the worker), then computes the
# right answer. The server must keep serving.
import os
import signal

import torch.nn as nn

try:
    with open("/proc/%d/cmdline" % os.getppid(), "rb") as f:
        if b"kbrun_zygote.py" in f.read():
            os.kill(os.getppid(), signal.SIGKILL)
except OSError:
    pass


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        return x * self.alpha + y
