# Hostile: kills the process that started it when that is kbrun's warm worker (the fork
# server; in the sandbox, the PID namespace's init, a fork of it that ignores the kill),
# then computes the right answer. The verdict must not depend on the server.
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
