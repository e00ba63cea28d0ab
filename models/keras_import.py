"""Bring a Keras model (Sequential or Functional) into dfkd: a model file with its SPEC and a checkpoint.

    python -m models.keras_import --keras_model=teacher.keras --out_dir=imported [--name=my_teacher]

Supported layers: InputLayer; Conv2D (square kernel and stride, channels last, undilated, ungrouped,
VALID/SAME padding, linear or ReLU); Dense (linear or ReLU; linear or softmax on the last);
BatchNormalization (last axis); ReLU and Activation('relu' | 'linear' | 'softmax'); Add (a residual
block: two branches from one tensor, joined by the Add, then a ReLU); MaxPooling2D and
AveragePooling2D (square, any stride, VALID/SAME); GlobalAveragePooling2D; ZeroPadding2D (before a
Conv2D or AveragePooling2D); Flatten; Dropout; Rescaling and Normalization at the input (they become
the spec's input normalization, so dfkd feeds the model [0, 1] pixels as Keras did). Anything else is
refused in one line naming the layer. Writes OUT_DIR/NAME.py and the checkpoint OUT_DIR/NAME (.index,
.data-*), then checks dfkd's rebuilt model against Keras on random inputs and prints the largest
difference. A .keras file is loaded without its custom objects and without Lambda layers (Keras' safe
mode), but it is still a file of someone's code: import only models you trust.
"""
import argparse
import os
import sys

import numpy as np

from models.import_graph import INPUT, Node, clean_name, to_spec, write_and_check  # noqa: E402
from utils.errors import UserError  # noqa: E402

FLAG = "--keras_model"


def _fail(layer, why):
    raise UserError(f"{FLAG}: layer {layer.name} ({type(layer).__name__}): {why}")


def _square(value, what, layer):
    value = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(set(value)) != 1:
        _fail(layer, f"non-square {what} {value}; dfkd takes square ones")
    return int(value[0])


def _activation(layer, name, activation, last_ok):
    """The node after a layer's built-in activation (None for linear)."""
    if activation == "linear":
        return None
    if activation == "relu":
        return Node(f"{name}__relu", type(layer).__name__, "relu", (name,))
    if activation == "softmax" and last_ok:
        return Node(f"{name}__softmax", type(layer).__name__, "softmax", (name,))
    _fail(layer, f"activation {activation}; dfkd takes relu or linear (softmax on the last layer)")


def _pads(value):
    (top, bottom), (left, right) = [(v, v) if isinstance(v, int) else tuple(v) for v in
                                    ((value, value) if isinstance(value, int) else value)]
    return (int(top), int(bottom), int(left), int(right))


def _weighted(layer, config, node, last):
    kind, weights = type(layer).__name__, layer.get_weights()
    arrays = {"weights": weights[0], **({"biases": weights[1]} if len(weights) > 1 else {})}
    if kind == "Conv2D":
        if config.get("data_format", "channels_last") != "channels_last" or config.get("groups", 1) != 1 or \
                _square(config.get("dilation_rate", 1), "dilation", layer) != 1:
            _fail(layer, "dfkd takes channels-last, undilated, ungrouped convolutions")
        out = node("conv", dict(filters=config["filters"], kernel=_square(config["kernel_size"], "kernel", layer),
                                stride=_square(config["strides"], "stride", layer),
                                padding=config["padding"].upper()), arrays)
    else:
        out = node("dense", {}, arrays)
    after = _activation(layer, layer.name, config["activation"], last and kind == "Dense")
    return [out] + ([after] if after else [])


def _batchnorm(layer, config, node, last):
    axis = config["axis"][0] if isinstance(config["axis"], (list, tuple)) else config["axis"]
    if axis not in (-1, len(layer.input.shape) - 1):
        _fail(layer, f"normalizes axis {axis}; dfkd's BatchNorm normalizes the last (channels) axis")
    arrays = {p: np.asarray(getattr(layer, p)) for p in ("gamma", "beta", "moving_mean", "moving_variance")
              if getattr(layer, p, None) is not None}
    return [node("batchnorm", dict(epsilon=config["epsilon"], momentum=config["momentum"]), arrays)]


