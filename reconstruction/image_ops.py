"""Graph ops on flat input rows seen as images: the beyond-the-paper options of
optimize_dataset (jitter, total variation) and of distill (random shifts, mixup).

Every random choice is stateless, keyed by (seed, step), so a run repeats exactly.
"""
import numpy as np
import tensorflow as tf

from utils.errors import UserError


def image_hw(spec):
    """(height, width) of one single-channel input: (28, 28) for the 784-wide hinton models; (height,
    width, channels) of a colour one."""
    shape = tuple(spec.input_shape)
    if len(shape) == 3:
        return (shape[0], shape[1]) if shape[-1] == 1 else shape
    side = int(round(np.sqrt(spec.input_size)))
    if side * side != spec.input_size:
        raise UserError(f"--model={spec.name}: its input {shape} is not a square single-channel image, "
                        "so image priors and augmentation do not apply")
    return side, side


def _seed(seed, step, salt):
    return tf.stack([tf.cast(seed * 1000 + salt, tf.int64), tf.cast(step, tf.int64)])


def roll_jitter(x, hw, max_shift, seed, step):
    """The whole batch shifted cyclically by one random (dy, dx) in [-max_shift, max_shift]."""
    shift = tf.random.stateless_uniform([2], _seed(seed, step, 1), -max_shift, max_shift + 1, dtype=tf.int32)
    images = tf.reshape(x, (-1,) + hw)
    return tf.reshape(tf.roll(images, shift, axis=[1, 2]), tf.shape(x))


def total_variation(x, hw):
    """Per sample: mean squared difference of vertically and horizontally adjacent pixels. [B]"""
    images = tf.reshape(x, (-1,) + tuple(hw))
    axes = list(range(1, len(hw) + 1))
    dy = tf.reduce_mean(tf.square(images[:, 1:, :] - images[:, :-1, :]), axis=axes)
    dx = tf.reduce_mean(tf.square(images[:, :, 1:] - images[:, :, :-1]), axis=axes)
    return dy + dx


def total_variation_norm(x, hw):
    """DeepInversion's total variation of a batch: the sum over four directions (down, right and both
    diagonals) of the L2 norm of the differences between neighbouring pixels, over the whole batch. A scalar."""
    images = tf.reshape(x, (-1,) + tuple(hw))
    differences = (images[:, 1:, :] - images[:, :-1, :], images[:, :, 1:] - images[:, :, :-1],
                   images[:, 1:, :-1] - images[:, :-1, 1:], images[:, :-1, :-1] - images[:, 1:, 1:])
    return tf.add_n([tf.norm(d) for d in differences])


def image_shape(spec):
    """(height, width, channels) of one input; a flat square input counts as one channel."""
    shape = tuple(spec.input_shape)
    return shape if len(shape) == 3 else image_hw(spec) + (1,)


def random_shift(x, hw, max_shift, seed, step):
    """Each sample translated by its own integer (dy, dx) in [-max_shift, max_shift], zeros shifted in.
    hw: (height, width), or (height, width, channels)."""
    n = tf.shape(x)[0]
    offsets = tf.cast(tf.random.stateless_uniform([n, 2], _seed(seed, step, 2), -max_shift, max_shift + 1,
                                                  dtype=tf.int32), tf.float32)
    one, zero = tf.ones([n, 1]), tf.zeros([n, 1])
    # Output pixel (y, x) reads input (y - dy, x - dx): [a0 a1 a2 b0 b1 b2 c0 c1].
    transforms = tf.concat([one, zero, -offsets[:, 1:], zero, one, -offsets[:, :1], zero, zero], axis=1)
    shape = tuple(hw) + (1,) * (len(hw) == 2)
    images = tf.reshape(x, (-1,) + shape)
    moved = tf.raw_ops.ImageProjectiveTransformV3(images=images, transforms=transforms, output_shape=list(shape[:2]),
                                                  fill_value=0.0, interpolation="NEAREST", fill_mode="CONSTANT")
    return tf.reshape(moved, tf.shape(x))


def mixup(x, alpha, seed, step):
    """Each sample blended with its mirror in the batch: lam*x + (1-lam)*x_reversed, lam ~ Beta(alpha, alpha)."""
    n = tf.shape(x)[0]
    g1 = tf.random.stateless_gamma([n, 1], _seed(seed, step, 3), alpha=alpha)
    g2 = tf.random.stateless_gamma([n, 1], _seed(seed, step, 4), alpha=alpha)
    lam = g1 / (g1 + g2)
    return lam * x + (1.0 - lam) * tf.reverse(x, axis=[0])


def random_flip(x, shape, seed, step):
    """Each sample mirrored left-right with probability 1/2. shape: (height, width, channels)."""
    n = tf.shape(x)[0]
    images = tf.reshape(x, (-1,) + tuple(shape))
    flip = tf.random.stateless_uniform([n], _seed(seed, step, 5)) < 0.5
    return tf.reshape(tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images), tf.shape(x))


def random_resized_crop(x, shape, scale, seed, step, ratio=(3 / 4, 4 / 3)):
    """Each sample's random box, of a fraction of the image's area drawn from `scale` and an aspect ratio
    log-uniform in `ratio`, resized back to the image's size (bilinear): CMI's local view, after
    torchvision's RandomResizedCrop, with the box clipped to the image where the ratio makes a side too long
    in place of its redraws. shape: (height, width, channels)."""
    n = tf.shape(x)[0]
    draws = tf.random.stateless_uniform([n, 4], _seed(seed, step, 6))
    area = scale[0] + (scale[1] - scale[0]) * draws[:, 0]
    aspect = tf.exp(np.log(ratio[0]) + (np.log(ratio[1]) - np.log(ratio[0])) * draws[:, 1])
    height = tf.minimum(tf.sqrt(area / aspect), 1.0)   # as fractions of the side
    width = tf.minimum(tf.sqrt(area * aspect), 1.0)
    top, left = (1.0 - height) * draws[:, 2], (1.0 - width) * draws[:, 3]
    boxes = tf.stack([top, left, top + height, left + width], axis=1)
    images = tf.reshape(x, (-1,) + tuple(shape))
    cropped = tf.image.crop_and_resize(images, boxes, tf.range(n), list(shape[:2]))
    return tf.reshape(cropped, tf.shape(x))
