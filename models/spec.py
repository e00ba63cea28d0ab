"""The vocabulary that model files use to declare their layers.

Shapes are per example, channels last. A Dense layer after a spatial one reads its
input flattened row-major (height, width, channel), as tf.reshape flattens NHWC.
Every Dense/Conv layer but the last is followed by a ReLU; the last gives the logits.
"""
from typing import NamedTuple, Tuple


class Dense(NamedTuple):
    name: str
    units: int
    dropout: float = 0.0      # rate applied to this layer's input while training


class Conv(NamedTuple):
    name: str
    filters: int
    kernel: int               # square kernel
    dropout: float = 0.0
    stride: int = 1
    padding: str = "VALID"    # VALID (no padding, as LeNet-5) or SAME (zero padding, output = ceil(input / stride))


class MaxPool(NamedTuple):
    size: int                 # square window, stride = size


class AvgPool(NamedTuple):
    size: int                 # square window, stride = size


class ModelSpec(NamedTuple):
    name: str
    input_shape: Tuple[int, ...]   # per example: (features,) or (height, width, channels)
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


LAYER_TYPES = (Dense, Conv, MaxPool, AvgPool)
POOLS = (MaxPool, AvgPool)


def conv_out(size, conv):
    """Output length along one axis: VALID floor((n - k) / s) + 1, SAME ceil(n / s), as tf.nn.conv2d."""
    if conv.padding == "SAME":
        return -(-size // conv.stride)
    return (size - conv.kernel) // conv.stride + 1


def same_padding_before(size, conv):
    """Zeros TensorFlow puts before the first row/column for SAME padding (the rest go after)."""
    if conv.padding != "SAME":
        return 0
    total = max((conv_out(size, conv) - 1) * conv.stride + conv.kernel - size, 0)
    return total // 2


def layer_shapes(spec):
    """Yields (layer, input_shape, output_shape) per layer, shapes without the batch axis."""
    shape = tuple(spec.input_shape)
    for layer in spec.layers:
        if isinstance(layer, Conv):
            h, w, _ = shape
            out = (conv_out(h, layer), conv_out(w, layer), layer.filters)
        elif isinstance(layer, POOLS):
            h, w, c = shape
            out = (h // layer.size, w // layer.size, c)
        elif isinstance(layer, Dense):
            out = (layer.units,)
        else:
            raise TypeError(f"unknown layer {layer!r}")
        yield layer, shape, out
        shape = out


def to_json(spec):
    """A plain description of the spec (saved beside checkpoints; compared to refuse an edited model)."""
    return {"name": spec.name, "input_shape": list(spec.input_shape),
            "layers": [{"type": type(l).__name__, **l._asdict()} for l in spec.layers]}
