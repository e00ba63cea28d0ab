import gzip
import os
import shutil

import numpy as np
import pytest

from datasets import mnist, mnist_conv
from utils.errors import UserError


def idx_bytes(array, dims):
    header = bytes([0, 0, 8, dims]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_parse_idx_roundtrip():
    images = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(np.uint8)
    np.testing.assert_array_equal(mnist.parse_idx(idx_bytes(images, 3), 3, "x"), images)


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:-1], "IDX body"),
    (lambda b: b"\x00\x00\x09\x03" + b[4:], "bad magic"),
    (lambda b: b[:6], "truncated"),
])
def test_parse_idx_refuses_damaged(mutate, message):
    data = idx_bytes(np.zeros((2, 3, 4)), 3)
    with pytest.raises(UserError, match=message):
        mnist.parse_idx(mutate(data), 3, "x")


@pytest.fixture
def no_public_mirrors(monkeypatch):
    monkeypatch.setattr(mnist, "MIRRORS", ())
    monkeypatch.delenv("DFKD_MNIST_MIRROR", raising=False)
    mnist.load_arrays.cache_clear()
    yield
    mnist.load_arrays.cache_clear()


def copy_mnist(src, dst):
    for filename, _ in mnist.IDX_FILES.values():
        shutil.copy(os.path.join(src, filename), dst)


def test_checksum_mismatch_is_refused(tmp_path, mnist_dir, no_public_mirrors):
    copy_mnist(mnist_dir, tmp_path)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(UserError, match="SHA-256 mismatch"):
        mnist.load_arrays(str(tmp_path))


def test_missing_data_without_network_says_what_to_do(tmp_path, no_public_mirrors, monkeypatch):
    monkeypatch.setenv("DFKD_MNIST_MIRROR", (tmp_path / "nowhere").as_uri())
    with pytest.raises(UserError) as err:
        mnist.load_arrays(str(tmp_path / "data"))
    text = str(err.value)
    assert str(tmp_path / "data") in text and "train-images-idx3-ubyte.gz" in text and "DFKD_DATA_DIR" in text


def test_download_from_mirror_verifies_and_keeps_files(tmp_path, mnist_dir, no_public_mirrors, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    copy_mnist(mnist_dir, mirror)
    monkeypatch.setenv("DFKD_MNIST_MIRROR", mirror.as_uri())
    target = tmp_path / "data"
    arrays = mnist.load_arrays(str(target))
    assert arrays["train_images"].shape == (60000, 28, 28)
    assert sorted(os.listdir(target)) == sorted(f for f, _ in mnist.IDX_FILES.values())


def test_download_with_wrong_hash_is_not_kept(tmp_path, mnist_dir, no_public_mirrors, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    copy_mnist(mnist_dir, mirror)
    (mirror / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"not mnist"))
    monkeypatch.setenv("DFKD_MNIST_MIRROR", mirror.as_uri())
    with pytest.raises(UserError, match="SHA-256 mismatch"):
        mnist.load_arrays(str(tmp_path / "data"))
    assert not (tmp_path / "data" / "train-labels-idx1-ubyte.gz").exists()


def test_keras_npz_is_read_when_idx_files_are_absent(tmp_path, mnist_dir, no_public_mirrors, monkeypatch):
    real = mnist.load_arrays(mnist_dir)
    npz = tmp_path / "mnist.npz"
    np.savez(npz, x_train=real["train_images"], y_train=real["train_labels"],
             x_test=real["test_images"], y_test=real["test_labels"])
    monkeypatch.setattr(mnist, "KERAS_NPZ", ("mnist.npz", mnist.sha256_of(npz.read_bytes())))
    mnist.load_arrays.cache_clear()
    arrays = mnist.load_arrays(str(tmp_path))
    np.testing.assert_array_equal(arrays["test_labels"], real["test_labels"])


def test_real_mnist_shapes_and_range(mnist_dir):
    data = mnist.load(mnist_dir)
    assert data.io_shape == (784, 10)
    assert data.train_x.shape == (60000, 784) and data.test_x.shape == (10000, 784)
    assert data.train_x.dtype == np.float32 and 0 <= data.train_x.min() and data.train_x.max() == 1.0
    assert np.bincount(data.train_y).tolist()[:3] == [5923, 6742, 5958]


def test_resize_to_32_keeps_the_digit():
    image = np.zeros((1, 28, 28), np.uint8)
    image[0, 10:18, 12:16] = 255
    out = mnist_conv.resize_to_32(image).reshape(32, 32)
    assert out.shape == (32, 32) and 0 <= out.min() and out.max() <= 1
    # The bright bar stays in the same relative place (rows 10..18 of 28 -> ~11..21 of 32).
    assert out[16, 15] > 0.9 and out[2, 2] == 0


def test_batches_are_reproducible_and_cover_the_epoch(toy_dataset):
    a = [y for _, y in toy_dataset.train_batches(32, seed=1, epoch=0)]
    b = [y for _, y in toy_dataset.train_batches(32, seed=1, epoch=0)]
    c = [y for _, y in toy_dataset.train_batches(32, seed=1, epoch=1)]
    assert all((x == y).all() for x, y in zip(a, b))
    assert not all((x == y).all() for x, y in zip(a, c))
    assert sorted(np.concatenate(a).tolist()) == sorted(toy_dataset.train_y.tolist())
