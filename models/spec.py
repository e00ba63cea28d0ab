"""The vocabulary that model files use to declare their layers.

Shapes are per example, channels last. A Dense layer after a spatial one reads its
input flattened row-major (height, width, channel), as tf.reshape flattens NHWC.

Activations: a spec that names no ReLU gets one after every Dense/Conv layer but the last
(the paper's networks, and every spec written before ReLU existed). A spec that names a
ReLU anywhere places every activation itself: Conv, BatchNorm, ReLU, as ResNets are written.
A Residual block's output is always ReLU(body(x) + shortcut(x)).
"""
from typing import NamedTuple, Optional, Tuple


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
    pads: Optional[Tuple[int, int, int, int]] = None   # explicit zeros (top, bottom, left, right), then VALID
    bias: bool = True         # False before a BatchNorm, as ResNets are written


class MaxPool(NamedTuple):
    size: int                 # square window
    stride: Optional[int] = None   # default: the window
    padding: str = "VALID"
    pads: Optional[Tuple[int, int, int, int]] = None   # explicit (top, bottom, left, right), then VALID;
    #                           a max-pool's pads never win (PyTorch's padding=1 on a ResNet stem)


class AvgPool(NamedTuple):
    size: int
    stride: Optional[int] = None
    padding: str = "VALID"
    pads: Optional[Tuple[int, int, int, int]] = None   # zeros that count in the mean (count_include_pad)


class GlobalAvgPool(NamedTuple):
    """The mean over height and width: (h, w, c) -> (c,)."""


class BatchNorm(NamedTuple):
    """Per-channel (last axis) normalization: batch moments while training, moving ones at inference."""
    name: str
    epsilon: float = 1e-5
    momentum: float = 0.9     # moving = momentum * moving + (1 - momentum) * batch


class ReLU(NamedTuple):
    pass


class Residual(NamedTuple):
    """ReLU(body(x) + shortcut(x)); an empty shortcut is the identity. Layer names inside are
    prefixed with the block's name ("stage1_block1/conv1")."""
    name: str
    body: tuple
    shortcut: tuple = ()


class Normalize(NamedTuple):
    """What the teacher's first op does to [0, 1] pixels: (x - mean) / std, per channel or one value."""
    mean: Tuple[float, ...]
    std: Tuple[float, ...]

    @classmethod
    def scale_offset(cls, scale, offset):
        """x * scale + offset (Keras' Rescaling), as mean and std."""
        return cls(mean=(-offset / scale,), std=(1.0 / scale,))


class ModelSpec(NamedTuple):
    name: str
    input_shape: Tuple[int, ...]   # per example: (features,) or (height, width, channels)
    layers: tuple                  # the last layer gives the logits (no ReLU)
    normalize: Optional[Normalize] = None

    @property
    def input_size(self):
        size = 1
        for d in self.input_shape:
            size *= d
        return size

    @property
    def channels(self):
        """Input channels of an image model, or None."""
        return self.input_shape[-1] if len(self.input_shape) == 3 else None

    @property
    def weighted_layers(self):
        """Dense and Conv layers, in order, inside blocks too."""
        return [l for _, l, _, _ in walk(self) if isinstance(l, (Dense, Conv))]

    @property
    def num_classes(self):
        return self.weighted_layers[-1].units

    @property
    def explicit_activations(self):
        """True where the spec places its ReLUs itself (it names one, or has a residual block)."""
        return any(isinstance(l, (ReLU, Residual)) for _, l, _, _ in walk(self))

    @property
    def has_batchnorm(self):
        return any(isinstance(l, BatchNorm) for _, l, _, _ in walk(self))


LAYER_TYPES = (Dense, Conv, MaxPool, AvgPool, GlobalAvgPool, BatchNorm, ReLU, Residual)
POOLS = (MaxPool, AvgPool)
NAMED = (Dense, Conv, BatchNorm, Residual)


def pool_stride(pool):
    return pool.stride or pool.size


