"""Fast (Fang et al., "Up to 100x Faster Data-free Knowledge Distillation", AAAI 2022; zju-vipa/Fast-Datafree,
its `fast_meta` method): a generator whose starting point is meta-learned, so that a few steps from it
make a batch the teacher recognizes (`--procedure=distill --method=fast`).

Each round:
  1. a fresh batch of codes z and classes; the round's generator starts as a copy of the meta generator;
  2. --generator_steps Adam steps (betas 0.5, 0.999) move that copy and z together on
        10 x BatchNorm statistics  (the teacher's moving mean and variance against the batch's, each
                                    blended with the running momentum of earlier rounds' batches)
      + 0.5 x one-hot              (cross-entropy towards the batch's classes)
      + 1.33 x adversarial         (minus the KL divergence of the student from the teacher, on the
                                    samples where both name the same class; from the end of warmup)
     on the batch randomly shifted by up to 4 pixels (Fast's padded random crop), as the teacher sees it;
  3. the meta generator takes one Adam step on the sum of the copy's gradients over those steps
     (first-order MAML, rate --generator_lr x --generator_steps);
  4. the batch with the lowest loss joins the memory, which keeps every batch made so far;
  5. after warmup, the student takes --student_steps_per_round KD steps on batches drawn from the memory.
The generator is Fast's: a dense layer from a 256-dimensional code to 128 channels at a quarter of the
image's side, a BatchNorm, then twice (nearest upsampling x2, 3x3 conv without bias, BatchNorm, leaky ReLU
0.2; 128 then 64 channels) and a 3x3 conv to the image's channels with a sigmoid: pixels in [0, 1], what
dfkd's teachers read. Its BatchNorms use the batch's moments, as the generator only runs while it learns.
The settings are Fast's CIFAR scripts' (scripts/fast_cifar.sh) for ResNet pairs; docs/method.md lists
where dfkd differs.

The metadata generator (`--method=metadata`) is the same loop with dfkd's recorded metadata in the loss:
step 2's statistics term is dfkd best's per-class batch statistics against compute_stats' file (weight 1,
as dfkd best's --batch_stats_weight), joined by the BatchNorm term only where the teacher has BatchNorm; so
it also runs on a teacher without BatchNorm.
"""
import os
from typing import NamedTuple, Optional

import numpy as np
import tensorflow as tf

from generators import dafl
from models import builder
from models.graph import build_frozen, recorded_layers
from reconstruction import image_ops
from reconstruction.priors import RecordedMoments
from utils.errors import UserError

tf1 = tf.compat.v1
LATENT, WIDTH = 256, 64      # Fast's nz and ngf
BATCH_SIZE = 256             # its synthesis batch and its student's batch
BN_WEIGHT, ONE_HOT, ADVERSARIAL = 10.0, 0.5, 1.33   # --bn, --oh, --adv of its ResNet pairs
RECORDED_WEIGHT = 1.0        # the metadata generator's: dfkd best's --batch_stats_weight
BN_MOMENTUM = 0.9            # --bn_mmt
GENERATOR_STEPS = 5          # --g_steps of its middle setting ("Fast-5")
GENERATOR_LR, CODE_LR = 3e-3, 0.01   # --lr_g and --lr_z of Fast-5
SHIFT = 4                    # its RandomCrop padding
STUDENT_STEPS_PER_ROUND = 400   # --kd_steps
# Fast's 220 epochs hold 20 of warmup and reset the meta generator's first layer after 120 more; dfkd keeps
# both as fractions of --epochs (the rounds), so a shorter run keeps their proportions.
WARMUP_FRACTION, RESET_FRACTION = 20 / 220, 140 / 220
STUDENT_LR, STUDENT_MOMENTUM, STUDENT_WEIGHT_DECAY = 0.2, 0.9, 1e-4
LAYERS = dafl.GeneratorLayers(version=8, tanh=False, hidden_epsilon=1e-5)   # DAFL and DFAD hold 7 and 6
META_SCOPE, ROUND_SCOPE = "fast_meta", "fast_round"


class Recipe(NamedTuple):
    """What a method of rounds does in each: its loss weights, where a round's generator starts, and how the
    rounds are laid out. Fast's is FAST; CMI's is generators/cmi.py's."""
    bn_weight: float
    one_hot: float
    adversarial: float
    bn_momentum: float             # the BatchNorm term's blend with earlier rounds' moments (0: none)
    meta: bool                     # True: a copy of the meta generator; False: a fresh random generator
    code_lr: Optional[float]       # the codes' Adam rate; None: the generator's
    warmup_fraction: float         # the first rounds, without the adversarial term or the student
    reset_fraction: Optional[float]   # where the meta generator's first layer is re-initialized; None: never
    steps: int                     # generator steps a round, --generator_steps' default for the method


