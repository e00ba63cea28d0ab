"""A model graph from another framework, in dfkd's terms, laid out as a ModelSpec.

The front ends (keras_import, onnx_import) turn each layer or node into a Node: one of dfkd's ops,
its arrays already in dfkd's layouts (HWIO kernels, [in, out] Dense weights). `to_spec` follows the
graph from its input: a chain becomes a sequence of layers, and a fork whose two branches meet in an
Add followed by a ReLU becomes a Residual block (blocks nest). Everything dfkd cannot express stops
with one line naming the source's layer or node, its type, and what dfkd would need.
"""
import os
import re
from typing import NamedTuple

import numpy as np

from models.spec import (AvgPool, BatchNorm, Conv, Dense, GlobalAvgPool, MaxPool, ModelSpec, Normalize, ReLU,
                         Residual, activated_layers, next_shape)
from utils.errors import UserError

INPUT = ""   # the name the graph's input goes by in Node.inputs


class Node(NamedTuple):
    name: str        # the source's name for it, for messages
    kind: str        # the source's type ("Conv2D", "Conv"), for messages
    op: str          # conv, batchnorm, relu, add, maxpool, avgpool, global_avg_pool, flatten, dense, bias_add,
    #                  pad, dropout, identity, softmax, normalize
    inputs: tuple    # names of the nodes read (INPUT for the graph's input)
    attrs: dict = {}
    arrays: dict = {}


class Imported(NamedTuple):
    spec: ModelSpec
    values: dict     # checkpoint variable name -> array
    softmax: bool    # the source's output is a softmax of dfkd's logits


def clean_name(name):
    """A source name as a dfkd layer name: letters, digits and underscores."""
    return re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z_]", "_", name)).strip("_") or "layer"


class _Layout:
    def __init__(self, nodes, flag, noun):
        self.flag, self.noun = flag, noun
        self.nodes = {n.name: n for n in nodes}
        self.consumers = {n.name: [] for n in nodes}
        self.consumers[INPUT] = []
        for n in nodes:
            for i in n.inputs:
                if i not in self.consumers:
                    raise UserError(f"{flag}: {noun} {n.name} ({n.kind}) reads {i!r}, which nothing before it writes")
                self.consumers[i].append(n)
        self.below = {}

    def fail(self, node, why):
        raise UserError(f"{self.flag}: {self.noun} {node.name} ({node.kind}): {why}")

    def reaches(self, start, target):
        """Whether tensor `target` is `start` or computed from it."""
        if start not in self.below:
            seen, todo = set(), [start]
            while todo:
                for n in self.consumers[todo.pop()]:
                    if n.name not in seen:
                        seen.add(n.name)
                        todo.append(n.name)
            self.below[start] = seen
        return target == start or target in self.below[start]

    def follow(self, cur, stop, first=None):
        """The items (Nodes and ("residual", join, body, shortcut)) from tensor `cur` to tensor `stop`."""
        items = []
        while cur != stop:
            users = [first] if first is not None else self.consumers[cur]
            first = None
            if not users:
                raise UserError(f"{self.flag}: the graph ends at {cur or 'its input'} before its output")
            if len(users) == 1 and users[0].op != "add":
                items.append(users[0])
                cur = users[0].name
                continue
            block, cur = self.residual(cur, users)
            items.append(block)
        return items

    def residual(self, cur, users):
        if len(users) != 2:
            self.fail(users[0], f"its input feeds {len(users)} layers; dfkd follows a chain, or a fork of two "
                                "branches that an Add joins (a residual block)")
        joins = [n for n in self.nodes.values() if n.op == "add" and len(n.inputs) == 2 and
                 all(any(self.reaches(u.name, i) or (u.op == "add" and u is n) for i in n.inputs) for u in users)]
        joins = [j for j in joins if not any(j is not k and self.reaches(k.name, j.name) for k in joins)]
        if not joins:
            self.fail(users[0], "its input forks into branches that no Add joins again; dfkd takes residual blocks "
                                "whose two branches meet in an Add")
        join = joins[0]
        branches = []
        for u in users:
            if u is join:
                branches.append([])          # the identity shortcut
                continue
            reached = [i for i in join.inputs if self.reaches(u.name, i)]
            branches.append(self.follow(cur, reached[0], first=u))
        after = self.consumers[join.name]
        if len(after) != 1 or after[0].op != "relu":
            self.fail(join, "a residual Add must feed one ReLU and nothing else: dfkd's block is ReLU(body + "
                            "shortcut)")
        body, shortcut = sorted(branches, key=len, reverse=True)
        return ("residual", join, body, shortcut), after[0].name