def _window_out(size, kernel, stride, padding, pads=(0, 0)):
    """Output length along one axis, as TensorFlow computes it."""
    if padding == "SAME":
        return -(-size // stride)
    return (size + sum(pads) - kernel) // stride + 1


def conv_out(size, conv, axis=0):
    """Output length along one axis (0 = height, 1 = width)."""
    pads = conv.pads[2 * axis:2 * axis + 2] if conv.pads else (0, 0)
    return _window_out(size, conv.kernel, conv.stride, conv.padding, pads)


def same_padding_before(size, conv):
    """Zeros before the first row/column: the explicit pads, or what TensorFlow's SAME puts there."""
    if conv.pads:
        return conv.pads[0]
    if conv.padding != "SAME":
        return 0
    total = max((conv_out(size, conv) - 1) * conv.stride + conv.kernel - size, 0)
    return total // 2


def next_shape(layer, shape):
    """A layer's output shape (per example) given its input shape."""
    if isinstance(layer, Conv):
        h, w, _ = shape
        return (conv_out(h, layer, 0), conv_out(w, layer, 1), layer.filters)
    if isinstance(layer, POOLS):
        h, w, c = shape
        stride = pool_stride(layer)
        pads = layer.pads or (0, 0, 0, 0)
        return (_window_out(h, layer.size, stride, layer.padding, pads[:2]),
                _window_out(w, layer.size, stride, layer.padding, pads[2:]), c)
    if isinstance(layer, GlobalAvgPool):
        return (shape[-1],)
    if isinstance(layer, Dense):
        return (layer.units,)
    if isinstance(layer, (BatchNorm, ReLU)):
        return tuple(shape)
    if isinstance(layer, Residual):
        body = _sequence_out(layer.body, shape)
        short = _sequence_out(layer.shortcut, shape)
        if body != short:
            raise ValueError(f"residual block {layer.name}: body gives {body} but shortcut gives {short}")
        return body
    raise TypeError(f"unknown layer {layer!r}")


def _sequence_out(layers, shape):
    for layer in layers:
        shape = next_shape(layer, shape)
    return tuple(shape)


def layer_shapes(spec):
    """Yields (layer, input_shape, output_shape) per top-level layer, shapes without the batch axis."""
    shape = tuple(spec.input_shape)
    for layer in spec.layers:
        out = next_shape(layer, shape)
        yield layer, shape, out
        shape = out


def walk(spec):
    """Yields (full name, layer, input_shape, output_shape) for every layer, blocks' insides in order
    (body, then shortcut) before the block itself. Full names carry the enclosing blocks' names."""
    def visit(layers, shape, prefix):
        for layer in layers:
            name = prefix + layer.name if isinstance(layer, NAMED) else ""
            if isinstance(layer, Residual):
                yield from visit(layer.body, shape, name + "/")
                yield from visit(layer.shortcut, shape, name + "/")
            out = next_shape(layer, shape)
            yield name, layer, shape, out
            shape = out
    yield from visit(spec.layers, tuple(spec.input_shape), "")


# Fields added after checkpoints were first saved: written only when set, so the definitions
# saved beside older checkpoints compare equal to today's.
_ADDED_FIELDS = {Conv: ("pads", "bias"), MaxPool: ("stride", "padding", "pads"),
                 AvgPool: ("stride", "padding", "pads")}


def _layer_json(layer):
    fields = layer._asdict()
    if isinstance(layer, Residual):
        fields["body"] = [_layer_json(l) for l in layer.body]
        fields["shortcut"] = [_layer_json(l) for l in layer.shortcut]
    defaults = type(layer)._field_defaults
    for key in _ADDED_FIELDS.get(type(layer), ()):
        if fields[key] == defaults[key]:
            del fields[key]
    return {"type": type(layer).__name__, **fields}


def to_json(spec):
    """A plain description of the spec (saved beside checkpoints; compared to refuse an edited model)."""
    out = {"name": spec.name, "input_shape": list(spec.input_shape),
           "layers": [_layer_json(l) for l in spec.layers]}
    if spec.normalize is not None:
        out["normalize"] = {"mean": list(spec.normalize.mean), "std": list(spec.normalize.std)}
    return out


def activated_layers(spec):
    """The top-level layers with every ReLU in place: as declared, or, for a spec that names none,
    one after every Dense/Conv layer but the last (after the BatchNorms that follow it, if any)."""
    if spec.explicit_activations:
        return tuple(spec.layers)
    weighted = [i for i, l in enumerate(spec.layers) if isinstance(l, (Dense, Conv))]
    out, pending = [], False
    for i, layer in enumerate(spec.layers):
        if pending and not isinstance(layer, BatchNorm):
            out.append(ReLU())
            pending = False
        out.append(layer)
        pending = pending or (i in weighted and i != weighted[-1])
    return tuple(out + [ReLU()] * pending)


def recorded_points(spec):
    """[(name, shape)] of what each ReLU sees, then the logits: the layers that compute_stats records
    and the objectives match. A ReLU's input is named after the last named layer before it (a residual
    sum after its block); for the paper's specs these are the Dense/Conv pre-activations."""
    points = []

    def visit(layers, shape, prefix, last):
        for layer in layers:
            if isinstance(layer, Residual):
                name = prefix + layer.name
                visit(layer.body, shape, name + "/", last)
                visit(layer.shortcut, shape, name + "/", last)
                shape = next_shape(layer, shape)
                points.append((name, shape))    # the sum, which the block's ReLU sees
                last = name
                continue
            if isinstance(layer, ReLU):
                points.append((last, shape))
                continue
            if isinstance(layer, NAMED):
                last = prefix + layer.name
            shape = next_shape(layer, shape)
        return last, shape

    last, shape = visit(activated_layers(spec), tuple(spec.input_shape), "", "")
    points.append((last, shape))
    return points
