"""The learning-rate schedules and optimizers that training and distillation share."""
import tensorflow as tf

from utils.errors import UserError

tf1 = tf.compat.v1


def learning_rate(lr, schedule, global_step, total_steps):
    """constant: the original tool's fixed rate. cosine: decays to 1% of it by the last step."""
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return tf1.train.cosine_decay(lr, global_step, total_steps, alpha=0.01)
    raise UserError(f"--lr_schedule: unknown schedule {schedule!r}; choose constant or cosine")


def optimizer(name, rate):
    """adam (the original tool's), or sgd with momentum 0.9 (how ResNets are trained)."""
    if name == "sgd":
        return tf1.train.MomentumOptimizer(rate, momentum=0.9)
    return tf1.train.AdamOptimizer(rate)