def _weighted(node, name, op_layer, arrays, values, prefix):
    values[f"{prefix}{name}/weights"] = np.asarray(arrays["weights"], np.float32)
    if "biases" in arrays:
        values[f"{prefix}{name}/biases"] = np.asarray(arrays["biases"], np.float32)
    return op_layer


class _Builder:
    """Items -> spec layers, tracking shapes; fuses pads into convolutions, dropout rates into the next
    weighted layer, a bias Add into its Dense, and a CHW flatten into the Dense rows that read it."""

    def __init__(self, layout):
        self.layout, self.values, self.softmax = layout, {}, False

    def unique(self, taken, name):
        base, k = clean_name(name), 1
        while (base if k == 1 else f"{base}_{k}") in taken:
            k += 1
        taken.add(base if k == 1 else f"{base}_{k}")
        return base if k == 1 else f"{base}_{k}"

    def sequence(self, items, shape, prefix, taken=None):
        taken = set() if taken is None else taken
        layers, pads, dropout, flatten_chw = [], None, 0.0, None
        fail = self.layout.fail
        for k, item in enumerate(items):
            if self.softmax:
                fail(item if isinstance(item, Node) else item[1], "comes after the softmax; dfkd's last layer "
                                                                   "gives the logits")
            if not isinstance(item, Node):
                _, join, body, shortcut = item
                name = self.unique(taken, join.name)
                inner = set()
                block = Residual(name, tuple(self.sequence(body, shape, f"{prefix}{name}/", inner)),
                                 tuple(self.sequence(shortcut, shape, f"{prefix}{name}/", inner)))
                try:
                    shape = next_shape(block, shape)
                except ValueError as e:
                    fail(join, f"{e}; the Add's two inputs must have one shape")
                layers.append(block)
                continue
            node, a = item, item.attrs
            if pads is not None and node.op not in ("conv", "avgpool"):
                fail(node, "follows a zero padding; dfkd folds zero padding only into the Conv or AveragePool "
                           "after it")
            if node.op in ("identity",):
                continue
            if node.op == "dropout":
                dropout = float(a.get("rate", 0.0))
                continue
            if node.op == "softmax":
                if k != len(items) - 1 or prefix:
                    fail(node, "a softmax must be the model's last layer")
                self.softmax = True
                continue
            if node.op == "pad":
                pads = tuple(np.add(pads or (0, 0, 0, 0), a["pads"]))
                continue
            if node.op == "relu":
                layers.append(ReLU())
                continue
            if node.op == "bias_add":
                if not layers or not isinstance(layers[-1], Dense) or f"{prefix}{layers[-1].name}/biases" in \
                        self.values:
                    fail(node, "adds a constant that is not the bias of the MatMul before it")
                self.values[f"{prefix}{layers[-1].name}/biases"] = np.asarray(node.arrays["biases"], np.float32)
                continue
            if node.op == "flatten":
                if len(shape) == 3 and a.get("order") == "chw" and shape[:2] != (1, 1):
                    flatten_chw = shape
                continue
            name = self.unique(taken, node.name) if node.op in ("conv", "dense", "batchnorm") else ""
            if node.op == "conv":
                if len(shape) != 3:
                    fail(node, f"a convolution needs an image input, but gets {shape}")
                layer = Conv(name, int(a["filters"]), int(a["kernel"]), dropout=dropout, stride=int(a["stride"]),
                             padding=a.get("padding", "VALID"), pads=a.get("pads"), bias="biases" in node.arrays)
                if pads is not None:
                    if layer.padding == "SAME":
                        fail(node, "has SAME padding after an explicit zero padding; dfkd needs one or the other")
                    layer = layer._replace(pads=tuple(int(p) for p in np.add(layer.pads or (0, 0, 0, 0), pads)))
                    pads = None
                if layer.pads is not None and not any(layer.pads):
                    layer = layer._replace(pads=None)
                _weighted(node, name, layer, node.arrays, self.values, prefix)
                dropout = 0.0
            elif node.op == "dense":
                weights = np.asarray(node.arrays["weights"], np.float32)
                inputs = int(np.prod(shape))
                if weights.shape[0] != inputs:
                    fail(node, f"reads {weights.shape[0]} values but its input has {inputs} {shape}")
                # rows in (channel, height, width) order -> dfkd's (height, width, channel)
                if flatten_chw is not None:
                    h, w, c = flatten_chw
                    weights = weights[np.arange(h * w * c).reshape(c, h, w).transpose(1, 2, 0).ravel()]
                    flatten_chw = None
                layer = Dense(name, int(weights.shape[1]), dropout=dropout)
                _weighted(node, name, layer, dict(node.arrays, weights=weights), self.values, prefix)
                dropout = 0.0
            elif node.op == "batchnorm":
                layer = BatchNorm(name, epsilon=float(a.get("epsilon", 1e-5)), momentum=float(a.get("momentum", 0.9)))
                channels = shape[-1]
                for param, default in (("gamma", 1.0), ("beta", 0.0), ("moving_mean", 0.0), ("moving_variance", 1.0)):
                    array = np.asarray(node.arrays.get(param, np.full(channels, default)), np.float32).reshape(-1)
                    if array.shape != (channels,):
                        fail(node, f"{param} has {array.size} values for {channels} channels (dfkd normalizes the "
                                   "last axis)")
                    self.values[f"{prefix}{name}/{param}"] = array
            elif node.op in ("maxpool", "avgpool"):
                if len(shape) != 3:
                    fail(node, f"a pool needs an image input, but gets {shape}")
                cls = MaxPool if node.op == "maxpool" else AvgPool
                layer = cls(int(a["size"]), int(a["stride"]), a.get("padding", "VALID"), a.get("pads"))
                if pads is not None:
                    layer = layer._replace(pads=tuple(int(p) for p in np.add(layer.pads or (0, 0, 0, 0), pads)),
                                           padding="VALID")
                    pads = None
                if layer.pads is not None and not any(layer.pads):
                    layer = layer._replace(pads=None)
                if layer.stride == layer.size:
                    layer = layer._replace(stride=None)
            elif node.op == "global_avg_pool":
                if len(shape) != 3:
                    fail(node, f"global pooling needs an image input, but gets {shape}")
                layer = GlobalAvgPool()
            elif node.op == "add":
                fail(node, "an Add that joins no fork; dfkd takes Adds only as residual blocks")
            else:
                fail(node, f"op {node.op} has no dfkd layer")
            if flatten_chw is not None and not isinstance(layer, Dense):
                fail(node, "follows a channel-first flatten; dfkd reads a flatten only into a Dense layer")
            shape = next_shape(layer, shape)
            layers.append(layer)
        if pads is not None:
            raise UserError(f"{self.layout.flag}: a zero padding ends the model; nothing reads it")
        self.shape = shape
        return layers


