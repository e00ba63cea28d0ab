"""--procedure=train: supervised Adam training of --model on --dataset, with
periodic evaluation, checkpoints, TensorBoard and log.json. Restarts from the
latest checkpoint of the same model in the run folder."""
import os
import time

import tensorflow as tf

import datasets
import models
from models import checkpoint
from models.graph import build_trainable
from procedures import checks, evaluation, flag_use, resumable
from utils import runlog
from utils.errors import UserError
from utils.progress import Progress
from utils.session import make_session
from utils.tensorboard import write_scalars

tf1 = tf.compat.v1


def learning_rate(lr, schedule, global_step, total_steps):
    """constant: the original tool's fixed rate. cosine: decays to 1% of it by the last step."""
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return tf1.train.cosine_decay(lr, global_step, total_steps, alpha=0.01)
    raise UserError(f"--lr_schedule: unknown schedule {schedule!r}; choose constant or cosine")


def build_training_graph(spec, lr, seed, schedule="constant", total_steps=1):
    """Trainable model + cross-entropy loss + Adam, in the current default graph."""
    tf1.set_random_seed(seed)
    g = build_trainable(spec, seed=seed)
    labels = tf1.placeholder(tf.int64, [None], name="labels")
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=g.model.logits))
    global_step = tf1.train.get_or_create_global_step()
    rate = learning_rate(lr, schedule, global_step, total_steps)
    train_op = tf1.train.AdamOptimizer(rate).minimize(loss, global_step=global_step)
    return g, labels, loss, global_step, train_op


def run(cfg):
    checks.run_name(cfg)
    checks.require(cfg, "model", "dataset")
    cfg.lr = cfg.lr if cfg.lr is not None else 0.001
    checks.positive(cfg, "epochs", "train_batch_size", "test_batch_size", "lr", "eval_interval",
                    "checkpoint_interval")
    spec = models.get(cfg.model)
    data = datasets.get(cfg.dataset, cfg.data_dir)
    checks.dataset_fits(spec, data)
    if not data.has_test:
        raise UserError(f"--dataset={cfg.dataset}: train needs a dataset with a test split (mnist, a folder, an .npz...); "
                        "reconstructed .npy files are for --procedure=distill")
    out_dir = os.path.join(runlog.run_dir(cfg.summary_folder, cfg.run_name), "train")
    ckpt_dir = os.path.join(out_dir, "checkpoint")
    checks.writable_folder(ckpt_dir, "--summary_folder")
    checkpoint.save_definition(ckpt_dir, spec)

    steps_per_epoch = data.steps_per_epoch(cfg.train_batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    graph = tf.Graph()
    with graph.as_default():
        g, labels, loss, global_step, train_op = build_training_graph(spec, cfg.lr, cfg.rng_seed,
                                                                      cfg.lr_schedule, total_steps)
        saver = tf1.train.Saver(max_to_keep=3)
        init_op = tf1.global_variables_initializer()
    sess = make_session(graph, cfg.num_threads)
    prefix = os.path.join(ckpt_dir, spec.name)
    start_step = checkpoint.latest_step(ckpt_dir, spec.name)
    resumable.check_resume(ckpt_dir, spec.name, flag_use.identity("train", cfg), resuming=bool(start_step))
    if start_step:
        saver.restore(sess, f"{prefix}-{start_step}")
        print(f"[train] resuming from {prefix}-{start_step}")
    else:
        sess.run(init_op)
    writer = tf1.summary.FileWriter(out_dir, graph if not start_step else None)

    def evaluate():
        return evaluation.accuracy(sess, g.inputs, g.model.logits, data, cfg.test_batch_size)

    progress = Progress(total_steps - start_step, f"train {spec.name}")
    t0 = time.time()
    # Each checkpoint records the training time so far, so a run finished in pieces reports all of it.
    seconds_at = resumable.checkpoint_seconds(ckpt_dir, spec.name)
    earlier = seconds_at.get(start_step, 0.0) if start_step else 0.0

    def save(step):
        saver.save(sess, prefix, global_step=step)
        seconds_at[step] = earlier + time.time() - t0
        resumable.record_seconds(ckpt_dir, spec.name, seconds_at)

    step, test_acc, last_loss = start_step, None, float("nan")
    for epoch in range(start_step // steps_per_epoch, cfg.epochs):
        batches = data.train_batches(cfg.train_batch_size, cfg.rng_seed, epoch)
        for i, (x, y) in enumerate(batches):
            if epoch * steps_per_epoch + i < start_step:
                continue  # already done before the restart: same data order, so skip it
            _, last_loss = sess.run([train_op, loss], {g.inputs: x, labels: y, g.is_training: True})
            step = epoch * steps_per_epoch + i + 1
            if step % 50 == 0 or step == total_steps:
                write_scalars(writer, step, loss=last_loss)
            if step % cfg.eval_interval == 0 or step == total_steps:
                test_acc = evaluate()
                write_scalars(writer, step, test_accuracy=test_acc)
            if step % cfg.checkpoint_interval == 0 or step == total_steps:
                save(step)
            progress.update(step - start_step, epoch=epoch + 1, loss=float(last_loss),
                            test_acc=test_acc if test_acc is not None else float("nan"))
    if test_acc is None or step != total_steps or step == start_step:
        test_acc = evaluate()
    if not os.path.exists(f"{prefix}-{step}.index"):
        save(step)
    writer.close()
    wall = time.time() - t0
    results = {"test_accuracy": test_acc, "steps": int(step), "wall_seconds": round(wall + earlier, 1),
               "earlier_pieces_seconds": round(earlier, 1),
               "examples_per_second": round((step - start_step) * cfg.train_batch_size / max(wall, 1e-9), 1),
               "model_meta": f"{prefix}-{step}.meta", "model_checkpoint": f"{prefix}-{step}"}
    runlog.update_log(cfg.summary_folder, cfg.run_name, f"train/{spec.name}", vars(cfg), results)
    print(f"[train] {spec.name} test accuracy {100 * test_acc:.2f}% after {step} steps ({wall:.0f}s)")
    print(f"[train] checkpoint: --model_checkpoint={prefix}-{step}")
    sess.close()
    return results
