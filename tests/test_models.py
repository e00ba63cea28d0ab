import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import models
from models import builder, checkpoint
from models import graph as model_graph
from procedures import train
from runtime import resumable
from tests.conftest import make_cfg
from utils.errors import UserError

tf1 = tf.compat.v1


@pytest.mark.parametrize("name, params", [
    ("hinton1200", 2_395_210), ("hinton800", 1_276_810), ("lenet", 61_706), ("lenet_half", 35_820)])
def test_parameter_counts(name, params):
    assert builder.param_count(models.get(name)) == params


@pytest.mark.parametrize("name", models.NAMES)
def test_output_and_layer_shapes(name):
    spec = models.get(name)
    with tf.Graph().as_default():
        g = model_graph.build_trainable(spec, seed=0)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            outs = sess.run(g.model.pre_activations, {g.inputs: np.zeros((3, spec.input_size), np.float32)})
    shapes = builder.recorded_shapes(spec)
    assert g.model.layer_names == list(shapes)
    for out, shape in zip(outs, shapes.values()):
        assert out.shape == (3,) + shape
    assert outs[-1].shape == (3, 10)


def test_unknown_model_lists_choices():
    with pytest.raises(UserError, match="hinton1200, hinton800, lenet, lenet_half"):
        models.get("resnet")


def test_a_few_train_steps_lower_the_loss(toy_dataset):
    spec = models.get("hinton800")
    with tf.Graph().as_default() as graph:
        g, _, labels, loss, _, train_op = train.build_training_graph(spec, lr=0.001, seed=0)
        init = tf1.global_variables_initializer()
    with tf1.Session(graph=graph) as sess:
        sess.run(init)
        feed = {g.inputs: toy_dataset.train_x, labels: toy_dataset.train_y}
        before = sess.run(loss, feed)
        for _ in range(10):
            sess.run(train_op, {**feed, g.is_training: True})
        after = sess.run(loss, feed)
    assert after < 0.5 * before


def test_dropout_is_active_only_while_training():
    spec = models.get("hinton1200")
    x = np.random.default_rng(0).uniform(size=(4, 784)).astype(np.float32)
    with tf.Graph().as_default():
        g = model_graph.build_trainable(spec, seed=0)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            a, b = (sess.run(g.model.logits, {g.inputs: x}) for _ in range(2))
            c = sess.run(g.model.logits, {g.inputs: x, g.is_training: True})
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.fixture
def trained_checkpoint(tmp_path, toy_dataset, monkeypatch):
    """Runs --procedure=train for a few steps on the toy dataset; returns (cfg, results)."""
    import datasets
    monkeypatch.setattr(datasets, "get", lambda name, data_dir, flag="--dataset": toy_dataset)
    cfg = make_cfg(summary_folder=str(tmp_path), model="hinton800", train_batch_size=32,
                   eval_interval=2, checkpoint_interval=3)
    return cfg, train.run(cfg)


def test_train_writes_checkpoint_log_and_events(trained_checkpoint, tmp_path):
    cfg, results = trained_checkpoint
    assert results["steps"] == 5  # 150 examples / 32 per batch, rounded up
    assert results["model_checkpoint"].endswith("train/checkpoint/hinton800-5")
    assert (tmp_path / "test" / "log.json").exists()
    assert list((tmp_path / "test" / "train").glob("events.out.tfevents.*"))
    assert 0.0 <= results["test_accuracy"] <= 1.0


def test_meta_graph_restores_same_logits(trained_checkpoint, toy_dataset):
    _, results = trained_checkpoint
    x = toy_dataset.test_x[:8]
    with tf.Graph().as_default():
        saver = tf1.train.import_meta_graph(results["model_meta"])
        inputs = tf1.get_collection(model_graph.INPUTS)[0]
        logits = tf1.get_collection(model_graph.LOGITS)[0]
        assert tf1.get_collection(model_graph.MODEL_NAME) == [b"hinton800"] or \
            tf1.get_collection(model_graph.MODEL_NAME) == ["hinton800"]
        assert len(tf1.get_collection(model_graph.PRE_ACTIVATIONS)) == 3
        with tf1.Session() as sess:
            saver.restore(sess, results["model_checkpoint"])
            restored = sess.run(logits, {inputs: x})
    # The frozen teacher, built from the same spec with constants, must agree.
    spec = models.get("hinton800")
    values = checkpoint.load_teacher_values(spec, results["model_meta"], results["model_checkpoint"])
    with tf.Graph().as_default():
        inp = tf1.placeholder(tf.float32, [None, 784])
        frozen = model_graph.build_frozen(spec, values, inp)
        assert tf1.trainable_variables() == []
        with tf1.Session() as sess:
            np.testing.assert_allclose(sess.run(frozen.logits, {inp: x}), restored, rtol=1e-5, atol=1e-5)


def test_checkpoint_of_other_architecture_is_refused(trained_checkpoint):
    _, results = trained_checkpoint
    with pytest.raises(UserError, match="holds hinton800, not --model=hinton1200"):
        checkpoint.load_teacher_values(models.get("hinton1200"), "", results["model_checkpoint"])
    with pytest.raises(UserError, match="hinton800 graph, but --model=lenet"):
        checkpoint.load_teacher_values(models.get("lenet"), results["model_meta"], results["model_checkpoint"])


