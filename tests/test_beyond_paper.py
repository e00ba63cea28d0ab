"""The beyond-the-paper options: image ops, reconstruction priors, distillation augmentation."""
import os
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

import datasets
import models
from distillation import batches
from metadata import stats_file
from models import checkpoint
from procedures import distill, optimize_dataset
from reconstruction import image_ops, objectives, priors
from tests.conftest import make_cfg, toy_for
from tests.test_distill import distill_cfg
from tests.test_optimize_dataset import reconstruction, setups  # noqa: F401 (module fixture)
from utils.errors import UserError

tf1 = tf.compat.v1


def run_graph(build):
    graph = tf.Graph()
    with graph.as_default():
        out = build()
    with tf1.Session(graph=graph) as sess:
        return sess.run(out)


def single_pixel_images(n, hw, at):
    x = np.zeros((n,) + hw, np.float32)
    x[:, at[0], at[1]] = 1.0
    return x.reshape(n, -1)


def test_random_shift_moves_each_image_by_at_most_max_shift_and_varies_across_the_batch():
    hw, n = (28, 28), 64
    x = single_pixel_images(n, hw, (14, 14))
    moved = run_graph(lambda: image_ops.random_shift(tf.constant(x), hw, 2, seed=7, step=3)).reshape((n,) + hw)
    positions = [np.argwhere(img == 1.0) for img in moved]
    assert all(len(p) == 1 for p in positions)           # the pixel moved, nothing else appeared
    offsets = np.array([p[0] - (14, 14) for p in positions])
    assert np.abs(offsets).max() <= 2
    assert len({tuple(o) for o in offsets}) > 5           # per-sample offsets, not one for the batch


def test_random_shift_is_a_function_of_seed_and_step():
    hw, x = (28, 28), single_pixel_images(8, (28, 28), (10, 10))
    a, b, c = run_graph(lambda: [image_ops.random_shift(tf.constant(x), hw, 3, seed=1, step=s) for s in (5, 5, 6)])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_roll_jitter_shifts_cyclically_and_keeps_every_pixel():
    hw = (32, 32)
    x = np.random.default_rng(0).uniform(size=(4, 1024)).astype(np.float32)
    rolled = run_graph(lambda: image_ops.roll_jitter(tf.constant(x), hw, 2, seed=3, step=1))
    np.testing.assert_allclose(np.sort(rolled, axis=1), np.sort(x, axis=1))
    images, rolled_images = x.reshape(4, 32, 32), rolled.reshape(4, 32, 32)
    matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
               if np.array_equal(np.roll(images, (dy, dx), axis=(1, 2)), rolled_images)]
    assert len(matches) == 1


def test_total_variation_against_numpy():
    x = np.random.default_rng(1).uniform(size=(3, 28 * 28)).astype(np.float32)
    got = run_graph(lambda: image_ops.total_variation(tf.constant(x), (28, 28)))
    img = x.reshape(3, 28, 28)
    expected = (np.diff(img, axis=1) ** 2).mean(axis=(1, 2)) + (np.diff(img, axis=2) ** 2).mean(axis=(1, 2))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert run_graph(lambda: image_ops.total_variation(tf.ones([2, 784]), (28, 28))).max() == 0.0


def test_mixup_blends_each_sample_with_its_mirror():
    x = np.stack([np.zeros(6), np.ones(6), 2 * np.ones(6), 3 * np.ones(6)]).astype(np.float32)
    mixed = run_graph(lambda: image_ops.mixup(tf.constant(x), 1.0, seed=0, step=0))
    mirror = x[::-1]
    lam = (mixed[:, 0] - mirror[:, 0]) / (x[:, 0] - mirror[:, 0])
    assert ((lam >= 0) & (lam <= 1)).all()
    np.testing.assert_allclose(mixed, lam[:, None] * x + (1 - lam[:, None]) * mirror, atol=1e-6)


def test_non_image_model_is_refused_for_image_options():
    spec = models.get("hinton1200")._replace(input_shape=(780,))
    with pytest.raises(UserError, match="not a square single-channel image"):
        image_ops.image_hw(spec)


def test_batch_moments_loss_is_zero_at_the_recorded_moments_and_positive_elsewhere():
    rng = np.random.default_rng(0)
    mean, std = rng.normal(size=(2, 5)), rng.uniform(0.5, 2, size=(2, 5))
    stats = mock.Mock(num_groups=2, layer_names=["fc1"], mean=lambda n: mean, std=lambda n: std)
    labels = np.array([0, 0, 1, 1])
    # Two samples per class at mean +- std have exactly that batch mean and (population) std.
    exact = np.stack([mean[0] + std[0], mean[0] - std[0], mean[1] + std[1], mean[1] - std[1]]).astype(np.float32)

    def loss(acts):
        return lambda: priors.RecordedMoments(stats).batch_loss({"fc1": tf.constant(acts)}, tf.constant(labels))
    assert run_graph(loss(exact)) < 1e-6
    assert run_graph(loss(exact + 0.5)) > 0.1


