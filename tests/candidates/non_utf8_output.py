# Fails in forward after printing bytes that are not UTF-8: the result must still be written,
# classified runtime_error, with the output tail (the bad bytes as U+FFFD).
import sys
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        sys.stdout.buffer.write(b"bad bytes: \xff\xfe\n")
        sys.stdout.flush()
        raise RuntimeError()