def test_later_checkpoint_names_a_later_step_of_the_same_model(tmp_path):
    for name in ("lenet-800", "lenet-9380", "lenet-10000.data-00000-of-00001", "lenet_half-20000", "lenet-x"):
        (tmp_path / f"{name}.index").touch()
    assert checkpoint.later_checkpoint(str(tmp_path / "lenet-800")) == str(tmp_path / "lenet-9380")
    assert checkpoint.later_checkpoint(str(tmp_path / "lenet-9380")) is None   # lenet_half's steps do not count
    assert checkpoint.later_checkpoint(str(tmp_path / "lenet")) is None


def test_teacher_from_an_intermediate_checkpoint_is_warned_about(trained_checkpoint, tmp_path, capsys):
    _, results = trained_checkpoint
    prefix = results["model_checkpoint"]
    checkpoint.load_teacher_values(models.get("hinton800"), "", prefix)   # training's last: no warning
    assert "warning" not in capsys.readouterr().err
    folder, name = os.path.split(prefix)
    for f in os.listdir(folder):
        if f.startswith(name + "."):
            shutil.copy(os.path.join(folder, f), tmp_path / f)
    base, step = name.rsplit("-", 1)
    (tmp_path / f"{base}-{int(step) + 1}.index").touch()
    checkpoint.load_teacher_values(models.get("hinton800"), "", str(tmp_path / name))
    assert f"{base}-{int(step) + 1} is" in capsys.readouterr().err


def test_missing_checkpoint_is_refused(tmp_path):
    with pytest.raises(UserError, match="--model_checkpoint: no checkpoint"):
        checkpoint.load_teacher_values(models.get("lenet"), "", str(tmp_path / "lenet-100"))


def test_train_resumes_only_the_run_it_started(trained_checkpoint):
    """The same command again finds the run finished; other settings in the same folder are refused,
    not continued from the finished run's checkpoint (a cosine schedule over 2 epochs is another run)."""
    cfg, first = trained_checkpoint
    again = train.run(cfg)
    assert again["steps"] == first["steps"] == 5 and again["test_accuracy"] == pytest.approx(first["test_accuracy"])
    cfg.epochs = 2
    with pytest.raises(UserError, match=r"holds a hinton800 run with other settings \(--epochs=1 there, 2 now\)"):
        train.run(cfg)


def final_weights(checkpoint_prefix):
    reader = tf.train.load_checkpoint(checkpoint_prefix)
    return {name: reader.get_tensor(name) for name in builder.param_shapes(models.get("hinton1200"))}


def test_interrupted_training_resumes_to_the_same_result(tmp_path, toy_dataset, monkeypatch):
    """hinton1200 (with dropout): killed after step 7 (checkpoint at 6), restarted, it ends
    where an uninterrupted run ends."""
    import datasets
    from utils import progress
    monkeypatch.setattr(datasets, "get", lambda name, data_dir, flag="--dataset": toy_dataset)
    settings = dict(model="hinton1200", train_batch_size=32, epochs=2, checkpoint_interval=3, eval_interval=100)
    whole = train.run(make_cfg(summary_folder=str(tmp_path / "whole"), **settings))

    original_update = progress.Progress.update

    def crash_after_step_7(self, done, **kw):
        if done == 7:
            raise KeyboardInterrupt
        return original_update(self, done, **kw)

    cfg = make_cfg(summary_folder=str(tmp_path / "cut"), **settings)
    monkeypatch.setattr(progress.Progress, "update", crash_after_step_7)
    with pytest.raises(KeyboardInterrupt):
        train.run(cfg)
    monkeypatch.setattr(progress.Progress, "update", original_update)
    ckpt_dir = str(tmp_path / "cut" / "test" / "train" / "checkpoint")
    assert checkpoint.latest_step(ckpt_dir, "hinton1200") == 6
    seconds_to_6 = resumable.checkpoint_seconds(ckpt_dir, "hinton1200")[6]
    resumed = train.run(cfg)
    assert resumed["steps"] == whole["steps"] == 10
    # The reported time is both pieces': up to the checkpoint it resumed from, and after.
    assert seconds_to_6 > 0 and resumed["earlier_pieces_seconds"] == pytest.approx(seconds_to_6, abs=0.1)
    assert resumed["wall_seconds"] > resumed["earlier_pieces_seconds"]
    assert resumable.checkpoint_seconds(ckpt_dir, "hinton1200")[10] == pytest.approx(resumed["wall_seconds"], abs=1.0)
    a, b = final_weights(whole["model_checkpoint"]), final_weights(resumed["model_checkpoint"])
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-5)


def test_model_meta_defaults_to_the_graph_beside_the_checkpoint(teachers, tmp_path):
    """Without --model_meta the .meta that train wrote beside the checkpoint is read, and checked."""
    hinton, lenet = teachers["hinton1200"][1], teachers["lenet"][1]
    prefix = str(tmp_path / "hinton1200-5")
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(hinton["model_checkpoint"] + suffix, prefix + suffix)
    assert checkpoint.load_teacher_values(models.get("hinton1200"), "", prefix)   # no .meta: nothing to check
    shutil.copy(lenet["model_meta"], prefix + ".meta")
    with pytest.raises(UserError, match=r"--model_checkpoint: .*hinton1200-5\.meta is a lenet graph"):
        checkpoint.load_teacher_values(models.get("hinton1200"), "", prefix)
