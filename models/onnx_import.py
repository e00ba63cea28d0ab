"""Bring an ONNX model (what torch.onnx.export writes) into dfkd: a model file with its SPEC and a checkpoint.

    python -m models.onnx_import --onnx_model=teacher.onnx --out_dir=imported [--name=my_teacher] \\
        [--input_mean=0.1307 --input_std=0.3081]

Supported nodes: Conv (square kernel and stride, ungrouped, undilated, explicit pads or auto_pad),
BatchNormalization, Relu, Add (a residual block: two branches from one tensor joined by the Add, then a
Relu; or a MatMul's bias), MaxPool and AveragePool (square, any stride and pads), GlobalAveragePool,
Flatten or Reshape before the classifier, Gemm and MatMul (+ Add), Softmax last, and Identity, Dropout
and Constant where export leaves them. The shape arithmetic that some exporters write for a Reshape's
target (Shape, Gather, Concat, ...) is not followed: dfkd reads that Reshape as a flatten.

Layouts: Conv kernels OIHW become HWIO, Gemm/MatMul weights [in, out], and a Dense after a flatten of an
NCHW tensor has its rows reordered to dfkd's (height, width, channel). Pads stay exact (PyTorch's
symmetric padding=1 at stride 2 is not TensorFlow's SAME). --input_mean/--input_std declare the
normalization a PyTorch pipeline applies outside the model, x = (pixels - mean) / std with pixels in
[0, 1]; it becomes the spec's input normalization, so dfkd feeds the teacher [0, 1] pixels.
Then checks dfkd's rebuilt model against onnxruntime on random inputs and prints the largest difference.
An ONNX file holds no code; it is parsed as data.
"""
import argparse
import os
import sys
from typing import NamedTuple

import numpy as np

from models.import_graph import INPUT, Node, clean_name, to_spec, write_and_check  # noqa: E402
from models.spec import Normalize  # noqa: E402
from utils import number_list  # noqa: E402
from utils.errors import UserError  # noqa: E402

FLAG = "--onnx_model"
PASS_THROUGH = ("Identity", "Dropout")
DATA_INPUTS = {"Reshape": 1, "Flatten": 1, "Conv": 1, "BatchNormalization": 1, "Gemm": 1, "MatMul": 2, "Add": 2}


class _Graph:
    def __init__(self, model):
        from onnx import numpy_helper
        self.graph = model.graph
        self.constants = {t.name: numpy_helper.to_array(t) for t in self.graph.initializer}
        self.writer = {out: node for node in self.graph.node for out in node.output}
        for node in self.graph.node:
            if node.op_type == "Constant":
                value = next((a for a in node.attribute if a.name == "value"), None)
                if value is not None:
                    self.constants[node.output[0]] = numpy_helper.to_array(value.t)

    def constant(self, name):
        """The array a tensor always holds (an initializer, a Constant, an Identity of one), or None."""
        while name not in self.constants and name in self.writer and self.writer[name].op_type == "Identity":
            name = self.writer[name].input[0]
        return self.constants.get(name)


def _attrs(node):
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _fail(node, why):
    raise UserError(f"{FLAG}: node {node.name or node.output[0]} ({node.op_type}): {why}")


def _square(node, values, what):
    values = [int(v) for v in values]
    if len(set(values)) != 1:
        _fail(node, f"non-square {what} {values}; dfkd takes square ones")
    return values[0]


