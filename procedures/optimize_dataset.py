"""--procedure=optimize_dataset: reconstruct inputs from the frozen teacher and its
activation statistics alone.

Every batch starts from noise; per sample, targets are drawn from the statistics of
its class; Adam then moves the inputs (and nothing else) to minimise the objective.
Each Adam step is one session.run on variables that hold the batch (nothing big is fed per step).
Finished batches are kept on disk, so an interrupted run resumes where it stopped.
"""
import contextlib
import ctypes
import io
import json
import os
import shutil
import signal
import sys
import time
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from config import checks, flag_use
from config import flags as config_flags
from datasets.optimized import labels_path
from metadata import stats_file
from models import builder, checkpoint
from models.graph import build_frozen, recorded_layers
from reconstruction import image_ops, objectives
from reconstruction import priors as priors_lib
from reconstruction.priors import Priors
from runtime import workers as workers_lib
from utils import atomic, number_list, runlog
from utils.errors import UserError
from utils.progress import Progress
from utils.session import available_cores, make_session
from utils.tensorboard import write_scalars

tf1 = tf.compat.v1
ADAM_EPSILON = 1e-8
MAX_ATTEMPTS = 3
PR_SET_PDEATHSIG = 1   # linux/prctl.h
MAX_AUTO_WORKERS = 8   # each worker is a TensorFlow process of its own (memory)


def output_path(cfg):
    """The .npy this run writes; with --num_shards > 1, one piece per shard (load them with a glob)."""
    name = f"data_optimized_{cfg.optimization_objective}_{cfg.run_name}"
    if cfg.num_shards > 1:
        name += f".shard-{cfg.shard_index}-of-{cfg.num_shards}"
    return os.path.join(runlog.run_dir(cfg.summary_folder, cfg.run_name), "data", name + ".npy")


