"""Teachers from elsewhere: ONNX graphs built with onnx.helper (checked against onnxruntime), Keras
Functional models (checked against Keras), and the student exported to Keras and imported back."""
import os
import subprocess
import sys

import numpy as np
import pytest

import models
from models import onnx_import
from models.spec import BatchNorm, Conv, Dense, GlobalAvgPool, MaxPool, ReLU, Residual
from utils.errors import UserError

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class OnnxGraph:
    """A small ONNX graph written node by node, with random weights."""

    def __init__(self, channels, size, seed=0):
        self.rng, self.nodes, self.inits, self.n = np.random.default_rng(seed), [], [], 0
        self.channels = {"x": channels}
        self.input = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", channels, size, size])

    def const(self, array):
        self.n += 1
        name = f"w{self.n}"
        self.inits.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def node(self, op, inputs, channels=None, **attrs):
        self.n += 1
        out = f"t{self.n}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op.lower()}{self.n}", **attrs))
        self.channels[out] = channels if channels is not None else self.channels.get(inputs[0])
        return out

    def conv(self, x, filters, kernel, stride=1, pad=0, bias=False):
        w = self.const(self.rng.normal(0, 0.4, (filters, self.channels[x], kernel, kernel)))
        inputs = [x, w] + ([self.const(self.rng.normal(0, 0.1, filters))] if bias else [])
        return self.node("Conv", inputs, filters, kernel_shape=[kernel, kernel], strides=[stride, stride],
                         pads=[pad] * 4)

    def bn(self, x):
        c = self.channels[x]
        params = [self.rng.uniform(0.5, 1.5, c), self.rng.normal(0, 0.2, c), self.rng.normal(0, 0.2, c),
                  self.rng.uniform(0.5, 2.0, c)]
        return self.node("BatchNormalization", [x] + [self.const(p) for p in params], epsilon=1e-3)

    def gemm(self, x, inputs, units):
        w = self.const(self.rng.normal(0, 0.3, (units, inputs)))   # PyTorch's Linear: [out, in], transB=1
        return self.node("Gemm", [x, w, self.const(self.rng.normal(0, 0.1, units))], units, transB=1)

    def save(self, path, output):
        out = helper.make_tensor_value_info(output, TensorProto.FLOAT, None)
        model = helper.make_model(helper.make_graph(self.nodes, "g", [self.input], [out], self.inits),
                                  opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.save(model, path)
        return path


def resnet_onnx(path, channels=1, size=8):
    """A PyTorch-style ResNet: symmetric pads at stride 2, Conv+BN+Relu, an identity and a 1x1 projection
    shortcut, a padded max-pool, global pooling into a Flatten and a Gemm."""
    g = OnnxGraph(channels, size)
    x = g.node("Relu", [g.bn(g.conv("x", 4, 3, stride=1, pad=1))])
    body = g.bn(g.conv(g.node("Relu", [g.bn(g.conv(x, 4, 3, pad=1))]), 4, 3, pad=1))
    x = g.node("Relu", [g.node("Add", [body, x])])                             # identity shortcut
    x = g.node("MaxPool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
    body = g.bn(g.conv(g.node("Relu", [g.bn(g.conv(x, 6, 3, stride=2, pad=1))]), 6, 3, pad=1))
    x = g.node("Relu", [g.node("Add", [g.bn(g.conv(x, 6, 1, stride=2)), body])])   # projection first this time
    x = g.node("Flatten", [g.node("GlobalAveragePool", [x])])
    return g.save(path, g.gemm(x, 6, 5))


def largest_difference(stdout):
    return float(stdout.split("largest difference from ")[1].split(": ")[1].split()[0])


def test_an_onnx_resnet_is_imported_with_onnxruntimes_outputs(tmp_path, capsys):
    path = resnet_onnx(str(tmp_path / "res.onnx"))
    spec_path, prefix = onnx_import.run([f"--onnx_model={path}", f"--out_dir={tmp_path / 'out'}"])
    assert largest_difference(capsys.readouterr().out) < 1e-4
    spec = models.get(spec_path)
    kinds = [type(l).__name__ for l in spec.layers]
    assert kinds == ["Conv", "BatchNorm", "ReLU", "Residual", "MaxPool", "Residual", "GlobalAvgPool", "Dense"]
    first, second = spec.layers[3], spec.layers[5]
    assert first.shortcut == () and len(second.shortcut) == 2 and isinstance(second.shortcut[0], Conv)
    assert second.body[0].pads == (1, 1, 1, 1) and second.body[0].stride == 2   # PyTorch's, not SAME
    assert spec.layers[4] == MaxPool(3, 1, "VALID", (1, 1, 1, 1))
    assert spec.input_shape == (8, 8, 1) and os.path.exists(prefix + ".index")


def test_a_flatten_of_nchw_feature_maps_reorders_the_dense_rows_and_pads_are_exact(tmp_path, capsys):
    """Flatten of a 2-channel 4x4 map into Gemm: ONNX flattens (channel, height, width), dfkd (height, width,
    channel); symmetric pads at stride 2 on an even size (not TensorFlow's SAME); RGB input normalized outside."""
    g = OnnxGraph(3, 8, seed=1)
    x = g.node("Relu", [g.bn(g.conv("x", 2, 3, stride=2, pad=1))])
    path = g.save(str(tmp_path / "flat.onnx"), g.gemm(g.node("Flatten", [x]), 32, 4))
    spec_path, _ = onnx_import.run([f"--onnx_model={path}", f"--out_dir={tmp_path / 'out'}",
                                    "--input_mean=0.485,0.456,0.406", "--input_std=0.229,0.224,0.225"])
    assert largest_difference(capsys.readouterr().out) < 1e-4
    spec = models.get(spec_path)
    assert spec.normalize.mean == (0.485, 0.456, 0.406) and spec.input_shape == (8, 8, 3)
    assert [type(l) for l in spec.layers] == [Conv, BatchNorm, ReLU, Dense]


def test_matmul_plus_add_and_a_reshape_are_a_dense_layer(tmp_path, capsys):
    g = OnnxGraph(1, 4, seed=2)
    shape = g.const(np.array([0, 0]))   # overwritten below with an int64 target
    g.inits[-1] = numpy_helper.from_array(np.array([-1, 16], np.int64), shape)
    flat = g.node("Reshape", ["x", shape])
    hidden = g.node("Relu", [g.node("Add", [g.node("MatMul", [flat, g.const(g.rng.normal(size=(16, 8)))]),
                                            g.const(g.rng.normal(size=8))])])
    out = g.node("Add", [g.node("MatMul", [hidden, g.const(g.rng.normal(size=(8, 3)))]), g.const(np.ones(3))])
    spec_path, _ = onnx_import.run([f"--onnx_model={g.save(str(tmp_path / 'mlp.onnx'), out)}",
                                    f"--out_dir={tmp_path / 'out'}", "--name=mlp"])
    assert largest_difference(capsys.readouterr().out) < 1e-4
    assert [type(l) for l in models.get(spec_path).layers] == [Dense, Dense]   # a paper-style chain


@pytest.mark.parametrize("case,expected", [
    ("sigmoid", r"node sigmoid\d+ \(Sigmoid\): dfkd has no such layer; it takes Conv, BatchNormalization"),
    ("add_no_relu", r"node add\d+ \(Add\): a residual Add must feed one ReLU and nothing else"),
    ("grouped", r"node conv\d+ \(Conv\): a grouped or dilated convolution"),
])
def test_an_unsupported_onnx_node_gets_one_line_naming_it(tmp_path, case, expected):
    g = OnnxGraph(2, 6)
    x = g.conv("x", 2, 3, pad=1, bias=True)
    if case == "sigmoid":
        x = g.node("Sigmoid", [x])
    elif case == "add_no_relu":
        x = g.node("Add", [g.conv(x, 2, 3, pad=1), x])
    else:
        w = g.const(g.rng.normal(size=(2, 1, 3, 3)))
        x = g.node("Conv", [x, w], 2, kernel_shape=[3, 3], group=2)
    path = g.save(str(tmp_path / "bad.onnx"), g.gemm(g.node("Flatten", [x]), 72 if case != "grouped" else 32, 3))
    with pytest.raises(UserError, match=expected):
        onnx_import.run([f"--onnx_model={path}", f"--out_dir={tmp_path / 'out'}"])


def test_bad_onnx_flags_and_files_get_one_line(tmp_path):
    path = resnet_onnx(str(tmp_path / "res.onnx"))
    with pytest.raises(UserError, match="--input_mean and --input_std come together"):
        onnx_import.run([f"--onnx_model={path}", f"--out_dir={tmp_path}", "--input_mean=0.5"])
    with pytest.raises(UserError, match="the input normalization has 2 values for 1 channels"):
        onnx_import.run([f"--onnx_model={path}", f"--out_dir={tmp_path}", "--input_mean=0.5,0.4", "--input_std=1,1"])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not a model")
    with pytest.raises(UserError, match="is not an ONNX model"):
        onnx_import.run([f"--onnx_model={garbage}", f"--out_dir={tmp_path}"])


KERAS_RESNET = """
import sys, keras, numpy as np
rng = np.random.default_rng(0)
inp = keras.Input((8, 8, 1))
x = keras.layers.Rescaling(2.0, offset=-1.0)(inp)
x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(x)
x = keras.layers.ReLU()(keras.layers.BatchNormalization(epsilon=1e-3)(x))
y = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
y = keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(y))
x = keras.layers.Activation("relu")(keras.layers.Add()([x, y]))
x = keras.layers.MaxPooling2D(3, strides=2, padding="same")(x)
y = keras.layers.Conv2D(6, 3, strides=2, use_bias=False)(keras.layers.ZeroPadding2D(1)(x))
y = keras.layers.BatchNormalization()(y)
s = keras.layers.BatchNormalization()(keras.layers.Conv2D(6, 1, strides=2, use_bias=False)(x))
x = keras.layers.ReLU()(keras.layers.Add()([y, s]))
x = keras.layers.GlobalAveragePooling2D()(x)
out = keras.layers.Dense(5, activation=sys.argv[2])(x)
model = keras.Model(inp, out, name="tiny_functional")
for layer in model.layers:   # moving statistics away from 0 and 1, so that a wrong BatchNorm shows
    if isinstance(layer, keras.layers.BatchNormalization):
        layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.get_weights()])
model.save(sys.argv[1])
"""


@pytest.mark.slow
@pytest.mark.parametrize("last", ["softmax", "tanh"])
def test_a_keras_functional_resnet_is_imported_with_keras_outputs(tmp_path, last):
    saved = str(tmp_path / "f.keras")
    made = subprocess.run([sys.executable, "-c", KERAS_RESNET, saved, last], capture_output=True, text=True,
                          timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    result = subprocess.run([sys.executable, "-m", "models.keras_import", f"--keras_model={saved}",
                             f"--out_dir={tmp_path / 'imported'}"], capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    if last == "tanh":
        assert result.returncode == 2 and "error: --keras_model: layer dense (Dense): activation tanh" in \
            result.stderr and "Traceback" not in result.stderr
        return
    assert result.returncode == 0, result.stderr[-2000:]
    assert largest_difference(result.stdout) < 1e-4
    spec = models.get(str(tmp_path / "imported" / "tiny_functional.py"))
    assert [type(l).__name__ for l in spec.layers] == ["Conv", "BatchNorm", "ReLU", "Residual", "MaxPool",
                                                       "Residual", "GlobalAvgPool", "Dense"]
    assert spec.layers[5].body[0].pads == (1, 1, 1, 1) and spec.normalize.mean == (0.5,)
    assert isinstance(spec.layers[3], Residual) and spec.layers[3].shortcut == ()
    assert isinstance(spec.layers[6], GlobalAvgPool)


@pytest.mark.slow
def test_a_student_exported_to_keras_loads_there_and_imports_back_with_the_same_logits(tmp_path):
    """A BatchNorm ResNet with input normalization and PyTorch-style pads (the tiny one of the modern-model
    tests, random weights and moving statistics) -> .keras -> keras_import -> the same logits in dfkd."""
    from models import checkpoint, import_graph
    from tests.test_modern_models import random_values, tiny_resnet_file
    spec_path = tiny_resnet_file(str(tmp_path), "tiny_student", 3)
    spec = models.get(spec_path)
    rng = np.random.default_rng(5)
    values = {name: (v if name.endswith(("gamma", "variance")) else rng.normal(0, 0.4, v.shape).astype(np.float32))
              for name, v in random_values(spec, seed=5).items()}   # logits of order 1, not 1e7
    prefix = str(tmp_path / "student")
    import_graph.save_checkpoint(values, prefix)
    out = str(tmp_path / "student.keras")
    exported = subprocess.run([sys.executable, "-m", "models.keras_export", f"--model={spec_path}",
                               f"--model_checkpoint={prefix}", f"--out={out}"], capture_output=True, text=True,
                              cwd=ROOT, timeout=300)
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert float(exported.stdout.split("on 16 random inputs: ")[1].split()[0]) < 1e-4
    back = subprocess.run([sys.executable, "-m", "models.keras_import", f"--keras_model={out}",
                           f"--out_dir={tmp_path / 'back'}", "--name=again"], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert back.returncode == 0, back.stderr[-2000:]
    again = models.get(str(tmp_path / "back" / "again.py"))
    x = np.random.default_rng(1).uniform(0, 1, (8, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(import_graph.dfkd_logits(again, checkpoint.load_teacher_values(
        again, "", str(tmp_path / "back" / "again")), x), import_graph.dfkd_logits(spec, values, x),
        rtol=1e-4, atol=1e-4)
    assert again.normalize == spec.normalize and [type(l) for l in again.layers] == [type(l) for l in spec.layers]
    bad = subprocess.run([sys.executable, "-m", "models.keras_export", f"--model={spec_path}",
                          f"--model_checkpoint={prefix}", f"--out={tmp_path / 'student.h5'}"], capture_output=True,
                         text=True, cwd=ROOT, timeout=300)
    assert bad.returncode == 2 and "error: --out:" in bad.stderr and "must end in .keras" in bad.stderr
