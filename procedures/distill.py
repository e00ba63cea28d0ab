"""--procedure=distill: train --student_model from scratch to match the frozen
teacher's temperature-softened outputs on --dataset (a reconstructed .npy, mnist /
mnist_conv for vanilla KD, or noise), evaluating on --eval_dataset's real labels.
Checkpoints every --checkpoint_interval steps; the same command again resumes from the newest.

--method=dafl and --method=dfad distill on the samples of a generator trained alongside the student:
DAFL's (generators/dafl.py), trained on the teacher alone, or DFAD's (generators/dfad.py), trained
against the student. --method=fast (generators/fast.py) runs rounds: a few steps of a meta-learned
generator make a batch that joins a memory, and the student learns from the memory.

Beyond the paper (off by default): --augment_shift, --augment_flip and --mixup_alpha transform every
batch on the fly; the teacher then labels the transformed batch inside the graph,
so the student always matches the teacher on exactly what it is shown. --boundary_steps adds to each
batch a copy pushed towards the student's disagreement with the teacher (distillation/boundary.py).
--attention_weight and --hint_weight add terms on the feature maps both nets share (distillation/features.py),
on a dataset's batches or a generator's."""
import os
import time
import types
from typing import NamedTuple

import numpy as np
import tensorflow as tf

import datasets
import generators
import models
from config import checks, flag_use
from config import flags as config_flags
from datasets import noise
from distillation import boundary, features
from distillation.batches import BATCH_TRANSFORMS, augmented_inputs
from distillation.student import kd_loss, student_training, swap
from generators import cmi, dafl, fast
from metadata import stats_file
from models import checkpoint
from models.graph import build_frozen, build_trainable, frozen_logits
from reconstruction import image_ops
from runtime import evaluation, resumable
from runtime.optimizers import learning_rate
from utils import atomic, runlog
from utils.errors import UserError
from utils.progress import Progress
from utils.session import make_session
from utils.tensorboard import write_scalars

tf1 = tf.compat.v1
PICTURED_SAMPLES = 1024   # of the last generator, kept beside its checkpoints for viz.view


def load_data(cfg, teacher_spec):
    if cfg.method:   # no data: a generator trained alongside (generators/)
        if generators.METHODS[cfg.method].memory:
            fast.check_teacher(teacher_spec, cfg.method)
        else:
            dafl.generator_shape(teacher_spec, cfg.method)
        return None
    if cfg.dataset == "noise":
        return noise.make(teacher_spec.input_shape, cfg.noise_samples, cfg.noise_mean, cfg.noise_std, cfg.rng_seed,
                          teacher_spec.num_classes)
    return datasets.get(cfg.dataset, cfg.data_dir)


