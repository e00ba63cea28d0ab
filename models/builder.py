"""The one builder: a ModelSpec plus a source of weights becomes a TF graph.

Weights come either from fresh tf.Variables (training a teacher or a student) or
from a dict of numpy arrays turned into tf.constants (the frozen teacher). Both
paths go through `build`, so a model is defined exactly once.
"""
from typing import Dict, List, NamedTuple

import numpy as np
import tensorflow as tf

from models.spec import AvgPool, Conv, Dense, MaxPool, conv_out, layer_shapes, same_padding_before  # noqa: F401

tf1 = tf.compat.v1


def param_shapes(spec) -> Dict[str, tuple]:
    """Checkpoint variable name -> shape, in layer order."""
    shapes = {}
    for layer, in_shape, _ in layer_shapes(spec):
        if isinstance(layer, Conv):
            shapes[f"{layer.name}/weights"] = (layer.kernel, layer.kernel, in_shape[-1], layer.filters)
        elif isinstance(layer, Dense):
            shapes[f"{layer.name}/weights"] = (int(np.prod(in_shape)), layer.units)
        else:
            continue
        shapes[f"{layer.name}/biases"] = (shapes[f"{layer.name}/weights"][-1],)
    return shapes


def param_count(spec):
    return int(sum(np.prod(s) for s in param_shapes(spec).values()))


def forward_macs(spec):
    """Multiply-adds of one example's forward pass through the Dense and Conv layers."""
    total = 0
    for layer, in_shape, out_shape in layer_shapes(spec):
        if isinstance(layer, Conv):
            total += int(np.prod(out_shape)) * layer.kernel * layer.kernel * in_shape[-1]
        elif isinstance(layer, Dense):
            total += int(np.prod(in_shape)) * layer.units
    return total


def recorded_shapes(spec) -> Dict[str, tuple]:
    """Pre-activation shape (per example) of every Dense/Conv layer, in order."""
    return {layer.name: out for layer, _, out in layer_shapes(spec) if isinstance(layer, (Dense, Conv))}


def weighted_input_shapes(spec):
    """Input shape (per example) of every Dense/Conv layer, in order."""
    return [in_shape for layer, in_shape, _ in layer_shapes(spec) if isinstance(layer, (Dense, Conv))]


class Model(NamedTuple):
    logits: tf.Tensor
    pre_activations: List[tf.Tensor]   # one per Dense/Conv layer; the last is the logits
    layer_names: List[str]
    layer_inputs: List[tf.Tensor]      # what each Dense/Conv layer reads (after pooling, dropout, flattening)
    params: Dict[str, tf.Tensor]


def create_variables(spec, seed=None):
    """Fresh trainable variables: Glorot-uniform weights, zero biases."""
    params = {}
    for i, (name, shape) in enumerate(param_shapes(spec).items()):
        if name.endswith("/weights"):
            init = tf1.glorot_uniform_initializer(seed=None if seed is None else seed + i)
        else:
            init = tf1.zeros_initializer()
        params[name] = tf1.get_variable(name, shape=shape, dtype=tf.float32, initializer=init)
    return params


def constants(spec, values: Dict[str, np.ndarray]):
    """Frozen weights: every parameter becomes a tf.constant; nothing here can be trained."""
    return {name: tf.constant(values[name], dtype=tf.float32, name=name.replace("/", "_"))
            for name in param_shapes(spec)}


def build(spec, inputs, params, dropout=None) -> Model:
    """inputs: [batch, input_size] float32. params: from create_variables or constants.

    dropout: None for inference, or f(x, rate, layer_index) -> x, called on the input
    of every layer whose spec has a non-zero dropout rate.
    """
    x = tf.reshape(inputs, (-1,) + tuple(spec.input_shape))
    pre_activations, names, layer_inputs = [], [], []
    weighted = spec.weighted_layers
    for layer, _, _ in layer_shapes(spec):
        if isinstance(layer, MaxPool):
            x = tf.nn.max_pool2d(x, layer.size, layer.size, "VALID")
            continue
        if isinstance(layer, AvgPool):
            x = tf.nn.avg_pool2d(x, layer.size, layer.size, "VALID")
            continue
        if dropout is not None and layer.dropout > 0:
            x = dropout(x, layer.dropout, len(names))
        w, b = params[f"{layer.name}/weights"], params[f"{layer.name}/biases"]
        if isinstance(layer, Conv):
            z = tf.nn.conv2d(x, w, strides=layer.stride, padding=layer.padding) + b
        else:
            if len(x.shape) > 2:
                x = tf.reshape(x, (-1, int(np.prod(x.shape[1:]))))
            z = tf.matmul(x, w) + b
        layer_inputs.append(x)
        z = tf.identity(z, name=f"{layer.name}_preactivation")
        pre_activations.append(z)
        names.append(layer.name)
        x = z if layer is weighted[-1] else tf.nn.relu(z)
    return Model(logits=pre_activations[-1], pre_activations=pre_activations,
                 layer_names=names, layer_inputs=layer_inputs, params=params)
