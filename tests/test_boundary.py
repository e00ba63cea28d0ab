"""distill --boundary_steps: batches pushed towards the student's disagreement with the teacher."""
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

import datasets
import models
from distillation import boundary
from models import builder, checkpoint
from procedures import distill
from tests.conftest import make_cfg, toy_for
from tests.test_distill import distill_cfg
from utils.errors import UserError

tf1 = tf.compat.v1


def random_values(spec, seed):
    graph = tf.Graph()
    with graph.as_default():
        params = builder.create_variables(spec, seed)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            return sess.run(params)


def test_pushes_raise_the_disagreement_and_keep_pixels_in_range():
    teacher, student = models.get("hinton1200"), models.get("hinton800")
    x = np.random.default_rng(0).uniform(size=(32, 784)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        params = builder.constants(student, random_values(student, 2))
        teacher_values = random_values(teacher, 1)
        inputs = tf.constant(x)
        moved = boundary.pushed(inputs, teacher, teacher_values, student, params, None, steps=3, step_size=0.05,
                                temperature=4.0)

        def gap(batch):
            teacher_logits = builder.build(teacher, batch, builder.constants(teacher, teacher_values)).logits
            return boundary.disagreement(teacher_logits, builder.build(student, batch, params).logits, 4.0)
        with tf1.Session() as sess:
            out, before, after = sess.run([moved, gap(inputs), gap(moved)])
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.abs(out - x).max() <= 3 * 0.05 + 1e-6
    assert after.mean() > 1.5 * before.mean()
    assert np.mean(after > before) > 0.9


def test_boundary_steps_change_what_the_student_learns(teachers):
    with mock.patch.object(datasets, "get", lambda *a, **k: toy_for(784)):
        shifted = distill.run(distill_cfg(teachers, epochs=2, run_name="shift", augment_shift=1))
        pushed = distill.run(distill_cfg(teachers, epochs=2, run_name="pushed", augment_shift=1, boundary_steps=1))
    assert np.isfinite(pushed["test_accuracy"]) and pushed["steps"] == shifted["steps"]
    a = checkpoint.load_teacher_values(models.get("hinton800"), "", shifted["student_checkpoint"])
    b = checkpoint.load_teacher_values(models.get("hinton800"), "", pushed["student_checkpoint"])
    assert not np.allclose(a["fc1/weights"], b["fc1/weights"])


def test_a_push_size_of_zero_is_a_user_error(teachers):
    with pytest.raises(UserError, match="--boundary_step_size must be > 0"):
        distill.run(distill_cfg(teachers, boundary_steps=2, boundary_step_size=0.0))


@pytest.mark.parametrize("flags", [dict(boundary_steps=2), dict(augment_shift=2, mixup_alpha=1.0)])
def test_batch_transforms_on_a_generator_are_a_user_error(teachers, flags):
    with pytest.raises(UserError, match="transform a dataset's batches; --method=dafl"):
        distill.run(distill_cfg(teachers, dataset="dafl", eval_dataset="mnist", **flags))


def test_the_deprecated_dataset_spelling_becomes_the_method_with_one_line(capsys):
    import generators
    cfg = make_cfg(procedure="distill", dataset="dfad", method=None)
    generators.take_deprecated_dataset_alias(cfg)
    assert (cfg.method, cfg.dataset) == ("dfad", "")
    assert capsys.readouterr().err == ("warning: --dataset=dfad is deprecated; use --method=dfad "
                                       "(no --dataset needed)\n")


def test_a_method_and_a_dataset_together_are_a_user_error(teachers):
    with pytest.raises(UserError, match="--method=dafl draws its own samples from a generator; leave --dataset"):
        distill.run(distill_cfg(teachers, method="dafl", dataset="mnist"))
