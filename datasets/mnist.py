"""MNIST: find it in the data dir (four IDX .gz files or Keras' mnist.npz), else
download it once, verifying SHA-256 either way. Pixels become float32 in [0, 1].
"""
import functools
import gzip
import hashlib
import os
import urllib.request

import numpy as np

from datasets.base import ArrayDataset
from utils import atomic
from utils.errors import UserError

# Published SHA-256 of LeCun's gzip files (as TensorFlow/Keras list them).
IDX_FILES = {
    "train_images": ("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
}
KERAS_NPZ = ("mnist.npz", "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1")
# Public mirrors of the IDX files; DFKD_MNIST_MIRROR (any URL urllib reads, file:// too) goes first.
MIRRORS = ("https://storage.googleapis.com/cvdf-datasets/mnist/",
           "https://ossci-datasets.s3.amazonaws.com/mnist/")
EXPECTED_COUNTS = {"train": 60000, "test": 10000}


def default_data_dir():
    return os.environ.get("DFKD_DATA_DIR") or os.path.join(os.path.expanduser("~"), ".keras", "datasets")


def sha256_of(data):
    return hashlib.sha256(data).hexdigest()


def parse_idx(data, expected_dims, source):
    """Parses an uncompressed IDX file of unsigned bytes; refuses anything inconsistent."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08 or data[3] != expected_dims:
        raise UserError(f"{source}: not an IDX file of {expected_dims}-d unsigned bytes (bad magic number)")
    header = 4 + 4 * expected_dims
    if len(data) < header:
        raise UserError(f"{source}: IDX header is truncated")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(expected_dims))
    if len(data) != header + int(np.prod(dims)):
        raise UserError(f"{source}: IDX body has {len(data) - header} bytes, header promises {int(np.prod(dims))}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _read_verified(path, expected_sha):
    with open(path, "rb") as f:
        data = f.read()
    if sha256_of(data) != expected_sha:
        raise UserError(f"{path}: SHA-256 mismatch (file is corrupt or truncated); delete it so it can be "
                        f"downloaded again, or replace it with the original file")
    return data


def _download(filename, expected_sha, data_dir):
    mirrors = ([os.environ["DFKD_MNIST_MIRROR"]] if os.environ.get("DFKD_MNIST_MIRROR") else []) + list(MIRRORS)
    errors = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                data = response.read()
        except Exception as e:
            errors.append(f"{url}: {type(e).__name__}")
            continue
        if sha256_of(data) != expected_sha:
            errors.append(f"{url}: SHA-256 mismatch")
            continue
        atomic.save_bytes(os.path.join(data_dir, filename), data)
        return data
    raise UserError(
        f"MNIST not found in {data_dir} and the download failed ({'; '.join(errors)}). "
        f"Put {', '.join(f for f, _ in IDX_FILES.values())} (or Keras' mnist.npz) in that folder, "
        f"or point --data_dir / DFKD_DATA_DIR at a folder that has them")


def _load_idx(data_dir):
    arrays = {}
    for key, (filename, sha) in IDX_FILES.items():
        path = os.path.join(data_dir, filename)
        raw = _read_verified(path, sha) if os.path.exists(path) else _download(filename, sha, data_dir)
        arrays[key] = parse_idx(gzip.decompress(raw), 3 if key.endswith("images") else 1, path)
    return arrays


def _load_keras_npz(path):
    _read_verified(path, KERAS_NPZ[1])
    with np.load(path, allow_pickle=False) as f:
        return {"train_images": f["x_train"], "train_labels": f["y_train"],
                "test_images": f["x_test"], "test_labels": f["y_test"]}


@functools.lru_cache(maxsize=2)
def load_arrays(data_dir):
    """uint8 images [N, 28, 28] and labels [N] for train and test."""
    npz = os.path.join(data_dir, KERAS_NPZ[0])
    has_idx = all(os.path.exists(os.path.join(data_dir, f)) for f, _ in IDX_FILES.values())
    if not has_idx and os.path.exists(npz):
        arrays = _load_keras_npz(npz)
    else:
        try:
            os.makedirs(data_dir, exist_ok=True)
        except OSError as e:
            raise UserError(f"--data_dir: cannot create {data_dir} ({e.strerror})")
        arrays = _load_idx(data_dir)
    for split, count in EXPECTED_COUNTS.items():
        if len(arrays[f"{split}_images"]) != count or len(arrays[f"{split}_labels"]) != count:
            raise UserError(f"{data_dir}: MNIST {split} split has {len(arrays[f'{split}_images'])} images, "
                            f"expected {count}")
    return arrays


def load(data_dir):
    a = load_arrays(data_dir)
    flat = lambda images: images.reshape(len(images), -1).astype(np.float32) / 255.0
    return ArrayDataset("mnist", flat(a["train_images"]), a["train_labels"].astype(np.int64),
                        flat(a["test_images"]), a["test_labels"].astype(np.int64),
                        input_shape=(784,), num_classes=10)