FAST = Recipe(bn_weight=BN_WEIGHT, one_hot=ONE_HOT, adversarial=ADVERSARIAL, bn_momentum=BN_MOMENTUM, meta=True,
              code_lr=CODE_LR, warmup_fraction=WARMUP_FRACTION, reset_fraction=RESET_FRACTION,
              steps=GENERATOR_STEPS)


def warmup_rounds(rounds, recipe=FAST):
    return int(round(rounds * recipe.warmup_fraction))


def reset_round(rounds, recipe=FAST):
    """The round whose start re-initializes the meta generator's first layer; None: none does."""
    return None if recipe.reset_fraction is None else int(round(rounds * recipe.reset_fraction))


def check_teacher(spec, method="fast"):
    """The generator's image shape, checked: Fast and CMI read the teacher's BatchNorm statistics (the
    metadata generator, recorded ones) and make images of a side divisible by 4."""
    if method != "metadata" and not spec.has_batchnorm:
        raise UserError(f"--method={method} matches the teacher's BatchNorm statistics, and --model={spec.name} has no "
                        "BatchNorm layer; give a teacher with BatchNorm, or use --method=metadata (its recorded "
                        "statistics) or --method=dafl")
    return dafl.generator_shape(spec, method)


def check_recorded(stats, method):
    """The metadata generator matches per-class statistics: a batch of 256 holds too few samples of each of a
    --stats_modes file's modes for their moments to mean anything."""
    if stats.has_modes:
        raise UserError(f"--method={method}: --stats_file={stats.path} holds {stats.num_groups} modes; the "
                        "generator matches per-class statistics: give compute_stats' file without --stats_modes")


def student_view(x, spec, seed, step, natural_images):
    """What the student (and the teacher labelling for it) sees of a memory batch: Fast's training transform,
    a shift of up to 4 pixels, and a mirror on natural images."""
    shape = image_ops.image_shape(spec)
    x = image_ops.random_shift(x, shape, SHIFT, seed, step)
    return image_ops.random_flip(x, shape, seed, step) if natural_images else x