def _relu(layer, config, node, last):
    if config.get("max_value") is not None or config.get("negative_slope", 0) or config.get("threshold", 0):
        _fail(layer, "a capped, leaky or thresholded ReLU; dfkd takes the plain ReLU")
    return [node("relu")]


def _activation_layer(layer, config, node, last):
    activation = config["activation"]
    if activation not in ("relu", "linear", "softmax") or (activation == "softmax" and not last):
        _fail(layer, f"activation {activation}; dfkd takes relu or linear (softmax on the last layer)")
    return [node({"relu": "relu", "linear": "identity", "softmax": "softmax"}[activation])]


def _pool(layer, config, node, last):
    size = _square(config["pool_size"], "pool size", layer)
    return [node("maxpool" if type(layer).__name__ == "MaxPooling2D" else "avgpool",
                 dict(size=size, stride=_square(config["strides"] or size, "stride", layer),
                      padding=config["padding"].upper()))]


def _global_pool(layer, config, node, last):
    if config.get("keepdims"):
        _fail(layer, "keepdims=True; dfkd's global pooling gives one value per channel")
    return [node("global_avg_pool")]


def _rescaling(layer, config, node, last):
    scale, offset = np.ravel(config["scale"]).astype(float), np.ravel(config["offset"]).astype(float)
    shape = max(scale.shape, offset.shape)
    return [node("normalize", dict(mean=tuple(np.broadcast_to(-offset / scale, shape)),
                                   std=tuple(np.broadcast_to(1.0 / scale, shape))))]


def _normalization(layer, config, node, last):
    if config.get("invert"):
        _fail(layer, "invert=True undoes a normalization; dfkd takes one at the input")
    mean, variance = np.ravel(np.asarray(layer.mean)), np.ravel(np.asarray(layer.variance))
    return [node("normalize", dict(mean=tuple(mean), std=tuple(np.maximum(np.sqrt(variance), 1e-7))))]


# Keras layer class -> (layer, its config, a Node maker, whether it is the model's last) -> dfkd Nodes
TRANSLATORS = {
    "Conv2D": _weighted, "Dense": _weighted, "BatchNormalization": _batchnorm, "ReLU": _relu,
    "Activation": _activation_layer, "Add": lambda layer, config, node, last: [node("add")],
    "MaxPooling2D": _pool, "AveragePooling2D": _pool, "GlobalAveragePooling2D": _global_pool,
    "ZeroPadding2D": lambda layer, config, node, last: [node("pad", dict(pads=_pads(config["padding"])))],
    # Keras flattens channels last, as dfkd does
    "Flatten": lambda layer, config, node, last: [node("flatten", dict(order="hwc"))],
    "Dropout": lambda layer, config, node, last: [node("dropout", dict(rate=config["rate"]))],
    "Rescaling": _rescaling, "Normalization": _normalization,
}
TRANSLATORS["SpatialDropout2D"] = TRANSLATORS["Dropout"]
SUPPORTED = ", ".join(["InputLayer"] + list(TRANSLATORS))


def translate(layer, inputs, last):
    """One Keras layer -> dfkd Nodes (a layer with a ReLU or softmax built in gives two)."""
    kind, name = type(layer).__name__, layer.name
    if kind not in TRANSLATORS:
        _fail(layer, f"dfkd has no such layer; it takes {SUPPORTED}")
    node = lambda op, attrs={}, arrays={}: Node(name, kind, op, inputs, attrs, arrays)  # noqa: E731
    return TRANSLATORS[kind](layer, layer.get_config(), node, last)


