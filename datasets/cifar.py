"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009) from the official binary versions: no pickle is read.

Found in the data dir, or the folder above it: the extracted folder (cifar-10-batches-bin/,
cifar-100-binary/), whose files must have the official sizes, or the archive (cifar-10-binary.tar.gz,
cifar-100-binary.tar.gz), verified by the MD5 the dataset's page publishes and read without unpacking.
Neither: the archive is downloaded once into the data dir, verified, and kept. Each record is a label
byte (CIFAR-100: coarse, then fine) and 3,072 pixel bytes, the red, green and blue 32x32 planes row by row.
"""
import hashlib
import io
import os
import tarfile
import urllib.request
from typing import NamedTuple

import numpy as np

from datasets import images
from utils import atomic
from utils.errors import UserError

PIXELS = 32 * 32 * 3


class Cifar(NamedTuple):
    title: str
    archive: str
    md5: str
    folder: str                # inside the archive, and when extracted
    files: dict                # split -> member file names
    label_bytes: int           # leading label bytes per record
    records: dict              # split -> records in all of its files


URL = "https://www.cs.toronto.edu/~kriz/"
KNOWN = {
    "cifar10": Cifar("CIFAR-10", "cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530", "cifar-10-batches-bin",
                     {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}, 1,
                     {"train": 50000, "test": 10000}),
    "cifar100": Cifar("CIFAR-100", "cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8", "cifar-100-binary",
                      {"train": ["train.bin"], "test": ["test.bin"]}, 2, {"train": 50000, "test": 10000}),
}
# Dataset names: CIFAR-100 with its 100 fine labels, or its 20 coarse superclasses.
NAMES = {"cifar10": ("cifar10", 0), "cifar100": ("cifar100", 1), "cifar100_coarse": ("cifar100", 0)}


def _places(data_dir):
    return [data_dir, os.path.dirname(os.path.abspath(data_dir))]


def _md5(data):
    return hashlib.md5(data).hexdigest()


def _from_folder(known, folder):
    raw = {}
    for split, names in known.files.items():
        parts = []
        for name in names:
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                raise UserError(f"{folder}: {name} is missing; {known.title}'s binary version has "
                                f"{', '.join(n for ns in known.files.values() for n in ns)}")
            with open(path, "rb") as f:
                parts.append(f.read())
        raw[split] = parts
    return raw


def _from_archive(known, data, source):
    if _md5(data) != known.md5:
        raise UserError(f"{source}: MD5 does not match {known.title}'s published {known.md5} (the file is corrupt, "
                        "truncated or another archive); delete it so it can be downloaded again, or replace it")
    raw = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:   # members read by name, never extracted
        for split, names in known.files.items():
            raw[split] = []
            for name in names:
                try:
                    raw[split].append(tar.extractfile(f"{known.folder}/{name}").read())
                except (KeyError, AttributeError):
                    raise UserError(f"{source}: {known.folder}/{name} is not in the archive")
    return raw


def _download(known, data_dir):
    url = os.environ.get("DFKD_CIFAR_MIRROR", URL).rstrip("/") + "/" + known.archive
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read()
    except Exception as e:  # network or HTTP errors
        raise UserError(f"{known.title} not found in {data_dir} or the folder above it, and the download from {url} "
                        f"failed ({type(e).__name__}). Put {known.archive} (or its extracted {known.folder}/) "
                        f"there, or point --data_dir / DFKD_DATA_DIR at a folder that has it")
    raw = _from_archive(known, data, url)
    atomic.save_bytes(os.path.join(data_dir, known.archive), data)
    return raw


def _records(known, split, parts, source):
    width = known.label_bytes + PIXELS
    data = b"".join(parts)
    if len(data) != known.records[split] * width:
        raise UserError(f"{source}: the {split} files hold {len(data):,} bytes; {known.title}'s hold "
                        f"{known.records[split]:,} records of {width} bytes (is this the binary version?)")
    return np.frombuffer(data, np.uint8).reshape(-1, width)


def load_arrays(name, data_dir):
    """uint8 images [N, 32, 32, 3] and labels per split of cifar10, cifar100 or cifar100_coarse."""
    base, label_byte = NAMES[name]
    known = KNOWN[base]
    folder = next((os.path.join(p, known.folder) for p in _places(data_dir)
                   if os.path.isdir(os.path.join(p, known.folder))), None)
    archive = next((os.path.join(p, known.archive) for p in _places(data_dir)
                    if os.path.isfile(os.path.join(p, known.archive))), None)
    if folder:
        raw, source = _from_folder(known, folder), folder
    elif archive:
        with open(archive, "rb") as f:
            raw, source = _from_archive(known, f.read(), archive), archive
    else:
        raw, source = _download(known, data_dir), os.path.join(data_dir, known.archive)
    arrays = {}
    for split, parts in raw.items():
        records = _records(known, split, parts, source)
        arrays[f"{split}_labels"] = records[:, label_byte].astype(np.int64)
        pixels = records[:, known.label_bytes:].reshape(-1, 3, 32, 32)
        arrays[f"{split}_images"] = np.ascontiguousarray(pixels.transpose(0, 2, 3, 1))   # planes -> (h, w, c)
    return arrays


def load(name, data_dir):
    a = load_arrays(name, data_dir)
    return images.from_arrays(name, a["train_images"], a["train_labels"], a["test_images"], a["test_labels"],
                              KNOWN[NAMES[name][0]].title)
