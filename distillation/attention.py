"""Attention transfer (Zagoruyko & Komodakis, ICLR 2017) beside the KD loss, as zero-shot knowledge
transfer uses it (Micaelli & Storkey, NeurIPS 2019: beta = 250). At each feature-map size that the
teacher and the student share, the student's attention map (the mean over channels of its squared
feature map, normalized to unit L2 norm over positions) is drawn to the teacher's. It gives the student
a target per position where the logits give one per class: more to learn from each of few samples."""
import tensorflow as tf

from models.spec import recorded_points
from utils.errors import UserError


def stage_outputs(spec):
    """{(height, width): (index into Model.pre_activations, layer name)}: the last recorded point of each
    feature-map size, the output of the stage that works at that size (what the next stage reads)."""
    points = {}
    for index, (name, shape) in enumerate(recorded_points(spec)):
        if len(shape) == 3:
            points[tuple(shape[:2])] = (index, name)
    return points


def matched(teacher, student):
    """[(teacher point, student point)] for every feature-map size both have, from the input on; a
    point is (index, name). One line if there is none."""
    t, s = stage_outputs(teacher), stage_outputs(student)
    shared = [size for size in t if size in s]
    if not shared:
        def sizes(points):
            return ", ".join(f"{h}x{w}" for h, w in points) or "none: it has no convolutional feature maps"
        raise UserError(f"--attention_weight matches feature maps of the same height and width, and "
                        f"--model={teacher.name} ({sizes(t)}) and --student_model={student.name} ({sizes(s)}) "
                        "share none; leave --attention_weight at 0")
    return [(t[size], s[size]) for size in shared]


def describe(pairs, teacher):
    """One line naming the matched layers: '32x32 stage1_block3 -> stage1_block1, ...' (teacher -> student)."""
    shapes = dict(recorded_points(teacher))
    return ", ".join(f"{shapes[t][0]}x{shapes[t][1]} {t} -> {s}" for (_, t), (_, s) in pairs)


def attention_map(features):
    """[batch, h, w, c] ReLU inputs -> [batch, h * w]: the ReLU's output squared, averaged over channels,
    with unit L2 norm per example."""
    squared = tf.reduce_mean(tf.square(tf.nn.relu(features)), axis=-1)
    return tf.math.l2_normalize(tf.reshape(squared, [-1, squared.shape[1] * squared.shape[2]]), axis=1)


def loss(teacher_model, student_model, pairs):
    """Sum over the matched sizes of the mean (over examples and positions) squared difference between
    the student's attention map and the teacher's, which is held fixed."""
    return tf.add_n([tf.reduce_mean(tf.square(
        attention_map(student_model.pre_activations[s]) -
        tf.stop_gradient(attention_map(teacher_model.pre_activations[t])))) for (t, _), (s, _) in pairs])