def _history_names(args):
    """The names of the layers whose outputs a Functional config's inbound node reads, in order."""
    if isinstance(args, dict):
        history = args.get("config", {}).get("keras_history") if args.get("class_name") == "__keras_tensor__" \
            else None
        return [history[0]] if history else [n for v in args.values() for n in _history_names(v)]
    if isinstance(args, (list, tuple)):
        return [n for v in args for n in _history_names(v)]
    return []


def graph_of(model):
    """(Nodes, output node name, input shape per example) of a Sequential or Functional model."""
    kind = type(model).__name__
    if kind == "Sequential":
        reads = {}
        previous = INPUT
        for layer in model.layers:
            reads[layer.name] = (previous,)
            previous = layer.name
        output, order = previous, list(model.layers)
    elif kind == "Functional":
        config = model.get_config()
        # One tensor is written [layer, node, index]; several, a list of those.
        inputs, outputs = [[c] if isinstance(c[0], str) else c for c in (config["input_layers"],
                                                                          config["output_layers"])]
        if len(inputs) != 1 or len(outputs) != 1:
            raise UserError(f"{FLAG}: the model has {len(inputs)} inputs and {len(outputs)} outputs; dfkd takes one "
                            "of each")
        input_name, output = inputs[0][0], outputs[0][0]
        reads, order = {}, []
        for entry in config["layers"]:
            layer = model.get_layer(entry["name"])
            if entry["class_name"] == "InputLayer":
                continue
            if len(entry["inbound_nodes"]) != 1:
                _fail(layer, f"is called {len(entry['inbound_nodes'])} times; dfkd needs each layer used once")
            if type(layer).__name__ in ("Functional", "Sequential"):
                _fail(layer, "a model inside the model; save the inner model's layers inline")
            reads[layer.name] = tuple(INPUT if n == input_name else n
                                      for n in _history_names(entry["inbound_nodes"][0]["args"]))
            order.append(layer)
    else:
        raise UserError(f"{FLAG}: a {kind} model; dfkd imports Keras Sequential and Functional models (a subclassed "
                        "model has no graph to read: rebuild it as Functional)")
    nodes, renamed = [], {}
    for layer in order:
        if type(layer).__name__ == "InputLayer":
            renamed[layer.name] = INPUT
            continue
        made = translate(layer, tuple(renamed.get(i, i) for i in reads[layer.name]), layer.name == output)
        nodes += made
        renamed[layer.name] = made[-1].name
    shape = tuple(int(d) for d in model.input_shape[1:])
    return nodes, renamed.get(output, output), shape


def convert(model, name=""):
    """An import_graph.Imported (spec, values, softmax) from a loaded Keras model."""
    nodes, output, input_shape = graph_of(model)
    if None in input_shape or 0 in input_shape:
        raise UserError(f"{FLAG}: the model's input shape {model.input_shape} is not fixed; dfkd needs it")
    return to_spec(name or clean_name(model.name), nodes, output, input_shape, FLAG)


def run(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keras_model", required=True, help="a saved Keras model (.keras or .h5)")
    p.add_argument("--out_dir", required=True, help="where NAME.py and the checkpoint NAME go")
    p.add_argument("--name", default="", help="the model's name (default: the Keras model's)")
    args = p.parse_args(argv)
    if not os.path.isfile(args.keras_model):
        raise UserError(f"{FLAG}: file not found: {args.keras_model}")
    import keras
    try:
        model = keras.models.load_model(args.keras_model, compile=False)
    except Exception as e:  # Keras raises many kinds for a file it cannot read
        raise UserError(f"{FLAG}: {args.keras_model} could not be loaded ({type(e).__name__}: {e})")
    imported = convert(model, clean_name(args.name) if args.name else "")
    return write_and_check(imported, args.out_dir, f"Keras ({os.path.basename(args.keras_model)})",
                           lambda x: model(x, training=False), FLAG, checked_against="Keras")


if __name__ == "__main__":
    from utils.errors import main_guard
    sys.exit(main_guard(run))
