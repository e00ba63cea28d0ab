"""DFAD (Fang et al., "Data-Free Adversarial Distillation", 2019): the generator of procedures/dafl.py
trained *against* the student (`--procedure=distill --dataset=dfad`).

Both sides play on one quantity, the mean absolute difference between the teacher's and the student's
logits on generated samples: the student lowers it, the generator raises it (hard samples, where the
two disagree). As in DFAD's MNIST script, the generator takes one Adam step (learning rate 0.001)
after every 5 student steps, each step on fresh codes. The gradient of the generator's step runs
through the frozen teacher and the current student; only the generator's variables move.

Where dfkd differs from DFAD's script: the generator ends in a sigmoid (pixels in [0, 1], as every
input dfkd gives a teacher; DFAD's ends in tanh and a batch normalization of the image) and the
student uses dfkd's distillation optimizer (Adam at --lr, as every row of a table); DFAD's uses SGD
(0.01, momentum 0.9, weight decay 1e-4) and keeps the epoch's student with the best test accuracy.
"""
import tensorflow as tf

STUDENT_STEPS_PER_GENERATOR_STEP = 5
GENERATOR_LR = 1e-3   # DFAD's MNIST lr_G


def discrepancy(student_logits, teacher_logits):
    """DFAD's model discrepancy: the mean absolute difference of the logits (PyTorch's l1_loss)."""
    return tf.reduce_mean(tf.abs(student_logits - teacher_logits))
