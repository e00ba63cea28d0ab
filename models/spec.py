"""The vocabulary that model files use to declare their layers."""
from typing import NamedTuple, Tuple


class Dense(NamedTuple):
    name: str
    units: int
    dropout: float = 0.0      # rate applied to this layer's input while training


class Conv(NamedTuple):
    name: str
    filters: int
    kernel: int               # square kernel, stride 1, VALID padding (as in LeNet-5)
    dropout: float = 0.0


class MaxPool(NamedTuple):
    size: int                 # square window, stride = size


class ModelSpec(NamedTuple):
    name: str
    input_shape: Tuple[int, ...]   # per example, e.g. (784,) or (32, 32, 1)
    layers: tuple                  # the last layer gives the logits (no ReLU)

    @property
    def input_size(self):
        size = 1
        for d in self.input_shape:
            size *= d
        return size

    @property
    def weighted_layers(self):
        """Dense and Conv layers, in order: every one of them is recorded."""
        return [l for l in self.layers if isinstance(l, (Dense, Conv))]

    @property
    def num_classes(self):
        return self.weighted_layers[-1].units