def _implicit_if_paper_chain(layers, input_shape):
    """A plain chain whose ReLUs sit exactly where dfkd's paper models put them (after every Dense/Conv but
    the last) is written without them, as the built-in paper models are."""
    if any(isinstance(l, (BatchNorm, Residual)) for l in layers):
        return tuple(layers)
    plain = tuple(l for l in layers if not isinstance(l, ReLU))
    implicit = activated_layers(ModelSpec("probe", input_shape, plain))
    return plain if implicit == tuple(layers) else tuple(layers)


def to_spec(name, nodes, output, input_shape, flag, normalize=None, noun="layer"):
    """nodes: every Node on the path from the input to `output` (the name of the node whose value is the
    model's output); input_shape: per example, (height, width, channels) or (features,); noun: what the
    source calls its parts in messages ("layer", "node")."""
    layout = _Layout(nodes, flag, noun)
    items = layout.follow(INPUT, output)
    while items and isinstance(items[0], Node) and items[0].op == "normalize":   # input normalization
        step = Normalize(tuple(items[0].attrs["mean"]), tuple(items[0].attrs["std"]))
        normalize = step if normalize is None else Normalize(
            tuple(np.asarray(normalize.mean) + np.asarray(step.mean) * np.asarray(normalize.std)),
            tuple(np.asarray(normalize.std) * np.asarray(step.std)))
        items = items[1:]
    for item in items:
        if isinstance(item, Node) and item.op == "normalize":
            layout.fail(item, "normalizes inside the model; dfkd takes a normalization only as the first op")
    builder = _Builder(layout)
    layers = builder.sequence(items, tuple(input_shape), "")
    if not any(isinstance(l, (Dense, Conv)) for l in layers):
        raise UserError(f"{flag}: the model has no Dense or Conv layer")
    if builder.shape != (builder.shape[0],):
        raise UserError(f"{flag}: the model's output has shape {builder.shape}; dfkd needs one vector of logits "
                        "per example (end with a Dense layer)")
    if normalize is not None:
        channels = input_shape[-1]
        for part in (normalize.mean, normalize.std):
            if len(part) not in (1, channels):
                raise UserError(f"{flag}: the input normalization has {len(part)} values for {channels} channels")
        normalize = Normalize(tuple(float(m) for m in normalize.mean), tuple(float(s) for s in normalize.std))
    spec = ModelSpec(name, tuple(int(d) for d in input_shape), _implicit_if_paper_chain(layers, tuple(input_shape)),
                     normalize=normalize)
    return Imported(spec, builder.values, builder.softmax)