def build_graph(cfg, teacher_spec, student_spec, values, method, augment, total_steps, pixels=None, recorded=None):
    """The distillation graph, for one of three sources of batches: a generator trained alongside
    (method: DAFL's or DFAD's), a dataset's batches transformed on the fly (the teacher labels them in
    the graph), or a dataset's batches with the teacher's logits computed once and fed. pixels: the
    generator's dafl.PixelConstants; total_steps: the run's last step, where --distill_lr_schedule=cosine
    ends. Returns a namespace of what the training loop feeds and runs; a
    source's unused entries are None."""
    net = types.SimpleNamespace(graph=tf.Graph(), batch=None, soft=None, shown=None, student_in=None,
                                pushed=None, stream=None, generator_op=None, generator_loss=None, parts=None,
                                rate=None, synthesis=None)
    with net.graph.as_default():
        tf1.set_random_seed(cfg.rng_seed)
        net.step_var = tf1.train.get_or_create_global_step()
        net.step_in = tf1.placeholder(tf.int64, [], name="step_index")
        student_vars = None
        if method is not None and method.memory:   # Fast: batches from the memory, shown shifted, labelled here
            net.batch = tf1.placeholder(tf.float32, [None, student_spec.input_size], name="batch")
            natural = datasets.natural_images(cfg.eval_dataset)
            net.shown = fast.student_view(net.batch, teacher_spec, cfg.rng_seed, net.step_var, natural)
            teacher = build_frozen(teacher_spec, values, net.shown)
            net.soft = teacher.logits
            net.g = build_trainable(student_spec, seed=cfg.rng_seed, inputs=tf1.placeholder_with_default(
                net.shown, [None, student_spec.input_size]))
            student_vars = tf1.trainable_variables()   # the student's: Fast's variables are not trainable
            contrast = cmi.contrast(teacher_spec, values, image_ops.image_shape(teacher_spec), cfg.rng_seed, natural,
                                    cfg.train_batch_size) if method.contrastive else None
            net.synthesis = fast.Synthesis(
                teacher_spec, values, student_spec, net.g.model.params, cfg.rng_seed, cfg.train_batch_size,
                cfg.generator_steps, method.generator_lr if cfg.generator_lr is None else cfg.generator_lr, natural,
                recorded=(recorded, cfg.temperature) if recorded is not None else None, recipe=method.recipe,
                contrast=contrast, width=cfg.generator_width or fast.WIDTH)
        elif method is not None:   # the generator's batch for this step's codes (stream 1: DFAD's generator steps)
            net.stream = tf1.placeholder_with_default(tf.constant(0, tf.int64), [], name="code_stream")
            net.shown = dafl.generate(teacher_spec, dafl.codes(cfg.rng_seed, net.step_in, cfg.train_batch_size,
                                                               net.stream), pixels, method.layers)
            teacher = build_frozen(teacher_spec, values, net.shown)
            net.soft = tf.stop_gradient(teacher.logits)
            # The student's input: the generated batch, or test examples fed in its place for evaluation.
            # Only a generator that plays against the student learns through it.
            net.g = build_trainable(student_spec, seed=cfg.rng_seed, inputs=tf1.placeholder_with_default(
                net.shown if method.against_student else tf.stop_gradient(net.shown), [None, student_spec.input_size]))
            net.generator_loss, net.parts = method.generator_loss(teacher, net.g.model.logits)
            generator_lr = method.generator_lr if cfg.generator_lr is None else cfg.generator_lr
            net.generator_op = tf1.train.AdamOptimizer(generator_lr).minimize(
                net.generator_loss, var_list=dafl.generator_variables())
            student_vars = dafl.other_trainable_variables()   # the student's loss moves the student alone
        elif augment:
            net.batch = tf1.placeholder(tf.float32, [None, student_spec.input_size], name="batch")
            net.shown = augmented_inputs(cfg, teacher_spec, net.batch, net.step_var)
            # With --boundary_steps the step's batch and its pushed copy are fed here together.
            net.student_in = tf1.placeholder_with_default(net.shown, [None, student_spec.input_size])
            teacher = build_frozen(teacher_spec, values, net.student_in)
            net.soft = teacher.logits
            net.g = build_trainable(student_spec, seed=cfg.rng_seed, inputs=net.student_in)
            if cfg.boundary_steps:
                net.pushed = boundary.pushed(net.shown, teacher_spec, values, student_spec, net.g.model.params,
                                             net.g.is_training, cfg.boundary_steps, cfg.boundary_step_size,
                                             cfg.temperature)
        else:
            net.g = build_trainable(student_spec, seed=cfg.rng_seed)
            net.batch = net.g.inputs
            net.soft = tf1.placeholder(tf.float32, [None, teacher_spec.num_classes], name="teacher_logits")
        logits = net.g.model.logits
        net.loss = method.student_loss(logits, net.soft) if method is not None and method.student_loss else \
            kd_loss(logits, net.soft, cfg.temperature)
        for flag, term in features.TERMS.items():   # every source but fed logits builds the teacher on the batch
            if getattr(cfg, flag):
                pairs = features.matched(teacher_spec, student_spec, f"--{flag}")
                net.loss += getattr(cfg, flag) * term(teacher, net.g.model, pairs)
        net.rate = tf.convert_to_tensor(learning_rate(cfg.lr, cfg.distill_lr_schedule, net.step_var, total_steps),
                                        tf.float32)
        optimizer, lowered = student_training(net.loss, student_vars, net.rate,
                                              generators.own_student_optimizer(cfg.method))
        net.train_op = net.g.minimize(optimizer, lowered, net.step_var, var_list=student_vars)
        net.swap_average = None
        if cfg.student_average:
            # Every student variable, BatchNorm's moving statistics too, so the average is one network.
            weights = list(net.g.model.params.values())
            average = tf1.train.ExponentialMovingAverage(cfg.student_average, num_updates=net.step_var)
            with tf.control_dependencies([net.train_op]):
                net.train_op = average.apply(weights)
            net.swap_average = swap(weights, [average.average(w) for w in weights])
        net.saver = tf1.train.Saver(max_to_keep=2)
        net.init = tf1.global_variables_initializer()
    return net


