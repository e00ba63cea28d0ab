"""Distillation terms on the teacher's feature maps, beside the KD loss on its logits. Each gives the
student a target per position of a stage's output, where the logits give one per class: more to learn
from each of few samples. Both compare, at each feature-map size the two nets share, the output of the
last block at that size (the stage's output, what the next stage reads), after its ReLU.

  attention (--attention_weight): Zagoruyko & Komodakis, ICLR 2017, as zero-shot knowledge transfer uses
      it beside KD (Micaelli & Storkey, NeurIPS 2019: weight 250). Each map becomes the mean over channels
      of its squares, with unit L2 norm over positions; any channel counts.
  hint (--hint_weight): the maps themselves, as FitNets' hint (Romero et al., ICLR 2015) without its
      regressor, so the channel counts must agree (resnet20's and resnet8's do: 16, 32, 64).
"""
import tensorflow as tf

from models.spec import recorded_points
from utils.errors import UserError


def stage_outputs(spec):
    """{(height, width): (index into Model.pre_activations, layer name, channels)}: the last recorded
    point of each feature-map size."""
    points = {}
    for index, (name, shape) in enumerate(recorded_points(spec)):
        if len(shape) == 3:
            points[tuple(shape[:2])] = (index, name, shape[2])
    return points


def _points(teacher, student):
    """(teacher's stage outputs, student's, the sizes both have from the input on)."""
    t, s = stage_outputs(teacher), stage_outputs(student)
    return t, s, [size for size in t if size in s]


def shared_sizes(teacher, student):
    """The feature-map sizes both nets have, from the input on."""
    return _points(teacher, student)[2]


def channels_agree(teacher, student):
    """Whether the two nets share a size and have the same channels at every shared size (a hint needs it)."""
    t, s, sizes = _points(teacher, student)
    return bool(sizes) and all(t[size][2] == s[size][2] for size in sizes)


def matched(teacher, student, flag):
    """[(teacher point, student point)] at every shared size; a point is (index, name, channels). One
    line where there is none, or, for --hint_weight, where the channels differ."""
    t, s, sizes = _points(teacher, student)
    if not sizes:
        def listed(points):
            return ", ".join(f"{h}x{w}" for h, w in points) or "none: it has no convolutional feature maps"
        raise UserError(f"{flag} matches feature maps of the same height and width, and --model={teacher.name} "
                        f"({listed(t)}) and --student_model={student.name} ({listed(s)}) share none; "
                        f"leave {flag} at 0")
    if flag == "--hint_weight":
        for size in sizes:
            if t[size][2] != s[size][2]:
                raise UserError(f"--hint_weight matches feature maps channel by channel, and at {size[0]}x{size[1]} "
                                f"--model={teacher.name}'s {t[size][1]} has {t[size][2]} channels where "
                                f"--student_model={student.name}'s {s[size][1]} has {s[size][2]}; use "
                                "--attention_weight, which takes any channel counts")
    return [(t[size], s[size]) for size in sizes]


def describe(pairs, teacher):
    """One line naming the matched layers: '32x32 stage1_block3 -> stage1_block1, ...' (teacher -> student)."""
    shapes = dict(recorded_points(teacher))
    return ", ".join(f"{shapes[t[1]][0]}x{shapes[t[1]][1]} {t[1]} -> {s[1]}" for t, s in pairs)


def attention_map(features):
    """[batch, h, w, c] ReLU inputs -> [batch, h * w]: the ReLU's output squared, averaged over channels,
    with unit L2 norm per example."""
    squared = tf.reduce_mean(tf.square(tf.nn.relu(features)), axis=-1)
    return tf.math.l2_normalize(tf.reshape(squared, [-1, squared.shape[1] * squared.shape[2]]), axis=1)


def _summed(teacher_model, student_model, pairs, view):
    """Sum over the pairs of the mean squared difference of view(student map) and view(teacher map), the
    teacher's held fixed."""
    return tf.add_n([tf.reduce_mean(tf.square(
        view(student_model.pre_activations[s[0]]) - tf.stop_gradient(view(teacher_model.pre_activations[t[0]]))))
        for t, s in pairs])


def attention_loss(teacher_model, student_model, pairs):
    """Mean over examples and positions of the squared difference of the attention maps, summed over sizes."""
    return _summed(teacher_model, student_model, pairs, attention_map)


def hint_loss(teacher_model, student_model, pairs):
    """Mean over examples, positions and channels of the squared difference of the ReLU outputs, summed
    over sizes."""
    return _summed(teacher_model, student_model, pairs, tf.nn.relu)


TERMS = {"attention_weight": attention_loss, "hint_weight": hint_loss}   # flag: its loss
