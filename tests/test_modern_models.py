"""BatchNorm, residual blocks, global pooling, explicit padding and input normalization: tiny nets on
8x8 inputs, checked against numpy and TensorFlow's own ops, and run through every procedure."""
import collections
import json
import re
import os
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import datasets
import models
from datasets.base import ArrayDataset
from models import builder, checkpoint, graph as model_graph
from models.spec import (BatchNorm, Conv, Dense, GlobalAvgPool, ModelSpec, Normalize, ReLU, Residual,
                         recorded_points, to_json)
from tests.conftest import make_cfg
from utils.errors import UserError

tf1 = tf.compat.v1

TINY_RESNET = textwrap.dedent('''
    from models.spec import BatchNorm, Conv, Dense, GlobalAvgPool, ModelSpec, Normalize, ReLU, Residual

    def block(name, filters, stride, project):
        body = (Conv("conv1", filters, 3, stride=stride, pads=(1, 1, 1, 1), bias=False), BatchNorm("bn1"), ReLU(),
                Conv("conv2", filters, 3, pads=(1, 1, 1, 1), bias=False), BatchNorm("bn2"))
        shortcut = (Conv("proj", filters, 1, stride=stride, bias=False), BatchNorm("proj_bn")) if project else ()
        return Residual(name, body, shortcut)

    SPEC = ModelSpec(name="NAME", input_shape=(8, 8, 1), normalize=Normalize(mean=(0.5,), std=(0.25,)), layers=(
        Conv("stem", WIDTH, 3, pads=(1, 1, 1, 1), bias=False), BatchNorm("stem_bn"), ReLU(),
        block("b1", WIDTH, 1, False), block("b2", 2 * WIDTH, 2, True),
        GlobalAvgPool(), Dense("logits", 10)))
''')


def tiny_resnet_file(folder, name, width):
    path = os.path.join(folder, f"{name}.py")
    with open(path, "w") as f:
        f.write(TINY_RESNET.replace("NAME", name).replace("WIDTH", str(width)))
    return path


