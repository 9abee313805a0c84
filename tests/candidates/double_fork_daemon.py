# Leaves a daemon behind: fork, setsid, fork again, so the daemon is nobody's child. The
# daemon sleeps for an hour with "kbrun-daemon-marker" in its command line, so a test can
# look for it after the evaluation. Otherwise correct.
import os
import sys
import torch.nn as nn

MARKER = "kbrun-daemon-marker"
started = False


def daemonize():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(3600)", MARKER])
        os._exit(0)
    os.wait()


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        global started
        if not started:
            started = True
            daemonize()
        return x * self.alpha + y
