"""Bring a tf.keras Sequential model into dfkd: a model file with its SPEC and a checkpoint.

    python -m models.keras_import --keras_model=teacher.keras --out_dir=imported [--name=my_teacher]

Supported layers: InputLayer, Conv2D (square kernel and stride, VALID/SAME padding, ReLU),
MaxPooling2D / AveragePooling2D (square, stride = size), Flatten, Dropout, Dense (ReLU, or
linear / softmax on the last one). Anything else is refused, naming the layer. Writes
OUT_DIR/NAME.py and the checkpoint OUT_DIR/NAME (.index, .data-*), then checks that dfkd's
rebuilt model gives the Keras model's outputs on random inputs.
"""
import argparse
import os
import sys

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from models.spec import AvgPool, Conv, Dense, MaxPool, ModelSpec  # noqa: E402
from utils.errors import UserError  # noqa: E402


def _square(value, what, layer):
    value = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(set(value)) != 1:
        raise UserError(f"--keras_model: layer {layer.name} has a non-square {what} {value}")
    return int(value[0])


def convert(model):
    """(ModelSpec, {variable name: array}, whether the Keras output is a softmax)."""
    layers, values, dropout, softmax = [], {}, 0.0, False
    weighted = [l for l in model.layers if type(l).__name__ in ("Dense", "Conv2D")]
    for layer in model.layers:
        kind, config = type(layer).__name__, layer.get_config()
        if kind in ("InputLayer", "Flatten"):
            continue           # dfkd flattens row-major (height, width, channel), as Keras' Flatten does
        if kind == "Dropout":
            dropout = float(config["rate"])
            continue
        if kind in ("MaxPooling2D", "AveragePooling2D"):
            size = _square(config["pool_size"], "pool size", layer)
            if _square(config["strides"] or size, "stride", layer) != size or config["padding"] != "valid":
                raise UserError(f"--keras_model: layer {layer.name}: dfkd pools with stride = size and VALID padding")
            layers.append((MaxPool if kind == "MaxPooling2D" else AvgPool)(size))
            continue
        if kind not in ("Dense", "Conv2D"):
            raise UserError(f"--keras_model: layer {layer.name} is a {kind}; dfkd takes Dense, Conv2D, "
                            "MaxPooling2D, AveragePooling2D, Flatten and Dropout")
        last = layer is weighted[-1]
        activation = config["activation"]
        if activation not in (("linear", "softmax") if last else ("relu",)):
            raise UserError(f"--keras_model: layer {layer.name} has activation {activation}; hidden layers need relu, "
                            "the last linear or softmax")
        softmax = last and activation == "softmax"
        name = "".join(c if c.isalnum() or c == "_" else "_" for c in layer.name)
        weights = layer.get_weights()
        kernel = weights[0]
        bias = weights[1] if len(weights) > 1 else np.zeros(kernel.shape[-1], np.float32)
        if kind == "Dense":
            layers.append(Dense(name, int(config["units"]), dropout=dropout))
        else:
            if config.get("data_format", "channels_last") != "channels_last" or \
                    _square(config.get("dilation_rate", 1), "dilation", layer) != 1 or config.get("groups", 1) != 1:
                raise UserError(f"--keras_model: layer {layer.name}: dfkd takes channels-last, undilated, ungrouped "
                                "convolutions")
            layers.append(Conv(name, int(config["filters"]), _square(config["kernel_size"], "kernel", layer),
                               dropout=dropout, stride=_square(config["strides"], "stride", layer),
                               padding=config["padding"].upper()))
        values[f"{name}/weights"], values[f"{name}/biases"] = kernel.astype(np.float32), bias.astype(np.float32)
        dropout = 0.0
    input_shape = tuple(int(d) for d in model.input_shape[1:])
    return layers, input_shape, values, softmax


def spec_source(name, input_shape, layers):
    lines = [f'"""{name}: imported from Keras by models/keras_import.py."""',
             "from models.spec import AvgPool, Conv, Dense, MaxPool, ModelSpec", "",
             "SPEC = ModelSpec(", f"    name={name!r},", f"    input_shape={input_shape!r},", "    layers=("]
    lines += [f"        {layer!r}," for layer in layers]
    lines += ["    ),", ")", ""]
    return "\n".join(lines)


def save_checkpoint(values, prefix):
    import tensorflow as tf
    with tf.Graph().as_default():
        variables = {name: tf.compat.v1.Variable(v, name=name) for name, v in values.items()}
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver(variables).save(sess, prefix)


def dfkd_outputs(spec_path, prefix, x):
    """The logits of the model file and checkpoint as dfkd rebuilds them."""
    import models
    from models import checkpoint
    from procedures.distill import teacher_logits
    spec = models.get(spec_path, "--out_dir")
    return teacher_logits(spec, checkpoint.load_teacher_values(spec, "", prefix), x.reshape(len(x), -1), 1000, 0)


def run(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keras_model", required=True, help="a saved tf.keras model (.keras or .h5)")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--name", default="", help="the model's name (default: the Keras model's)")
    args = p.parse_args(argv)
    if not os.path.isfile(args.keras_model):
        raise UserError(f"--keras_model: file not found: {args.keras_model}")
    import keras
    try:
        model = keras.models.load_model(args.keras_model, compile=False)
    except Exception as e:  # Keras raises many kinds for a file it cannot read
        raise UserError(f"--keras_model: {args.keras_model} could not be loaded ({type(e).__name__}: {e})")
    layers, input_shape, values, softmax = convert(model)
    name = args.name or "".join(c if c.isalnum() or c in "._-" else "_" for c in model.name)
    os.makedirs(args.out_dir, exist_ok=True)
    spec_path, prefix = os.path.join(args.out_dir, f"{name}.py"), os.path.join(args.out_dir, name)
    from utils import atomic
    atomic.save_bytes(spec_path, spec_source(name, input_shape, layers).encode())
    save_checkpoint(values, prefix)
    x = np.random.default_rng(0).uniform(0, 1, (16,) + input_shape).astype(np.float32)
    expected = np.asarray(model(x, training=False))
    ours = dfkd_outputs(spec_path, prefix, x)
    if softmax:
        ours = np.exp(ours - ours.max(1, keepdims=True))
        ours /= ours.sum(1, keepdims=True)
    difference = float(np.abs(ours - expected).max())
    print(f"wrote {spec_path} and the checkpoint {prefix}; largest difference from Keras on 16 random inputs: "
          f"{difference:.2e}")
    if difference > 1e-3 * max(1.0, float(np.abs(expected).max())):
        raise UserError(f"the rebuilt model differs from the Keras one by {difference:.3g}; please report this model")
    print(f"use: --model={spec_path} --model_checkpoint={prefix}")
    return spec_path, prefix


if __name__ == "__main__":
    from viz.common import main_guard
    sys.exit(main_guard(run))