def test_negative_prior_weight_is_a_user_error():
    with pytest.raises(UserError, match="--tv_weight must be >= 0"):
        priors.Priors.from_cfg(make_cfg(tv_weight=-1.0))


@pytest.mark.slow
def test_priors_change_the_reconstruction_and_clip_keeps_pixels_in_range(setups):  # noqa: F811
    cfg = setups["hinton1200"]
    results = {}
    for name, options in {"plain": priors.Priors(),
                          "all": priors.Priors(clip_inputs=True, jitter=2, tv_weight=0.1, l2_weight=0.1,
                                               batch_stats_weight=1.0)}.items():
        spec, values, sampler, _ = reconstruction(cfg, "top_layer", steps=1)
        stats = stats_file.load(os.path.join(cfg.summary_folder, cfg.run_name, "stats",
                                             f"activation_stats_{cfg.run_name}.npz"))
        rg = optimize_dataset.ReconstructionGraph(spec, values, objectives.get("top_layer"), sampler,
                                                  8.0, 0.07, 30, options, stats)
        labels, _, x0, targets, rng = optimize_dataset.draw_batch(cfg, spec, sampler, 0, 0, 20, 10, 0)
        with tf1.Session(graph=rg.graph) as sess:
            x, history, _ = rg.run_batch(sess, x0, targets, {}, labels, seed=5)
        assert np.isfinite(history).all()
        results[name] = x
    assert results["plain"].min() < 0 or results["plain"].max() > 1   # noise starts outside [0, 1]
    assert results["all"].min() >= 0 and results["all"].max() <= 1
    assert not np.allclose(results["plain"], results["all"])


def test_priors_are_part_of_the_reconstruction_settings():
    """Kept batches are reused only under equal settings, so a changed prior must change them."""
    settings = optimize_dataset.settings_of(make_cfg(jitter=0), "f")
    assert settings != optimize_dataset.settings_of(make_cfg(jitter=2), "f")
    assert settings["jitter"] == 0 and "batch_stats_weight" in settings


def test_augmented_distillation_trains_on_teacher_labels_of_the_augmented_batch(teachers):
    with mock.patch.object(datasets, "get", lambda *a, **k: toy_for(784)):
        plain = distill.run(distill_cfg(teachers, epochs=2, run_name="aug_off"))
        shifted = distill.run(distill_cfg(teachers, epochs=2, run_name="aug_on", augment_shift=2, mixup_alpha=1.0))
    assert np.isfinite(shifted["test_accuracy"])
    # Same seed, same data: only the augmentation differs, so the students must differ.
    a = checkpoint.load_teacher_values(models.get("hinton800"), "", plain["student_checkpoint"])
    b = checkpoint.load_teacher_values(models.get("hinton800"), "", shifted["student_checkpoint"])
    assert not np.allclose(a["fc1/weights"], b["fc1/weights"])


def test_augmented_inputs_are_the_identity_when_off_and_change_the_batch_when_on():
    spec = models.get("hinton1200")
    x = np.random.default_rng(0).uniform(size=(16, 784)).astype(np.float32)
    off, on = run_graph(lambda: [batches.augmented_inputs(make_cfg(), spec, tf.constant(x), 0),
                                 batches.augmented_inputs(make_cfg(augment_shift=2), spec, tf.constant(x), 0)])
    np.testing.assert_array_equal(off, x)
    assert not np.allclose(on, x)


def test_flip_augmentation_mirrors_some_examples_and_leaves_the_others():
    spec = models.get("hinton1200")
    x = np.random.default_rng(0).uniform(size=(64, 784)).astype(np.float32)
    (flipped,) = run_graph(lambda: [batches.augmented_inputs(make_cfg(augment_flip=True), spec, tf.constant(x), 3)])
    images, out = x.reshape(-1, 28, 28), flipped.reshape(-1, 28, 28)
    mirrored = np.array([np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, images)])
    assert np.all(mirrored | kept) and 10 < mirrored.sum() < 54   # each one or the other, about half mirrored


def test_negative_augmentation_is_a_user_error(teachers):
    with pytest.raises(UserError, match="--mixup_alpha must be >= 0"):
        distill.run(distill_cfg(teachers, mixup_alpha=-1.0))
