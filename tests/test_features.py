"""distill --attention_weight and --hint_weight: terms on the feature maps the teacher and student share."""
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

import datasets
import models
from distillation import features
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
    pairs = features.matched(teacher, student, "--attention_weight")
    assert [(t[1:], s[1:]) for t, s in pairs] == [(("b1", 4), ("b1", 2)), (("b2", 8), ("b2", 4))]
    assert features.describe(pairs, teacher) == "8x8 b1 -> b1, 4x4 b2 -> b2"
    assert not features.channels_agree(teacher, student)
    with pytest.raises(UserError, match=r"^--hint_weight matches feature maps channel by channel, and at 8x8 "
                                        r"--model=wide's b1 has 4 channels where --student_model=narrow's b1 has 2"):
        features.matched(teacher, student, "--hint_weight")
    resnet20, resnet8 = models.get("resnet20"), models.get("resnet8")
    assert {size: name for size, (_, name, _) in features.stage_outputs(resnet20).items()} == {
        (32, 32): "stage1_block3", (16, 16): "stage2_block3", (8, 8): "stage3_block3"}
    assert features.channels_agree(resnet20, resnet8)
    assert not features.channels_agree(models.get("lenet"), models.get("resnet8"))   # no size in common


def test_the_attention_map_is_the_normalized_channel_mean_of_squared_relu_outputs():
    z = np.random.default_rng(0).standard_normal((3, 4, 5, 6)).astype(np.float32)
    with tf1.Session(graph=tf.Graph()) as sess:
        got = sess.run(features.attention_map(tf.constant(z)))
    expected = (np.maximum(z, 0) ** 2).mean(axis=-1).reshape(3, 20)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("term", sorted(features.TERMS))
def test_each_term_is_zero_for_the_teacher_itself_and_grows_with_the_difference(tmp_path, term):
    spec = models.get(tiny_resnet_file(str(tmp_path), "same", 2))
    x = np.random.default_rng(1).uniform(size=(8, spec.input_size)).astype(np.float32)
    pairs = features.matched(spec, spec, f"--{term}")
    loss = features.TERMS[term]
    with tf.Graph().as_default():
        inputs = tf.constant(x)
        teacher = builder.build(spec, inputs, builder.constants(spec, random_values(spec, 0)))
        same = builder.build(spec, inputs, builder.constants(spec, random_values(spec, 0)))
        other = builder.build(spec, inputs, builder.constants(spec, random_values(spec, 7)))
        with tf1.Session() as sess:
            zero, positive = sess.run([loss(teacher, same, pairs), loss(teacher, other, pairs)])
            hint_by_hand = sess.run(tf.add_n([tf.reduce_mean(tf.square(
                tf.nn.relu(other.pre_activations[s[0]]) - tf.nn.relu(teacher.pre_activations[t[0]]))) for t, s in pairs]))
    assert zero == pytest.approx(0.0, abs=1e-9) and positive > 1e-6
    if term == "hint_weight":
        assert positive == pytest.approx(hint_by_hand, rel=1e-5)


@pytest.mark.parametrize("term, weight, printed", [
    ("attention_weight", 250.0, "--attention_weight=250 on 28x28 conv1 -> conv1, 10x10 conv2 -> conv2"),
    ("hint_weight", 10.0, None)])   # lenet_half has half lenet's channels
def test_a_feature_term_changes_what_the_student_learns(teachers, capsys, term, weight, printed):
    common = dict(model="lenet", student_model="lenet_half", model_meta=teachers["lenet"][1]["model_meta"],
                  model_checkpoint=teachers["lenet"][1]["model_checkpoint"], epochs=2)
    if printed is None:
        with pytest.raises(UserError, match=r"^--hint_weight matches feature maps channel by channel, and at 28x28"):
            distill.run(distill_cfg(teachers, run_name="hint", **{term: weight}, **common))
        return
    with mock.patch.object(datasets, "get", lambda *a, **k: toy_for(1024)):
        plain = distill.run(distill_cfg(teachers, run_name="at_off", **common))
        transfer = distill.run(distill_cfg(teachers, run_name="at_on", **{term: weight}, **common))
    assert f"[distill] {printed}" in capsys.readouterr().out
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


@pytest.mark.parametrize("term, weight", [("attention_weight", 250.0), ("hint_weight", 10.0)])
def test_a_generators_student_learns_the_teachers_maps_too(tmp_path, resnet_pair, term, weight):
    teacher_file, student_file, ckpt = resnet_pair
    wide_student = tiny_resnet_file(str(tmp_path), "fast_student_wide", 4)   # the teacher's channels: a hint fits
    pair = (teacher_file, wide_student, ckpt)
    plain = fast_run(tmp_path, pair, "fast_plain")
    transfer = fast_run(tmp_path, pair, "fast_terms", **{term: weight})
    student = models.get(wide_student)
    a = checkpoint.load_teacher_values(student, "", plain["student_checkpoint"])
    b = checkpoint.load_teacher_values(student, "", transfer["student_checkpoint"])
    assert transfer["student_steps"] == plain["student_steps"]
    assert not np.allclose(a["stem/weights"], b["stem/weights"])
