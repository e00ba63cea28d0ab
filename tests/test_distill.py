import hashlib
import os
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

import datasets
import models
from datasets import noise, optimized
from distillation import student
from models import checkpoint
from procedures import distill
from tests.conftest import make_cfg, toy_arrays, toy_for
from utils import atomic
from utils.errors import UserError

tf1 = tf.compat.v1


def test_kd_loss_equals_numpy_reference():
    rng = np.random.default_rng(0)
    s, t, T = rng.normal(size=(5, 10)) * 3, rng.normal(size=(5, 10)) * 3, 4.0
    with tf.Graph().as_default():
        loss = student.kd_loss(tf.constant(s), tf.constant(t), T)
        with tf1.Session() as sess:
            value = sess.run(loss)
    softmax = lambda z: np.exp(z - z.max(1, keepdims=True)) / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)
    reference = T ** 2 * np.mean(-(softmax(t / T) * np.log(softmax(s / T))).sum(1))
    assert value == pytest.approx(reference, rel=1e-6)


def checkpoint_digest(prefix):
    h = hashlib.sha256()
    for suffix in (".index", ".data-00000-of-00001"):
        with open(prefix + suffix, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def distill_cfg(teachers, **overrides):
    train_cfg, result = teachers["hinton1200"]
    settings = dict(summary_folder=train_cfg.summary_folder, run_name="distill_test", procedure="distill",
                    model="hinton1200", student_model="hinton800", model_meta=result["model_meta"],
                    model_checkpoint=result["model_checkpoint"], dataset="mnist", train_batch_size=16,
                    eval_interval=5)
    return make_cfg(**{**settings, **overrides})


def test_student_agrees_more_after_distillation_and_teacher_is_unchanged(teachers):
    before = checkpoint_digest(teachers["hinton1200"][1]["model_checkpoint"])
    with mock.patch.object(datasets, "get", lambda *a, **k: toy_for(784)):
        cfg = distill_cfg(teachers, epochs=1, train_batch_size=150)  # a single step
        start = distill.run(cfg)
        cfg.epochs, cfg.train_batch_size, cfg.run_name = 3, 16, "distill_test_longer"
        end = distill.run(cfg)
    assert end["teacher_agreement"] > start["teacher_agreement"]
    assert checkpoint_digest(cfg.model_checkpoint) == before
    assert os.path.exists(end["student_checkpoint"] + ".index")


def test_noise_dataset_takes_the_teacher_input_shape():
    data = noise.make((32, 32, 1), 20, 0.15, 0.1, seed=1, num_classes=10)
    assert data.train_x.shape == (20, 1024) and data.io_shape == (1024, 10)
    assert abs(float(data.train_x.mean()) - 0.15) < 0.05


def test_npy_dataset_loads_with_labels(tmp_path):
    path = str(tmp_path / "data.npy")
    atomic.save_npy(path, np.zeros((6, 1024), np.float32))
    atomic.save_npy(optimized.labels_path(path), np.arange(6))
    data = datasets.get(path, None)
    assert data.train_x.shape == (6, 1024) and data.input_shape == (1024,) and data.num_classes == 6


def test_784_wide_npy_given_to_lenet_names_both_shapes(teachers, tmp_path):
    path = str(tmp_path / "data.npy")
    atomic.save_npy(path, np.zeros((6, 784), np.float32))
    atomic.save_npy(optimized.labels_path(path), np.arange(6))
    train_cfg, result = teachers["lenet"]
    cfg = make_cfg(summary_folder=str(tmp_path), procedure="distill", model="lenet", student_model="lenet_half",
                   model_meta=result["model_meta"], model_checkpoint=result["model_checkpoint"],
                   dataset=path, eval_dataset="mnist_conv")
    with pytest.raises(UserError, match="gives inputs 784 wide, but --model=lenet expects 1024"):
        distill.run(cfg)


def test_student_of_other_input_size_is_refused(teachers):
    cfg = distill_cfg(teachers, student_model="lenet_half")
    with pytest.raises(UserError, match="--student_model=lenet_half takes 1024 inputs"):
        distill.run(cfg)


def test_stale_checkpoint_is_refused(teachers, tmp_path):
    cfg = distill_cfg(teachers, model_checkpoint=str(tmp_path / "hinton1200-5"))
    with pytest.raises(UserError, match="--model_checkpoint: no checkpoint"):
        distill.run(cfg)


@pytest.mark.parametrize("schedule, average", [("constant", 0.0), ("cosine", 0.0), ("constant", 0.7)])
def test_an_interrupted_distillation_resumes_to_the_same_student(teachers, tmp_path, monkeypatch, schedule, average):
    """Stopped after step 7 (checkpoint at 6), the same command resumes there and ends with the weights of
    an uninterrupted run, not a run started again (with cosine: at the rate of the step it stopped at; with
    --student_average: with the average it had)."""
    from utils import progress
    monkeypatch.setattr(datasets, "get", lambda *a, **k: toy_for(784))
    settings = dict(epochs=2, train_batch_size=32, checkpoint_interval=3, augment_shift=1,  # 5 steps an epoch
                    distill_lr_schedule=schedule, student_average=average)
    whole = distill.run(distill_cfg(teachers, summary_folder=str(tmp_path / "whole"), **settings))
    original_update = progress.Progress.update

    def stop_after_step_7(self, done, **kw):
        if done == 7:
            raise KeyboardInterrupt
        return original_update(self, done, **kw)
    cfg = distill_cfg(teachers, summary_folder=str(tmp_path / "cut"), **settings)
    monkeypatch.setattr(progress.Progress, "update", stop_after_step_7)
    with pytest.raises(KeyboardInterrupt):
        distill.run(cfg)
    monkeypatch.setattr(progress.Progress, "update", original_update)
    ckpt_dir = os.path.dirname(whole["student_checkpoint"]).replace(str(tmp_path / "whole"), str(tmp_path / "cut"))
    assert checkpoint.latest_step(ckpt_dir, "hinton800") == 6
    resumed = distill.run(cfg)
    assert resumed["steps"] == whole["steps"] == 10 and resumed["earlier_pieces_seconds"] > 0
    a = checkpoint.load_teacher_values(models.get("hinton800"), "", whole["student_checkpoint"])
    b = checkpoint.load_teacher_values(models.get("hinton800"), "", resumed["student_checkpoint"])
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-5)
    # the saver keeps its last two checkpoints across the pieces too, not each piece's last two
    assert checkpoint.checkpoint_steps(ckpt_dir, "hinton800") == [9, 10]


