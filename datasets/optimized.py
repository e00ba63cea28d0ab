"""A reconstructed dataset written by optimize_dataset: X.npy [N, input_size] float32,
with the intended class of each row in X.labels.npy beside it (viewers also take a
.npy without labels: labels_required=False)."""
import glob
import os
import re

import numpy as np

from datasets.base import ArrayDataset
from datasets.safe_npy import load_npy
from utils.errors import UserError


def labels_path(data_path):
    return data_path[:-len(".npy")] + ".labels.npy"


def validate_inputs(x, path, flag):
    if x.ndim != 2:
        raise UserError(f"{flag}: {path} has shape {x.shape}, expected 2-d [samples, input_size]")
    if x.shape[0] == 0:
        raise UserError(f"{flag}: {path} has zero rows")
    if x.dtype != np.float32:
        raise UserError(f"{flag}: {path} has dtype {x.dtype}, expected float32")
    if not np.isfinite(x).all():
        raise UserError(f"{flag}: {path} contains NaN or Inf")


def shard_files(pattern, flag):
    """The files a glob names, checked to be every piece 0..n-1 of one sharded run, in order."""
    files = glob.glob(pattern)
    if not files:
        raise UserError(f"{flag}: no file matches {pattern}")
    found = {}
    for path in files:
        m = re.search(r"\.shard-(\d+)-of-(\d+)\.npy$", path)
        if not m or path.endswith(".labels.npy"):
            continue
        found[(int(m.group(1)), int(m.group(2)))] = path
    counts = {n for _, n in found}
    if len(counts) != 1 or sorted(i for i, _ in found) != list(range(counts.pop() if counts else 0)):
        raise UserError(f"{flag}: {pattern} must match every shard of one run (*.shard-<i>-of-<n>.npy for "
                        f"i = 0..n-1), found {sorted(found) or 'none'}")
    return [found[key] for key in sorted(found)]


def load(path, flag="--dataset", labels_required=True):
    """A reconstructed .npy, or a glob over the shards of one (joined in shard order). With
    labels_required=False a file without its .labels.npy loads with train_y None."""
    if any(c in path for c in "*?["):
        pieces = [_load_one(p, flag, labels_required) for p in shard_files(path, flag)]
        if len({x.shape[1] for x, _ in pieces}) != 1:
            raise UserError(f"{flag}: the shards matched by {path} have different widths")
        x = np.concatenate([x for x, _ in pieces])
        y = None if any(y is None for _, y in pieces) else np.concatenate([y for _, y in pieces])
    else:
        x, y = _load_one(path, flag, labels_required)
    # The rows' image shape is the teacher's to know: procedures check the width against the model.
    return ArrayDataset(path, x, y, None, None, input_shape=(x.shape[1],),
                        num_classes=None if y is None else int(y.max()) + 1)


def _load_one(path, flag, labels_required=True):
    x = load_npy(path, flag)
    validate_inputs(x, path, flag)
    if not labels_required and not os.path.exists(labels_path(path)):
        return x, None
    y = load_npy(labels_path(path), flag)
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
        raise UserError(f"{flag}: {labels_path(path)} must hold {len(x)} integer labels, found {y.dtype} {y.shape}")
    if y.min() < 0:
        raise UserError(f"{flag}: {labels_path(path)} has negative labels")
    return x, y.astype(np.int64)
