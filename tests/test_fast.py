"""Fast (generators/fast.py): one round's steps, the meta generator's update, the memory, and a whole
distillation that resumes exactly, on a tiny BatchNorm ResNet teacher of 8x8 inputs; the metadata
generator, Fast's loop on compute_stats' per-class statistics, on a teacher without BatchNorm."""
import json
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

import datasets
from generators import fast
from models import checkpoint
from procedures import compute_stats, distill, train
from tests.conftest import make_cfg
from tests.test_modern_models import tiny_resnet_file, toy8x8
from utils.errors import UserError

tf1 = tf.compat.v1


@pytest.fixture(scope="module")
def resnet_pair(tmp_path_factory):
    """A tiny BatchNorm ResNet teacher trained on 8x8 toy images, and a narrower student's definition."""
    root = tmp_path_factory.mktemp("fast")
    teacher = tiny_resnet_file(str(root), "fast_teacher", 4)
    student = tiny_resnet_file(str(root), "fast_student", 2)
    with mock.patch.object(datasets, "get", lambda name, data_dir, flag="--dataset": toy8x8()):
        trained = train.run(make_cfg(summary_folder=str(root), run_name="t", model=teacher, dataset="toy",
                                     epochs=3, train_batch_size=25, optimizer="sgd", lr=0.1))
    return teacher, student, trained["model_checkpoint"]


def fast_run(tmp_path, resnet_pair, name, **overrides):
    teacher, student, ckpt = resnet_pair or (None, None, None)
    cfg = dict(procedure="distill", summary_folder=str(tmp_path), run_name=name, model=teacher,
               model_checkpoint=ckpt, student_model=student, method="fast", dataset="", eval_dataset="toy",
               epochs=4, student_steps_per_round=3, generator_steps=2, train_batch_size=8, checkpoint_interval=1)
    cfg.update(overrides)
    with mock.patch.object(datasets, "get", lambda n, d, flag="--dataset": toy8x8()):
        return distill.run(make_cfg(**cfg))


def loaded(resnet_pair):
    """(teacher spec, its weights, student spec) of the pair, for a Synthesis built by hand."""
    import models
    teacher_file, student_file, ckpt = resnet_pair
    teacher = checkpoint.spec_for(teacher_file, ckpt)
    return teacher, checkpoint.load_teacher_values(teacher, "", ckpt), models.get(student_file)


def test_a_round_moves_the_rounds_generator_and_the_meta_generator_only_at_its_end(resnet_pair):
    from models.graph import build_trainable
    teacher, values, student = loaded(resnet_pair)
    with tf.Graph().as_default():
        g = build_trainable(student, seed=0)
        synthesis = fast.Synthesis(teacher, values, student, g.model.params, 0, 16, 3, 0.01, False)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            meta_before = sess.run(synthesis.meta_variables)
            for op in synthesis.start:
                sess.run(op, {synthesis.round: 0})
            losses = []
            for it in range(3):
                losses.append(sess.run(synthesis.loss, {synthesis.round: 0, synthesis.iteration: it}))
                sess.run(synthesis.step, {synthesis.round: 0, synthesis.iteration: it})
            assert all(np.array_equal(a, b) for a, b in zip(meta_before, sess.run(synthesis.meta_variables)))
            sess.run(synthesis.finish)
            meta_after = sess.run(synthesis.meta_variables)
            best = sess.run(synthesis.best)
    assert any(not np.array_equal(a, b) for a, b in zip(meta_before, meta_after))
    assert best.shape == (16, 64) and 0.0 <= best.min() and best.max() <= 1.0   # a sigmoid's pixels
    assert np.all(np.isfinite(losses))


def test_the_generator_takes_its_width(resnet_pair):
    from models.graph import build_trainable
    teacher, values, student = loaded(resnet_pair)
    with tf.Graph().as_default():
        g = build_trainable(student, seed=0)
        synthesis = fast.Synthesis(teacher, values, student, g.model.params, 0, 8, 1, 0.01, False, width=3)
        shapes = {v.name.split(":")[0].split(fast.META_SCOPE + "/")[1]: v.shape.as_list()
                  for v in synthesis.meta_variables}
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            for op in synthesis.start:
                sess.run(op, {synthesis.round: 0})
            sess.run(synthesis.step, {synthesis.round: 0})
            sess.run(synthesis.finish)
            best = sess.run(synthesis.best)
    assert shapes["bn0/gamma"] == [6] and shapes["conv1/weights"] == [3, 3, 6, 6]
    assert shapes["conv2/weights"] == [3, 3, 6, 3] and shapes["out/weights"][2] == 3
    assert best.shape == (8, 64) and np.all(np.isfinite(best))


