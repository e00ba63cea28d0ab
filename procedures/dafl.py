"""DAFL (Chen et al., ICCV 2019): a generator trained against the frozen teacher, whose samples the
student is distilled on, both in one loop (`--procedure=distill --dataset=dafl`).

The generator is DAFL's MNIST one: a dense layer from a 100-dimensional normal code to a 128-channel
map of a quarter of the image's side, then twice (nearest upsampling x2, 3x3 conv, BatchNorm, leaky
ReLU 0.2; 128 then 64 channels), a 3x3 conv to the image's channels, standardized over the batch
(DAFL's last BatchNorm), a learned offset per channel, and a sigmoid, so its samples are pixels in
[0, 1] as every input dfkd gives a teacher. Its BatchNorm always uses the batch's moments: the
generator only ever runs while it trains. The last standardization is what keeps the generator alive
at DAFL's learning rate (0.2): without it the output conv's weights grow until the sigmoid saturates,
every sample becomes the same image, and no gradient reaches the generator again (seen on lenet after
about 950 steps). The offset stands in for DAFL's normalization constants: DAFL's teachers read
images normalized by the data's mean and spread, so a standardized output has the data's brightness;
dfkd's read [0, 1] pixels, and without the offset every batch would have a sigmoid's mean of one half,
grey where a digit's background is black. Its loss, on the teacher's outputs for its batch:
  one-hot:  cross-entropy of the logits towards their own argmax           (weight 1)
  activation: minus the mean |feature| the teacher's last layer reads      (weight 0.1)
  information entropy: sum_c p_c log10 p_c of the batch's mean softmax    (weight 5)
the weights of DAFL's MNIST runs. The codes are drawn from the seed and the step alone, so a resumed
run draws the same batches.
"""
import numpy as np
import tensorflow as tf

from procedures import image_ops

tf1 = tf.compat.v1
LATENT = 100
ONE_HOT, ACTIVATION, ENTROPY = 1.0, 0.1, 5.0
STEPS_PER_EPOCH = 120   # DAFL's MNIST epoch: 120 generator and student steps
GENERATOR_LR = 0.2   # DAFL's MNIST lr_G
# Part of every generator run's identity: a checkpoint or a finished reproduce stage made by another
# definition of the generator is never resumed or reused. Raise it whenever generate() changes.
GENERATOR_VERSION = 3   # 2: no offset before the sigmoid; 1: no standardization either
SCOPE = "generator"


def generator_shape(spec):
    """(height, width, channels) of the teacher's input; the side must be a multiple of 4."""
    shape = image_ops.image_shape(spec)
    if shape[0] % 4 or shape[1] % 4:
        from utils.errors import UserError
        raise UserError(f"--dataset=dafl: --model={spec.name}'s input {shape[:2]} is not a multiple of 4 on each "
                        "side, which DAFL's generator (two x2 upsamplings) needs")
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


def _batchnorm(x, name, epsilon=0.8):
    """Batch moments, learned scale and offset; epsilon 0.8 as DAFL's generator has it."""
    channels = int(x.shape[-1])
    gamma = tf1.get_variable(f"{name}/gamma", (channels,), initializer=tf1.ones_initializer())
    beta = tf1.get_variable(f"{name}/beta", (channels,), initializer=tf1.zeros_initializer())
    return _standardize(x, epsilon, gamma, beta)


def generate(spec, codes):
    """Flat [B, input_size] pixels in [0, 1] from codes [B, LATENT]."""
    h, w, c = generator_shape(spec)
    with tf1.variable_scope(SCOPE, reuse=tf1.AUTO_REUSE):
        dense = tf1.get_variable("dense/weights", (LATENT, 128 * (h // 4) * (w // 4)),
                                 initializer=tf1.glorot_uniform_initializer())
        bias = tf1.get_variable("dense/biases", (128 * (h // 4) * (w // 4),), initializer=tf1.zeros_initializer())
        x = tf.reshape(tf.matmul(codes, dense) + bias, (-1, h // 4, w // 4, 128))
        x = _batchnorm(x, "bn0", epsilon=1e-5)
        for k, filters in enumerate((128, 64), start=1):
            x = tf.image.resize(x, (int(x.shape[1]) * 2, int(x.shape[2]) * 2), method="nearest")
            x = tf.nn.leaky_relu(_batchnorm(_conv(x, filters, f"conv{k}"), f"bn{k}"), 0.2)
        offset = tf1.get_variable("out/offset", (c,), initializer=tf1.zeros_initializer())
        x = tf.sigmoid(_standardize(_conv(x, c, "out"), epsilon=1e-5) + offset)
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
