"""What a distilled student lacks, class by class (issue #59): the teacher's and the student's accuracy
per class, how often they agree on real test images, which classes the student takes for which, and
the student's accuracy with its BatchNorm statistics re-estimated on a set of inputs (its own
reconstructions, or real training images) in place of the moving averages it learned.

  python -m bench.student_diagnosis --model=resnet20 --model_checkpoint=T --student_model=resnet8 \
      --student_checkpoint=S --dataset=fashion_mnist_conv [--reestimate_on=data.npy[,real.npz@32x32]] \
      [--out=diagnosis.json]

Prints a table and writes the numbers as JSON (atomically) where --out says.
"""
import argparse
import sys

import numpy as np

from utils.quiet_tf import import_tensorflow

tf = import_tensorflow()   # before anything else imports it: without its C++ start-up lines

import datasets  # noqa: E402
from datasets import optimized  # noqa: E402
from datasets.mnist import default_data_dir  # noqa: E402
from models import builder, checkpoint  # noqa: E402
from models.graph import frozen_logits  # noqa: E402
from utils import atomic  # noqa: E402
from utils.errors import UserError  # noqa: E402
from utils.session import make_session  # noqa: E402

tf1 = tf.compat.v1
FASHION_UPPER_BODY = (0, 2, 4, 6)   # T-shirt/top, pullover, coat, shirt: the classes students confuse


def per_class(predicted, labels, num_classes):
    return [float(np.mean(predicted[labels == c] == c)) if np.any(labels == c) else None for c in range(num_classes)]


def reestimated_batchnorm(spec, values, x, batch_size=500, num_threads=0):
    """values with every BatchNorm's moving mean and variance replaced by the population moments of what it
    normalizes over x, each batch normalized by its own moments (the usual "precise BatchNorm" estimate)."""
    graph = tf.Graph()
    with graph.as_default():
        inputs = tf1.placeholder(tf.float32, [None, spec.input_size])
        # Variables, not constants: a training-mode build also makes the moving averages' updates (never run).
        params = {name: tf1.Variable(values[name], name=name.replace("/", "_")) for name in builder.param_shapes(spec)}
        model = builder.build(spec, inputs, params, training=tf.constant(True))
        initialize = tf1.global_variables_initializer()
        moments = {name: (tf.reduce_mean(h, axis=list(range(len(h.shape) - 1))),
                          tf.reduce_mean(tf.square(h), axis=list(range(len(h.shape) - 1))))
                   for name, h in model.batchnorm_inputs.items()}
    if not moments:
        raise UserError(f"--student_model={spec.name} has no BatchNorm layer to re-estimate")
    sums = {name: [0.0, 0.0] for name in moments}
    count = 0
    with make_session(graph, num_threads) as sess:
        sess.run(initialize)
        for start in range(0, len(x), batch_size):
            batch = x[start:start + batch_size]
            for name, (mean, square) in sess.run(moments, {inputs: batch}).items():
                sums[name][0] += len(batch) * mean
                sums[name][1] += len(batch) * square
            count += len(batch)
    out = dict(values)
    for name, (total, square_total) in sums.items():
        mean = total / count
        out[f"{name}/moving_mean"] = mean.astype(np.float32)
        out[f"{name}/moving_variance"] = np.maximum(square_total / count - mean ** 2, 0.0).astype(np.float32)
    return out


def load_inputs(path, data_dir):
    """Rows of a reconstruction (.npy) or of a dataset's training split (a name, folder or .npz, + @HxW)."""
    return optimized.load(path).train_x if path.endswith(".npy") else datasets.get(path, data_dir).train_x


def diagnose(teacher, teacher_values, student, student_values, data, reestimate_on=(), data_dir=None,
             batch_size=1000):
    labels = data.test_y
    t_pred = np.argmax(frozen_logits(teacher, teacher_values, data.test_x, batch_size), axis=1)
    s_pred = np.argmax(frozen_logits(student, student_values, data.test_x, batch_size), axis=1)
    classes = teacher.num_classes
    confusion = np.zeros((classes, classes), np.int64)
    np.add.at(confusion, (labels, s_pred), 1)
    report = {"teacher_accuracy": float(np.mean(t_pred == labels)), "student_accuracy": float(np.mean(s_pred == labels)),
              "agreement": float(np.mean(t_pred == s_pred)),
              "teacher_class_accuracy": per_class(t_pred, labels, classes),
              "student_class_accuracy": per_class(s_pred, labels, classes),
              "class_agreement": [float(np.mean(t_pred[labels == c] == s_pred[labels == c])) for c in range(classes)],
              "student_confusion": confusion.tolist(), "reestimated": {}}
    for path in reestimate_on:
        values = reestimated_batchnorm(student, student_values, load_inputs(path, data_dir))
        predicted = np.argmax(frozen_logits(student, values, data.test_x, batch_size), axis=1)
        report["reestimated"][path] = {"student_accuracy": float(np.mean(predicted == labels)),
                                       "agreement": float(np.mean(predicted == t_pred)),
                                       "student_class_accuracy": per_class(predicted, labels, classes)}
    return report


def table(report):
    pct = lambda v: "" if v is None else f"{100 * v:.1f}"  # noqa: E731
    lines = [f"teacher {pct(report['teacher_accuracy'])}%, student {pct(report['student_accuracy'])}%, "
             f"agreement {pct(report['agreement'])}%", "",
             "| class | teacher (%) | student (%) | agreement (%) | student's most frequent wrong answer |",
             "|---|---|---|---|---|"]
    confusion = np.array(report["student_confusion"])
    for c in range(len(confusion)):
        wrong = confusion[c].copy()
        wrong[c] = 0
        share = wrong.max() / max(confusion[c].sum(), 1)
        lines.append(f"| {c} | {pct(report['teacher_class_accuracy'][c])} | {pct(report['student_class_accuracy'][c])} "
                     f"| {pct(report['class_agreement'][c])} | {int(wrong.argmax())} ({100 * share:.1f}%) |")
    for path, r in report["reestimated"].items():
        lines.append(f"\nBatchNorm statistics re-estimated on {path}: student {pct(r['student_accuracy'])}%, "
                     f"agreement {pct(r['agreement'])}%")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--model_checkpoint", required=True)
    parser.add_argument("--student_model", required=True)
    parser.add_argument("--student_checkpoint", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--reestimate_on", default="", help="comma-separated .npy reconstructions or datasets")
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    try:
        teacher = checkpoint.spec_for(args.model, args.model_checkpoint)
        student = checkpoint.spec_for(args.student_model, args.student_checkpoint)
        teacher_values = checkpoint.load_teacher_values(teacher, "", args.model_checkpoint)
        student_values = checkpoint.load_teacher_values(student, "", args.student_checkpoint)
        data_dir = args.data_dir or default_data_dir()
        data = datasets.get(args.dataset, data_dir)
        report = diagnose(teacher, teacher_values, student, student_values, data,
                          [p for p in args.reestimate_on.split(",") if p], data_dir)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table(report))
    if args.out:
        atomic.save_json(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