class Setup(NamedTuple):
    """What a distillation reads, loaded and checked before any graph is built."""
    method: object          # a generators.GeneratorMethod, or None for a dataset
    own_optimizer: object   # the method's published student optimizer, or None
    teacher: object         # the teacher's ModelSpec
    student: object
    values: dict            # the teacher's weights
    data: object            # the training source's ArrayDataset (None for a generator)
    eval_name: str
    eval_data: object
    pixels: object          # a generator's pixel constants, or None
    augment: bool           # the teacher labels each batch in the graph: batches transformed on the fly, or
                            # a feature term, which reads its feature maps
    recorded: object        # the metadata generator's per-class statistics (a stats_file.Stats), or None


def settle_flags(cfg):
    """The flags' defaults that depend on the source, then every check that needs no file."""
    checks.run_name(cfg)
    generators.take_deprecated_dataset_alias(cfg)
    checks.require(cfg, "model", "student_model", *(() if cfg.method else ("dataset",)))
    if cfg.method and cfg.dataset:
        raise UserError(f"--method={cfg.method} draws its own samples from a generator; leave --dataset unset "
                        f"(got --dataset={cfg.dataset})")
    own_optimizer = generators.own_student_optimizer(cfg.method)
    method = generators.METHODS.get(cfg.method)
    explicit = getattr(cfg, "explicit_flags", ())
    if method is not None and method.recipe and "generator_steps" not in explicit:
        cfg.generator_steps = method.recipe.steps   # Fast's 5, CMI's 200
    if cfg.generator_width and not (method is not None and method.memory):
        raise UserError(f"--generator_width sizes the generator of --method=fast, cmi or metadata; "
                        f"--method={cfg.method or '(none)'} has none of that kind: leave --generator_width unset")
    if cfg.lr is None:   # a method's own student optimizer brings its rate
        cfg.lr = own_optimizer.lr if own_optimizer is not None else 0.001
    cfg.train_batch_size = generators.train_batch_size(cfg.method, cfg.train_batch_size)
    if own_optimizer is not None:   # e.g. Fast's student: cosine annealing over its rounds
        for flag, value in (("distill_lr_schedule", own_optimizer.schedule),
                            ("student_average", own_optimizer.average)):
            if value and flag not in explicit:
                setattr(cfg, flag, value)
    config_flags.validate(cfg, "distill")
    if not 0 <= cfg.student_average < 1:
        raise UserError(f"--student_average is a decay per step in [0, 1) (e.g. 0.999; 0: off), got "
                        f"{cfg.student_average:g}")
    augment = any(getattr(cfg, name) for name in BATCH_TRANSFORMS)
    if cfg.method and augment:   # a generator draws fresh batches; there is no dataset batch to transform
        given = [f"--{name}" for name in BATCH_TRANSFORMS if getattr(cfg, name)]
        raise UserError(f"{', '.join(given)} transform a dataset's batches; --method={cfg.method} draws a "
                        "generator's samples: leave them unset")
    # The teacher's feature maps exist only where it labels each batch in the graph.
    augment = augment or any(getattr(cfg, flag) for flag in features.TERMS)
    return method, own_optimizer, augment


