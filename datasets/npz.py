"""A user's dataset as one Keras-layout .npz: x_train, y_train, x_test, y_test (read without pickle)."""
from datasets import images
from datasets.safe_npy import load_npz
from utils.errors import UserError

KEYS = ("x_train", "y_train", "x_test", "y_test")


def load(path, flag="--dataset"):
    arrays = load_npz(path, flag)
    missing = [k for k in KEYS if k not in arrays]
    if missing:
        raise UserError(f"{flag}: {path} lacks {', '.join(missing)} (a Keras-layout .npz holds {', '.join(KEYS)})")
    return images.from_arrays(path, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                              f"{flag}: {path}")
