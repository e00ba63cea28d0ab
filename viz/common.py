"""What every viz script shares: a headless backend, argument errors as one line,
safe artifact loading and atomic PNG writes of a known pixel size."""
import os

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from utils import atomic  # noqa: E402
from utils.errors import UserError, main_guard  # noqa: E402,F401 (main_guard: for the viz scripts)

DPI = 100


def figure(width_px, height_px):
    return plt.figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)


def save(fig, path, announce=True):
    """Writes exactly the figure's pixel size (no tight bbox), atomically; announce: say so on the console."""
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    plt.close(fig)
    if announce:
        print(f"wrote {path}")
    return path


def beside(input_path, suffix):
    """Default output: next to the input, e.g. data.npy -> data_view.png."""
    stem = os.path.splitext(input_path)[0]
    return f"{stem}_{suffix}.png"


def load_reconstruction(path, model=""):
    """(x [N, D], labels [N] or None, image shape (h, w, c)) from a .npy of images (optimize_dataset's,
    with its .labels.npy beside it, or any other float32 [N, D] array), validated. The image shape is
    the model's input where it is an image, else a square grey or colour image of the rows' width."""
    from datasets import optimized
    data = optimized.load(path, flag="--dataset", labels_required=False)
    return data.train_x, data.train_y, image_shape(data.train_x.shape[1], model, path)


def image_shape(width, model, path):
    if model:
        import models
        shape = tuple(models.get(model).input_shape)
        if len(shape) == 3 and int(np.prod(shape)) == width:
            return shape
    for channels in (1, 3):
        side = int(round((width / channels) ** 0.5))
        if side * side * channels == width:
            return side, side, channels
    raise UserError(f"--dataset: {path} rows are {width} wide, not a square grey or colour image; give --model "
                    "(a model whose input is an image of that size) to show it")


def show(ax, row, shape, cmap="gray"):
    """One flat row as an image (colour images as they are, grey ones with cmap)."""
    image = np.clip(np.asarray(row).reshape(shape), 0, 1)
    ax.imshow(image[..., 0] if shape[2] == 1 else image, cmap=cmap if shape[2] == 1 else None, vmin=0, vmax=1)
    ax.set_xticks([]), ax.set_yticks([])


def teacher_predictions(model_name, checkpoint_prefix, x):
    """Softmax of the frozen teacher on x (T = 1)."""
    from models import checkpoint
    from models.graph import frozen_logits
    spec = checkpoint.spec_for(model_name, checkpoint_prefix)
    if spec.input_size != x.shape[1]:
        raise UserError(f"--model={model_name} takes inputs {spec.input_size} wide, the --dataset rows are "
                        f"{x.shape[1]} wide")
    logits = frozen_logits(spec, checkpoint.load_teacher_values(spec, "", checkpoint_prefix), x, 1000, 0)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def check_teacher_flags(args):
    if bool(args.model) != bool(args.model_checkpoint):
        raise UserError("--model and --model_checkpoint go together (the teacher's predictions need both)")


def grouping(args, x, labels):
    """How samples are grouped into classes: (labels, what they are), the labels None when there are none.
    The intended class where the file has labels; else the teacher's prediction, where one is given."""
    if labels is not None:
        return labels, "intended class"
    if args.model:
        return np.argmax(teacher_predictions(args.model, args.model_checkpoint, x), axis=1), "teacher's prediction"
    return None, "no labels"


def real_images(name, data_dir):
    import datasets
    from datasets.mnist import default_data_dir
    data = datasets.get(name, data_dir or default_data_dir(), flag="--real_dataset")
    return data.train_x, data.train_y


