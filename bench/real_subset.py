"""A random draw of a known dataset's training images, as a Keras-layout .npz with the whole test split:
the real-data reference of a data-free row at the same sample count (distill --dataset=<it>.npz@HxW).

    python -m bench.real_subset --dataset=fashion_mnist --count=5000 --out=f5k.npz [--seed=0]

The draw is numpy's default_rng(seed).permutation(60000)[:count], sorted; uint8 images as stored."""
import argparse
import os
import sys

import numpy as np

from datasets import mnist
from utils import atomic
from utils.errors import UserError, main_guard


def subset(arrays, count, seed):
    """{x_train, y_train, x_test, y_test} with `count` training examples drawn without replacement."""
    total = len(arrays["train_labels"])
    if not 0 < count <= total:
        raise UserError(f"--count: {count} is not in 1..{total}")
    keep = np.sort(np.random.default_rng(seed).permutation(total)[:count])
    return dict(x_train=arrays["train_images"][keep], y_train=arrays["train_labels"][keep],
                x_test=arrays["test_images"], y_test=arrays["test_labels"])


def run(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, choices=("mnist", "fashion_mnist"))
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data_dir", default=None, help="default: $DFKD_DATA_DIR, else ~/.keras/datasets")
    args = parser.parse_args(argv)
    if args.count <= 0:
        raise UserError(f"--count must be > 0, got {args.count}")
    arrays = mnist.load_arrays(args.dataset, args.data_dir or mnist.default_data_dir())
    picked = subset(arrays, args.count, args.seed)
    atomic.save_npz(args.out, **picked)
    print(f"wrote {os.path.abspath(args.out)}: {args.count} training images, per class "
          f"{np.bincount(picked['y_train']).tolist()}")


if __name__ == "__main__":
    sys.exit(main_guard(run))
