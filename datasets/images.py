"""Image arrays -> an ArrayDataset: flat float32 rows in [0, 1], shape and class count read
from the data; and resizing (MNIST at 32x32 for LeNet-style models, or any HxW)."""
import numpy as np
from skimage.transform import resize

from datasets.base import ArrayDataset
from utils.errors import UserError


def as_images(x, source):
    """[N, H, W] or [N, H, W, C] -> [N, H, W, C]."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[0] == 0 or min(x.shape[1:]) == 0:
        raise UserError(f"{source}: images must be [N, height, width] or [N, height, width, channels], "
                        f"found shape {x.shape}")
    return x


def to_unit_float(x, source):
    """uint8 -> /255; floats are taken as already in [0, 1]."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise UserError(f"{source}: images contain NaN or Inf")
        return x.astype(np.float32)
    raise UserError(f"{source}: images are {x.dtype}; expected uint8 (0..255) or floats in [0, 1]")


def labels_of(y, count, source, num_classes=None):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (count,) or y.dtype.kind not in "iu":
        raise UserError(f"{source}: labels must be {count} integers, found {y.dtype} {y.shape}")
    if count and (y.min() < 0 or (num_classes is not None and y.max() >= num_classes)):
        raise UserError(f"{source}: labels must be in 0..{(num_classes or 1) - 1}, found {y.min()}..{y.max()}")
    return y.astype(np.int64)


def from_arrays(name, train_images, train_labels, test_images, test_labels, source):
    """A dataset from image arrays; classes 0..C-1 with C from the training labels, every one present."""
    train, test = as_images(train_images, f"{source} (train)"), as_images(test_images, f"{source} (test)")
    if train.shape[1:] != test.shape[1:]:
        raise UserError(f"{source}: train images are {train.shape[1:]} but test images are {test.shape[1:]}")
    train_y = labels_of(train_labels, len(train), f"{source} (train)")
    num_classes = int(train_y.max()) + 1
    empty = np.flatnonzero(np.bincount(train_y, minlength=num_classes) == 0)
    if len(empty):
        raise UserError(f"{source}: classes {empty.tolist()} have no training examples "
                        f"(classes are 0..{num_classes - 1})")
    test_y = labels_of(test_labels, len(test), f"{source} (test)", num_classes)
    flat = lambda x: to_unit_float(x, source).reshape(len(x), -1)
    return ArrayDataset(name, flat(train), train_y, flat(test), test_y, input_shape=train.shape[1:],
                        num_classes=num_classes)


def resized(data, height, width):
    """The same dataset with every image resized to height x width (bilinear, per channel)."""
    h, w, c = data.input_shape

    def one(x):
        images = x.reshape(len(x), h, w, c)
        # An unchanged first and last axis interpolates each image and channel on its own.
        out = resize(images, (len(images), height, width, c), order=1, mode="edge", anti_aliasing=False,
                     preserve_range=True)
        return np.clip(out, 0.0, 1.0).astype(np.float32).reshape(len(x), -1)
    return ArrayDataset(f"{data.name}@{height}x{width}", one(data.train_x), data.train_y, one(data.test_x),
                        data.test_y, input_shape=(height, width, c), num_classes=data.num_classes)
