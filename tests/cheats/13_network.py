# Cheat 13b: needs the network (here: a local TCP port the test listens on) to produce its answer.
import socket
import torch
import torch.nn as nn



class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        s = socket.create_connection(("127.0.0.1", int("@PORT@")), timeout=2)
        s.close()
        return x * self.alpha + y
