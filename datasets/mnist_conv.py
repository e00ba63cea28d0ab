"""MNIST resized to 32x32 (as LeNet-5 expects), flattened to 1024 floats in [0, 1]."""
import functools

import numpy as np
from skimage.transform import resize

from datasets import mnist
from datasets.base import ArrayDataset


def resize_to_32(images_uint8):
    """[N, 28, 28] uint8 -> [N, 1024] float32, bilinear, in one vectorized call."""
    images = images_uint8.astype(np.float32) / 255.0
    # Resizing a 3-d stack with an unchanged first axis interpolates each image on its own.
    out = resize(images, (len(images), 32, 32), order=1, mode="edge", anti_aliasing=False,
                 preserve_range=True)
    return np.clip(out, 0.0, 1.0).astype(np.float32).reshape(len(images), 1024)


@functools.lru_cache(maxsize=2)
def _resized(data_dir):
    a = mnist.load_arrays(data_dir)
    return resize_to_32(a["train_images"]), resize_to_32(a["test_images"])


def load(data_dir):
    a = mnist.load_arrays(data_dir)
    train_x, test_x = _resized(data_dir)
    return ArrayDataset("mnist_conv", train_x, a["train_labels"].astype(np.int64),
                        test_x, a["test_labels"].astype(np.int64),
                        input_shape=(32, 32, 1), num_classes=10)
