"""Dataset lookup: `get(name, data_dir)` returns an ArrayDataset, the loader chosen by the
form of `name`:

  mnist, fashion_mnist            built-in IDX datasets, found in the data dir or downloaded once, verified
  mnist_conv, fashion_mnist_conv  the same resized to 32x32 (for LeNet-style models)
  cifar10, cifar100               the official binary versions, found in the data dir or downloaded once,
                                  verified by the archive's MD5; cifar100_coarse: its 20 superclasses
  DIR                             a folder of the four IDX files, or of images (DIR/train/<class>/*.png,
                                  DIR/test/<class>/*.png)
  FILE.npz                        Keras layout: x_train, y_train, x_test, y_test
  FILE.npy                        a reconstruction from optimize_dataset (or a glob over its shards)
  any of the first four + @HxW    resized to H x W, e.g. mydata.npz@32x32
"""
import os
import re

from utils.errors import UserError

NAMES = ("mnist", "mnist_conv", "fashion_mnist", "fashion_mnist_conv", "cifar10", "cifar100",
         "cifar100_coarse")   # the built-in real datasets
CONV = {"mnist_conv": "mnist", "fashion_mnist_conv": "fashion_mnist"}
# Natural images, which a left-right mirror leaves natural: not digits, and not Fashion-MNIST, whose shoes
# all face the same way. The methods whose authors mirror their batches do so on these alone.
MIRRORED = ("cifar10", "cifar100", "cifar100_coarse")


def natural_images(name):
    """Whether --dataset (a name, maybe @HxW) is one of the built-in natural-image datasets."""
    return name.split("@")[0] in MIRRORED


def is_real(name):
    """A dataset with real examples and a test split (not a reconstruction, noise or a generator)."""
    return name not in ("", "noise") and not name.endswith(".npy")


def channels(data):
    """Channels of a dataset of images ([N, H, W, C] inputs), or None for flat inputs."""
    return data.input_shape[-1] if len(data.input_shape) == 3 else None


def get(name, data_dir, flag="--dataset"):
    if name.endswith(".npy"):
        from datasets import optimized
        return optimized.load(name, flag)
    base, size = name, None
    m = re.fullmatch(r"(.+)@(\d+)x(\d+)", name)
    if m:
        base, size = m.group(1), (int(m.group(2)), int(m.group(3)))
        if min(size) < 1:
            raise UserError(f"{flag}: {name!r}: a resize needs a positive height and width")
    if base in CONV:
        base, size = CONV[base], size or (32, 32)
    key = (base, os.path.abspath(data_dir) if data_dir else data_dir, size)
    if key not in _loaded:       # one load per process, whichever flag asks (--dataset, --eval_dataset)
        _loaded[key] = _load(*key, flag)
    return _loaded[key]


_loaded = {}


def _load(base, data_dir, size, flag):
    from datasets import images
    data = _load_base(base, data_dir, flag)
    if size is None:
        return data
    if len(data.input_shape) != 3:
        raise UserError(f"{flag}: {base} is not an image dataset; it cannot be resized")
    return images.resized(data, *size)


def _load_base(base, data_dir, flag):
    if base in ("mnist", "fashion_mnist"):
        from datasets import mnist
        return mnist.load(base, data_dir)
    if base in ("cifar10", "cifar100", "cifar100_coarse"):
        from datasets import cifar
        return cifar.load(base, data_dir)
    if base.endswith(".npz"):
        from datasets import npz
        return npz.load(base, flag)
    if os.path.isdir(base):
        from datasets import idx, image_folder, images
        if image_folder.is_image_folder(base):
            return image_folder.load(base, flag)
        a = idx.load_folder(base, flag)
        return images.from_arrays(base, a["train_images"], a["train_labels"], a["test_images"], a["test_labels"],
                                  f"{flag}: {base}")
    raise UserError(f"{flag}: unknown dataset {base!r}; choose {', '.join(NAMES)}, a folder (IDX files or "
                    "train/ and test/ image folders), a Keras-layout .npz or a reconstructed .npy "
                    "(append @HxW to resize)")
