# Allocates (and touches) 1 GiB at a time up to 8 GiB in forward; under kbrun's memory cap
# it must end as runtime_error/out_of_memory. Never run it without --memory-limit.
import torch.nn as nn

held = []


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        for _ in range(8):
            held.append(bytearray(b"\x01") * (1 << 30))
        return x * self.alpha + y
