import torch
import torch.nn as nn


class Model(nn.Module):
    """A level-3-style whole network (KernelBench 3_DeepNarrowMLP, CPU sized, with BatchNorm): the layers
    built in a loop from a list given by get_init_inputs(), BatchNorm in training mode, and a dropout of
    p = 0 (the identity, as in KernelBench's VGG and AlexNet)."""

    def __init__(self, input_size, hidden_layer_sizes, output_size):
        super().__init__()
        layers = []
        current = input_size
        for hidden in hidden_layer_sizes:
            layers += [nn.Linear(current, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
            current = hidden
        layers += [nn.Dropout(p=0.0), nn.Linear(current, output_size)]
        self.network = nn.Sequential(*layers)

    def forward(self, x):
        return self.network(x)


batch_size = 32
input_size = 128
hidden_layer_sizes = [96, 64, 64]
output_size = 16


def get_inputs():
    return [torch.rand(batch_size, input_size)]


def get_init_inputs():
    return [input_size, hidden_layer_sizes, output_size]
