"""The one builder: a ModelSpec plus a source of weights becomes a TF graph.

Weights come either from fresh tf.Variables (training a teacher or a student) or
from a dict of numpy arrays turned into tf.constants (the frozen teacher). Both
paths go through `build`, so a model is defined exactly once.
"""
from typing import Dict, List, NamedTuple

import numpy as np
import tensorflow as tf

from models.spec import (AvgPool, BatchNorm, Conv, Dense, GlobalAvgPool, MaxPool, ReLU, Residual,  # noqa: F401
                         activated_layers, conv_out, layer_shapes, pool_stride, recorded_points,
                         same_padding_before, walk)

tf1 = tf.compat.v1
BATCHNORM_PARAMS = ("gamma", "beta", "moving_mean", "moving_variance")
MOVING = ("moving_mean", "moving_variance")   # statistics, not trained by gradients


def param_shapes(spec) -> Dict[str, tuple]:
    """Checkpoint variable name -> shape, in layer order."""
    shapes = {}
    for name, layer, in_shape, _ in walk(spec):
        if isinstance(layer, Conv):
            shapes[f"{name}/weights"] = (layer.kernel, layer.kernel, in_shape[-1], layer.filters)
            if layer.bias:
                shapes[f"{name}/biases"] = (layer.filters,)
        elif isinstance(layer, Dense):
            shapes[f"{name}/weights"] = (int(np.prod(in_shape)), layer.units)
            shapes[f"{name}/biases"] = (layer.units,)
        elif isinstance(layer, BatchNorm):
            for param in BATCHNORM_PARAMS:
                shapes[f"{name}/{param}"] = (in_shape[-1],)
    return shapes


