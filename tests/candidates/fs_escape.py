# Writes outside its private directory: /tmp and the user's real home (from the password
# database, not $HOME, which is private). Raises if any such write works, or if writing in
# the private directory (the working directory) does not; correct otherwise.
import os
import pwd
import torch.nn as nn

NAME = "kbrun-fs-escape-probe"


def escapes():
    wrote = []
    for folder in ("/tmp", pwd.getpwuid(os.getuid()).pw_dir):
        path = os.path.join(folder, NAME)
        try:
            with open(path, "w") as f:
                f.write("escaped\n")
            wrote.append(path)
        except OSError:
            pass
    return wrote


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        with open(os.path.join(os.getcwd(), NAME), "w") as f:  # the private dir: must work
            f.write("inside\n")
        wrote = escapes()
        if wrote:
            raise RuntimeError("wrote outside the private directory: " + ", ".join(wrote))
        return x * self.alpha + y
