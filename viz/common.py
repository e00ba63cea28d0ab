"""What every viz script shares: a headless backend, argument errors as one line,
safe artifact loading and atomic PNG writes of a known pixel size."""
import os
import sys

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from utils import atomic  # noqa: E402
from utils.errors import UserError  # noqa: E402

DPI = 100


def figure(width_px, height_px):
    return plt.figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)


def save(fig, path):
    """Writes exactly the figure's pixel size (no tight bbox), atomically."""
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    plt.close(fig)
    print(f"wrote {path}")
    return path


def beside(input_path, suffix):
    """Default output: next to the input, e.g. data.npy -> data_view.png."""
    stem = os.path.splitext(input_path)[0]
    return f"{stem}_{suffix}.png"


def load_reconstruction(path):
    """(x [N, D], labels [N], image side) from an optimize_dataset .npy, validated."""
    from datasets import optimized
    data = optimized.load(path, flag="--dataset")
    side = 28 if data.train_x.shape[1] == 784 else 32
    return data.train_x, data.train_y, side


def real_images(name, data_dir):
    import datasets
    from datasets.mnist import default_data_dir
    data = datasets.get(name, data_dir or default_data_dir(), flag="--real_dataset")
    return data.train_x, data.train_y


def main_guard(fn, argv=None):
    """Runs fn(argv); a UserError becomes one line on stderr and exit code 2."""
    try:
        fn(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def images(rows, side):
    return np.asarray(rows).reshape(-1, side, side)