def generator_variables(shape, scope, width=WIDTH):
    """Fast's generator's parameters at `width` (its ngf), as variables no other optimizer sees (trainable=False:
    a student's optimizer minimizing over the trainable variables leaves them alone)."""
    h, w, c = shape
    cells = (h // 4) * (w // 4)
    shapes = {"dense/weights": (LATENT, 2 * width * cells), "dense/biases": (2 * width * cells,),
              "bn0/gamma": (2 * width,), "bn0/beta": (2 * width,),
              "conv1/weights": (3, 3, 2 * width, 2 * width), "bn1/gamma": (2 * width,), "bn1/beta": (2 * width,),
              "conv2/weights": (3, 3, 2 * width, width), "bn2/gamma": (width,), "bn2/beta": (width,),
              "out/weights": (3, 3, width, c), "out/biases": (c,)}
    made = {}
    with tf1.variable_scope(scope):
        for name, size in shapes.items():
            kind = name.rsplit("/", 1)[1]
            init = tf1.ones_initializer() if kind == "gamma" else \
                tf1.zeros_initializer() if kind in ("beta", "biases") else tf1.glorot_uniform_initializer()
            made[name] = tf1.get_variable(name, size, initializer=init, trainable=False)
    return made


def fresh_generator(params, round_key):
    """Assignments that re-initialize a generator as CMI's reset_model does each round: weights N(0, 0.02),
    BatchNorm scales N(1, 0.02), biases and shifts 0; keyed by the round, so a resumed run repeats it."""
    ops = []
    for index, (name, variable) in enumerate(sorted(params.items())):
        kind = name.rsplit("/", 1)[1]
        key = round_key + [1000 + index, 0]   # apart from the codes' and the classes' keys
        if kind in ("beta", "biases"):
            ops.append(variable.assign(tf.zeros_like(variable)))
        else:
            noise = 0.02 * tf.random.stateless_normal(variable.shape, key)
            ops.append(variable.assign(noise + (1.0 if kind == "gamma" else 0.0)))
    return ops


def generate(params, codes, shape):
    """Flat [B, H*W*C] pixels in [0, 1] from codes [B, LATENT]."""
    h, w, c = shape

    def batchnorm(x, name):
        mean, variance = tf.nn.moments(x, axes=[0, 1, 2])
        return tf.nn.batch_normalization(x, mean, variance, params[f"{name}/beta"], params[f"{name}/gamma"], 1e-5)

    def upsample(x):
        return tf.image.resize(x, (int(x.shape[1]) * 2, int(x.shape[2]) * 2), method="nearest")

    wide = int(params["bn0/gamma"].shape[0])   # twice the generator's width
    x = tf.reshape(tf.matmul(codes, params["dense/weights"]) + params["dense/biases"], (-1, h // 4, w // 4, wide))
    x = upsample(batchnorm(x, "bn0"))
    x = upsample(tf.nn.leaky_relu(batchnorm(tf.nn.conv2d(x, params["conv1/weights"], 1, "SAME"), "bn1"), 0.2))
    x = tf.nn.leaky_relu(batchnorm(tf.nn.conv2d(x, params["conv2/weights"], 1, "SAME"), "bn2"), 0.2)
    x = tf.sigmoid(tf.nn.conv2d(x, params["out/weights"], 1, "SAME") + params["out/biases"])
    return tf.reshape(x, (-1, h * w * c))


def recorded_term(teacher, recorded, classes, batch):
    """dfkd best's batch-statistics term on the generated batch: every recorded layer's per-class batch mean
    and std against compute_stats' (reconstruction/priors.py), per sample of the batch."""
    stats, temperature = recorded
    activations = dict(zip(teacher.layer_names, recorded_layers(teacher, temperature)))
    return RecordedMoments(stats).batch_loss(activations, classes) / batch


def adversarial_term(student_logits, teacher_logits):
    """Minus the mean over the batch of KL(teacher || student), counted where both name the same class."""
    teacher_p = tf.nn.softmax(teacher_logits)
    kl = tf.reduce_sum(teacher_p * (tf.nn.log_softmax(teacher_logits) - tf.nn.log_softmax(student_logits)), axis=1)
    agree = tf.cast(tf.equal(tf.argmax(student_logits, 1), tf.argmax(teacher_logits, 1)), tf.float32)
    return -tf.reduce_mean(kl * agree)


class Synthesis:
    """The graph of one round of Fast (or of CMI, by its recipe and contrast), beside a student: the meta
    generator, the round's generator, its codes and classes, the losses, the optimizers and the momentum of
    the teacher's batch statistics. Run start (with the round), then `steps` times step (with round and
    iteration), then finish: run_round."""

    def __init__(self, teacher_spec, values, student_spec, student_params, seed, batch, generator_steps,
                 generator_lr, natural_images, recorded=None, recipe=FAST, contrast=None, width=WIDTH):
        """recorded: (stats file, temperature) for the metadata generator, whose statistics term is dfkd's
        per-class recorded moments (plus the BatchNorm term where the teacher has BatchNorm). contrast: a
        function (the teacher on the seen batch, the generated pixels, the step's view key) ->
        generators.cmi.Contrast, CMI's term. width: the generator's (--generator_width)."""
        method = "metadata" if recorded else "fast"
        shape = check_teacher(teacher_spec, method)
        self.round = tf1.placeholder(tf.int64, [], name="fast_round")
        self.iteration = tf1.placeholder_with_default(tf.constant(0, tf.int64), [], name="fast_iteration")
        self.adversarial_weight = tf1.placeholder_with_default(0.0, [], name="fast_adversarial_weight")
        meta = generator_variables(shape, META_SCOPE, width) if recipe.meta else None
        with tf1.variable_scope(ROUND_SCOPE):
            copy = generator_variables(shape, "generator", width)
            codes = tf1.get_variable("codes", (batch, LATENT), initializer=tf1.zeros_initializer(), trainable=False)
            classes = tf1.get_variable("classes", (batch,), tf.int32, initializer=tf1.zeros_initializer(),
                                       trainable=False)
            sums = {n: tf1.get_variable(f"gradient_sum/{n.replace('/', '_')}", v.shape, trainable=False,
                                        initializer=tf1.zeros_initializer()) for n, v in copy.items()} if meta else {}
            best_loss = tf1.get_variable("best_loss", (), initializer=tf1.constant_initializer(np.inf), trainable=False)
            self.best = tf1.get_variable("best_batch", (batch, int(np.prod(shape))), trainable=False,
                                         initializer=tf1.zeros_initializer())

        x = generate(copy, codes.read_value(), shape)
        view = self.round * 1000 + self.iteration   # each step's shift (and mirror) drawn apart
        seen = image_ops.random_shift(x, shape, SHIFT, seed, view)
        if natural_images:
            seen = image_ops.random_flip(seen, shape, seed, view)
        teacher = build_frozen(teacher_spec, values, seen)
        self.parts = {"one_hot": tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                          labels=classes.read_value(), logits=teacher.logits)),
                      # the student as it is evaluated (moving statistics); only the generator learns from it
                      "adversarial": adversarial_term(builder.build(student_spec, seen, student_params).logits,
                                                      teacher.logits)}
        self.loss = recipe.one_hot * self.parts["one_hot"] + self.adversarial_weight * self.parts["adversarial"]
        self._moments_kept, self._momentum = [], []
        if teacher_spec.has_batchnorm:
            self.parts["batchnorm_statistics"] = self._batchnorm_term(teacher, values)
            self.loss += recipe.bn_weight * self.parts["batchnorm_statistics"]
        if recorded:
            self.parts["recorded_statistics"] = recorded_term(teacher, recorded, classes.read_value(), batch)
            self.loss += RECORDED_WEIGHT * self.parts["recorded_statistics"]
        self.contrast = contrast(teacher, x, view) if contrast else None
        kept = [best_loss.assign(self.loss), self.best.assign(x)]
        if self.contrast:
            self.parts["contrastive"] = self.contrast.loss
            self.loss += self.contrast.weight * self.contrast.loss
            kept.append(self.contrast.keep_best())

        names = list(copy)
        gradients = tf.gradients(self.loss, [copy[n] for n in names] + [codes])
        keep_best = tf.cond(self.loss < best_loss, lambda: tf.group(*kept), tf.no_op)
        summed = [sums[n].assign_add(g) for n, g in zip(names, gradients)] if meta else []   # first-order MAML
        with tf.control_dependencies(summed + [keep_best] + self._moments_kept):
            generator_adam = tf1.train.AdamOptimizer(generator_lr, 0.5, 0.999)
            codes_adam = tf1.train.AdamOptimizer(recipe.code_lr or generator_lr, 0.5, 0.999)
            steps = [generator_adam.apply_gradients(zip(gradients[:-1], [copy[n] for n in names])),
                     codes_adam.apply_gradients([(gradients[-1], codes)])]
            if self.contrast:
                steps.append(self.contrast.head_step(self.loss))
            self.step = tf.group(*steps)
        finishing = []
        if meta:
            meta_adam = tf1.train.AdamOptimizer(generator_lr * generator_steps, 0.5, 0.999)
            finishing = [meta_adam.apply_gradients([(sums[n].read_value(), meta[n]) for n in names])]
        with tf.control_dependencies(finishing):
            self.finish = tf.group(*self._momentum_update())

        round_key = tf.stack([tf.constant(seed, tf.int64), self.round])
        start = [copy[n].assign(meta[n]) for n in names] if meta else fresh_generator(copy, round_key)
        start += [s.assign(tf.zeros_like(s)) for s in sums.values()]
        start += [codes.assign(tf.random.stateless_normal((batch, LATENT), round_key)),
                  classes.assign(tf.random.stateless_uniform((batch,), round_key + [1, 0], 0,
                                                             teacher_spec.num_classes, dtype=tf.int32)),
                  best_loss.assign(np.inf)]
        self.start = [tf1.variables_initializer(generator_adam.variables() + codes_adam.variables()), tf.group(*start)]
        self.reset_first_layer = tf.group(
            meta["dense/weights"].assign(0.02 * tf.random.stateless_normal(meta["dense/weights"].shape,
                                                                           tf.constant([seed, 7], tf.int64))),
            meta["dense/biases"].assign(tf.zeros_like(meta["dense/biases"]))) if meta else None
        self.meta_variables = list(meta.values()) if meta else []

    def _batchnorm_term(self, teacher, values):
        """Sum over the teacher's BatchNorms of ||moving variance - v|| + ||moving mean - m||, where m and v are
        the batch's moments blended with their momentum over earlier rounds (none before the first round ends)."""
        total = 0.0
        for name, h in teacher.batchnorm_inputs.items():
            mean, variance = tf.nn.moments(h, axes=list(range(len(h.shape) - 1)))
            safe = name.replace("/", "_")
            with tf1.variable_scope(ROUND_SCOPE):
                last = [tf1.get_variable(f"last/{safe}/{k}", mean.shape, trainable=False,
                                         initializer=tf1.zeros_initializer()) for k in ("mean", "variance")]
                momentum = [tf1.get_variable(f"momentum/{safe}/{k}", mean.shape, trainable=False,
                                             initializer=tf1.zeros_initializer()) for k in ("mean", "variance")]
                started = tf1.get_variable(f"momentum/{safe}/started", (), trainable=False,
                                           initializer=tf1.zeros_initializer())
            weight = BN_MOMENTUM * started
            blended_mean = (1 - weight) * mean + weight * momentum[0]
            blended_variance = (1 - weight) * variance + weight * momentum[1]
            total += tf.norm(values[f"{name}/moving_variance"] - blended_variance) + \
                tf.norm(values[f"{name}/moving_mean"] - blended_mean)
            self._moments_kept += [last[0].assign(mean), last[1].assign(variance)]
            self._momentum.append((last, momentum, started))
        return total

    def _momentum_update(self):
        """After a round: the momentum takes the round's last batch moments (the first round: as they are)."""
        ops = []
        for last, momentum, started in self._momentum:
            for kept, value in zip(momentum, last):
                blended = BN_MOMENTUM * kept + (1 - BN_MOMENTUM) * value
                ops.append(kept.assign(tf.where(started > 0, blended, value.read_value())))
            with tf.control_dependencies(ops[-2:]):
                ops.append(started.assign(1.0))
        return ops

    def run_round(self, sess, round_index, steps, adversarial, memory=None, after_step=None):
        """One round: the best batch it made (numpy), its features for CMI's bank (None without the
        contrastive term) and its last loss parts. memory: where CMI draws its negatives; after_step(steps
        done): progress within the round (CMI's 200 steps take minutes)."""
        for op in self.start:
            sess.run(op, {self.round: round_index})
        for iteration in range(steps + 1):   # the steps, then the loss parts after the last
            feed = {self.round: round_index, self.iteration: iteration, self.adversarial_weight: adversarial}
            if self.contrast:
                feed.update(self.contrast.feed(memory, round_index, iteration))
            if iteration < steps:
                sess.run(self.step, feed)
                if after_step:
                    after_step(iteration + 1)
            else:
                parts = sess.run(self.parts, feed)
        sess.run(self.finish)
        return sess.run(self.best), self.contrast.best_features(sess) if self.contrast else None, parts


class Memory:
    """Every batch Fast made, one .npy per round in `folder` (written atomically before the round's
    checkpoint, so a resumed run finds every round it restores); the student's batches are drawn from all.
    With features (CMI), each batch's teacher features beside it, one .npy per round: CMI's bank.
    The batches stay apart (all of one size): joining them after every round would copy the whole memory
    each time."""

    def __init__(self, folder, rounds_done, save, method="fast", with_features=False):
        self.folder, self.save = folder, save
        self.batches, self.features = [], []
        for r in range(rounds_done):
            self.batches.append(self._load(self.path(r), rounds_done, method))
            if with_features:
                self.features.append(self._load(self.path(r, "features"), rounds_done, method))

    def _load(self, path, rounds_done, method):
        try:
            return np.load(path, allow_pickle=False)
        except OSError:
            raise UserError(f"--method={method}: the checkpoint has {rounds_done} rounds but {path} is missing; "
                            f"delete {os.path.dirname(self.folder)} to start again") from None

    def path(self, round_index, kind="round"):
        return f"{self.folder}/{kind}_{round_index:05d}.npy"

    def add(self, round_index, batch, features=None):
        if features is not None:
            self.save(self.path(round_index, "features"), features)
            self.features.append(features)
        self.save(self.path(round_index), batch)
        self.batches.append(batch)

    def draw(self, seed, round_index, step, size):
        """A batch drawn uniformly from the memory, a function of the seed, the round and the step."""
        rng = np.random.default_rng([seed, round_index, step])
        rows = len(self.batches[0])
        picks = rng.integers(0, rows * len(self.batches), size)
        return np.stack([self.batches[i // rows][i % rows] for i in picks])

    def negatives(self, seed, round_index, step, count, capacity):
        """CMI's negatives: `count` distinct rows drawn uniformly from the newest `capacity` features (its
        bank, a ring of that size), a function of the seed, the round and the step; None while it is empty."""
        if not self.features:
            return None
        rows = len(self.features[0])
        available = min(capacity, rows * len(self.features))
        rng = np.random.default_rng([seed, round_index, step, 1])
        picks = rng.choice(available, min(count, available), replace=False)
        newest = rows * len(self.features) - available   # the ring's first row, counted from the oldest
        return np.stack([self.features[(newest + i) // rows][(newest + i) % rows] for i in picks])

    def last(self, count):
        """The `count` samples made last."""
        needed = -(-count // len(self.batches[0]))   # whole batches, the newest
        return np.concatenate(self.batches[-needed:])[-count:]


def rounds_cost(rounds, generator_steps, batch):
    """Generator passes x batch: the synthesis cost of `rounds` rounds."""
    return rounds * generator_steps * batch


def student_steps_total(rounds, steps_per_round, recipe=FAST):
    return max(rounds - warmup_rounds(rounds, recipe), 0) * steps_per_round
