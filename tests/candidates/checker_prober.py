# Goes after the checker: the run phase's worker shares a PID namespace with it (CUDA IPC
# needs that), so the checker is in sight. For every other process it sees, tries to read its
# environment and memory and to attach with ptrace, as a candidate that wants to change the
# checker's verdicts would. Prints what it saw; raises with whatever it reached, so it is
# correct only when it sees the checker, every other process is out of reach and nothing
# outside the run is in sight.
import ctypes
import os
import torch.nn as nn

PTRACE_ATTACH, PTRACE_DETACH = 16, 17
WALL = 0x40000000  # __WALL: wait for a traced process that is not a child


def probe():
    me = os.getpid()
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    libc = ctypes.CDLL(None, use_errno=True)
    reached, seen = [], []
    for pid in pids:
        if pid == me:
            continue
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                name = f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:80]
        except OSError:
            name = "?"
        seen.append("%d %s" % (pid, name))
        for what in ("environ", "mem", "maps"):
            try:
                with open("/proc/%d/%s" % (pid, what), "rb") as f:
                    f.read(1)
                reached.append("%d %s: %s" % (pid, name, what))
            except OSError:
                pass
        if libc.ptrace(PTRACE_ATTACH, pid, None, None) == 0:
            reached.append("%d %s: ptrace" % (pid, name))
            try:
                os.waitpid(pid, WALL)  # stopped: now it can be let go
            except OSError:
                pass
            libc.ptrace(PTRACE_DETACH, pid, None, None)
    return seen, reached


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha
        self.probed = False

    def forward(self, x, y):
        if not self.probed:
            self.probed = True
            seen, reached = probe()
            print("checker_prober: pid %d sees %d other processes: %s" % (os.getpid(), len(seen), "; ".join(seen)),
                  flush=True)
            if reached:
                raise RuntimeError("reached: " + "; ".join(reached))
            if len(seen) > 8:
                raise RuntimeError("sees %d other processes: the run's namespace is not its own" % len(seen))
            # The namespace's init, this sandbox's init, the checker's init and the checker.
            if len(seen) < 4:
                raise RuntimeError("sees only %d other processes: no checker in sight" % len(seen))
        return x * self.alpha + y