def load_setup(cfg):
    """The teacher, the student, the training source and the evaluation data, each checked against the others."""
    method, own_optimizer, augment = settle_flags(cfg)
    teacher = checkpoint.spec_for(cfg.model, cfg.model_checkpoint)
    student = models.get(cfg.student_model, "--student_model", channels=teacher.channels,
                         classes=teacher.num_classes)
    if cfg.augment_shift or cfg.augment_flip:
        image_ops.image_shape(teacher)
    for flag in features.TERMS:
        if getattr(cfg, flag):
            pairs = features.matched(teacher, student, f"--{flag}")
            print(f"[distill] --{flag}={getattr(cfg, flag):g} on {features.describe(pairs, teacher)}")
    if teacher.input_size != student.input_size:
        raise UserError(f"--student_model={student.name} takes {student.input_size} inputs but "
                        f"--model={teacher.name} takes {teacher.input_size}")
    values = checkpoint.load_teacher_values(teacher, cfg.model_meta, cfg.model_checkpoint)
    data = load_data(cfg, teacher)
    pixels = None
    if method is not None:
        if not method.memory:   # Fast's generator makes pixels in [0, 1] itself
            pixels = dafl.pixel_constants(teacher, cfg.pixel_mean, cfg.pixel_std)
            print(f"[distill] the generator's pixels: mean {', '.join(map(str, pixels.mean))}, std "
                  f"{', '.join(map(str, pixels.std))} per channel over each batch ({pixels.source})")
        if own_optimizer is not None:
            rule = f"Adam at {cfg.lr:g}" if own_optimizer.kind == "adam" else (
                f"SGD at {cfg.lr:g}, momentum {own_optimizer.momentum:g}, weight decay {own_optimizer.weight_decay:g}")
            source = method.student_settings_of or f"{method.title}'s script"
            print(f"[distill] the student: {rule}, batches of {cfg.train_batch_size} "
                  f"({source}: {own_optimizer.lr:g}, "
                  f"{method.batch_size})")
    else:
        checks.dataset_fits(teacher, data, classes=datasets.is_real(cfg.dataset))
    eval_name = cfg.eval_dataset or (cfg.dataset if datasets.is_real(cfg.dataset) else "")
    if not eval_name:
        suggestion = "mnist_conv" if teacher.input_size == 1024 else "mnist"
        raise UserError("--eval_dataset is required when --dataset is a .npy or noise, or with --method: "
                        f"{suggestion} for --model={teacher.name}")
    eval_data = datasets.get(eval_name, cfg.data_dir, flag="--eval_dataset")
    if not eval_data.has_test:
        raise UserError(f"--eval_dataset={eval_name} has no test labels; use the real dataset the teacher learned")
    checks.dataset_fits(teacher, eval_data, data_flag="--eval_dataset")
    recorded = load_recorded(cfg, teacher, values) if method is not None and method.needs_stats else None
    return Setup(method, own_optimizer, teacher, student, values, data, eval_name, eval_data, pixels, augment,
                 recorded)


def load_recorded(cfg, teacher, values):
    """The per-class statistics the metadata generator matches, checked against the teacher."""
    path = cfg.stats_file or stats_file.default_path(cfg)
    if not os.path.exists(path):
        raise UserError(f"--method={cfg.method}: --stats_file: {path} not found; run --procedure=compute_stats "
                        "first (or pass --stats_file)")
    stats = stats_file.load(path)
    stats_file.validate(stats, teacher, cfg.temperature, stats_file.weights_fingerprint(values))
    fast.check_recorded(stats, cfg.method)
    print(f"[distill] the generator matches the per-class statistics of {path}")
    return stats


class Evaluator:
    """The student's test accuracy and agreement with the teacher, written to TensorBoard; with
    --student_average, the average's, which the last evaluation leaves in the student's variables."""

    def __init__(self, cfg, setup, net, sess, writer):
        self.cfg, self.setup, self.net, self.sess, self.writer = cfg, setup, net, sess, writer
        self.teacher_says = np.argmax(frozen_logits(setup.teacher, setup.values, setup.eval_data.test_x,
                                                    cfg.test_batch_size, cfg.num_threads), axis=1)

    def __call__(self, step, last=False):
        net, sess = self.net, self.sess
        if net.swap_average is not None:
            sess.run(net.swap_average)
        predicted = evaluation.predictions(sess, net.g.inputs, net.g.model.logits, self.setup.eval_data.test_x,
                                           self.cfg.test_batch_size)
        if net.swap_average is not None and not last:
            sess.run(net.swap_average)
        acc = float(np.mean(predicted == self.setup.eval_data.test_y))
        agree = float(np.mean(predicted == self.teacher_says))
        write_scalars(self.writer, step, test_accuracy=acc, teacher_agreement=agree,
                      learning_rate=sess.run(net.rate))
        return acc, agree


