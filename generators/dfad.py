"""DFAD (Fang et al., "Data-Free Adversarial Distillation", 2019): a generator trained *against* the
student (`--procedure=distill --method=dfad`).

The generator is DFAD's `GeneratorA` (its network/gan.py): generators/dafl.py's layers, tanh included,
with PyTorch's default BatchNorm epsilon (1e-5) where DAFL's script has 0.8. DFAD's generator rate is
a 200th of DAFL's, low enough that its tanh does not saturate at batches of 64 or 512.

Both sides play on one quantity, the mean absolute difference between the teacher's and the student's
logits on generated samples: the student lowers it, the generator raises it (hard samples, where the
two disagree). As in DFAD's MNIST script, the generator takes one Adam step (learning rate 0.001)
after every 5 student steps, each step on fresh codes. The gradient of the generator's step runs
through the frozen teacher and the current student; only the generator's variables move.

The generator's image is DAFL's: standardized over the batch and mapped to pixels by the data's mean
and std (dafl.PixelConstants), which is what DFAD's teacher reads after its input normalization.
The student trains as in DFAD's script, with SGD (0.01, momentum 0.9, weight decay 1e-4; --lr sets
the rate), not with the Adam every other row of a table uses: against an adversarial generator an
Adam student rises and then falls away, where SGD holds it far steadier (docs/notes/2026-12-07-results-notebook.md,
"The later methods at the peers scale"). A DFAD run takes DFAD's batches of 512 unless
--train_batch_size says otherwise.
Where dfkd differs from DFAD's script: the student is the last step's (DFAD's script keeps the
epoch's student with the best test accuracy).
"""
import tensorflow as tf

from generators import dafl

LAYERS = dafl.GeneratorLayers(version=6, tanh=True, hidden_epsilon=1e-5)   # DFAD's GeneratorA
STUDENT_STEPS_PER_GENERATOR_STEP = 5
GENERATOR_LR = 1e-3   # DFAD's MNIST lr_G
BATCH_SIZE = 512      # DFAD's MNIST batch_size, its generator's and its student's
STUDENT_LR, STUDENT_MOMENTUM, STUDENT_WEIGHT_DECAY = 0.01, 0.9, 1e-4   # DFAD's MNIST student SGD


def discrepancy(student_logits, teacher_logits):
    """DFAD's model discrepancy: the mean absolute difference of the logits (PyTorch's l1_loss)."""
    return tf.reduce_mean(tf.abs(student_logits - teacher_logits))
