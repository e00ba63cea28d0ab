"""MNIST and Fashion-MNIST, found in the data dir (the four IDX files, or for MNIST also
Keras' mnist.npz) or downloaded once, verified either way (datasets/idx.py)."""
import functools
import os

import numpy as np

from datasets import idx, images
from utils.errors import UserError

# Keras' single-file copy of MNIST, verified by its published SHA-256.
KERAS_NPZ = ("mnist.npz", "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1")
EXPECTED_COUNTS = {"train": 60000, "test": 10000}


def default_data_dir():
    return os.environ.get("DFKD_DATA_DIR") or os.path.join(os.path.expanduser("~"), ".keras", "datasets")


def _keras_npz(path):
    with open(path, "rb") as f:
        if idx.sha256_of(f.read()) != KERAS_NPZ[1]:
            raise UserError(f"{path}: SHA-256 mismatch (file is corrupt or truncated); delete it or replace it "
                            "with the original file")
    with np.load(path, allow_pickle=False) as f:
        return {"train_images": f["x_train"], "train_labels": f["y_train"],
                "test_images": f["x_test"], "test_labels": f["y_test"]}


@functools.lru_cache(maxsize=4)
def load_arrays(name, data_dir):
    """uint8 images and labels of a known dataset ("mnist", "fashion_mnist"), verified."""
    npz = os.path.join(data_dir, KERAS_NPZ[0])
    has_idx = any(all(idx.file_in(f, k) for k in idx.FILES) for f in idx.known_folders(name, data_dir))
    arrays = _keras_npz(npz) if name == "mnist" and not has_idx and os.path.exists(npz) \
        else idx.load_known(name, data_dir)
    for split, count in EXPECTED_COUNTS.items():
        if len(arrays[f"{split}_images"]) != count:
            raise UserError(f"{data_dir}: {name} {split} split has {len(arrays[f'{split}_images'])} images, "
                            f"expected {count}")
    return arrays


def load(name, data_dir):
    a = load_arrays(name, data_dir)
    return images.from_arrays(name, a["train_images"], a["train_labels"], a["test_images"], a["test_labels"],
                              idx.KNOWN[name].title)