def toy8x8(seed=0, n=300):
    """Ten classes of 8x8 grey images that a small net can tell apart: each class a bright blob somewhere."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    centers = rng.uniform(0, 1, (10, 64)).astype(np.float32)
    x = np.clip(centers[labels] + 0.15 * rng.standard_normal((n, 64)), 0, 1).astype(np.float32)
    cut = n * 3 // 4
    return ArrayDataset("toy8x8", x[:cut], labels[:cut], x[cut:], labels[cut:], (8, 8, 1), 10)


def frozen_outputs(spec, values, x, what=lambda model: model.pre_activations):
    with tf.Graph().as_default():
        inputs = tf1.placeholder(tf.float32, [None, spec.input_size])
        model = model_graph.build_frozen(spec, values, inputs)
        with tf1.Session() as sess:
            return sess.run(what(model), {inputs: x})


def random_values(spec, seed=0):
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(0.5, 1.5, shape).astype(np.float32) for name, shape in builder.param_shapes(spec).items()}


def test_batchnorm_at_inference_is_numpy_on_the_moving_statistics():
    spec = ModelSpec("bn", (4, 4, 3), (BatchNorm("bn", epsilon=1e-3), ReLU(), GlobalAvgPool(), Dense("logits", 2)))
    values = random_values(spec)
    x = np.random.default_rng(1).normal(size=(5, 48)).astype(np.float32)
    got = frozen_outputs(spec, values, x)[0]   # what the ReLU sees: the BatchNorm's output
    v = {k.split("/")[1]: values[k] for k in values if k.startswith("bn/")}
    expected = (x.reshape(5, 4, 4, 3) - v["moving_mean"]) / np.sqrt(v["moving_variance"] + 1e-3) * v["gamma"] + \
        v["beta"]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert recorded_points(spec)[0] == ("bn", (4, 4, 3))


def test_residual_block_with_identity_shortcut_is_body_plus_input():
    spec = ModelSpec("res", (4, 4, 2), (Residual("block", (Conv("conv", 2, 3, padding="SAME"),)),
                                        GlobalAvgPool(), Dense("logits", 2)))
    values = random_values(spec)
    x = np.random.default_rng(2).normal(size=(3, 32)).astype(np.float32)
    total = frozen_outputs(spec, values, x)[0]    # the sum, before the block's ReLU
    images = x.reshape(3, 4, 4, 2)
    with tf.Graph().as_default(), tf1.Session() as sess:
        body = sess.run(tf.nn.conv2d(images, values["block/conv/weights"], 1, "SAME") + values["block/conv/biases"])
    np.testing.assert_allclose(total, body + images, rtol=1e-5, atol=1e-5)
    assert [name for name, _ in recorded_points(spec)] == ["block", "logits"]


@pytest.mark.parametrize("kernel,stride,pads,size", [(3, 2, (1, 1, 1, 1), 6), (3, 1, (1, 1, 1, 1), 6),
                                                    (3, 2, (0, 1, 0, 1), 6), (5, 1, (2, 2, 1, 3), 7),
                                                    (3, 2, (1, 1, 1, 1), 7)])
def test_explicit_pads_are_tf_pad_then_a_valid_conv(kernel, stride, pads, size):
    """pads=(top, bottom, left, right) is tf.pad then a VALID conv: pads=(1, 1, 1, 1) at stride 2 is PyTorch's
    padding=1, one zero on each side, where TensorFlow's SAME puts none before and one after (the builder
    uses SAME only where its zeros are the same)."""
    conv = Conv("conv", 3, kernel, stride=stride, pads=pads)
    spec = ModelSpec("pad", (size, size, 2), (conv, ReLU(), GlobalAvgPool(), Dense("logits", 2)))
    values = random_values(spec)
    x = np.random.default_rng(3).normal(size=(2, size * size * 2)).astype(np.float32)
    got = frozen_outputs(spec, values, x)[0]
    images = x.reshape(2, size, size, 2)
    w, b = values["conv/weights"], values["conv/biases"]
    top, bottom, left, right = pads
    with tf.Graph().as_default(), tf1.Session() as sess:
        padded = sess.run(tf.nn.conv2d(tf.pad(images, [[0, 0], [top, bottom], [left, right], [0, 0]]), w, stride,
                                       "VALID") + b)
        same = sess.run(tf.nn.conv2d(images, w, stride, "SAME") + b)
    np.testing.assert_allclose(got, padded, rtol=1e-5, atol=1e-5)
    assert (got.shape == same.shape and np.allclose(got, same)) == (builder.same_pads((size, size), kernel, stride) == pads)
    if (kernel, stride, pads, size) == (3, 2, (1, 1, 1, 1), 6):
        assert got.shape == same.shape == (2, 3, 3, 3) and not np.allclose(got, same)


def test_input_normalization_is_the_teachers_first_op():
    spec = ModelSpec("norm", (2, 2, 2), (Dense("logits", 2),), normalize=Normalize(mean=(0.5, 0.2), std=(0.1, 0.4)))
    plain = spec._replace(normalize=None)
    values = random_values(spec)
    x = np.random.default_rng(4).uniform(size=(3, 8)).astype(np.float32)
    normalized = ((x.reshape(3, 2, 2, 2) - np.float32([0.5, 0.2])) / np.float32([0.1, 0.4])).reshape(3, 8)
    np.testing.assert_allclose(frozen_outputs(spec, values, x)[-1], frozen_outputs(plain, values, normalized)[-1],
                               rtol=1e-5, atol=1e-5)


def test_the_frozen_teacher_trains_nothing_but_the_input(tmp_path):
    spec = models.get(tiny_resnet_file(str(tmp_path), "frozen_resnet", 2))
    with tf.Graph().as_default():
        x = tf1.Variable(np.zeros((2, 64), np.float32), name="reconstructed_inputs")
        model = model_graph.build_frozen(spec, random_values(spec), x)
        assert tf1.trainable_variables() == [x] and tf1.global_variables() == [x]
        assert not model.updates
        assert set(model.batchnorm_inputs) == {"stem_bn", "b1/bn1", "b1/bn2", "b2/bn1", "b2/bn2", "b2/proj_bn"}


def test_the_paper_models_keep_their_definitions_and_checkpoint_names():
    """Every checkpoint and <model>.spec.json saved before BatchNorm existed still loads: the same JSON and
    the same variable names and shapes."""
    assert to_json(models.get("lenet"))["layers"][:2] == [
        {"type": "Conv", "name": "conv1", "filters": 6, "kernel": 5, "dropout": 0.0, "stride": 1, "padding": "VALID"},
        {"type": "MaxPool", "size": 2}]
    assert builder.param_shapes(models.get("lenet")) == {
        "conv1/weights": (5, 5, 1, 6), "conv1/biases": (6,), "conv2/weights": (5, 5, 6, 16), "conv2/biases": (16,),
        "fc1/weights": (400, 120), "fc1/biases": (120,), "fc2/weights": (120, 84), "fc2/biases": (84,),
        "logits/weights": (84, 10), "logits/biases": (10,)}
    assert [n for n, _ in recorded_points(models.get("hinton1200"))] == ["fc1", "fc2", "logits"]
    assert json.loads(json.dumps(to_json(models.get("hinton800")))) == {
        "name": "hinton800", "input_shape": [784], "layers": [
            {"type": "Dense", "name": n, "units": u, "dropout": 0.0} for n, u in
            (("fc1", 800), ("fc2", 800), ("logits", 10))]}


def test_resnet20_and_resnet8_are_he_et_al_cifar_resnets():
    r20, r8 = models.get("resnet20"), models.get("resnet8")
    assert builder.param_count(r20) == 273754 and builder.param_count(r8) == 78426   # He et al.: 0.27M for n = 3
    assert len(r20.weighted_layers) == 6 * 3 + 2 + 2 and len(r8.weighted_layers) == 6 * 1 + 2 + 2  # + 2 projections
    assert recorded_points(r20)[-2:] == [("stage3_block3", (8, 8, 64)), ("logits", (10,))]
    from metadata import spectral
    assert spectral.why_no_graph(r20).startswith("its spectral graph has 188,426 vertices, over the 20,000-vertex")
    assert spectral.why_no_graph(models.get("lenet")) is None


@pytest.fixture
def toy_data(monkeypatch):
    data = toy8x8()
    monkeypatch.setattr(datasets, "get", lambda name, data_dir, flag="--dataset": data)
    return data


def test_moving_averages_change_in_training_and_come_back_from_the_checkpoint(tmp_path, toy_data):
    from procedures import evaluate, train
    spec_file = tiny_resnet_file(str(tmp_path), "bn_resnet", 2)
    result = train.run(make_cfg(summary_folder=str(tmp_path), model=spec_file, dataset="toy", epochs=1,
                                train_batch_size=25, augment="crop_flip"))
    values = checkpoint.load_teacher_values(models.get(spec_file), "", result["model_checkpoint"])
    assert not np.allclose(values["stem_bn/moving_mean"], 0) and not np.allclose(values["stem_bn/moving_variance"], 1)
    evaluated = evaluate.run(make_cfg(summary_folder=str(tmp_path), procedure="evaluate", model=spec_file,
                                      dataset="toy", model_checkpoint=result["model_checkpoint"]))
    assert evaluated["test_accuracy"] == pytest.approx(result["test_accuracy"])   # moving statistics, both times
    log = json.loads((tmp_path / "test" / "log.json").read_text())
    assert log["procedures"]["evaluate/bn_resnet"]["results"]["test_accuracy"] == evaluated["test_accuracy"]
    counts = np.bincount(toy_data.test_y, minlength=len(evaluated["class_accuracy"]))
    present = [(a, n) for a, n in zip(evaluated["class_accuracy"], counts) if n]
    assert sum(a * n for a, n in present) / counts.sum() == pytest.approx(evaluated["test_accuracy"])
    evaluate.run(make_cfg(summary_folder=str(tmp_path), procedure="evaluate", run_name="", model=spec_file,
                          dataset="toy", model_checkpoint=result["model_checkpoint"]))   # no --run_name
    assert "evaluate/bn_resnet" in json.loads((tmp_path / "evaluate" / "log.json").read_text())["procedures"]


@pytest.mark.slow
def test_a_tiny_resnet_pair_runs_train_stats_every_objective_distill_and_evaluate(tmp_path, toy_data):
    from procedures import compute_stats, distill, evaluate, optimize_dataset, train
    teacher, student = tiny_resnet_file(str(tmp_path), "tiny_teacher", 4), tiny_resnet_file(str(tmp_path),
                                                                                            "tiny_student", 2)
    common = dict(summary_folder=str(tmp_path), run_name="res", dataset="toy")
    trained = train.run(make_cfg(model=teacher, epochs=8, train_batch_size=25, optimizer="sgd", lr=0.1,
                                 weight_decay=1e-4, **common))
    assert trained["test_accuracy"] > 0.3
    with_teacher = dict(common, model=teacher, model_checkpoint=trained["model_checkpoint"])
    compute_stats.run(make_cfg(procedure="compute_stats", compute_graphwise_stats=True, **with_teacher))
    # DeepInversion's own lr (0.01) is made for 2,000 steps, and its 2-pixel jitter for 32x32 inputs, not 8x8.
    settings = collections.defaultdict(lambda: dict(optimization_steps=20),
                                       deep_inversion=dict(optimization_steps=150, jitter=0))
    for objective in ("top_layer", "all_layers", "spectral_all_layers", "spectral_layer_pairs", "deep_inversion",
                      "zskd"):
        made = optimize_dataset.run(make_cfg(procedure="optimize_dataset", optimization_objective=objective,
                                             samples_per_class=2, optimize_batch_size=20, batch_stats_weight=1.0,
                                             clip_inputs=True, **settings[objective], **with_teacher))
        assert made["samples"] == 20 and made["teacher_agreement"] > 0.5
    with pytest.raises(UserError, match="^--optimize_batch_order=grouped: tiny_teacher's BatchNorm statistics"):
        optimize_dataset.run(make_cfg(procedure="optimize_dataset", optimization_objective="deep_inversion",
                                      optimize_batch_order="grouped", **with_teacher))
    from viz import stats_viz, view   # the pictures take such a teacher too
    picture = str(tmp_path / "view.png")
    view.run([f"--dataset={made['output']}", f"--model={teacher}",
              f"--model_checkpoint={trained['model_checkpoint']}", f"--output={picture}"])
    stats_viz.run([f"--stats_file={tmp_path}/res/stats/activation_stats_res.npz", f"--output={tmp_path}/stats.png"])
    assert os.path.getsize(picture) > 0 and os.path.getsize(tmp_path / "stats.png") > 0
    distilled = distill.run(make_cfg(procedure="distill", student_model=student, epochs=2, train_batch_size=25,
                                     **with_teacher))
    student_values = checkpoint.load_teacher_values(models.get(student), "", distilled["student_checkpoint"])
    assert not np.allclose(student_values["stem_bn/moving_mean"], 0)   # the student trained in training mode
    evaluated = evaluate.run(make_cfg(procedure="evaluate", model=student, model_checkpoint=distilled[
        "student_checkpoint"], **common))
    assert evaluated["test_accuracy"] == pytest.approx(distilled["test_accuracy"])   # evaluated in inference mode


def test_train_augmentation_is_repeatable_per_step_and_off_by_default():
    from procedures import train
    spec = ModelSpec("aug", (8, 8, 1), (Dense("logits", 2),))
    x = np.random.default_rng(5).uniform(size=(6, 64)).astype(np.float32)
    with tf.Graph().as_default(), tf1.Session() as sess:
        step = tf1.placeholder(tf.int64, [])
        batch = tf.constant(x)
        out = {a: train.augmented(batch, spec, a, 42, step) for a in ("none", "crop", "crop_flip")}
        at1, again1, at2 = (sess.run(out, {step: s}) for s in (1, 1, 2))
    np.testing.assert_array_equal(at1["none"], x)
    for a in ("crop", "crop_flip"):
        np.testing.assert_array_equal(at1[a], again1[a])      # a resumed run sees the same batches
        assert not np.allclose(at1[a], x) and not np.allclose(at1[a], at2[a])
    assert not np.allclose(at1["crop"], at1["crop_flip"])


@pytest.mark.parametrize("layers, expected", [
    ((Residual("r", (Conv("c", 3, 3, padding="SAME"),)), GlobalAvgPool(), Dense("logits", 2)),
     "layer r: the body gives (8, 8, 3) but the shortcut gives (8, 8, 1); they are added"),
    ((Conv("c", 2, 3, pads=(1, 1, 1)), GlobalAvgPool(), Dense("logits", 2)), "pads (1, 1, 1) must be 4"),
    ((Conv("c", 2, 3), BatchNorm("bn", momentum=1.5), GlobalAvgPool(), Dense("logits", 2)), "momentum in [0, 1)"),
    ((Residual("r", (Conv("c", 1, 3, padding="SAME"),)), Residual("r", (Conv("c", 1, 3, padding="SAME"),)),
      GlobalAvgPool(), Dense("logits", 2)), "two layers are named 'r'"),
])
def test_a_bad_residual_or_batchnorm_file_gets_one_line(tmp_path, layers, expected):
    path = tmp_path / "bad.py"
    path.write_text("from models.spec import *\nSPEC = ModelSpec('bad', (8, 8, 1), " + repr(layers) + ")\n")
    with pytest.raises(UserError, match=re.escape(expected)):
        models.get(str(path))


def test_the_example_residual_file_declares_a_valid_batchnorm_resnet():
    spec = models.get(os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples", "models",
                                   "small_resnet.py"))
    assert spec.has_batchnorm and spec.explicit_activations and spec.normalize is not None
    assert [n for n, _ in recorded_points(spec)] == ["stem_bn", "block1/bn1", "block1", "block2/bn1", "block2",
                                                     "logits"]



@pytest.mark.slow
def test_the_builtin_resnets_take_their_channels_and_classes_from_the_data(tmp_path, monkeypatch):
    """resnet8 trained on 32x32 RGB images of 20 classes (CIFAR-100's coarse labels) has a 3-channel stem and 20
    logits; every later step finds both in its checkpoint."""
    from procedures import compute_stats, distill, evaluate, train
    rng = np.random.default_rng(7)
    labels = np.arange(60) % 20
    x = np.clip(rng.uniform(0, 1, (20, 3072))[labels] + 0.1 * rng.normal(size=(60, 3072)), 0, 1).astype(np.float32)
    rgb = ArrayDataset("rgb", x[:40], labels[:40], x[40:], labels[40:], (32, 32, 3), 20)
    monkeypatch.setattr(datasets, "get", lambda name, data_dir, flag="--dataset": rgb)
    common = dict(summary_folder=str(tmp_path), dataset="rgb", model="resnet8")
    trained = train.run(make_cfg(epochs=1, train_batch_size=20, **common))
    assert checkpoint.channels_and_classes(models.get("resnet8"), trained["model_checkpoint"]) == (3, 20)
    teacher = dict(common, model_checkpoint=trained["model_checkpoint"])
    again = checkpoint.spec_for("resnet8", trained["model_checkpoint"])
    assert again.input_shape == (32, 32, 3) and again.num_classes == 20
    compute_stats.run(make_cfg(procedure="compute_stats", **teacher))
    distilled = distill.run(make_cfg(procedure="distill", student_model="resnet8", epochs=1, train_batch_size=20,
                                     **teacher))
    assert evaluate.run(make_cfg(procedure="evaluate", **dict(common, model_checkpoint=distilled[
        "student_checkpoint"])))["test_accuracy"] == pytest.approx(distilled["test_accuracy"])
    assert models.get("resnet8").input_shape == (32, 32, 1)   # grey by default (mnist_conv)
    assert models.adapts_to_data("resnet20") and not models.adapts_to_data("lenet")
    assert models.get("lenet", channels=3).input_shape == (32, 32, 1)   # the paper's models keep their input


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_explicit_pool_pads_are_pytorchs_padding(pool):
    """MaxPool pads never win (PyTorch pads a max-pool with -inf); AvgPool pads are zeros that count in the
    mean (count_include_pad). Both differ from TensorFlow's SAME at stride 2."""
    from models.spec import AvgPool, MaxPool
    layer = (MaxPool if pool == "max" else AvgPool)(3, 2, pads=(1, 1, 1, 1))
    spec = ModelSpec("pool", (6, 6, 1), (layer, Dense("logits", 9)))
    x = -np.random.default_rng(0).uniform(1, 2, (2, 36)).astype(np.float32)   # all negative: zeros would win a max
    values = {"logits/weights": np.eye(9, dtype=np.float32), "logits/biases": np.zeros(9, np.float32)}
    got = frozen_outputs(spec, values, x)[0].reshape(2, 3, 3)
    images = x.reshape(2, 6, 6)
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf if pool == "max" else 0)
    windows = np.stack([padded[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3] for i in range(3) for j in range(3)], axis=1)
    expected = windows.max(axis=(2, 3)) if pool == "max" else windows.mean(axis=(2, 3))
    np.testing.assert_allclose(got.reshape(2, 9), expected, rtol=1e-6)
    from metadata import spectral
    if pool == "avg":   # the spectral graph's edges are the same map
        matrix = spectral._pool_matrix(layer, (6, 6, 1), (3, 3, 1)).toarray()
        np.testing.assert_allclose(x @ matrix, expected, rtol=1e-6)


def test_class_accuracy_is_each_class_share_of_its_own_examples():
    from procedures import evaluate
    predicted, labels = np.array([0, 0, 1, 2, 1]), np.array([0, 1, 1, 2, 2])
    assert evaluate.class_accuracy(predicted, labels, 4) == [1.0, 0.5, 0.5, None]
