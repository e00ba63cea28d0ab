"""DAFL (Chen et al., ICCV 2019): a generator trained against the frozen teacher, whose samples the
student is distilled on, both in one loop (`--procedure=distill --method=dafl`).

The generator is DAFL's MNIST one: a dense layer from a 100-dimensional normal code to a 128-channel
map of a quarter of the image's side, then twice (nearest upsampling x2, 3x3 conv, BatchNorm, leaky
ReLU 0.2; 128 then 64 channels), a 3x3 conv to the image's channels, a tanh, standardized over the
batch (DAFL's last BatchNorm, without scale or offset). Its BatchNorm always uses the batch's moments:
the generator only ever runs while it trains. The last standardization keeps the generator alive at
DAFL's learning rate (0.2): without it the output conv's weights grow until every sample is the same
image and no gradient reaches the generator. The tanh bounds each pixel before it, and needs DAFL's
batches of 512: at 64 it saturates and the generator stops learning. So a DAFL run takes DAFL's batch
and its student's Adam rate (BATCH_SIZE, STUDENT_LR) unless the flags say otherwise.
The standardized image is what DAFL's teachers read: they normalize pixels by the training data's mean
and std, so the generator's batch has the data's brightness and contrast by construction. dfkd maps it
back to pixels with the same constants (PixelConstants: --pixel_mean and --pixel_std, or the teacher's
own input normalization), so a teacher that normalizes reads the standardized image itself; a
generator left to choose its own brightness drifts to images the student learns nothing from. How each
of these was found: docs/notes/2026-12-07-results-notebook.md. Its loss, on the teacher's outputs for its batch:
  one-hot:  cross-entropy of the logits towards their own argmax           (weight 1)
  activation: minus the mean |feature| the teacher's last layer reads      (weight 0.1)
  information entropy: sum_c p_c log10 p_c of the batch's mean softmax    (weight 5)
the weights of DAFL's MNIST runs. The codes are drawn from the seed and the step alone, so a resumed
run draws the same batches.
"""
import math
from typing import NamedTuple, Tuple

import numpy as np
import tensorflow as tf

from reconstruction import image_ops
from utils import number_list
from utils.errors import UserError

tf1 = tf.compat.v1
LATENT = 100
ONE_HOT, ACTIVATION, ENTROPY = 1.0, 0.1, 5.0
STEPS_PER_EPOCH = 120   # DAFL's MNIST epoch: 120 generator and student steps
GENERATOR_LR = 0.2   # DAFL's MNIST lr_G
BATCH_SIZE = 512     # DAFL's MNIST batch_size, its generator's and its student's
STUDENT_LR = 2e-3    # DAFL's MNIST lr_S (Adam)
SCOPE = "generator"


class GeneratorLayers(NamedTuple):
    """What differs between the generators of the methods' scripts, and the definition's version: part of
    every generator run's identity, so that a checkpoint or a finished reproduce stage made by another
    definition is never resumed or reused. Raise it whenever generate() or these values change."""
    version: int
    tanh: bool             # a tanh between the output conv and the last standardization
    hidden_epsilon: float  # the epsilon of the BatchNorms after the two hidden convs


# DAFL's script's generator: the tanh and epsilon 0.8. DAFL's and DFAD's generators share one numbering
# (DFAD's is 6); earlier numbers belong to retired definitions, so the next change takes 8.
LAYERS = GeneratorLayers(version=7, tanh=True, hidden_epsilon=0.8)


def generator_shape(spec, method="dafl"):
    """(height, width, channels) of the teacher's input; the side must be a multiple of 4 (DAFL's, DFAD's and
    Fast's generators all upsample twice by 2)."""
    shape = image_ops.image_shape(spec)
    if shape[0] % 4 or shape[1] % 4:
        raise UserError(f"--method={method}: --model={spec.name}'s input {shape[:2]} is not a multiple of 4 on "
                        "each side, which the generator (two x2 upsamplings) needs")
    return shape


def _conv(x, filters, name):
    kernel = tf1.get_variable(f"{name}/weights", (3, 3, int(x.shape[-1]), filters),
                              initializer=tf1.glorot_uniform_initializer())
    bias = tf1.get_variable(f"{name}/biases", (filters,), initializer=tf1.zeros_initializer())
    return tf.nn.conv2d(x, kernel, 1, "SAME") + bias


def _standardize(x, epsilon, scale=None, offset=None):
    """Each channel to zero mean and unit variance over the batch and the pixels."""
    mean, variance = tf.nn.moments(x, axes=list(range(len(x.shape) - 1)))
    return tf.nn.batch_normalization(x, mean, variance, offset, scale, epsilon)


def _batchnorm(x, name, epsilon):
    """Batch moments, learned scale and offset."""
    channels = int(x.shape[-1])
    gamma = tf1.get_variable(f"{name}/gamma", (channels,), initializer=tf1.ones_initializer())
    beta = tf1.get_variable(f"{name}/beta", (channels,), initializer=tf1.zeros_initializer())
    return _standardize(x, epsilon, gamma, beta)