def test_the_student_average_is_what_is_evaluated_and_saved(teachers, tmp_path, monkeypatch):
    """--student_average changes what is kept, not how the student trains: the last step's weights equal a
    run without it (the swaps around each evaluation undone), and the saved, averaged student is the one
    whose accuracy the run reports."""
    from procedures import evaluate
    monkeypatch.setattr(datasets, "get", lambda *a, **k: toy_for(784))
    settings = dict(epochs=2, train_batch_size=32, eval_interval=2)   # 10 steps, evaluated after 2, 4, ...
    plain = distill.run(distill_cfg(teachers, summary_folder=str(tmp_path / "plain"), **settings))
    averaged = distill.run(distill_cfg(teachers, summary_folder=str(tmp_path / "avg"), student_average=0.8,
                                       **settings))
    last_weights = checkpoint.load_teacher_values(models.get("hinton800"), "", plain["student_checkpoint"])
    saved = tf.train.load_checkpoint(averaged["student_checkpoint"])
    moved = 0
    for name, value in last_weights.items():
        np.testing.assert_allclose(saved.get_tensor(f"{name}/ExponentialMovingAverage"), value, rtol=1e-5, atol=1e-6)
        moved += not np.allclose(saved.get_tensor(name), value, rtol=1e-3, atol=1e-4)
    assert moved == len(last_weights)                      # the saved student is the average, not the last step
    again = evaluate.run(make_cfg(procedure="evaluate", model="hinton800", dataset="toy", summary_folder=str(tmp_path),
                                  model_checkpoint=averaged["student_checkpoint"]))
    assert again["test_accuracy"] == pytest.approx(averaged["test_accuracy"])
    with pytest.raises(UserError, match=r"--student_average is a decay per step in \[0, 1\)"):
        distill.run(distill_cfg(teachers, summary_folder=str(tmp_path / "bad"), student_average=1.0))


