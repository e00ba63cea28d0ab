"""Beyond the paper: extra terms and constraints for optimize_dataset.

Every option is off by default, so the faithful objectives are unchanged:
  --clip_inputs          keep pixels in [0, 1] (projected after every Adam step)
  --jitter=N             the teacher sees the batch shifted by a random (dy, dx) in [-N, N] each step
  --tv_weight, --l2_weight   per-sample total-variation and L2 penalties on the pixels
  --batch_stats_weight   match, per class in the batch, each recorded layer's batch mean and standard
                         deviation to the recorded ones (instead of only one sampled activation per input)
  --flip                 the teacher sees each sample mirrored left-right with probability 1/2 each step
  --tv_norm_weight       DeepInversion's total variation: the L2 norm over the batch of neighbouring pixels'
                         differences in four directions, times the batch size
"""
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from config.flags import BY_NAME, validate
from reconstruction import image_ops


class Priors(NamedTuple):
    clip_inputs: bool = BY_NAME["clip_inputs"].default
    jitter: int = BY_NAME["jitter"].default
    tv_weight: float = BY_NAME["tv_weight"].default
    l2_weight: float = BY_NAME["l2_weight"].default
    batch_stats_weight: float = BY_NAME["batch_stats_weight"].default
    flip: bool = BY_NAME["flip"].default
    tv_norm_weight: float = BY_NAME["tv_norm_weight"].default

    @classmethod
    def from_cfg(cls, cfg):
        priors = cls(**{name: getattr(cfg, name, default) for name, default in cls._field_defaults.items()})
        validate(priors, "optimize_dataset")
        return priors

    @property
    def needs_images(self):
        return bool(self.jitter or self.tv_weight or self.flip or self.tv_norm_weight)


def pixel_penalties(priors, x, hw):
    """Per-sample penalty on the inputs themselves. [B] (or 0.0 when both weights are 0)."""
    total = 0.0
    if priors.tv_weight:
        total += priors.tv_weight * image_ops.total_variation(x, hw)
    if priors.l2_weight:
        total += priors.l2_weight * tf.reduce_mean(tf.square(x), axis=1)
    return total


def batch_penalties(priors, x, hw):
    """Penalties on the batch as a whole, scaled by its size like every batch term (0.0 when off)."""
    if not priors.tv_norm_weight:
        return 0.0
    return priors.tv_norm_weight * tf.cast(tf.shape(x)[0], tf.float32) * image_ops.total_variation_norm(x, hw)


class RecordedMoments:
    """Per-class (or, from a --stats_modes file, per-mode) recorded mean and standard deviation of every
    layer, as graph constants."""

    def __init__(self, stats):
        self.num_groups = stats.num_groups
        self.mean = {n: tf.constant(np.asarray(stats.mean(n), np.float32)) for n in stats.layer_names}
        self.std = {n: tf.constant(np.asarray(stats.std(n), np.float32)) for n in stats.layer_names}

    def batch_loss(self, activations, groups):
        """Sum over layers and over the groups present (classes, or modes) of n_c * mean_j[(batch mean -
        recorded mean)^2 + (batch std - recorded std)^2]; the n_c weight gives each sample a pull of the
        same order as its own matching term. groups: each row's group in the stats file."""
        onehot = tf.one_hot(groups, self.num_groups)
        counts = tf.reduce_sum(onehot, axis=0)
        denominator = tf.maximum(counts, 1.0)[:, None]
        total = 0.0
        for name, act in activations.items():
            mean = tf.matmul(onehot, act, transpose_a=True) / denominator
            square = tf.matmul(onehot, tf.square(act), transpose_a=True) / denominator
            std = tf.sqrt(tf.maximum(square - tf.square(mean), 0.0) + 1e-8)
            error = tf.reduce_mean(tf.square(mean - self.mean[name]) + tf.square(std - self.std[name]), axis=1)
            total += tf.reduce_sum(counts * error)
        return total