class PixelConstants(NamedTuple):
    """The training data's pixel mean and std per channel (DAFL's normalization constants), and where
    they came from, for the run's output."""
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    source: str


def _parse(text, flag, channels):
    numbers = number_list.parse(text, flag, "one per channel or one for all")
    if len(numbers) not in (1, channels):
        raise UserError(f"{flag}={text!r}: {len(numbers)} numbers for an input of {channels} channels; give one "
                        f"per channel or one for all")
    if not all(math.isfinite(v) for v in numbers):
        raise UserError(f"{flag}={text!r}: expected finite numbers")
    return numbers


def pixel_constants(spec, pixel_mean="", pixel_std=""):
    """What the generator's standardized image is mapped to pixels by: --pixel_mean and --pixel_std,
    else the teacher's own input normalization; with neither, a one-line refusal naming both."""
    channels = generator_shape(spec)[2]
    if pixel_mean or pixel_std:
        if not (pixel_mean and pixel_std):
            missing = "--pixel_std" if pixel_mean else "--pixel_mean"
            raise UserError(f"{missing} is needed too: the generator's pixels take the data's mean and std together")
        constants = PixelConstants(_parse(pixel_mean, "--pixel_mean", channels),
                                   _parse(pixel_std, "--pixel_std", channels), "--pixel_mean, --pixel_std")
        if min(constants.std) <= 0:
            raise UserError(f"--pixel_std={pixel_std!r}: expected numbers > 0")
        return constants
    if spec.normalize is not None:
        return PixelConstants(tuple(spec.normalize.mean), tuple(spec.normalize.std),
                              f"--model={spec.name}'s input normalization")
    raise UserError(f"--dataset=dafl and dfad map the generator's standardized image to pixels by the mean and std "
                    f"of the teacher's training pixels, and --model={spec.name} normalizes no input: give "
                    f"--pixel_mean and --pixel_std (per channel; MNIST's are 0.1307 and 0.3081)")


def generate(spec, codes, pixels: PixelConstants, layers: GeneratorLayers):
    """Flat [B, input_size] pixels from codes [B, LATENT]: each channel has the mean and std of
    `pixels` over the batch. layers: the method's (LAYERS, dfad.LAYERS)."""
    h, w, c = generator_shape(spec)
    with tf1.variable_scope(SCOPE, reuse=tf1.AUTO_REUSE):
        dense = tf1.get_variable("dense/weights", (LATENT, 128 * (h // 4) * (w // 4)),
                                 initializer=tf1.glorot_uniform_initializer())
        bias = tf1.get_variable("dense/biases", (128 * (h // 4) * (w // 4),), initializer=tf1.zeros_initializer())
        x = tf.reshape(tf.matmul(codes, dense) + bias, (-1, h // 4, w // 4, 128))
        x = _batchnorm(x, "bn0", epsilon=1e-5)
        for k, filters in enumerate((128, 64), start=1):
            x = tf.image.resize(x, (int(x.shape[1]) * 2, int(x.shape[2]) * 2), method="nearest")
            x = tf.nn.leaky_relu(_batchnorm(_conv(x, filters, f"conv{k}"), f"bn{k}", layers.hidden_epsilon), 0.2)
        out = _conv(x, c, "out")
        standardized = _standardize(tf.tanh(out) if layers.tanh else out, epsilon=1e-5)
        x = np.float32(pixels.mean) + np.float32(pixels.std) * standardized
    return tf.reshape(x, (-1, spec.input_size))


def codes(seed, step, batch, stream=0):
    """The step's codes: a function of the seed, the step and the stream alone (an exact resume).
    Stream 1 (DFAD's generator steps) draws apart from stream 0 (the student's batches): its key's
    first half is -1 - seed, which no seed >= 0 gives."""
    stream = tf.cast(stream, tf.int64)
    key = tf.cast(seed, tf.int64) * (1 - 2 * stream) - stream
    return tf.random.stateless_normal([batch, LATENT], tf.stack([key, tf.cast(step, tf.int64)]))


def generator_loss(teacher):
    """DAFL's three terms on the frozen teacher's Model for the generated batch. Returns (total, parts)."""
    logits = teacher.logits
    one_hot = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.stop_gradient(tf.argmax(logits, axis=1)), logits=logits))
    activation = -tf.reduce_mean(tf.abs(teacher.features))
    mean_softmax = tf.reduce_mean(tf.nn.softmax(logits), axis=0)
    entropy = tf.reduce_sum(mean_softmax * tf.math.log(mean_softmax + 1e-12)) / np.log(10.0)
    total = ONE_HOT * one_hot + ACTIVATION * activation + ENTROPY * entropy
    return total, {"one_hot": one_hot, "activation": activation, "information_entropy": entropy}


def generator_variables():
    return tf1.get_collection(tf1.GraphKeys.TRAINABLE_VARIABLES, scope=SCOPE)


def other_trainable_variables():
    """Every trainable variable but the generator's: the student's, in a distillation graph."""
    generator = set(generator_variables())
    return [v for v in tf1.trainable_variables() if v not in generator]