def same_pads(hw, kernel, stride):
    """(top, bottom, left, right): the zeros TensorFlow's SAME padding puts around an input of `hw`."""
    pads = []
    for size in hw:
        total = max((-(-int(size) // stride) - 1) * stride + kernel - int(size), 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


def param_count(spec):
    return int(sum(np.prod(s) for s in param_shapes(spec).values()))


def forward_macs(spec):
    """Multiply-adds of one example's forward pass through the Dense and Conv layers."""
    total = 0
    for _, layer, in_shape, out_shape in walk(spec):
        if isinstance(layer, Conv):
            total += int(np.prod(out_shape)) * layer.kernel * layer.kernel * in_shape[-1]
        elif isinstance(layer, Dense):
            total += int(np.prod(in_shape)) * layer.units
    return total


def recorded_shapes(spec) -> Dict[str, tuple]:
    """Shape (per example) of what each ReLU sees, then of the logits (spec.recorded_points)."""
    return dict(recorded_points(spec))


def weighted_input_shapes(spec):
    """Input shape (per example) of every Dense/Conv layer, in order."""
    return [in_shape for _, layer, in_shape, _ in walk(spec) if isinstance(layer, (Dense, Conv))]


class Model(NamedTuple):
    logits: tf.Tensor
    pre_activations: List[tf.Tensor]   # what each ReLU sees, then the logits (spec.recorded_points)
    layer_names: List[str]
    layer_inputs: List[tf.Tensor]      # paper-style chains: what each Dense/Conv layer reads; else empty
    params: Dict[str, tf.Tensor]
    updates: List[tf.Operation]        # BatchNorm moving averages; run them with the training step
    batchnorm_inputs: Dict[str, tf.Tensor]   # what each BatchNorm normalizes (DeepInversion's moments)
    features: tf.Tensor = None         # what the last Dense/Conv layer reads, flattened (DAFL's features)


def create_variables(spec, seed=None):
    """Fresh variables: Glorot-uniform weights, zero biases; BatchNorm scale 1, offset 0, and moving
    statistics 0 and 1 that only the training step's updates change."""
    params = {}
    for i, (name, shape) in enumerate(param_shapes(spec).items()):
        kind = name.rsplit("/", 1)[1]
        if kind == "weights":
            init = tf1.glorot_uniform_initializer(seed=None if seed is None else seed + i)
        elif kind in ("gamma", "moving_variance"):
            init = tf1.ones_initializer()
        else:
            init = tf1.zeros_initializer()
        params[name] = tf1.get_variable(name, shape=shape, dtype=tf.float32, initializer=init,
                                        trainable=kind not in MOVING)
    return params


def constants(spec, values: Dict[str, np.ndarray]):
    """Frozen weights: every parameter becomes a tf.constant; nothing here can be trained."""
    return {name: tf.constant(values[name], dtype=tf.float32, name=name.replace("/", "_"))
            for name in param_shapes(spec)}


class _Graph:
    """The state of one build: the parameters, and what it collects on the way."""

    def __init__(self, params, dropout, training):
        self.params, self.dropout, self.training = params, dropout, training
        self.recorded, self.names, self.layer_inputs = [], [], []
        self.updates, self.batchnorm_inputs = [], {}
        self.weighted = 0   # Dense/Conv layers so far: the index dropout masks are keyed by

    def record(self, name, z):
        self.recorded.append(tf.identity(z, name=f"{name.replace('/', '_')}_recorded"))
        self.names.append(name)

    def sequence(self, layers, x, prefix, last=""):
        for layer in layers:
            name = prefix + layer.name if hasattr(layer, "name") else ""
            if isinstance(layer, ReLU):
                self.record(last, x)
                x = tf.nn.relu(x)
                continue
            if isinstance(layer, Residual):
                body = self.sequence(layer.body, x, name + "/", last)
                shortcut = self.sequence(layer.shortcut, x, name + "/", last)
                x = body + shortcut
                self.record(name, x)
                x = tf.nn.relu(x)
            else:
                x = self.layer(layer, name, x)
            last = name or last
        self.last = last
        return x

    def layer(self, layer, name, x):
        p = self.params
        if isinstance(layer, (MaxPool, AvgPool)):
            pool = tf.nn.max_pool2d if isinstance(layer, MaxPool) else tf.nn.avg_pool2d
            padding = layer.padding
            if layer.pads:
                top, bottom, left, right = layer.pads
                fill = -np.inf if isinstance(layer, MaxPool) else 0.0
                x, padding = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]], constant_values=fill), "VALID"
            return pool(x, layer.size, pool_stride(layer), padding)
        if isinstance(layer, GlobalAvgPool):
            return tf.reduce_mean(x, axis=[1, 2])
        if isinstance(layer, BatchNorm):
            return self.batchnorm(layer, name, x)
        if self.dropout is not None and layer.dropout > 0:
            x = self.dropout(x, layer.dropout, self.weighted)
        self.weighted += 1
        if isinstance(layer, Conv):
            padding = layer.padding
            if layer.pads and tuple(layer.pads) == same_pads(x.shape[1:3], layer.kernel, layer.stride):
                padding = "SAME"   # the same zeros without a padded copy: a tenth off a resnet20 step
            elif layer.pads:
                top, bottom, left, right = layer.pads
                x, padding = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]), "VALID"
            z = tf.nn.conv2d(x, p[f"{name}/weights"], strides=layer.stride, padding=padding)
            z = z + p[f"{name}/biases"] if layer.bias else z
        else:
            if len(x.shape) > 2:
                x = tf.reshape(x, (-1, int(np.prod(x.shape[1:]))))
            z = tf.matmul(x, p[f"{name}/weights"]) + p[f"{name}/biases"]
        self.layer_inputs.append(x)
        self.last_input = x
        return z

    def batchnorm(self, layer, name, x):
        p = {k: self.params[f"{name}/{k}"] for k in BATCHNORM_PARAMS}
        self.batchnorm_inputs[name] = x

        def normalized(mean, variance):
            return tf.nn.batch_normalization(x, mean, variance, p["beta"], p["gamma"], layer.epsilon)
        inference = normalized(p["moving_mean"], p["moving_variance"])
        if self.training is None:   # inference only: the frozen teacher, evaluation graphs
            return inference
        mean, variance = tf.nn.moments(x, axes=list(range(len(x.shape) - 1)))
        m = layer.momentum
        self.updates += [tf1.assign(p["moving_mean"], m * p["moving_mean"] + (1 - m) * mean),
                         tf1.assign(p["moving_variance"], m * p["moving_variance"] + (1 - m) * variance)]
        return tf1.cond(self.training, lambda: normalized(mean, variance), lambda: inference)


def build(spec, inputs, params, dropout=None, training=None) -> Model:
    """inputs: [batch, input_size] float32 pixels in [0, 1]. params: from create_variables or constants.

    dropout: None for inference, or f(x, rate, layer_index) -> x, called on the input of every
    Dense/Conv layer whose spec has a non-zero dropout rate.
    training: None (BatchNorm reads its moving statistics), or a bool tensor: True normalizes by the
    batch's moments, and Model.updates then hold the moving averages' updates.
    """
    x = tf.reshape(inputs, (-1,) + tuple(spec.input_shape))
    if spec.normalize is not None:   # the teacher's first op; everything outside stays in pixel space
        x = (x - np.float32(spec.normalize.mean)) / np.float32(spec.normalize.std)
    g = _Graph(params, dropout, training)
    logits = g.sequence(activated_layers(spec), x, "")
    g.record(g.last, logits)
    chain = not spec.explicit_activations and not spec.has_batchnorm
    return Model(logits=g.recorded[-1], pre_activations=g.recorded, layer_names=g.names,
                 layer_inputs=g.layer_inputs if chain else [], params=params, updates=g.updates,
                 batchnorm_inputs=g.batchnorm_inputs,
                 features=tf.reshape(g.last_input, (-1, int(np.prod(g.last_input.shape[1:])))))
