"""--procedure=train: supervised Adam training of --model on --dataset, with
periodic evaluation, checkpoints, TensorBoard and log.json. Restarts from the
latest checkpoint of the same model in the run folder."""
import os
import time

import tensorflow as tf

import datasets
import models
from config import checks, flag_use
from config import flags as config_flags
from models import checkpoint
from models.graph import build_trainable
from reconstruction import image_ops
from runtime import evaluation, resumable
from runtime.optimizers import learning_rate, optimizer
from utils import runlog
from utils.errors import UserError
from utils.progress import Progress
from utils.session import make_session
from utils.tensorboard import write_scalars

tf1 = tf.compat.v1


AUGMENT_SHIFT = 4   # --augment=crop: the CIFAR recipe's random crop of a 4-pixel zero-padded image


def augmented(x, spec, augment, seed, step):
    """The training batch as the model sees it: --augment=crop shifts each image by up to 4 pixels
    (zeros shifted in); crop_flip also mirrors half of them left-right."""
    if augment == "none":
        return x
    shape = image_ops.image_shape(spec)
    x = image_ops.random_shift(x, shape, AUGMENT_SHIFT, seed, step)
    return image_ops.random_flip(x, shape, seed, step) if augment == "crop_flip" else x


def build_training_graph(spec, lr, seed, schedule="constant", total_steps=1, optimizer_name="adam",
                         weight_decay=0.0, augment="none"):
    """Trainable model + cross-entropy loss (+ L2 on the weights) + optimizer, in the current default graph."""
    tf1.set_random_seed(seed)
    global_step = tf1.train.get_or_create_global_step()
    batch = tf1.placeholder(tf.float32, [None, spec.input_size], name="inputs")
    g = build_trainable(spec, seed=seed, inputs=augmented(batch, spec, augment, seed, global_step))
    labels = tf1.placeholder(tf.int64, [None], name="labels")
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=g.model.logits))
    if weight_decay:
        loss += weight_decay * tf.add_n([tf.nn.l2_loss(w) for name, w in g.model.params.items()
                                         if name.endswith("/weights")])
    rate = learning_rate(lr, schedule, global_step, total_steps)
    train_op = g.minimize(optimizer(optimizer_name, rate), loss, global_step)
    return g, batch, labels, loss, global_step, train_op


def run(cfg):
    checks.run_name(cfg)
    checks.require(cfg, "model", "dataset")
    cfg.lr = cfg.lr if cfg.lr is not None else 0.001
    cfg.train_batch_size = config_flags.batch_size(cfg.train_batch_size)
    config_flags.validate(cfg, "train")
    data = datasets.get(cfg.dataset, cfg.data_dir)
    spec = models.get(cfg.model, channels=datasets.channels(data), classes=data.num_classes)
    checks.dataset_fits(spec, data)
    if not data.has_test:
        raise UserError(f"--dataset={cfg.dataset}: train needs a dataset with a test split (mnist, a folder, "
                        "an .npz...); reconstructed .npy files are for --procedure=distill")
    out_dir = os.path.join(runlog.run_dir(cfg.summary_folder, cfg.run_name), "train")
    ckpt_dir = os.path.join(out_dir, "checkpoint")
    checks.writable_folder(ckpt_dir, "--summary_folder")
    checkpoint.save_definition(ckpt_dir, spec)

    steps_per_epoch = data.steps_per_epoch(cfg.train_batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    graph = tf.Graph()
    with graph.as_default():
        g, batch, labels, loss, global_step, train_op = build_training_graph(
            spec, cfg.lr, cfg.rng_seed, cfg.lr_schedule, total_steps, cfg.optimizer, cfg.weight_decay, cfg.augment)
        saver = tf1.train.Saver(max_to_keep=3)
        init_op = tf1.global_variables_initializer()
    sess = make_session(graph, cfg.num_threads)
    checkpoints = resumable.Run(ckpt_dir, spec.name, flag_use.identity("train", cfg))
    start_step, prefix = checkpoints.start_step, checkpoints.prefix
    checkpoints.restore_or_init(sess, saver, init_op, "train")
    writer = tf1.summary.FileWriter(out_dir, graph if not start_step else None)

    def evaluate():
        return evaluation.accuracy(sess, g.inputs, g.model.logits, data, cfg.test_batch_size)

    progress = Progress(total_steps - start_step, f"train {spec.name}")
    t0 = time.time()

    step, test_acc, last_loss = start_step, None, float("nan")
    for epoch in range(start_step // steps_per_epoch, cfg.epochs):
        batches = data.train_batches(cfg.train_batch_size, cfg.rng_seed, epoch)
        for i, (x, y) in enumerate(batches):
            if epoch * steps_per_epoch + i < start_step:
                continue  # already done before the restart: same data order, so skip it
            _, last_loss = sess.run([train_op, loss], {batch: x, labels: y, g.is_training: True})
            step = epoch * steps_per_epoch + i + 1
            if step % 50 == 0 or step == total_steps:
                write_scalars(writer, step, loss=last_loss)
            if step % cfg.eval_interval == 0 or step == total_steps:
                test_acc = evaluate()
                write_scalars(writer, step, test_accuracy=test_acc)
            if step % cfg.checkpoint_interval == 0 or step == total_steps:
                checkpoints.save(sess, saver, step)
            progress.update(step - start_step, epoch=epoch + 1, loss=float(last_loss),
                            test_acc=test_acc)
    if test_acc is None or step != total_steps or step == start_step:
        test_acc = evaluate()
    checkpoints.save_last(sess, saver, step)
    writer.close()
    wall = time.time() - t0
    results = {"test_accuracy": test_acc, "steps": int(step), "wall_seconds": round(wall + checkpoints.earlier, 1),
               "earlier_pieces_seconds": round(checkpoints.earlier, 1),
               "examples_per_second": round((step - start_step) * cfg.train_batch_size / max(wall, 1e-9), 1),
               "model_meta": f"{prefix}-{step}.meta", "model_checkpoint": f"{prefix}-{step}"}
    runlog.update_log(cfg.summary_folder, cfg.run_name, f"train/{spec.name}", vars(cfg), results)
    print(f"[train] {spec.name} test accuracy {100 * test_acc:.2f}% after {step} steps ({wall:.0f}s)")
    print(f"[train] checkpoint: --model_checkpoint={prefix}-{step}")
    sess.close()
    return results
