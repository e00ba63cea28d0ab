"""distill --attention_weight: attention transfer on the feature maps the teacher and student share."""
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

import datasets
import models
from distillation import attention
from models import builder, checkpoint
from procedures import distill
from tests.conftest import toy_for
from tests.test_distill import distill_cfg
from tests.test_fast import fast_run, resnet_pair  # noqa: F401 (a fixture)
from tests.test_modern_models import random_values, tiny_resnet_file
from utils.errors import UserError

tf1 = tf.compat.v1


def test_each_size_is_matched_at_its_last_stage_output(tmp_path):
    teacher = models.get(tiny_resnet_file(str(tmp_path), "wide", 4))
    student = models.get(tiny_resnet_file(str(tmp_path), "narrow", 2))
    pairs = attention.matched(teacher, student)
    assert [(t_name, s_name) for (_, t_name), (_, s_name) in pairs] == [("b1", "b1"), ("b2", "b2")]
    assert attention.describe(pairs, teacher) == "8x8 b1 -> b1, 4x4 b2 -> b2"
    resnet20 = attention.stage_outputs(models.get("resnet20"))
    assert {size: name for size, (_, name) in resnet20.items()} == {
        (32, 32): "stage1_block3", (16, 16): "stage2_block3", (8, 8): "stage3_block3"}


def test_the_attention_map_is_the_normalized_channel_mean_of_squared_relu_outputs():
    z = np.random.default_rng(0).standard_normal((3, 4, 5, 6)).astype(np.float32)
    with tf1.Session(graph=tf.Graph()) as sess:
        got = sess.run(attention.attention_map(tf.constant(z)))
    expected = (np.maximum(z, 0) ** 2).mean(axis=-1).reshape(3, 20)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_the_loss_is_zero_for_the_teacher_itself_and_grows_with_the_difference(tmp_path):
    spec = models.get(tiny_resnet_file(str(tmp_path), "same", 2))
    x = np.random.default_rng(1).uniform(size=(8, spec.input_size)).astype(np.float32)
    pairs = attention.matched(spec, spec)
    with tf.Graph().as_default():
        inputs = tf.constant(x)
        teacher = builder.build(spec, inputs, builder.constants(spec, random_values(spec, 0)))
        same = builder.build(spec, inputs, builder.constants(spec, random_values(spec, 0)))
        other = builder.build(spec, inputs, builder.constants(spec, random_values(spec, 7)))
        with tf1.Session() as sess:
            zero, positive = sess.run([attention.loss(teacher, same, pairs), attention.loss(teacher, other, pairs)])
    assert zero == pytest.approx(0.0, abs=1e-9) and positive > 1e-6


def test_attention_transfer_changes_what_the_student_learns(teachers, capsys):
    common = dict(model="lenet", student_model="lenet_half", model_meta=teachers["lenet"][1]["model_meta"],
                  model_checkpoint=teachers["lenet"][1]["model_checkpoint"], epochs=2)
    with mock.patch.object(datasets, "get", lambda *a, **k: toy_for(1024)):
        plain = distill.run(distill_cfg(teachers, run_name="at_off", **common))
        transfer = distill.run(distill_cfg(teachers, run_name="at_on", attention_weight=250.0, **common))
    assert "[distill] attention transfer, weight 250: 28x28 conv1 -> conv1, 10x10 conv2 -> conv2" in \
        capsys.readouterr().out
    assert np.isfinite(transfer["test_accuracy"]) and transfer["steps"] == plain["steps"]
    a = checkpoint.load_teacher_values(models.get("lenet_half"), "", plain["student_checkpoint"])
    b = checkpoint.load_teacher_values(models.get("lenet_half"), "", transfer["student_checkpoint"])
    assert not np.allclose(a["conv1/weights"], b["conv1/weights"])


@pytest.mark.parametrize("flags, message", [
    (dict(), "--attention_weight matches feature maps of the same height and width, and --model=hinton1200 "
             r"\(none: it has no convolutional feature maps\)"),
    (dict(attention_weight=-1.0), "--attention_weight must be >= 0"),
])
def test_attention_transfer_on_nets_without_shared_maps_is_one_line(teachers, flags, message):
    with pytest.raises(UserError, match=message):
        distill.run(distill_cfg(teachers, **{"attention_weight": 250.0, **flags}))


def test_a_generators_student_learns_the_teachers_attention_too(tmp_path, resnet_pair):
    plain = fast_run(tmp_path, resnet_pair, "fast_plain")
    transfer = fast_run(tmp_path, resnet_pair, "fast_at", attention_weight=250.0)
    student = models.get(resnet_pair[1])
    a = checkpoint.load_teacher_values(student, "", plain["student_checkpoint"])
    b = checkpoint.load_teacher_values(student, "", transfer["student_checkpoint"])
    assert transfer["student_steps"] == plain["student_steps"]
    assert not np.allclose(a["stem/weights"], b["stem/weights"])
