"""The IDX family: MNIST, Fashion-MNIST, and a user's folder of the four IDX files.

A folder holds train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte
and t10k-labels-idx1-ubyte, each gzip-compressed (.gz) or not. A known dataset is
verified by the SHA-256 of each file's *uncompressed* bytes, so any faithful copy is
accepted (Debian's recompressed .gz files too), and is downloaded once where missing.
"""
import functools
import gzip
import hashlib
import os
import urllib.request
from typing import NamedTuple, Tuple

import numpy as np

from utils import atomic
from utils.errors import UserError

FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


class Known(NamedTuple):
    title: str
    subfolder: str                 # where it lives under the data dir ("" = the data dir itself)
    uncompressed_sha256: dict      # FILES key -> SHA-256 of the uncompressed file
    mirrors: Tuple[str, ...]       # public copies of the .gz files; the environment variable goes first
    mirror_env: str


KNOWN = {
    "mnist": Known("MNIST", "", {
        "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
        ("https://storage.googleapis.com/cvdf-datasets/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        "DFKD_MNIST_MIRROR"),
    "fashion_mnist": Known("Fashion-MNIST", "fashion-mnist", {
        "train_images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train_labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "test_images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "test_labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
        ("https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
         "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
        "DFKD_FASHION_MNIST_MIRROR"),
}


def sha256_of(data):
    return hashlib.sha256(data).hexdigest()


def parse_idx(data, source, dims=(1,)):
    """An uncompressed IDX file of unsigned bytes with one of `dims` dimensions; refuses anything inconsistent."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08 or data[3] not in dims:
        raise UserError(f"{source}: not an IDX file of {' or '.join(map(str, dims))}-d unsigned bytes "
                        "(bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise UserError(f"{source}: IDX header is truncated")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if len(data) != header + int(np.prod(shape)):
        raise UserError(f"{source}: IDX body has {len(data) - header} bytes, header promises {int(np.prod(shape))}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def file_in(folder, key):
    """The path of one of the four files in `folder` (.gz preferred), or None."""
    for path in (os.path.join(folder, FILES[key] + ".gz"), os.path.join(folder, FILES[key])):
        if os.path.exists(path):
            return path
    return None


def read_uncompressed(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
        return gzip.decompress(data) if path.endswith(".gz") else data
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise UserError(f"{path}: unreadable or not gzip data ({type(e).__name__}); replace the file")


def to_arrays(raw, sources):
    """{FILES key: uncompressed bytes} -> {key: uint8 array}, images [N, H, W] or [N, H, W, C]."""
    arrays = {key: parse_idx(data, sources[key], (3, 4) if key.endswith("images") else (1,))
              for key, data in raw.items()}
    for split in ("train", "test"):
        if len(arrays[f"{split}_images"]) != len(arrays[f"{split}_labels"]):
            raise UserError(f"{sources[f'{split}_labels']}: {len(arrays[f'{split}_labels'])} labels for "
                            f"{len(arrays[f'{split}_images'])} images")
    return arrays


def load_folder(folder, flag="--dataset"):
    """A user's folder of the four IDX files (no hashes to check against)."""
    missing = [FILES[k] + "[.gz]" for k in FILES if file_in(folder, k) is None]
    if missing:
        raise UserError(f"{flag}: {folder} lacks {', '.join(missing)} (an IDX dataset folder holds all four)")
    paths = {k: file_in(folder, k) for k in FILES}
    return to_arrays({k: read_uncompressed(p) for k, p in paths.items()}, paths)


def _verified(known, key, data, source):
    if sha256_of(data) != known.uncompressed_sha256[key]:
        raise UserError(f"{source}: SHA-256 of its uncompressed bytes does not match {known.title}'s (the file is "
                        "corrupt, truncated or another dataset); delete it so it can be downloaded again, or replace "
                        "it with a faithful copy")
    return data


def _download(known, key, folder):
    mirrors = ([os.environ[known.mirror_env]] if os.environ.get(known.mirror_env) else []) + list(known.mirrors)
    errors = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + FILES[key] + ".gz"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                data = response.read()
            uncompressed = gzip.decompress(data)
        except Exception as e:  # network, HTTP or gzip errors: try the next mirror
            errors.append(f"{url}: {type(e).__name__}")
            continue
        if sha256_of(uncompressed) != known.uncompressed_sha256[key]:
            errors.append(f"{url}: SHA-256 mismatch")
            continue
        try:   # the folder is made only once there is something to keep in it: a look-up writes nothing
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise UserError(f"--data_dir: cannot create {folder} ({e.strerror})")
        atomic.save_bytes(os.path.join(folder, FILES[key] + ".gz"), data)
        return uncompressed
    raise UserError(
        f"{known.title} not found in {folder} and the download failed ({'; '.join(errors)}). Put "
        f"{', '.join(f + '.gz' for f in FILES.values())} in that folder (compressed or not), or point --data_dir / "
        f"DFKD_DATA_DIR at a folder that has them{' in ' + known.subfolder + '/' if known.subfolder else ''}")


def known_folders(name, data_dir):
    """Where a known dataset is looked for: its place under the data dir, then beside it
    (a data dir pointing at .../mnist finds .../fashion-mnist)."""
    sub = KNOWN[name].subfolder
    if not sub:
        return [data_dir]
    return [os.path.join(data_dir, sub), os.path.join(os.path.dirname(os.path.abspath(data_dir)), sub)]


@functools.lru_cache(maxsize=4)
def load_known(name, data_dir):
    """uint8 arrays of a known dataset, verified; downloads what its folder lacks."""
    known = KNOWN[name]
    folders = known_folders(name, data_dir)
    folder = next((f for f in folders if all(file_in(f, k) for k in FILES)), folders[0])
    raw, sources = {}, {}
    for key in FILES:
        path = file_in(folder, key)
        sources[key] = path or os.path.join(folder, FILES[key] + ".gz")
        raw[key] = _verified(known, key, read_uncompressed(path), path) if path else _download(known, key, folder)
    return to_arrays(raw, sources)
