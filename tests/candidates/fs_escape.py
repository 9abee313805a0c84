# Writes outside its private directory: the user's real home (from the password database, not
# $HOME, which is private) and a folder the machine already has under /tmp (the test makes
# /tmp/kbrun-fs-escape-existing before the evaluation). A new name in /tmp is allowed: it lands
# in the sandbox's private /tmp layer, and the test checks the machine's /tmp never sees it.
# Raises if an escaping write works, if the machine's folder is not in sight, or if writing in
# the private directory (the working directory) or a new name under /tmp does not; correct
# otherwise.
import os
import pwd
import torch.nn as nn

NAME = "kbrun-fs-escape-probe"
EXISTING = "/tmp/kbrun-fs-escape-existing"


def try_write(path):
    try:
        with open(path, "w") as f:
            f.write("escaped\n")
        return True
    except OSError:
        return False


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        problems = []
        if not try_write(os.path.join(os.getcwd(), NAME)):
            problems.append("cannot write in the working directory")
        if not try_write(os.path.join("/tmp", NAME)):
            problems.append("cannot write a new name under /tmp")
        if not os.path.isdir(EXISTING):
            problems.append("the machine's " + EXISTING + " is not in sight")
        for path in (os.path.join(EXISTING, NAME), os.path.join(pwd.getpwuid(os.getuid()).pw_dir, NAME)):
            if try_write(path):
                problems.append("wrote outside the private directory: " + path)
        if problems:
            raise RuntimeError("; ".join(problems))
        return x * self.alpha + y
