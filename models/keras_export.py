"""Write a dfkd model (a distilled student, typically) as a Keras model file.

    python -m models.keras_export --model=M --model_checkpoint=P --out=student.keras

The Keras model takes what dfkd's model takes, [0, 1] pixels shaped (height, width, channels) (or a
flat vector for an MLP), with the spec's input normalization as its first layer, and gives the logits.
Layers: Conv2D (explicit pads as ZeroPadding2D), BatchNormalization (the moving statistics), ReLU, Add
for residual blocks, MaxPooling2D / AveragePooling2D, GlobalAveragePooling2D, Flatten + Dense. After
saving, the file is loaded back with keras.models.load_model and its outputs are compared with dfkd's.
"""
import argparse
import os
import sys

import numpy as np

from models.spec import (AvgPool, BatchNorm, Conv, Dense, GlobalAvgPool, MaxPool, ReLU, Residual,  # noqa: E402
                         activated_layers)
from utils.errors import UserError  # noqa: E402


def _same_pads(layer, hw):
    """Whether a layer's explicit pads are the zeros TensorFlow's SAME would put there."""
    from models.builder import same_pads
    kernel, stride = (layer.size, layer.stride or layer.size) if isinstance(layer, (MaxPool, AvgPool)) else \
        (layer.kernel, layer.stride)
    return tuple(layer.pads) == same_pads(hw, kernel, stride)


class _Writer:
    def __init__(self, keras, values):
        self.keras, self.values, self.weights = keras, values, []   # (Keras layer, its arrays) set after build

    def sequence(self, layers, x, prefix):
        K = self.keras.layers
        for layer in layers:
            name = prefix + layer.name if hasattr(layer, "name") else ""
            keras_name = name.replace("/", "__")
            if isinstance(layer, ReLU):
                x = K.ReLU()(x)
            elif isinstance(layer, Residual):
                body = self.sequence(layer.body, x, name + "/")
                shortcut = self.sequence(layer.shortcut, x, name + "/")
                x = K.ReLU()(K.Add(name=keras_name)([body, shortcut]))
            elif isinstance(layer, Conv):
                padding = layer.padding.lower()
                if layer.pads and _same_pads(layer, x.shape[1:3]):
                    padding = "same"
                elif layer.pads:
                    top, bottom, left, right = layer.pads
                    x = K.ZeroPadding2D(((top, bottom), (left, right)))(x)
                    padding = "valid"
                conv = K.Conv2D(layer.filters, layer.kernel, strides=layer.stride, padding=padding,
                                use_bias=layer.bias, name=keras_name)
                x = conv(x)
                self.weights.append((conv, [self.values[f"{name}/weights"]] +
                                     ([self.values[f"{name}/biases"]] if layer.bias else [])))
            elif isinstance(layer, Dense):
                if len(x.shape) > 2:
                    x = K.Flatten()(x)   # (height, width, channel) order, as dfkd's
                dense = K.Dense(layer.units, name=keras_name)
                x = dense(x)
                self.weights.append((dense, [self.values[f"{name}/weights"], self.values[f"{name}/biases"]]))
            elif isinstance(layer, BatchNorm):
                bn = K.BatchNormalization(epsilon=layer.epsilon, momentum=layer.momentum, name=keras_name)
                x = bn(x)
                self.weights.append((bn, [self.values[f"{name}/{p}"] for p in
                                          ("gamma", "beta", "moving_mean", "moving_variance")]))
            elif isinstance(layer, (MaxPool, AvgPool)):
                padding = layer.padding.lower()
                if layer.pads and not _same_pads(layer, x.shape[1:3]):
                    if isinstance(layer, MaxPool):
                        raise UserError(f"--model: a MaxPool with pads {layer.pads} (other than SAME's) has no Keras "
                                        "layer that pads with -inf; dfkd cannot export this model yet")
                    top, bottom, left, right = layer.pads
                    x = K.ZeroPadding2D(((top, bottom), (left, right)))(x)   # counted zeros, as dfkd's AvgPool
                    padding = "valid"
                elif layer.pads:
                    if isinstance(layer, AvgPool):
                        raise UserError(f"--model: an AvgPool with pads {layer.pads} counts them in the mean; "
                                        "Keras' SAME does not, so dfkd cannot export this model yet")
                    padding = "same"
                pool = K.MaxPooling2D if isinstance(layer, MaxPool) else K.AveragePooling2D
                x = pool(layer.size, strides=layer.stride or layer.size, padding=padding)(x)
            elif isinstance(layer, GlobalAvgPool):
                x = K.GlobalAveragePooling2D()(x)
            else:
                raise UserError(f"--model: no Keras layer for {layer!r}")
        return x


def to_keras(spec, values):
    import keras
    inputs = keras.Input(tuple(spec.input_shape), name="pixels")
    x = inputs
    if spec.normalize is not None:
        channels = spec.input_shape[-1]
        mean = np.broadcast_to(np.asarray(spec.normalize.mean, np.float32), (channels,))
        std = np.broadcast_to(np.asarray(spec.normalize.std, np.float32), (channels,))
        x = keras.layers.Normalization(mean=mean, variance=std ** 2, name="input_normalization")(x)
    writer = _Writer(keras, values)
    outputs = writer.sequence(activated_layers(spec), x, "")
    model = keras.Model(inputs, outputs, name=spec.name)
    for layer, arrays in writer.weights:
        layer.set_weights([np.asarray(a, np.float32) for a in arrays])
    return model


def run(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a built-in model name or a model file (.py)")
    p.add_argument("--model_checkpoint", required=True, help="its checkpoint prefix (e.g. a distill run's student)")
    p.add_argument("--out", required=True, help="the .keras file to write")
    args = p.parse_args(argv)
    if not args.out.endswith(".keras"):
        raise UserError(f"--out: {args.out} must end in .keras (Keras' own format)")
    from models import checkpoint
    from models.import_graph import dfkd_logits
    spec = checkpoint.spec_for(args.model, args.model_checkpoint)
    values = checkpoint.load_teacher_values(spec, "", args.model_checkpoint)
    model = to_keras(spec, values)
    import keras
    folder = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(folder, exist_ok=True)
    partial = os.path.join(folder, f".{os.path.basename(args.out)}.partial.keras")
    model.save(partial)
    os.replace(partial, args.out)   # a reader never sees half a file
    loaded = keras.models.load_model(args.out)
    x = np.random.default_rng(0).uniform(0, 1, (16,) + tuple(spec.input_shape)).astype(np.float32)
    ours = dfkd_logits(spec, values, x)
    theirs = np.asarray(loaded(x, training=False))
    difference = float(np.abs(ours - theirs).max())
    print(f"wrote {args.out}; largest difference between Keras and dfkd on 16 random inputs: {difference:.2e} "
          f"(logits up to {np.abs(ours).max():.3g})")
    if difference > 1e-3 * max(1.0, float(np.abs(ours).max())):
        raise UserError(f"--out: the Keras model differs from dfkd's by {difference:.3g}; please report this model")
    return args.out


if __name__ == "__main__":
    from utils.errors import main_guard
    sys.exit(main_guard(run))
