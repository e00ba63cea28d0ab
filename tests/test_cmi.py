"""CMI (generators/cmi.py): its contrastive term against numpy, the local view, the bank's negatives, a round
from a fresh generator, and a whole distillation that resumes exactly, on the tiny BatchNorm ResNet
teacher of tests/test_fast.py."""
import functools
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

import generators
from generators import cmi, fast
from procedures import distill
from reconstruction import image_ops
from tests.test_fast import fast_run, interrupted_then_resumed, loaded, resnet_pair  # noqa: F401 (a fixture)
from utils.errors import UserError

tf1 = tf.compat.v1


def softmax_rows(z):
    z = z - z.max(axis=1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def test_the_contrastive_term_is_each_local_projection_finding_its_own_global_one():
    rng = np.random.default_rng(0)
    local, global_, negatives = (rng.normal(size=s).astype(np.float32) for s in ((4, 6), (4, 6), (3, 12)))
    with tf.Graph().as_default(), tf1.Session() as sess:
        head = cmi.head_variables(6)
        placeholder = tf1.placeholder(tf.float32, [None, 12])
        loss = cmi.contrastive_loss(head, tf.constant(local), tf.constant(global_), placeholder)
        sess.run(tf1.global_variables_initializer())
        weights = sess.run(head)
        with_negatives = sess.run(loss, {placeholder: negatives})
        alone = sess.run(loss, {placeholder: np.zeros((0, 12), np.float32)})

    def project(x):
        h = np.maximum(x @ weights["hidden/weights"] + weights["hidden/biases"], 0)
        out = h @ weights["out/weights"] + weights["out/biases"]
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def rows(loc, glo):
        p = softmax_rows(project(loc) @ project(glo).T / cmi.CONTRAST_TEMPERATURE)
        return -np.log(np.diag(p))
    both = rows(np.concatenate([local, negatives[:, :6]]), np.concatenate([global_, negatives[:, 6:]]))
    assert with_negatives == pytest.approx(both[:4].mean() + both[4:].mean(), rel=1e-4)
    assert alone == pytest.approx(rows(local, global_).mean(), rel=1e-4)


def test_the_local_view_is_a_box_of_the_image_resized_back():
    x = np.random.default_rng(1).random((3, 64)).astype(np.float32)
    with tf.Graph().as_default(), tf1.Session() as sess:
        whole = sess.run(image_ops.random_resized_crop(tf.constant(x), (8, 8, 1), (1.0, 1.0), 5, 0, ratio=(1, 1)))
        part = image_ops.random_resized_crop(tf.constant(x), (8, 8, 1), (0.25, 0.25), 5, tf.constant(2))
        a, b = sess.run(part), sess.run(part)
        other = sess.run(image_ops.random_resized_crop(tf.constant(x), (8, 8, 1), (0.25, 0.25), 5, 3))
    np.testing.assert_allclose(whole, x, atol=1e-6)   # the whole image, resized to itself
    np.testing.assert_array_equal(a, b)   # keyed by seed and step
    assert not np.allclose(a, other)
    assert a.min() >= x.min() - 1e-6 and a.max() <= x.max() + 1e-6   # bilinear: within the pixels it reads


def test_the_banks_negatives_come_from_its_newest_rows_and_repeat():
    memory = fast.Memory("/unused", 0, lambda path, array: None, "cmi", with_features=True)
    assert memory.negatives(0, 0, 0, 4, 8) is None
    for r in range(5):   # rows numbered 0..19 in the order made
        memory.add(r, np.zeros((4, 2), np.float32), np.full((4, 3), r * 4, np.float32) + np.arange(4)[:, None])
    drawn = memory.negatives(7, 5, 3, 6, 8)
    assert drawn.shape == (6, 3) and len(set(drawn[:, 0])) == 6
    assert set(drawn[:, 0]) <= set(range(12, 20))   # the ring's last 8 rows
    np.testing.assert_array_equal(drawn, memory.negatives(7, 5, 3, 6, 8))
    assert len(memory.negatives(7, 5, 4, 100, 8)) == 8   # never more than the bank holds


def test_a_missing_feature_file_is_one_line(tmp_path):
    np.save(tmp_path / "round_00000.npy", np.zeros((2, 2), np.float32))
    with pytest.raises(UserError, match=r"^--method=cmi: the checkpoint has 1 rounds but .*features_00000.npy is "
                                        r"missing; delete"):
        fast.Memory(str(tmp_path), 1, None, "cmi", with_features=True)


def test_a_cmi_round_starts_from_a_fresh_generator_that_the_round_fixes(resnet_pair):  # noqa: F811
    from models.graph import build_trainable
    teacher, values, student = loaded(resnet_pair)
    with tf.Graph().as_default():
        g = build_trainable(student, seed=0)
        synthesis = fast.Synthesis(teacher, values, student, g.model.params, 0, 8, 3, 0.001, False,
                                   recipe=cmi.RECIPE, contrast=cmi.contrast(teacher, values, (8, 8, 1), 0, False, 8))
        generator = [v for v in tf1.global_variables() if v.name.startswith(f"{fast.ROUND_SCOPE}/generator/")]
        memory = fast.Memory("/unused", 0, lambda path, array: None, "cmi", with_features=True)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            assert synthesis.meta_variables == [] and synthesis.reset_first_layer is None
            head_before = sess.run(synthesis.contrast.head)
            batch, features, parts = synthesis.run_round(sess, 0, 3, cmi.ADVERSARIAL, memory)
            memory.add(0, batch, features)
            for op in synthesis.start:
                sess.run(op, {synthesis.round: 1})
            round1 = sess.run(generator)
            for op in synthesis.start:
                sess.run(op, {synthesis.round: 1})
            again = sess.run(generator)
            batch2, features2, parts2 = synthesis.run_round(sess, 1, 3, cmi.ADVERSARIAL, memory)
            head_after = sess.run(synthesis.contrast.head)
    assert all(np.array_equal(a, b) for a, b in zip(round1, again))
    assert batch.shape == (8, 64) and features.shape[0] == 8 and features.shape[1] % 2 == 0
    assert not np.array_equal(batch, batch2)
    assert set(parts) == {"one_hot", "adversarial", "batchnorm_statistics", "contrastive"}
    assert all(np.isfinite(v) for v in list(parts.values()) + list(parts2.values()))
    assert any(not np.array_equal(head_before[k], head_after[k]) for k in head_before)   # the head learns


def test_cmi_takes_its_authors_steps_unless_told_and_needs_batchnorm(tmp_path):
    method = generators.METHODS["cmi"]
    assert (method.recipe.steps, method.generator_lr, method.student_optimizer.lr) == (200, 1e-3, 0.1)
    from tests.conftest import make_cfg
    cfg = make_cfg(procedure="distill", model="resnet20", student_model="resnet8", method="cmi", dataset="",
                   eval_dataset="toy", run_name="x", summary_folder=str(tmp_path))
    distill.settle_flags(cfg)
    assert cfg.generator_steps == 200 and cfg.distill_lr_schedule == "cosine" and cfg.lr == 0.1
    cfg = make_cfg(procedure="distill", model="resnet20", student_model="resnet8", method="cmi", dataset="",
                   eval_dataset="toy", run_name="x", summary_folder=str(tmp_path), generator_steps=7)
    cfg.explicit_flags = ["generator_steps"]
    distill.settle_flags(cfg)
    assert cfg.generator_steps == 7
    import models
    with pytest.raises(UserError, match=r"^--method=cmi matches the teacher's BatchNorm statistics, and "
                                        r"--model=lenet has no BatchNorm layer"):
        fast.check_teacher(models.get("lenet"), "cmi")


@pytest.mark.slow
def test_cmi_distillation_keeps_every_round_with_its_features_and_resumes_exactly(tmp_path, resnet_pair,  # noqa: F811
                                                                                  capsys):
    run = dict(method="cmi", epochs=3, generator_steps=2)
    every_line = functools.partial(distill.Progress, every_seconds=0)
    with mock.patch.object(distill, "Progress", lambda *a, every_seconds=None, **k: every_line(*a, **k)):
        whole = fast_run(tmp_path, resnet_pair, "whole", **run)
    out = capsys.readouterr().out
    assert "[distill fast_student, cmi] 0.5/3 rounds" in out and "round=1 generator_step=1/2" in out   # within
    assert whole["generated_samples"] == 3 * 2 * 8 and whole["student_steps"] == 3 * 3   # no warmup
    memory = tmp_path / "whole" / "distill" / "cmi" / "memory"
    assert sorted(p.name for p in memory.iterdir()) == sorted(
        [f"round_{r:05d}.npy" for r in range(3)] + [f"features_{r:05d}.npy" for r in range(3)])
    interrupted_then_resumed(tmp_path, resnet_pair, whole, ("cmi_head/out/weights", "logits/weights"), **run)
    np.testing.assert_array_equal(np.load(memory / "round_00002.npy"),
                                  np.load(tmp_path / "pieces" / "distill" / "cmi" / "memory" / "round_00002.npy"))