def memory_rounds(cfg, setup, net, sess, writer, checkpoints, evaluate, start_position, memory):
    """Fast's loop: every round from the one start_position (rounds x --student_steps_per_round) names on,
    each a batch made and kept, then, after warmup, the student's steps on the memory; a checkpoint after
    each round. Returns the last position."""
    per_round, rounds, recipe = cfg.student_steps_per_round, cfg.epochs, setup.method.recipe
    warmup, reset = fast.warmup_rounds(rounds, recipe), fast.reset_round(rounds, recipe)
    first = start_position // per_round
    # A line at most every half minute, within a round too: a CMI round of 200 steps takes minutes.
    progress = Progress(rounds - first, f"distill {setup.student.name}, {cfg.method}", unit="rounds",
                        every_seconds=30)
    step, acc, value = int(sess.run(net.step_var)), None, None
    for r in range(first, rounds):
        if r == reset and r > warmup:   # Fast re-initializes the meta generator's first layer once
            sess.run(net.synthesis.reset_first_layer)

        def within(steps_done, r=r):
            if steps_done < cfg.generator_steps:   # the round's own line follows its student's steps
                progress.update(round(r - first + steps_done / cfg.generator_steps, 2), round=r + 1,
                                generator_step=f"{steps_done}/{cfg.generator_steps}")
        batch, features, parts = net.synthesis.run_round(sess, r, cfg.generator_steps,
                                                         recipe.adversarial if r >= warmup else 0.0, memory, within)
        memory.add(r, batch, features)
        for i in range(per_round if r >= warmup else 0):
            feed = {net.g.is_training: True, net.batch: memory.draw(cfg.rng_seed, r, i, cfg.train_batch_size)}
            _, value = sess.run([net.train_op, net.loss], feed)
            step += 1
            if step % 50 == 0:
                write_scalars(writer, step, kd_loss=value)
            if step % cfg.eval_interval == 0:
                acc, _ = evaluate(step)
        write_scalars(writer, r + 1, **{f"fast_{name}": v for name, v in parts.items()})
        if r + 1 < rounds:
            checkpoints.save(sess, net.saver, (r + 1) * per_round)
        progress.update(r + 1 - first, round=r + 1, loss=None if value is None else float(value), test_acc=acc)
    return rounds * per_round


