# Correct only if the worker process is set up as a cold start would be: its own session,
# private HOME and TMPDIR (tempfile too), no stray sockets or pipes from whoever started it
# (a warm worker's fork must not inherit the server's), no secrets.
import os
import tempfile

import torch.nn as nn


def problems():
    found = []
    if os.getsid(0) != os.getpid():
        found.append("not a session leader")
    cwd = os.path.realpath(os.getcwd())
    for var in ("HOME", "TMPDIR"):
        if not os.path.realpath(os.environ.get(var, "/")).startswith(cwd + os.sep):
            found.append("%s=%s is not inside the private dir %s" % (var, os.environ.get(var), cwd))
    if not os.path.realpath(tempfile.gettempdir()).startswith(cwd + os.sep):
        found.append("tempfile uses %s" % tempfile.gettempdir())
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            continue
        if int(fd) > 4 and (target.startswith("socket:") or target.startswith("pipe:")):
            found.append("fd %s is an inherited %s" % (fd, target))
    found += ["secret %s" % k for k in os.environ if any(s in k.upper() for s in ("KEY", "TOKEN", "SECRET"))]
    return found


PROBLEMS = problems()


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        if PROBLEMS:
            raise RuntimeError("worker set-up: " + "; ".join(PROBLEMS))
        return x * self.alpha + y
