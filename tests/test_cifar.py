"""The CIFAR loaders on generated files of the official binary layout (no CIFAR copy reaches the machines
these tests run on): fewer records than the real files, with the expected counts and MD5 patched to match."""
import hashlib
import io
import os
import tarfile

import numpy as np
import pytest

from datasets import cifar
from utils.errors import UserError


def records(n, label_bytes, seed):
    """n records: label bytes, then the red, green and blue 32x32 planes; also the images as (h, w, c)."""
    rng = np.random.default_rng(seed)
    labels = ((np.arange(n)[:, None] + np.arange(label_bytes)) % 6).astype(np.uint8)   # every class in each file
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    planes = images.transpose(0, 3, 1, 2).reshape(n, -1)
    return np.concatenate([labels, planes], axis=1).tobytes(), labels, images


@pytest.fixture
def small(monkeypatch):
    """CIFAR-10 and -100 with 6 records per training file and 4 per test file."""
    for name, known in list(cifar.KNOWN.items()):
        monkeypatch.setitem(cifar.KNOWN, name, known._replace(records={
            "train": 6 * len(known.files["train"]), "test": 4}))


def write_folder(root, name):
    known = cifar.KNOWN[name]
    folder = os.path.join(root, known.folder)
    os.makedirs(folder, exist_ok=True)
    truth = {}
    for split, files in known.files.items():
        parts = []
        for k, f in enumerate(files):
            data, labels, images = records(6 if split == "train" else 4, known.label_bytes, seed=hash((split, k)) % 1000)
            with open(os.path.join(folder, f), "wb") as out:
                out.write(data)
            parts.append((labels, images))
        truth[split] = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return folder, truth


def archive_of(folder, name, path):
    known = cifar.KNOWN[name]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for f in sorted(os.listdir(folder)):
            tar.add(os.path.join(folder, f), arcname=f"{known.folder}/{f}")
    with open(path, "wb") as out:
        out.write(buffer.getvalue())
    return hashlib.md5(buffer.getvalue()).hexdigest()


@pytest.mark.parametrize("name,label_byte", [("cifar10", 0), ("cifar100", 1), ("cifar100_coarse", 0)])
def test_the_extracted_binary_folder_gives_images_channels_last_and_the_chosen_labels(tmp_path, small, name,
                                                                                        label_byte):
    _, truth = write_folder(str(tmp_path), cifar.NAMES[name][0])
    a = cifar.load_arrays(name, str(tmp_path / "mnist"))   # found in the folder above the data dir
    for split in ("train", "test"):
        labels, images = truth[split]
        np.testing.assert_array_equal(a[f"{split}_images"], images)   # red plane -> channel 0, row by row
        np.testing.assert_array_equal(a[f"{split}_labels"], labels[:, label_byte])
    assert a["train_images"].shape == ((30 if name == "cifar10" else 6), 32, 32, 3)


def test_the_archive_is_read_without_unpacking_after_its_md5_and_refused_when_it_differs(tmp_path, small,
                                                                                           monkeypatch):
    folder, truth = write_folder(str(tmp_path / "made"), "cifar10")
    md5 = archive_of(folder, "cifar10", str(tmp_path / "cifar-10-binary.tar.gz"))
    monkeypatch.setitem(cifar.KNOWN, "cifar10", cifar.KNOWN["cifar10"]._replace(md5=md5))
    a = cifar.load_arrays("cifar10", str(tmp_path))
    np.testing.assert_array_equal(a["test_images"], truth["test"][1])
    assert not os.path.exists(tmp_path / "cifar-10-batches-bin")   # nothing unpacked
    with open(tmp_path / "cifar-10-binary.tar.gz", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    with pytest.raises(UserError, match=r"cifar-10-binary.tar.gz: MD5 does not match CIFAR-10's published"):
        cifar.load_arrays("cifar10", str(tmp_path))


def test_a_missing_dataset_is_downloaded_once_then_read_from_disk(tmp_path, small, monkeypatch):
    folder, truth = write_folder(str(tmp_path / "made"), "cifar100")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    md5 = archive_of(folder, "cifar100", str(mirror / "cifar-100-binary.tar.gz"))
    monkeypatch.setitem(cifar.KNOWN, "cifar100", cifar.KNOWN["cifar100"]._replace(md5=md5))
    data_dir = tmp_path / "data" / "here"
    data_dir.mkdir(parents=True)
    monkeypatch.setenv("DFKD_CIFAR_MIRROR", f"file://{mirror}")
    first = cifar.load_arrays("cifar100", str(data_dir))
    assert (data_dir / "cifar-100-binary.tar.gz").exists()
    monkeypatch.setenv("DFKD_CIFAR_MIRROR", f"file://{tmp_path / 'nowhere'}")   # no second download
    np.testing.assert_array_equal(cifar.load_arrays("cifar100", str(data_dir))["train_labels"],
                                  first["train_labels"])
    np.testing.assert_array_equal(first["train_labels"], truth["train"][0][:, 1])


def test_no_copy_and_no_download_or_a_wrong_file_size_gets_one_line_saying_what_to_do(tmp_path, small,
                                                                                       monkeypatch):
    monkeypatch.setenv("DFKD_CIFAR_MIRROR", f"file://{tmp_path / 'nowhere'}")
    with pytest.raises(UserError, match=r"CIFAR-10 not found in .* and the download from .* failed .* Put "
                                        r"cifar-10-binary.tar.gz \(or its extracted cifar-10-batches-bin/\) there"):
        cifar.load_arrays("cifar10", str(tmp_path))
    folder, _ = write_folder(str(tmp_path), "cifar10")
    with open(os.path.join(folder, "test_batch.bin"), "ab") as f:
        f.write(b"\x00" * 10)
    with pytest.raises(UserError, match=r"the test files hold 12,302 bytes; CIFAR-10's hold 4 records of 3073 bytes"):
        cifar.load_arrays("cifar10", str(tmp_path))


def test_cifar_is_a_dataset_name_with_the_class_count_of_its_labels(tmp_path, small, monkeypatch):
    import datasets
    write_folder(str(tmp_path), "cifar100")
    monkeypatch.setattr(datasets, "_loaded", {})
    data = datasets.get("cifar100_coarse", str(tmp_path))
    assert data.input_shape == (32, 32, 3) and data.num_classes == int(data.train_y.max()) + 1
    assert data.train_x.max() <= 1.0 and data.train_x.dtype == np.float32