def shard_batches(num_batches, shard_index, num_shards):
    """A contiguous block of batch indices, so shards concatenated in order = the unsharded run."""
    return range(num_batches * shard_index // num_shards, num_batches * (shard_index + 1) // num_shards)


class ReconstructionGraph:
    """Frozen teacher + the batch of inputs as the only trainable Variable + one Adam step.

    Everything a batch holds fixed (targets, dropout masks, labels, seed) is stored in
    variables when the batch starts, so a step feeds nothing but its index. The steps
    run as one session.run each: measured faster on CPU than a fused tf.while_loop,
    inside which TensorFlow does not use oneDNN's MaxPoolGrad (bench/profile.py)."""

    def __init__(self, spec, values, objective, source, temperature, lr, steps, priors=Priors(), stats=None,
                 betas=(0.9, 0.999)):
        """source: the objective's targets object (objectives.py): what is matched and how; betas: Adam's."""
        self.steps = steps
        self.graph = tf.Graph()
        with self.graph.as_default():
            def per_batch(name, dtype, shape):
                """A placeholder fed once per batch, and the variable that holds it during the steps."""
                fed = tf1.placeholder(dtype, shape, name=f"{name}_value")
                return fed, tf1.Variable(fed, validate_shape=False, trainable=False, name=name)

            self.x0 = tf1.placeholder(tf.float32, [None, spec.input_size], name="initial_inputs")
            self.inputs = tf1.Variable(self.x0, validate_shape=False, name="reconstructed_inputs")
            self.labels, labels = per_batch("labels", tf.int32, [None])
            self.groups, groups = per_batch("groups", tf.int32, [None])
            self.seed, seed = per_batch("batch_seed", tf.int64, [])
            # Arrays fixed for the whole run (spectral bases), loaded once per session, not embedded in the graph.
            self.constants, constants = {}, {}
            for name, value in source.constants.items():
                self.constants[name] = tf1.placeholder(tf.float32, value.shape, name=f"{name}_value")
                constants[name] = tf1.Variable(self.constants[name], trainable=False, name=name)
            self.constant_values = source.constants
            self.constants_loaded = tf.reduce_all([tf1.is_variable_initialized(v) for v in constants.values()]
                                                  or [True])
            # The targets as the loss compares them (ReLU'd where the loss says so), computed once per batch.
            self.targets = {key: tf1.placeholder(tf.float32, [None, None], name=f"target_{key.replace('/', '_')}")
                            for key in source.weights}
            matched = {key: tf1.Variable(value, validate_shape=False, trainable=False,
                                         name=f"matched_target_{key.replace('/', '_')}")
                       for key, value in source.matched(self.targets).items()}
            self.masks, masks = {}, {}
            if objective.dropout_masks:
                in_shapes = builder.weighted_input_shapes(spec)
                for index, layer in enumerate(spec.weighted_layers):
                    if layer.dropout > 0:
                        self.masks[index], masks[index] = per_batch(f"dropout_mask_{layer.name}", tf.float32,
                                                                    (None,) + in_shapes[index])
            self.step_index = tf1.placeholder(tf.int64, [], name="step_index")
            hw = image_ops.image_hw(spec) if priors.needs_images else None
            dropout = (lambda x, rate, index: x * masks[index]) if masks else None

            x = self.inputs.read_value()
            seen = image_ops.roll_jitter(x, hw, priors.jitter, seed, self.step_index) if priors.jitter else x
            if priors.flip:
                seen = image_ops.random_flip(seen, image_ops.image_shape(spec), seed, self.step_index)
            model = build_frozen(spec, values, seen, dropout)
            acts = dict(zip(model.layer_names, recorded_layers(model, temperature)))
            layer_inputs = {name: tf.reshape(h, (-1, int(np.prod(h.shape[1:]))))
                            for name, h in zip(model.layer_names, model.layer_inputs)}
            compared = source.compared(acts, labels.read_value(), {k: v.read_value() for k, v in constants.items()},
                                       layer_inputs)
            matched = {k: v.read_value() for k, v in matched.items()}
            if hasattr(source, "sample_loss"):   # the later methods' own losses (objectives.py)
                loss = source.sample_loss(model, acts, labels.read_value(), matched)
            else:
                loss = objectives.per_sample_loss(compared, matched, source.weights)
            total = tf.reduce_sum(loss + priors_lib.pixel_penalties(priors, x, hw)) + priors_lib.batch_penalties(priors, x, hw)
            if hasattr(source, "batch_loss"):
                total += source.batch_loss(model, acts, groups.read_value())
            if priors.batch_stats_weight:
                total += priors.batch_stats_weight * priors_lib.RecordedMoments(stats).batch_loss(acts, groups)
            adam = tf1.train.AdamOptimizer(lr, *betas, ADAM_EPSILON)
            update = adam.minimize(total, var_list=[self.inputs])
            if priors.clip_inputs:
                with tf.control_dependencies([update]):
                    update = self.inputs.assign(tf.clip_by_value(self.inputs.read_value(), 0.0, 1.0))
            self.step = tf.group(update)
            self.step_loss = tf.reduce_mean(loss)  # before the step's update, like the gradient
            # The teacher as it runs at inference (no masks) judges which class a sample became.
            inference = build_frozen(spec, values, self.inputs.read_value())
            self.predictions = tf.argmax(inference.logits, axis=1)
            # Two runs per batch: Adam's moments take their shape from the inputs' new value, so they
            # are (re)set only after it (a batch may be smaller than the last).
            per_run = set(adam.variables()) | set(constants.values())
            self.init = [tf1.variables_initializer([v for v in tf1.global_variables() if v not in per_run]),
                         tf1.variables_initializer(adam.variables())]
            self.init_constants = tf1.variables_initializer(list(constants.values()))

    def start(self, sess, x0, targets, masks, labels, seed=0, groups=None):
        """labels: the intended class of each row; groups: its group in the stats file (default: its class)."""
        if self.constant_values and not sess.run(self.constants_loaded):
            sess.run(self.init_constants, {self.constants[n]: v for n, v in self.constant_values.items()})
        feed = {self.x0: x0, self.labels: labels, self.groups: labels if groups is None else groups, self.seed: seed,
                **{self.targets[n]: t for n, t in targets.items()}, **{self.masks[i]: m for i, m in masks.items()}}
        for init in self.init:
            sess.run(init, feed)

    def run_batch(self, sess, x0, targets, masks, labels, seed=0, groups=None, after_step=None):
        """after_step(steps done, loss), if given, after every step: progress within a long batch."""
        self.start(sess, x0, targets, masks, labels, seed, groups)
        history = np.empty(self.steps, np.float32)
        for t in range(self.steps):
            history[t] = sess.run([self.step, self.step_loss], {self.step_index: t})[1]
            if after_step is not None:
                after_step(t + 1, float(history[t]))
        x, predictions = sess.run([self.inputs, self.predictions])
        return x, history, predictions


def batch_plan(total, batch_size):
    return [(start, min(start + batch_size, total)) for start in range(0, total, batch_size)]


def class_counts(total, num_classes, weights=None):
    """Samples per class: `total` split in proportion to `weights` (largest remainders get the rest),
    or equally."""
    weights = np.ones(num_classes) if weights is None else np.asarray(weights, np.float64)
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    counts[np.argsort(counts - exact, kind="stable")[:total - counts.sum()]] += 1
    return counts


def parse_class_weights(text, num_classes):
    """--class_weights: None (equal shares), or one non-negative number per class."""
    if not text:
        return None
    weights = np.array(number_list.parse(text, "--class_weights", "one per class"))
    if len(weights) != num_classes:
        raise UserError(f"--class_weights={text!r}: {len(weights)} numbers for a teacher of {num_classes} classes; "
                        "give one per class")
    if not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise UserError(f"--class_weights={text!r}: expected finite numbers >= 0, not all 0")
    return weights


def batch_labels(start, stop, counts, class_major=False):
    """The intended class of samples start..stop-1 of a run with counts[c] samples of class c: each
    class spread evenly over the run (equal counts: 0, 1, ..., C-1, 0, ...), or, class_major, class by
    class (each class's samples in a row, as the authors' code made them), which lets a spectral step
    read each class's kept basis once for many rows."""
    classes = np.repeat(np.arange(len(counts)), counts)
    if not class_major:   # sample k of n sits at (k + 1/2) / n of the run; ties in class order
        positions = np.concatenate([(np.arange(n) + 0.5) / n for n in counts])
        classes = classes[np.lexsort((classes, positions))]
    return classes[start:stop]


def run_class_counts(cfg, num_classes):
    return class_counts(cfg.samples_per_class * num_classes, num_classes,
                        parse_class_weights(cfg.class_weights, num_classes))


def run_group_counts(cfg, num_classes, stats=None):
    """(samples per stats group, each group's class): per class, or, from a --stats_modes file, each
    class's samples split over its modes in proportion to their training examples."""
    counts = run_class_counts(cfg, num_classes)
    if stats is None or not stats.has_modes:
        return counts, np.arange(num_classes)
    group_class = stats.group_class
    per_group = np.zeros(len(group_class), np.int64)
    for c, n in enumerate(counts):
        mine = np.flatnonzero(group_class == c)
        per_group[mine] = class_counts(n, len(mine), stats.counts[mine])
    return per_group, group_class


def grouped_batches(cfg, objective):
    """Whether a batch holds each stats group's samples in a row (--optimize_batch_order=grouped; the
    spectral objectives always do, to read each class's kept basis once for many rows)."""
    return objective.spectral or cfg.optimize_batch_order == "grouped"


def draw_batch(cfg, spec, sampler, batch_index, start, stop, num_classes, attempt, class_major=False, stats=None):
    """Everything random about one batch, from (seed, batch, attempt) alone: (labels, groups, x0, targets,
    rng), groups being each sample's group in the stats file (its class, or one of its modes)."""
    rng = np.random.default_rng([cfg.rng_seed, batch_index, attempt])
    counts, group_class = run_group_counts(cfg, num_classes, stats)
    groups = batch_labels(start, stop, counts, class_major)
    x0 = rng.normal(cfg.noise_mean, cfg.noise_std, (stop - start, spec.input_size)).astype(np.float32)
    labels = group_class[groups]
    # The later methods (their own sample_loss) draw per class; the recorded statistics' draws per group.
    targets = sampler.sample(labels if hasattr(sampler, "sample_loss") else groups, rng)
    return labels, groups, x0, targets, rng


def dropout_masks(spec, graph, rng, n):
    """Fixed Bernoulli(keep) masks on the input of every dropout layer, no rescaling."""
    in_shapes = builder.weighted_input_shapes(spec)
    return {i: (rng.uniform(size=(n,) + in_shapes[i]) >= spec.weighted_layers[i].dropout).astype(np.float32)
            for i in graph.masks}


def settings_of(cfg, fingerprint):
    """A reconstruction's identity: the flags that decide it, and the teacher's and metadata's fingerprint
    in place of their paths."""
    return {**flag_use.identity("optimize_dataset", cfg, by_content=True), "fingerprint": fingerprint}


class Inputs(NamedTuple):
    """What every batch of a run needs, loaded and checked once per process."""
    spec: object
    objective: objectives.Objective
    values: dict
    fingerprint: str
    stats: object
    sampler: object
    priors: Priors


def load_inputs(cfg):
    objective = objectives.get(cfg.optimization_objective)
    priors = Priors.from_cfg(cfg)
    spec = checkpoint.spec_for(cfg.model, cfg.model_checkpoint)
    if priors.needs_images:
        image_ops.image_hw(spec)
    if objective.matches_batchnorm and spec.has_batchnorm and grouped_batches(cfg, objective):
        raise UserError(f"--optimize_batch_order=grouped: {spec.name}'s BatchNorm statistics, which "
                        f"--optimization_objective={objective.name} matches, describe every class together, and a "
                        "grouped batch holds one or two classes; leave --optimize_batch_order=spread")
    if objective.dropout_masks and not any(l.dropout > 0 for l in spec.weighted_layers):
        raise UserError(f"--optimization_objective=all_layers_dropout needs a teacher trained with dropout "
                        f"(hinton1200); --model={spec.name} has none")
    values = checkpoint.load_teacher_values(spec, cfg.model_meta, cfg.model_checkpoint)
    fingerprint = stats_file.weights_fingerprint(values)
    stats_path = cfg.stats_file or stats_file.default_path(cfg)
    # The later methods need no recorded statistics; one that matches BatchNorm on a teacher without it, or
    # a prior that reads them, does.
    stand_in = objective.matches_batchnorm and not spec.has_batchnorm   # recorded statistics for BatchNorm's
    wanted = objective.needs_stats or priors.batch_stats_weight or (stand_in and cfg.bn_weight)
    stats = None
    if wanted and not os.path.exists(stats_path):
        if stand_in and not priors.batch_stats_weight:
            raise UserError(f"--optimization_objective={objective.name}: --model={spec.name} has no BatchNorm layer, "
                            f"and there is no stats file at {stats_path}; run --procedure=compute_stats first (its "
                            "per-layer statistics stand in for BatchNorm's), or give a teacher with BatchNorm")
        modes = f" with --stats_modes={cfg.stats_modes}" if cfg.stats_modes > 1 and not cfg.stats_file else ""
        raise UserError(f"--stats_file: {stats_path} not found; run --procedure=compute_stats{modes} first "
                        "(or pass --stats_file)")
    if wanted:
        stats = stats_file.load(stats_path)
        stats_file.validate(stats, spec, cfg.temperature, fingerprint)
        if stand_in:
            print(f"[optimize_dataset] {objective.name}: {spec.name} has no BatchNorm; matching the per-layer "
                  f"statistics of {stats_path} instead (weight --bn_weight={cfg.bn_weight})")
    teacher = objectives.FrozenTeacher(spec, values, cfg.temperature)
    sampler = objectives.targets_of(objective, stats, teacher, cfg)
    return Inputs(spec, objective, values, fingerprint, stats, sampler, priors)


def worker_count(requested, batches):
    """--optimize_workers: 0 = one per core on a CPU-only machine, up to MAX_AUTO_WORKERS (several
    one-thread processes beat one process with every core on small models: README, Worker
    processes); one where a GPU is visible. Never more than the batches left."""
    if requested == 0:
        requested = 1 if tf.config.list_physical_devices("GPU") else min(available_cores(), MAX_AUTO_WORKERS)
    return max(1, min(requested, batches))


def optimize_batches(cfg, inputs, batches, partial_dir, worker=0, workers=1, parent=None):
    """Optimizes `batches` one after another and keeps each in partial_dir as it finishes.
    worker/workers: this process's place among those running at once (each has its share of
    the cores); parent: the pid to outlive, so a worker whose run was killed stops too."""
    spec, stats, sampler, objective = inputs.spec, inputs.stats, inputs.sampler, inputs.objective
    plan = batch_plan(cfg.samples_per_class * spec.num_classes, cfg.optimize_batch_size)
    rg = ReconstructionGraph(spec, inputs.values, objective, sampler, cfg.temperature, cfg.lr,
                             cfg.optimization_steps, inputs.priors, stats, (cfg.optimize_beta1, cfg.optimize_beta2))
    writer = tf1.summary.FileWriter(os.path.join(os.path.dirname(partial_dir), "..", "optimize_dataset",
                                                 cfg.optimization_objective))
    label = f"optimize {cfg.optimization_objective}" + (f" worker {worker + 1}/{workers}" if workers > 1 else "")
    # A line after every batch, and at most every half minute within one: DeepInversion's 2,000 steps keep
    # a batch running for most of an hour on two cores.
    progress = Progress(sum(plan[b][1] - plan[b][0] for b in batches), label, unit="samples", every_seconds=30)
    threads = max(1, (cfg.num_threads or available_cores()) // workers)
    grouped = grouped_batches(cfg, objective)
    done = 0
    with make_session(rg.graph, threads) as sess:
        for b in batches:
            if parent is not None and os.getppid() != parent:
                break
            batch_t0 = time.time()
            start, stop = plan[b]

            def within(steps, loss, b=b, size=stop - start):   # the batch's samples in proportion to its steps
                if steps < rg.steps:   # the batch's own line follows its last step
                    progress.update(done + size * steps // rg.steps, batch=f"{b + 1}/{len(plan)}",
                                    step=f"{steps}/{rg.steps}", loss=loss)
            for attempt in range(MAX_ATTEMPTS):
                labels, groups, x0, targets, rng = draw_batch(cfg, spec, sampler, b, start, stop, spec.num_classes,
                                                              attempt, class_major=grouped, stats=stats)
                masks = dropout_masks(spec, rg, rng, stop - start)
                x, history, predictions = rg.run_batch(sess, x0, targets, masks, labels,
                                                       (cfg.rng_seed * 100003 + b) * MAX_ATTEMPTS + attempt, groups,
                                                       after_step=within)
                if np.isfinite(history[-1]) and np.isfinite(x).all():
                    break
                print(f"[optimize_dataset] batch {b}: loss became {history[-1]}; re-initializing (attempt "
                      f"{attempt + 2} of {MAX_ATTEMPTS})")
            else:
                raise UserError(f"batch {b} diverged {MAX_ATTEMPTS} times; lower --lr (now {cfg.lr})")
            # Each batch keeps its share of the wall time, so a run finished in several pieces
            # reports the sum of all (batches running side by side share it).
            atomic.save_npz(batch_file(partial_dir, b), x=x, labels=labels, agree=(predictions == labels),
                            seconds=(time.time() - batch_t0) / workers)
            if b == 0:
                for step in range(0, len(history), max(1, len(history) // 100)):
                    write_scalars(writer, step, **{"loss_curve_batch0": history[step]})
            write_scalars(writer, b, initial_loss=history[0], final_loss=history[-1],
                          teacher_agreement=float(np.mean(predictions == labels)))
            done += stop - start
            progress.update(done, force=True, batch=f"{b + 1}/{len(plan)}", loss=float(history[-1]),
                            agree=float(np.mean(predictions == labels)))
    writer.close()


def _start_worker():
    # Ctrl-C reaches every process of the terminal; the parent alone answers it (and stops the workers).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # On Linux a worker dies with its parent (kill -9 included), mid-batch; elsewhere it stops at its
    # next batch (optimize_batches checks the parent).
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _worker(cfg, batches, partial_dir, worker, workers, parent, errors):
    """A worker process's life: its share of the batches, or its error sent to the parent."""
    _start_worker()
    try:
        with contextlib.redirect_stderr(io.StringIO()):   # the parent has printed these inputs' warnings once
            inputs = load_inputs(cfg)
        optimize_batches(cfg, inputs, batches, partial_dir, worker, workers, parent)
    except BaseException as error:   # the parent re-raises it: a UserError stays the usual one line
        try:
            errors.put(error)
        except Exception:   # an error that cannot be pickled still reaches the parent, as text
            errors.put(RuntimeError(f"{type(error).__name__}: {error}"))
        sys.exit(1)


def killed_worker_error(worker, workers, exitcode):
    signal_name = signal.Signals(-exitcode).name if exitcode < 0 else f"exit status {exitcode}"
    return UserError(f"optimize_dataset: worker process {worker + 1}/{workers} died ({signal_name}; SIGKILL is what "
                     "the system's out-of-memory killer sends); the finished batches are kept: run the same "
                     f"command again, with --optimize_workers={max(1, workers // 2)} if memory is short (each "
                     "worker loads the statistics and the teacher)")


def optimize_in_workers(cfg, todo, partial_dir, workers):
    """Batches split round-robin over `workers` processes. The first error stops them all and is raised here,
    and so is a worker's death without one (killed for memory), which a process pool would wait on forever."""
    errors = workers_lib.queue()
    processes = [workers_lib.process(_worker, (cfg, todo[w::workers], partial_dir, w, workers, os.getpid(), errors))
                 for w in range(workers)]
    for process in processes:
        process.start()
    try:
        while True:
            if not errors.empty():   # checked before the exit codes: a failing worker puts its error, then exits
                raise errors.get()
            for w, process in enumerate(processes):
                if process.exitcode not in (None, 0):
                    raise killed_worker_error(w, workers, process.exitcode)
            if all(process.exitcode == 0 for process in processes):
                return
            time.sleep(0.5)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()


def batch_file(partial_dir, b):
    return os.path.join(partial_dir, f"batch_{b:05d}.npz")


def settle_defaults(cfg):
    """cfg with the objective's own settings in the flags not given; says once which ones it took."""
    objective = objectives.get(cfg.optimization_objective)
    given = set(getattr(cfg, "explicit_flags", ()))
    settled = objectives.with_defaults(cfg, objective, given)
    taken = [f"--{name}={getattr(settled, name):g}" if not isinstance(getattr(settled, name), bool) else
             f"--{name}={str(getattr(settled, name)).lower()}" for name in objective.defaults if name not in given]
    if taken:
        print(f"[optimize_dataset] {objective.name} at its authors' settings: {' '.join(taken)}")
    return settled


def run(cfg):
    checks.run_name(cfg)
    checks.require(cfg, "model", "optimization_objective")
    cfg = settle_defaults(cfg)
    cfg.lr = cfg.lr if cfg.lr is not None else 0.07
    config_flags.validate(cfg, "optimize_dataset")
    if cfg.num_shards < 1 or not 0 <= cfg.shard_index < cfg.num_shards:
        raise UserError(f"--shard_index must be in 0..--num_shards-1 and --num_shards >= 1, got "
                        f"{cfg.shard_index} of {cfg.num_shards}")
    objectives.check_options(cfg.spectral_reading, cfg.loss_form)
    inputs = load_inputs(cfg)
    out = output_path(cfg)
    checks.writable_folder(os.path.dirname(out), "--summary_folder")

    total = cfg.samples_per_class * inputs.spec.num_classes
    counts = run_class_counts(cfg, inputs.spec.num_classes)
    if cfg.class_weights:
        print(f"[optimize_dataset] --class_weights: {', '.join(map(str, counts))} samples of classes "
              f"0..{len(counts) - 1}")
    plan = batch_plan(total, cfg.optimize_batch_size)
    mine = list(shard_batches(len(plan), cfg.shard_index, cfg.num_shards))
    partial_dir = os.path.join(os.path.dirname(out), "." + os.path.basename(out)[:-len(".npy")] + ".partial")
    settings = settings_of(cfg, inputs.fingerprint)
    settings_file = os.path.join(partial_dir, "settings.json")
    if os.path.isdir(partial_dir):
        try:
            with open(settings_file) as f:
                kept = json.load(f) == settings
        except (OSError, ValueError):
            kept = False
        if not kept:
            print(f"[optimize_dataset] discarding unfinished batches in {partial_dir}: other settings")
            shutil.rmtree(partial_dir)
    if not os.path.isdir(partial_dir):
        os.makedirs(partial_dir)
        atomic.save_json(settings_file, settings)

    todo = [b for b in mine if not os.path.exists(batch_file(partial_dir, b))]
    if len(todo) < len(mine):
        print(f"[optimize_dataset] resuming: {len(mine) - len(todo)} of {len(mine)} batches already done")
    workers = worker_count(cfg.optimize_workers, len(todo))
    t0 = time.time()
    if workers > 1:
        print(f"[optimize_dataset] {len(todo)} batches over {workers} worker processes")
        del inputs   # each worker loads its own; this process only waits (lenet's statistics: 1 GB in memory)
        optimize_in_workers(cfg, todo, partial_dir, workers)
    else:
        optimize_batches(cfg, inputs, todo, partial_dir)
    done = sum(plan[b][1] - plan[b][0] for b in todo)
    wall = time.time() - t0

    parts = [np.load(batch_file(partial_dir, b), allow_pickle=False) for b in mine]
    x = np.concatenate([p["x"] for p in parts]).astype(np.float32)
    labels = np.concatenate([p["labels"] for p in parts]).astype(np.int64)
    agreement = float(np.mean(np.concatenate([p["agree"] for p in parts])))
    earlier = [p for b, p in zip(mine, parts) if b not in todo]
    earlier_seconds = sum(float(p["seconds"]) for p in earlier if "seconds" in p)
    atomic.save_npy(labels_path(out), labels)
    atomic.save_npy(out, x)
    atomic.save_json(out[:-len(".npy")] + ".json", {**settings, "samples": int(len(x)),
                                                     "teacher_agreement": agreement})
    shutil.rmtree(partial_dir)
    sample_steps = done * cfg.optimization_steps
    # wall_seconds: every piece of the run; the speed: this piece's.
    results = {"output": out, "samples": int(len(x)), "teacher_agreement": agreement,
               "wall_seconds": round(wall + earlier_seconds, 1), "earlier_pieces_seconds": round(earlier_seconds, 1),
               "batch_size": cfg.optimize_batch_size, "workers": workers, "optimization_steps": cfg.optimization_steps,
               "sample_steps_per_second": round(sample_steps / wall, 1) if done else None}
    if cfg.class_weights:
        results["class_counts"] = counts.tolist()
    untimed = sum("seconds" not in p for p in earlier)
    if untimed:   # kept by a version that did not time its batches
        results["batches_without_time"] = untimed
    runlog.update_log(cfg.summary_folder, cfg.run_name, f"optimize_dataset/{cfg.optimization_objective}",
                      vars(cfg), results)
    print(f"[optimize_dataset] {len(x)} samples; teacher assigns {100 * agreement:.1f}% to their intended class")
    print(f"[optimize_dataset] wrote {out}")
    return results
