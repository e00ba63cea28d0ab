"""CMI (Fang et al., "Contrastive Model Inversion for Data-Free Knowledge Distillation", IJCAI 2021;
zju-vipa/CMI, and zju-vipa/Fast-Datafree's `cmi` method with scripts/cmi_cifar.sh's settings):
`--procedure=distill --method=cmi`. Fast's loop of rounds (generators/fast.py) without its meta
generator: each round a generator freshly initialized, with its codes, takes --generator_steps (200) Adam
steps on
    1 x BatchNorm statistics (the teacher's moving moments against the batch's, no momentum)
  + 1 x one-hot              (cross-entropy towards the batch's classes)
  + 0.5 x adversarial        (Fast's term, from the first round)
  + 0.8 x contrastive        (below)
and its lowest-loss batch joins the memory the student learns from.

The contrastive term keeps the batches apart from everything made before. The teacher sees each
generated image twice: the global view (the shift Fast's teacher sees) and a local view (a random box of
25-100% of the area, resized back). Each view's feature is the spatial mean of every BatchNorm layer's
input, joined. A head (dense, ReLU, dense to 256, unit length) projects the batch's features and 4,096
negatives drawn from a bank of the last 40,960 kept features; each local projection must pick its own
global one among all (temperature 0.2; the global side held fixed). The head learns with the generator
(Adam, the generator's rate) and persists across rounds. The bank is kept on disk beside the memory,
one file per round, so a resumed run draws the same negatives.
"""
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from generators import fast
from models.graph import build_frozen
from reconstruction import image_ops

tf1 = tf.compat.v1
GENERATOR_STEPS = 200          # --g_steps
GENERATOR_LR = 1e-3            # --lr_g, the generator's, its codes' and the head's rate
BN_WEIGHT, ONE_HOT, ADVERSARIAL, CONTRASTIVE = 1.0, 1.0, 0.5, 0.8   # --bn, --oh, --adv, --cr
CONTRAST_TEMPERATURE = 0.2     # --cr_T
HEAD_DIM = 256                 # datafree_kd.py's head_dim for CMI
BANK_SIZE, NEGATIVES = 40960, 4096
LOCAL_SCALE = (0.25, 1.0)      # the local view's RandomResizedCrop scale
STUDENT_LR = 0.1               # --lr of scripts/cmi_cifar.sh; SGD, momentum 0.9, weight decay 1e-4, cosine
HEAD_SCOPE = "cmi_head"

RECIPE = fast.Recipe(bn_weight=BN_WEIGHT, one_hot=ONE_HOT, adversarial=ADVERSARIAL, bn_momentum=0.0, meta=False,
                     code_lr=None, warmup_fraction=0.0, reset_fraction=None, steps=GENERATOR_STEPS)


def instance_features(teacher):
    """[B, D]: each BatchNorm layer's input averaged over its positions, joined in the order the input meets
    them (CMI's InstanceMeanHook on every BatchNorm)."""
    return tf.concat([tf.reduce_mean(h, axis=[1, 2]) for h in teacher.batchnorm_inputs.values()], axis=1)


class Contrast(NamedTuple):
    """CMI's contrastive term on one round's batch, as fast.Synthesis runs it."""
    loss: tf.Tensor
    weight: float
    features: tf.Tensor              # [B, 2D]: the batch's local and global features, as the bank keeps them
    negatives: tf.Tensor             # placeholder [N, 2D]
    best: tf.Variable                # the features of the round's lowest-loss batch
    head: dict
    seed: int

    def keep_best(self):
        return self.best.assign(self.features)

    def head_step(self, loss):
        names = sorted(self.head)
        gradients = tf.gradients(loss, [self.head[n] for n in names])
        return tf1.train.AdamOptimizer(GENERATOR_LR).apply_gradients(zip(gradients, [self.head[n] for n in names]))

    def feed(self, memory, round_index, iteration):
        drawn = None if memory is None else memory.negatives(self.seed, round_index, iteration, NEGATIVES,
                                                             BANK_SIZE)
        width = int(self.negatives.shape[1])
        return {self.negatives: np.zeros((0, width), np.float32) if drawn is None else drawn}

    def best_features(self, sess):
        return sess.run(self.best)


def head_variables(dim):
    """The projection head's parameters, untouched by the student's optimizer (trainable=False). PyTorch's
    Linear initialization, uniform in +-1/sqrt(fan_in)."""
    made = {}
    with tf1.variable_scope(HEAD_SCOPE):
        for name, shape in (("hidden/weights", (dim, dim)), ("hidden/biases", (dim,)),
                            ("out/weights", (dim, HEAD_DIM)), ("out/biases", (HEAD_DIM,))):
            bound = 1.0 / np.sqrt(dim)
            made[name] = tf1.get_variable(name, shape, trainable=False,
                                          initializer=tf1.random_uniform_initializer(-bound, bound))
    return made


def project(head, features):
    hidden = tf.nn.relu(tf.matmul(features, head["hidden/weights"]) + head["hidden/biases"])
    return tf.math.l2_normalize(tf.matmul(hidden, head["out/weights"]) + head["out/biases"], axis=1)


def contrastive_loss(head, local, global_, negatives, temperature=CONTRAST_TEMPERATURE):
    """Each local feature (the batch's, then the negatives') must find its own global one among all
    (cross-entropy over the rows of local . global^T / temperature, the global side held fixed); with
    negatives, the batch's rows and the negatives' rows averaged apart, as CMI does."""
    batch = tf.shape(local)[0]
    dim = int(local.shape[1])
    local_all = project(head, tf.concat([local, negatives[:, :dim]], axis=0))
    global_all = tf.stop_gradient(project(head, tf.concat([global_, negatives[:, dim:]], axis=0)))
    logits = tf.matmul(local_all, global_all, transpose_b=True) / temperature
    rows = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.range(tf.shape(logits)[0]), logits=logits)
    with_negatives = tf.reduce_mean(rows[:batch]) + tf.reduce_mean(rows[batch:])
    return tf.cond(tf.shape(negatives)[0] > 0, lambda: with_negatives, lambda: tf.reduce_mean(rows))


def contrast(teacher_spec, values, shape, seed, natural_images, batch):
    """A function (teacher on the global view, generated pixels, view key) -> Contrast, for fast.Synthesis."""
    def make(teacher, pixels, view):
        local_view = image_ops.random_resized_crop(pixels, shape, LOCAL_SCALE, seed, view)
        if natural_images:
            local_view = image_ops.random_flip(local_view, shape, seed + 1, view)
        global_features = instance_features(teacher)
        local_features = instance_features(build_frozen(teacher_spec, values, local_view))
        dim = int(global_features.shape[1])
        head = head_variables(dim)
        negatives = tf1.placeholder(tf.float32, [None, 2 * dim], name="cmi_negatives")
        features = tf.concat([local_features, global_features], axis=1)
        with tf1.variable_scope(fast.ROUND_SCOPE):
            best = tf1.get_variable("best_features", (batch, 2 * dim), trainable=False,
                                    initializer=tf1.zeros_initializer())
        loss = contrastive_loss(head, local_features, global_features, negatives)
        return Contrast(loss=loss, weight=CONTRASTIVE, features=features, negatives=negatives, best=best, head=head,
                        seed=seed)
    return make