def _pads(node, attrs, kernel, stride, in_hw):
    """(padding, pads) in dfkd's terms from ONNX's pads [top, left, bottom, right] or auto_pad."""
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto == "SAME_UPPER":
        return "SAME", None            # TensorFlow's SAME: the extra zero after
    if auto == "SAME_LOWER":
        total = [max((-(-s // stride) - 1) * stride + kernel - s, 0) for s in in_hw]
        return "VALID", (total[0] - total[0] // 2, total[0] // 2, total[1] - total[1] // 2, total[1] // 2)
    if auto not in ("NOTSET", "VALID"):
        _fail(node, f"auto_pad {auto}")
    top, left, bottom, right = [int(p) for p in attrs.get("pads", [0, 0, 0, 0])]
    return "VALID", ((top, bottom, left, right) if any((top, bottom, left, right)) else None)


class _Node(NamedTuple):
    """What a translator reads of one ONNX node."""
    node: object
    attrs: dict
    shape: tuple      # the NCHW/NC shape of its first input
    weight: object    # i -> the constant at input i, or None
    make: object      # (dfkd op, attrs, arrays) -> [Node]
    name: str


def _conv(n):
    w = n.weight(1)
    if w is None or w.ndim != 4:
        _fail(n.node, "its weights are not a constant 4-D tensor")
    if n.attrs.get("group", 1) != 1 or any(d != 1 for d in n.attrs.get("dilations", [1, 1])):
        _fail(n.node, "a grouped or dilated convolution; dfkd takes ungrouped, undilated ones")
    kernel = _square(n.node, w.shape[2:], "kernel")
    stride = _square(n.node, n.attrs.get("strides", [1, 1]), "stride")
    padding, pads = _pads(n.node, n.attrs, kernel, stride, n.shape[2:])
    arrays = {"weights": w.transpose(2, 3, 1, 0)}
    if n.weight(2) is not None:
        arrays["biases"] = n.weight(2)
    return n.make("conv", dict(filters=w.shape[0], kernel=kernel, stride=stride, padding=padding, pads=pads), arrays)


def _batchnorm(n):
    arrays = dict(zip(("gamma", "beta", "moving_mean", "moving_variance"), [n.weight(i) for i in range(1, 5)]))
    if any(v is None for v in arrays.values()) or n.attrs.get("training_mode", 0):
        _fail(n.node, "its scale, bias, mean and variance must be constants, in inference mode")
    return n.make("batchnorm", dict(epsilon=n.attrs.get("epsilon", 1e-5), momentum=n.attrs.get("momentum", 0.9)),
                  arrays)


def _add(n):
    constant = [n.weight(i) for i in range(2)]
    if constant[0] is None and constant[1] is None:
        return n.make("add")
    bias = constant[1] if constant[1] is not None else constant[0]
    return n.make("bias_add", {}, {"biases": np.ravel(bias)})


def _pool(n):
    if n.attrs.get("ceil_mode", 0) or any(d != 1 for d in n.attrs.get("dilations", [1, 1])):
        _fail(n.node, "ceil_mode or dilation; dfkd pools floor the output size, undilated")
    size = _square(n.node, n.attrs["kernel_shape"], "kernel")
    stride = _square(n.node, n.attrs.get("strides", [1, 1]), "stride")
    padding, pads = _pads(n.node, n.attrs, size, stride, n.shape[2:])
    counted = bool(n.attrs.get("count_include_pad", 0))
    average = n.node.op_type == "AveragePool"
    if average and ((pads and not counted) or (padding == "SAME" and counted)):
        _fail(n.node, f"count_include_pad={int(counted)} with {'explicit pads' if pads else 'auto_pad SAME'}; "
                      "dfkd's average pool counts explicit pads in the mean and leaves SAME's out")
    return n.make("avgpool" if average else "maxpool", dict(size=size, stride=stride, padding=padding, pads=pads))


def _global_pool(n):
    return n.make("global_avg_pool") + [Node(f"{n.name}__squeeze", n.node.op_type, "flatten", (n.name,),
                                             {"order": "chw"})]


def _flatten(n):
    if n.node.op_type == "Flatten" and n.attrs.get("axis", 1) != 1:
        _fail(n.node, "a Flatten of axis other than 1; dfkd flattens each example")
    target = n.weight(1) if n.node.op_type == "Reshape" else None
    flat = int(np.prod(n.shape[1:])) if n.shape and None not in n.shape[1:] else None
    if target is not None and not (len(target) == 2 and target[1] in (-1, flat)):
        _fail(n.node, f"reshapes to {list(target)}; dfkd takes a Reshape only as the flatten before a Gemm/MatMul")
    return n.make("flatten", {"order": "chw"})


def _gemm(n):
    w, c = n.weight(1), n.weight(2)
    if w is None or n.attrs.get("transA", 0):
        _fail(n.node, "its B must be a constant and A not transposed")
    w = (w.T if n.attrs.get("transB", 0) else w) * n.attrs.get("alpha", 1.0)
    arrays = {"weights": w}
    if c is not None:
        arrays["biases"] = np.broadcast_to(np.ravel(c) * n.attrs.get("beta", 1.0), (w.shape[1],))
    return n.make("dense", {}, arrays)


def _matmul(n):
    w = n.weight(1)
    if w is None or w.ndim != 2:
        _fail(n.node, "its second input must be a constant matrix")
    return n.make("dense", {}, {"weights": w})


# ONNX op type -> (what a translator reads of the node) -> dfkd Nodes
TRANSLATORS = {
    "Conv": _conv, "BatchNormalization": _batchnorm, "Relu": lambda n: n.make("relu"), "Add": _add,
    "MaxPool": _pool, "AveragePool": _pool, "GlobalAveragePool": _global_pool, "Flatten": _flatten,
    "Reshape": _flatten, "Gemm": _gemm, "MatMul": _matmul, "Softmax": lambda n: n.make("softmax"),
    **{op: (lambda n: n.make("identity")) for op in PASS_THROUGH},
}


def translate(graph, node, inputs, shape):
    """One data-path ONNX node -> dfkd Nodes; `shape` is the NCHW/NC shape of its first input."""
    if node.op_type not in TRANSLATORS:
        _fail(node, "dfkd has no such layer; it takes Conv, BatchNormalization, Relu, Add, MaxPool, AveragePool, "
                    "GlobalAveragePool, Flatten/Reshape, Gemm, MatMul, Softmax, Identity, Dropout")
    name = node.name or node.output[0]
    make = lambda dfkd_op, a={}, arrays={}: [Node(name, node.op_type, dfkd_op, inputs, a, arrays)]  # noqa: E731
    weight = lambda i: graph.constant(node.input[i]) if len(node.input) > i and node.input[i] else None  # noqa: E731
    return TRANSLATORS[node.op_type](_Node(node, _attrs(node), shape, weight, make, name))


def _shapes(model):
    """Tensor name -> static shape, from ONNX's own shape inference (None where it cannot tell)."""
    import onnx
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:   # shape inference is a help, not a requirement
        inferred = model
    shapes = {}
    for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = v.type.tensor_type.shape.dim
        shapes[v.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return shapes


def graph_of(model):
    """(Nodes on the data path from the input to the output, output node name, per-example input shape in
    dfkd's layout, the ONNX input's name)."""
    graph = _Graph(model)
    inputs = [i for i in model.graph.input if i.name not in graph.constants]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise UserError(f"{FLAG}: the model has {len(inputs)} inputs and {len(model.graph.output)} outputs; dfkd "
                        "takes one of each")
    input_name, output_name = inputs[0].name, model.graph.output[0].name
    shapes = _shapes(model)
    dims = shapes[input_name][1:]
    if None in dims or not dims or 0 in dims:
        raise UserError(f"{FLAG}: input {input_name} has shape {shapes[input_name]}; dfkd needs fixed sizes "
                        "after the batch axis (export with a fixed input size)")
    # The data path: back from the output along each node's data inputs (never a Reshape's target shape).
    on_path, todo = [], [output_name]
    seen = set()
    while todo:
        tensor = todo.pop()
        if tensor == input_name or tensor in seen or graph.constant(tensor) is not None:
            continue
        seen.add(tensor)
        if tensor not in graph.writer:
            raise UserError(f"{FLAG}: tensor {tensor} is read but nothing writes it")
        node = graph.writer[tensor]
        on_path.append(node)
        todo += [i for i in node.input[:DATA_INPUTS.get(node.op_type, 1)] if i]
    wanted = {n.output[0] for n in on_path}
    order = [n for n in model.graph.node if n.output and n.output[0] in wanted]   # stored in topological order
    nodes, renamed = [], {input_name: INPUT}
    for node in order:
        reads = [renamed.get(i, i) for i in node.input[:DATA_INPUTS.get(node.op_type, 1)]
                 if i and graph.constant(i) is None]
        shape = shapes.get(node.input[0]) or [None] * 4
        made = translate(graph, node, tuple(reads), shape)
        nodes += made
        for out in node.output:
            renamed[out] = made[-1].name
    input_shape = (dims[1], dims[2], dims[0]) if len(dims) == 3 else tuple(dims)
    return nodes, renamed[output_name], input_shape, input_name


def run(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--onnx_model", required=True, help="an .onnx file, e.g. from torch.onnx.export")
    p.add_argument("--out_dir", required=True, help="where NAME.py and the checkpoint NAME go")
    p.add_argument("--name", default="", help="the model's name (default: the file's)")
    p.add_argument("--input_mean", default="", help="the mean the pipeline subtracts from [0, 1] pixels before the "
                   "model: one value, or one per channel (0.485,0.456,0.406)")
    p.add_argument("--input_std", default="", help="the std it then divides by (one value, or one per channel)")
    args = p.parse_args(argv)
    if not os.path.isfile(args.onnx_model):
        raise UserError(f"{FLAG}: file not found: {args.onnx_model}")
    if bool(args.input_mean) != bool(args.input_std):
        raise UserError("--input_mean and --input_std come together (give both, or neither)")
    import onnx
    try:
        model = onnx.load(args.onnx_model)
    except Exception as e:  # protobuf's DecodeError and friends
        raise UserError(f"{FLAG}: {args.onnx_model} is not an ONNX model ({type(e).__name__}: {e})")
    normalize = None
    if args.input_mean:
        normalize = Normalize(number_list.parse(args.input_mean, "--input_mean", "one per channel or one for all"),
                              number_list.parse(args.input_std, "--input_std", "one per channel or one for all"))
        if min(normalize.std) <= 0:
            raise UserError(f"--input_std: {args.input_std} must be positive")
    nodes, output, input_shape, input_name = graph_of(model)
    name = clean_name(args.name or os.path.splitext(os.path.basename(args.onnx_model))[0])
    imported = to_spec(name, nodes, output, input_shape, FLAG, normalize, noun="node")

    import onnxruntime
    session = onnxruntime.InferenceSession(args.onnx_model, providers=["CPUExecutionProvider"])
    batch = session.get_inputs()[0].shape[0]

    def expected(x):
        spec = imported.spec
        if spec.normalize is not None:
            x = (x - np.float32(spec.normalize.mean)) / np.float32(spec.normalize.std)
        x = x.transpose(0, 3, 1, 2) if x.ndim == 4 else x
        x = x.astype(np.float32)
        if isinstance(batch, int) and batch != len(x):   # a fixed batch axis: one example at a time
            return np.concatenate([session.run(None, {input_name: x[i:i + 1]})[0] for i in range(len(x))])
        return session.run(None, {input_name: x})[0]
    return write_and_check(imported, args.out_dir, f"ONNX ({os.path.basename(args.onnx_model)})", expected, FLAG,
                           checked_against="onnxruntime")


if __name__ == "__main__":
    from utils.errors import main_guard
    sys.exit(main_guard(run))