def layer_source(layer, indent):
    """A layer as Python: required fields by position, others only where they differ from the default;
    a residual block's layers one per line."""
    defaults = type(layer)._field_defaults
    parts = []
    for field, value in layer._asdict().items():
        if field in ("body", "shortcut"):
            inner = "".join(f"\n{indent}    {layer_source(l, indent + '    ')}," for l in value)
            parts.append(f"{field}=({inner}\n{indent})" if value else f"{field}=()")
        elif field not in defaults:
            parts.append(repr(value))
        elif value != defaults[field]:
            parts.append(f"{field}={value!r}")
    return f"{type(layer).__name__}({', '.join(parts)})"


def spec_source(spec, source):
    """The model file: SPEC as data, importing only dfkd's layer types."""
    lines = [f'"""{spec.name}: imported from {source}; weights in the checkpoint beside this file."""',
             "from models.spec import (AvgPool, BatchNorm, Conv, Dense, GlobalAvgPool, MaxPool, ModelSpec,  # noqa",
             "                         Normalize, ReLU, Residual)", "",
             "SPEC = ModelSpec(", f"    name={spec.name!r},", f"    input_shape={spec.input_shape!r},"]
    if spec.normalize is not None:
        lines.append(f"    normalize={spec.normalize!r},")
    lines += ["    layers=("] + [f"        {layer_source(layer, '        ')}," for layer in spec.layers]
    lines += ["    ),", ")", ""]
    return "\n".join(lines)


def save_checkpoint(values, prefix):
    """A TF1 checkpoint of `values` (variable name -> array) at `prefix`; no .meta (dfkd needs none)."""
    import tensorflow as tf
    with tf.Graph().as_default():
        variables = {name: tf.compat.v1.Variable(v, name=name) for name, v in values.items()}
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver(variables).save(sess, prefix, write_meta_graph=False)


def dfkd_logits(spec, values, x):
    """The logits of a model as dfkd builds it; x: [N, ...] pixels in [0, 1]."""
    from models.graph import frozen_logits
    return frozen_logits(spec, values, x.reshape(len(x), -1), 1000, 0)


def write_and_check(imported, out_dir, source, expected_of, flag, checked_against=None):
    """Writes OUT_DIR/NAME.py and the checkpoint OUT_DIR/NAME, then compares dfkd's rebuilt model with the
    source (expected_of(x) on 16 random [0, 1] inputs of shape [N] + input_shape, as `checked_against`
    computes them); returns (path, prefix)."""
    checked_against = checked_against or source
    from utils import atomic
    spec = imported.spec
    os.makedirs(out_dir, exist_ok=True)
    spec_path, prefix = os.path.join(out_dir, f"{spec.name}.py"), os.path.join(out_dir, spec.name)
    atomic.save_bytes(spec_path, spec_source(spec, source).encode())
    save_checkpoint(imported.values, prefix)
    x = np.random.default_rng(0).uniform(0, 1, (16,) + tuple(spec.input_shape)).astype(np.float32)
    expected = np.asarray(expected_of(x), np.float64).reshape(16, -1)
    import models
    from models import checkpoint
    written = models.get(spec_path, "--out_dir")   # the files as written, read back
    ours = dfkd_logits(written, checkpoint.load_teacher_values(written, "", prefix), x).astype(np.float64)
    if imported.softmax:
        ours = np.exp(ours - ours.max(1, keepdims=True))
        ours /= ours.sum(1, keepdims=True)
    if ours.shape != expected.shape:
        raise UserError(f"{flag}: the rebuilt model gives {ours.shape[1]} outputs, the source {expected.shape[1]}")
    difference = float(np.abs(ours - expected).max())
    print(f"wrote {spec_path} and the checkpoint {prefix}; largest difference from {checked_against} on 16 random "
          f"inputs: {difference:.2e} (outputs up to {np.abs(expected).max():.3g})")
    if difference > 1e-3 * max(1.0, float(np.abs(expected).max())):
        raise UserError(f"{flag}: the rebuilt model differs from {checked_against} by {difference:.3g}; please "
                        "report this model")
    print(f"use: --model={spec_path} --model_checkpoint={prefix}")
    return spec_path, prefix
