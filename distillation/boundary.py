"""distill --boundary_steps: copies of each batch pushed towards where the student and the teacher
disagree, so that the student also learns the teacher's outputs near its decision boundaries (the
idea of Heo et al., AAAI 2019, "boundary supporting samples", here without data: the batch is a
reconstruction's).

Each push is a signed-gradient step of --boundary_step_size up KL(teacher || student) at the
distillation temperature, through both networks, with the pixels kept in [0, 1]."""
import tensorflow as tf

from models import builder

tf1 = tf.compat.v1


def disagreement(teacher_logits, student_logits, temperature):
    """Per-sample KL(softmax(teacher/T) || softmax(student/T))."""
    log_t = tf.nn.log_softmax(teacher_logits / temperature)
    log_s = tf.nn.log_softmax(student_logits / temperature)
    return tf.reduce_sum(tf.exp(log_t) * (log_t - log_s), axis=1)


def pushed(x, teacher_spec, teacher_values, student_spec, student_params, is_training, steps, step_size,
           temperature):
    """x moved `steps` times up the disagreement; no gradient flows back through the result.
    The student reads the batch as it will in its training step (BatchNorm: batch moments while
    is_training); these extra passes add no BatchNorm updates."""
    teacher_params = builder.constants(teacher_spec, teacher_values)   # one copy of the weights for every push
    for _ in range(steps):
        teacher = builder.build(teacher_spec, x, teacher_params).logits
        student = builder.build(student_spec, x, student_params, None, training=is_training).logits
        gap = tf.reduce_sum(disagreement(teacher, student, temperature))
        x = tf.stop_gradient(tf.clip_by_value(x + step_size * tf.sign(tf.gradients(gap, x)[0]), 0.0, 1.0))
    return x
