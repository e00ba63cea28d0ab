"""The student's side of distillation: the KD loss, its optimizer, and the swap that evaluates an average."""
import tensorflow as tf

tf1 = tf.compat.v1


def kd_loss(student_logits, teacher_logits, temperature):
    """Hinton et al.: T^2 * cross-entropy(softmax(teacher/T), softmax(student/T)), batch mean."""
    soft_targets = tf.nn.softmax(teacher_logits / temperature)
    ce = tf.nn.softmax_cross_entropy_with_logits(labels=tf.stop_gradient(soft_targets),
                                                 logits=student_logits / temperature)
    return temperature ** 2 * tf.reduce_mean(ce)


def student_training(loss, student_vars, lr, own):
    """(optimizer, the loss it lowers): Adam on the loss (dfkd's, own None, or a method's), or a method's
    own SGD with momentum on the loss plus PyTorch's weight decay on student_vars (weight_decay / 2 x the
    squared weights: its gradient adds weight_decay x each weight)."""
    if own is None or own.kind == "adam":
        return tf1.train.AdamOptimizer(lr), loss
    decay = own.weight_decay / 2 * tf.add_n([tf.reduce_sum(tf.square(v)) for v in student_vars])
    return tf1.train.MomentumOptimizer(lr, own.momentum), loss + decay


def swap(variables, others):
    """One op that exchanges the values of two lists of variables; run twice, it changes nothing."""
    before = [tf.identity(v.read_value()) for v in variables + others]
    with tf.control_dependencies(before):
        return tf.group(*[v.assign(value) for v, value in zip(variables + others, before[len(variables):] +
                                                                before[:len(variables)])])