def test_the_adversarial_term_counts_only_the_samples_both_networks_agree_on():
    with tf.Graph().as_default(), tf1.Session() as sess:
        teacher = tf.constant([[2.0, 0.0], [0.0, 2.0]])
        student = tf.constant([[1.0, 0.0], [1.0, 0.0]])   # agrees on the first sample only
        got = sess.run(fast.adversarial_term(student, teacher))
    p = np.exp([2.0, 0.0]) / np.exp([2.0, 0.0]).sum()
    q = np.exp([1.0, 0.0]) / np.exp([1.0, 0.0]).sum()
    assert got == pytest.approx(-np.sum(p * np.log(p / q)) / 2, rel=1e-5)


def test_a_teacher_without_batchnorm_is_one_line():
    import models
    with pytest.raises(UserError, match=r"^--method=fast matches the teacher's BatchNorm statistics, and "
                                        r"--model=lenet has no BatchNorm layer"):
        fast.check_teacher(models.get("lenet"))


def test_warmup_and_the_reset_keep_fasts_proportions():
    assert (fast.warmup_rounds(220), fast.reset_round(220)) == (20, 140)
    assert fast.student_steps_total(22, 10) == 20 * 10


@pytest.mark.slow
def test_fast_distillation_keeps_every_round_and_resumes_exactly(tmp_path, resnet_pair):
    whole = fast_run(tmp_path, resnet_pair, "whole")
    assert whole["generated_samples"] == 4 * 2 * 8 and whole["student_steps"] == 4 * 3
    memory = tmp_path / "whole" / "distill" / "fast" / "memory"
    assert sorted(p.name for p in memory.iterdir()) == [f"round_{r:05d}.npy" for r in range(4)]

    resumed = interrupted_then_resumed(tmp_path, resnet_pair, whole, ("fast_meta/dense/weights", "logits/weights"))
    assert resumed["test_accuracy"] == pytest.approx(whole["test_accuracy"])


def interrupted_then_resumed(tmp_path, resnet_pair, whole, names, **run):
    """The run `whole` made again as "pieces": stopped after round 2's checkpoint, then resumed; checks that
    the checkpoint's `names` match the whole run's, and returns the resumed run's result."""
    class Interrupted(distill.Progress):
        def update(self, done, **values):
            if done == 2:
                raise KeyboardInterrupt
            super().update(done, **values)
    with mock.patch.object(distill, "Progress", Interrupted), pytest.raises(KeyboardInterrupt):
        fast_run(tmp_path, resnet_pair, "pieces", **run)
    resumed = fast_run(tmp_path, resnet_pair, "pieces", **run)
    read = lambda r: tf.train.load_checkpoint(r["student_checkpoint"])  # noqa: E731
    for name in names:
        np.testing.assert_allclose(read(resumed).get_tensor(name), read(whole).get_tensor(name), rtol=1e-4, atol=1e-5)
    return resumed


PLAIN_CNN = """
from models.spec import Conv, Dense, ModelSpec, Normalize, ReLU, GlobalAvgPool
SPEC = ModelSpec(name="plain_cnn", input_shape=(8, 8, 1), normalize=Normalize(mean=(0.5,), std=(0.25,)), layers=(
    Conv("c1", 6, 3, pads=(1, 1, 1, 1)), ReLU(), Conv("c2", 8, 3, stride=2, pads=(1, 1, 1, 1)), ReLU(),
    GlobalAvgPool(), Dense("logits", 10)))
"""


@pytest.fixture(scope="module")
def plain_teacher(tmp_path_factory):
    """A tiny teacher without BatchNorm, trained on 8x8 toy images, and its per-class statistics."""
    root = tmp_path_factory.mktemp("metadata")
    teacher = str(root / "plain_cnn.py")
    with open(teacher, "w") as f:
        f.write(PLAIN_CNN)
    with mock.patch.object(datasets, "get", lambda name, data_dir, flag="--dataset": toy8x8()):
        trained = train.run(make_cfg(summary_folder=str(root), run_name="m", model=teacher, dataset="toy",
                                     epochs=3, train_batch_size=25, lr=0.01))
        stats = compute_stats.run(make_cfg(procedure="compute_stats", summary_folder=str(root), run_name="m",
                                           model=teacher, model_checkpoint=trained["model_checkpoint"],
                                           dataset="toy"))
    return teacher, trained["model_checkpoint"], stats["stats_file"]