def learning_rates(run_dir):
    """The distill folder's learning_rate scalars as TensorBoard reads them: {step: rate}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    folder = next(root for root, _, files in os.walk(run_dir) if any(f.startswith("events.out") for f in files))
    events = EventAccumulator(folder)
    events.Reload()
    return {e.step: e.value for e in events.Scalars("learning_rate")}


@pytest.mark.parametrize("schedule, halfway, last", [("constant", 1.0, 1.0), ("cosine", 0.505, 0.01)])
def test_the_student_rate_follows_the_schedule_to_the_last_step(teachers, tmp_path, monkeypatch, schedule, halfway,
                                                                last):
    """cosine: the rate after half the steps is (1 + 0.01) / 2 of --lr, after the last 1%."""
    monkeypatch.setattr(datasets, "get", lambda *a, **k: toy_for(784))
    cfg = distill_cfg(teachers, summary_folder=str(tmp_path), epochs=2, train_batch_size=32, lr=0.002,
                      distill_lr_schedule=schedule)   # 10 steps, evaluated after 5 and 10
    distill.run(cfg)
    rates = learning_rates(str(tmp_path))
    assert sorted(rates) == [5, 10]
    assert rates[5] == pytest.approx(0.002 * halfway, rel=1e-4) and rates[10] == pytest.approx(0.002 * last, rel=1e-4)


def test_a_distillation_with_other_settings_is_not_resumed_from_an_earlier_one(teachers, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "get", lambda *a, **k: toy_for(784))
    distill.run(distill_cfg(teachers, summary_folder=str(tmp_path), epochs=1))
    with pytest.raises(UserError, match=r"holds a hinton800 run with other settings \(--temperature=8.0 there, "
                                        r"4.0 now\); give another --run_name"):
        distill.run(distill_cfg(teachers, summary_folder=str(tmp_path), epochs=1, temperature=4.0))


@pytest.mark.parametrize("dataset, tag", [
    ("mnist", "mnist"), ("mnist_conv@32x32", "mnist_conv@32x32"), ("/data/mine.npz", "mine.npz"),
    ("/data/mine.npz@32x32", "mine.npz@32x32"), ("/data/images/", "images"), ("rel/images@28x28", "images@28x28"),
    ("/runs/r/data/data_optimized_top_layer_r.npy", "data_optimized_top_layer_r"),
    (".", os.path.basename(os.getcwd())), ("/", "data")])
def test_a_distillation_folder_is_one_name_whatever_the_dataset_argument(dataset, tag):
    from utils import runlog
    assert runlog.dataset_tag(dataset) == tag
    assert os.path.dirname(os.path.join("summaries", "run", "distill", runlog.dataset_tag(dataset))) == \
        os.path.join("summaries", "run", "distill")


def test_an_absolute_npz_with_a_resize_is_distilled_inside_the_run_folder(teachers, tmp_path):
    x, labels = toy_arrays(784, n_train=64, n_test=32)
    images = (x.reshape(-1, 28, 28) * 255).astype(np.uint8)
    data = tmp_path / "data" / "mine.npz"
    data.parent.mkdir()
    np.savez(data, x_train=images[:64], y_train=labels[:64], x_test=images[64:], y_test=labels[64:])
    out = tmp_path / "runs"
    result = distill.run(distill_cfg(teachers, dataset=f"{data}@28x28", summary_folder=str(out), epochs=1))
    assert result["student_checkpoint"].startswith(str(out / "distill_test" / "distill" / "mine.npz@28x28"))
    assert sorted(os.listdir(data.parent)) == ["mine.npz"]   # nothing written beside the user's data