def student_steps(cfg, setup, net, sess, writer, checkpoints, evaluate, steps_per_epoch, start_step):
    """The loop: every student step from start_step on, with the generator's where a method trains one;
    evaluations and checkpoints on their intervals. Returns the last step."""
    total = cfg.epochs * steps_per_epoch
    method, data = setup.method, setup.data
    # Without augmentation the teacher's outputs never change: compute them once.
    targets = None if setup.augment or method else frozen_logits(setup.teacher, setup.values, data.train_x,
                                                                 cfg.test_batch_size, cfg.num_threads)
    progress = Progress(total - start_step, f"distill {setup.student.name}")
    step, acc = start_step, None
    for epoch in range(start_step // steps_per_epoch, cfg.epochs):
        # Each epoch's order depends only on the seed and the epoch, so a resumed run sees the same batches.
        shuffled = None if method else np.random.default_rng([cfg.rng_seed, epoch]).permutation(len(data.train_x))
        for i in range(steps_per_epoch):
            if epoch * steps_per_epoch + i < start_step:
                continue
            feed = {net.g.is_training: True, net.step_in: step}   # BatchNorm: batch moments while training
            if method:
                if method.generator_shares_student_batch:   # DAFL: both steps at once, on the same batch
                    _, _, value, g_value = sess.run(
                        [net.train_op, net.generator_op, net.loss, net.generator_loss], feed)
                else:   # DFAD: a generator step on fresh codes after every few student steps
                    _, value = sess.run([net.train_op, net.loss], feed)
                    if (step + 1) % method.student_steps_per_generator_step == 0:
                        _, g_value = sess.run([net.generator_op, net.generator_loss], {**feed, net.stream: 1})
                if (step + 1) % 50 == 0 and (step + 1) % method.student_steps_per_generator_step == 0:
                    write_scalars(writer, step + 1, generator_loss=g_value,
                                  **dict(zip(net.parts, sess.run(list(net.parts.values()), feed))))
            else:
                idx = shuffled[i * cfg.train_batch_size:(i + 1) * cfg.train_batch_size]
                feed[net.batch] = data.train_x[idx]
                if not setup.augment:
                    feed[net.soft] = targets[idx]
                if cfg.boundary_steps:   # the pushes read the student as it is before this step
                    feed[net.student_in] = np.concatenate(sess.run([net.shown, net.pushed], feed))
                _, value = sess.run([net.train_op, net.loss], feed)
            step += 1
            if step % 50 == 0 or step == total:
                write_scalars(writer, step, kd_loss=value)
            if step % cfg.eval_interval == 0 and step != total:
                acc, _ = evaluate(step)
            if step % cfg.checkpoint_interval == 0 and step != total:
                checkpoints.save(sess, net.saver, step)
            progress.update(step - start_step, epoch=epoch + 1, loss=float(value), test_acc=acc)
    return step


def run(cfg):
    setup = load_setup(cfg)
    method = setup.method
    # One folder per source: a run may distill on real data, noise, several reconstructions and generators.
    source = runlog.dataset_tag(cfg.method or cfg.dataset)
    out_dir = os.path.join(runlog.run_dir(cfg.summary_folder, cfg.run_name), "distill", source)
    ckpt_dir = os.path.join(out_dir, "checkpoint")
    checks.writable_folder(ckpt_dir, "--summary_folder")
    checkpoint.save_definition(ckpt_dir, setup.student, "--student_model")
    checkpoints = resumable.Run(ckpt_dir, setup.student.name,
                                {**flag_use.identity("distill", cfg), **generators.definition_versions(cfg.method)})
    start_step, prefix = checkpoints.start_step, checkpoints.prefix
    if start_step == 0:   # the folder is this student's alone (one per source)
        resumable.discard_events(out_dir)

    t0 = time.time()
    with_memory = method is not None and method.memory
    if with_memory:   # Fast: --epochs rounds, the student learning after warmup
        steps_per_epoch = cfg.student_steps_per_round
        student_total = fast.student_steps_total(cfg.epochs, steps_per_epoch, method.recipe)
    else:
        steps_per_epoch = dafl.STEPS_PER_EPOCH if method else setup.data.steps_per_epoch(cfg.train_batch_size)
        student_total = cfg.epochs * steps_per_epoch
    net = build_graph(cfg, setup.teacher, setup.student, setup.values, method, setup.augment, student_total,
                      setup.pixels, setup.recorded)
    sess = make_session(net.graph, cfg.num_threads)
    checkpoints.restore_or_init(sess, net.saver, net.init, "distill")
    writer = tf1.summary.FileWriter(out_dir)
    evaluate = Evaluator(cfg, setup, net, sess, writer)
    if with_memory:
        memory = fast.Memory(os.path.join(out_dir, "memory"), start_step // steps_per_epoch, atomic.save_npy,
                             cfg.method, with_features=method.contrastive)
        step = memory_rounds(cfg, setup, net, sess, writer, checkpoints, evaluate, start_step, memory)
    else:
        step = student_steps(cfg, setup, net, sess, writer, checkpoints, evaluate, steps_per_epoch, start_step)
    acc, agree = evaluate(step, last=True)   # the last step's student: never one chosen on the test set
    checkpoints.save_last(sess, net.saver, step)
    generated_file = os.path.join(out_dir, "generated.npy")
    if with_memory:   # the last rounds' batches
        atomic.save_npy(generated_file, memory.last(PICTURED_SAMPLES))
    elif method:   # what the last generator makes: the codes the next steps would draw
        batches = -(-PICTURED_SAMPLES // cfg.train_batch_size)
        pictured = np.concatenate([sess.run(net.shown, {net.step_in: step + k}) for k in range(batches)])
        atomic.save_npy(generated_file, pictured[:PICTURED_SAMPLES])
    writer.close()
    sess.close()
    wall = time.time() - t0
    results = {"dataset": cfg.dataset, "eval_dataset": setup.eval_name, "test_accuracy": acc,
               "teacher_agreement": agree, "steps": step, "wall_seconds": round(wall + checkpoints.earlier, 1),
               "earlier_pieces_seconds": round(checkpoints.earlier, 1),
               "examples_per_second": round((step - start_step) * cfg.train_batch_size / max(wall, 1e-9), 1),
               "student_checkpoint": f"{prefix}-{step}"}
    if with_memory:   # the synthesis cost: generator passes x batch
        results["generator_steps"] = cfg.epochs * cfg.generator_steps
        results["generated_samples"] = fast.rounds_cost(cfg.epochs, cfg.generator_steps, cfg.train_batch_size)
        results["student_steps"] = student_total
        results["generated_file"] = generated_file
    elif method:
        results["generator_steps"] = method.generator_steps(step)
        results["generated_samples"] = method.generated_samples(step, cfg.train_batch_size)
        results["generated_file"] = generated_file
    runlog.update_log(cfg.summary_folder, cfg.run_name, f"distill/{source}", vars(cfg), results)
    print(f"[distill] {setup.student.name} from {setup.teacher.name} on {source}: test accuracy "
          f"{100 * acc:.2f}%, agreement with teacher {100 * agree:.2f}% ({wall:.0f}s)")
    print(f"[distill] student checkpoint {prefix}-{step}")
    if method:
        print(f"[distill] {PICTURED_SAMPLES} of the last generator's samples: {generated_file} (see them with "
              f"python -m viz.view --dataset={generated_file} --model={setup.teacher.name} "
              f"--model_checkpoint={cfg.model_checkpoint})")
    return results