def test_the_metadata_generator_matches_recorded_statistics_on_a_teacher_without_batchnorm(tmp_path, plain_teacher,
                                                                                           capsys):
    teacher, ckpt, stats = plain_teacher
    student = tiny_resnet_file(str(tmp_path), "student", 2)
    run = dict(model=teacher, model_checkpoint=ckpt, student_model=student, method="metadata", epochs=3,
               student_steps_per_round=2, generator_steps=2, train_batch_size=10, stats_file=stats, generator_width=4)
    result = fast_run(tmp_path, None, "meta", **run)
    assert result["generated_samples"] == 3 * 2 * 10 and result["student_steps"] == 3 * 2
    out = capsys.readouterr().out
    assert f"matches the per-class statistics of {stats}" in out
    # dfkd's own generator teaches its student as dfkd best's is taught, not with Fast's SGD
    assert "the student: Adam at 0.002, batches of 10 (dfkd best's student: 0.002, 256)" in out
    flags = json.loads((tmp_path / "meta" / "log.json").read_text())["procedures"]["distill/metadata"]["flags"]
    assert (flags["student_average"], flags["distill_lr_schedule"]) == (0.999, "constant")
    with pytest.raises(UserError, match=r"^--method=fast matches the teacher's BatchNorm statistics"):
        fast_run(tmp_path, None, "fast", **dict(run, method="fast"))
    with pytest.raises(UserError, match=r"^--generator_width sizes the generator of --method=fast, cmi or metadata; "
                                        r"--method=dafl has none"):
        fast_run(tmp_path, None, "dafl", **dict(run, method="dafl"))
    with pytest.raises(UserError, match=r"^--method=metadata: --stats_file: .*missing.npz not found; run "
                                        r"--procedure=compute_stats"):
        fast_run(tmp_path, None, "missing", **dict(run, stats_file=str(tmp_path / "missing.npz")))


def test_the_metadata_term_is_zero_where_the_batch_has_the_recorded_moments():
    from metadata.stats_file import Stats

    class Teacher:   # one recorded layer: its activations are the logits, read at temperature 2
        layer_names, pre_activations = ["logits"], None

    x = np.array([[0.0, 2.0], [2.0, 0.0], [4.0, 4.0], [6.0, 2.0]], np.float32)   # classes 0, 0, 1, 1
    recorded = mock.Mock(spec=Stats, num_groups=2, layer_names=["logits"])
    recorded.mean = lambda name: np.array([[0.5, 0.5], [2.5, 1.5]])
    recorded.std = lambda name: np.array([[0.5, 0.5], [0.5, 0.5]])
    with tf.Graph().as_default(), tf1.Session() as sess:
        Teacher.pre_activations = [tf.constant(x)]
        matched = sess.run(fast.recorded_term(Teacher, (recorded, 2.0), tf.constant([0, 0, 1, 1]), 4))
        recorded.std = lambda name: np.array([[1.5, 0.5], [0.5, 0.5]])   # class 0's first unit 1 off
        off = sess.run(fast.recorded_term(Teacher, (recorded, 2.0), tf.constant([0, 0, 1, 1]), 4))
    assert matched == pytest.approx(0.0, abs=1e-3)
    assert off == pytest.approx(2 * (1.0 / 2) / 4, rel=1e-3)   # n_c 2 x mean over 2 units of 1^2, per sample


def test_the_memory_draws_and_pictures_as_one_array_of_every_batch_would(tmp_path):
    saved = []
    memory = fast.Memory(str(tmp_path), 0, lambda path, batch: saved.append(path))
    batches = [np.random.default_rng(r).random((8, 4)).astype(np.float32) for r in range(5)]
    for r, batch in enumerate(batches):
        memory.add(r, batch)
    joined = np.concatenate(batches)
    for step in range(3):
        picks = np.random.default_rng([1, 4, step]).integers(0, len(joined), 6)
        np.testing.assert_array_equal(memory.draw(1, 4, step, 6), joined[picks])
    np.testing.assert_array_equal(memory.last(11), joined[-11:])
    np.testing.assert_array_equal(memory.last(64), joined)
    assert saved == [memory.path(r) for r in range(5)]
    with pytest.raises(UserError, match=r"^--method=metadata: the checkpoint has 6 rounds but .*round_00000.npy is "
                                        r"missing; delete"):
        fast.Memory(str(tmp_path), 6, None, "metadata")
