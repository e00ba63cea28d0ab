"""Every dataset loader on tiny generated data, the verification of the known datasets,
and the real MNIST."""
import gzip
import os
import shutil

import numpy as np
import pytest

import datasets
from datasets import idx, images, mnist
from utils.errors import UserError


def idx_bytes(array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_parse_idx_roundtrip_3d_and_4d():
    for shape in ((2, 3, 4), (2, 3, 4, 3)):
        images_ = np.arange(np.prod(shape)).reshape(shape).astype(np.uint8)
        np.testing.assert_array_equal(idx.parse_idx(idx_bytes(images_), "x", (3, 4)), images_)


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:-1], "IDX body"),
    (lambda b: b"\x00\x00\x09\x03" + b[4:], "bad magic"),
    (lambda b: b[:6], "truncated"),
])
def test_parse_idx_refuses_damaged(mutate, message):
    data = idx_bytes(np.zeros((2, 3, 4)))
    with pytest.raises(UserError, match=message):
        idx.parse_idx(mutate(data), "x", (3,))


def write_idx_folder(folder, train, train_y, test, test_y, compress=True):
    os.makedirs(folder, exist_ok=True)
    for key, array in (("train_images", train), ("train_labels", train_y), ("test_images", test),
                       ("test_labels", test_y)):
        data = idx_bytes(np.asarray(array))
        name = idx.FILES[key] + (".gz" if compress else "")
        with open(os.path.join(folder, name), "wb") as f:
            f.write(gzip.compress(data) if compress else data)
    return str(folder)


def tiny_images(n, h=6, w=5, c=None, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n, h, w) if c is None else (n, h, w, c)
    return rng.integers(0, 256, shape).astype(np.uint8), np.arange(n) % classes


@pytest.mark.parametrize("channels, compress", [(None, True), (3, False)])
def test_a_users_idx_folder_gives_shape_and_classes_from_the_data(tmp_path, channels, compress):
    x, y = tiny_images(12, c=channels)
    xt, yt = tiny_images(6, c=channels, seed=1)
    folder = write_idx_folder(tmp_path / "mine", x, y, xt, yt, compress)
    data = datasets.get(folder, None)
    assert data.input_shape == (6, 5, channels or 1) and data.num_classes == 3
    assert data.train_x.shape == (12, 30 * (channels or 1)) and data.train_x.dtype == np.float32
    np.testing.assert_allclose(data.train_x[4], x[4].reshape(-1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(data.test_y, yt)


def test_keras_layout_npz_grey_and_rgb_and_resize(tmp_path):
    x, y = tiny_images(9, h=8, w=8, c=3)
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x[:3], y_test=y[:3])
    data = datasets.get(str(path), None)
    assert data.input_shape == (8, 8, 3) and data.num_classes == 3
    np.testing.assert_allclose(data.train_x.reshape(9, 8, 8, 3), x / 255.0, rtol=1e-6)
    small = datasets.get(f"{path}@4x4", None)
    assert small.input_shape == (4, 4, 3) and small.train_x.shape == (9, 48)
    np.savez(tmp_path / "bad.npz", x_train=x, y_train=y)
    with pytest.raises(UserError, match="lacks x_test, y_test"):
        datasets.get(str(tmp_path / "bad.npz"), None)


def write_png_folder(root, images_by_split, classes):
    import cv2
    for split, (x, y) in images_by_split.items():
        for i, (image, label) in enumerate(zip(x, y)):
            folder = os.path.join(root, split, classes[label])
            os.makedirs(folder, exist_ok=True)
            # cv2 writes BGR: flip so that the file holds the RGB image we mean
            cv2.imwrite(os.path.join(folder, f"{i}.png"), image[..., ::-1] if image.ndim == 3 else image)
    return str(root)


@pytest.mark.parametrize("channels", [None, 3])
def test_png_folder_reads_grey_and_rgb_images_with_classes_in_sorted_order(tmp_path, channels):
    x, y = tiny_images(9, c=channels)
    xt, yt = tiny_images(3, c=channels, seed=2)
    root = write_png_folder(tmp_path / "pngs", {"train": (x, y), "test": (xt, yt)}, ["cat", "dog", "emu"])
    data = datasets.get(root, None)
    assert data.num_classes == 3 and data.input_shape == (6, 5, channels or 1)
    order = np.lexsort((np.arange(9), y))      # read class by class, files in name order
    np.testing.assert_allclose(data.train_x, x[order].reshape(9, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(data.train_y, y[order])


def test_png_folder_errors_name_the_file_and_the_problem(tmp_path):
    x, y = tiny_images(6)
    root = write_png_folder(tmp_path / "a", {"train": (x, y), "test": (x[:2], y[:2])}, ["0", "1", "2"])
    with pytest.raises(UserError, match=r"test has classes \['0', '1'\], but train has \['0', '1', '2'\]"):
        datasets.get(root, None)
    root = write_png_folder(tmp_path / "b", {"train": (x, y), "test": (x, y)}, ["0", "1", "2"])
    (tmp_path / "b" / "train" / "1" / "9.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match=r"9.png is not a readable image"):
        datasets.get(root, None)
    big, _ = tiny_images(1, h=7)
    root = write_png_folder(tmp_path / "c", {"train": (x, y), "test": (x, y)}, ["0", "1", "2"])
    import cv2
    cv2.imwrite(str(tmp_path / "c" / "train" / "2" / "99.png"), big[0])
    with pytest.raises(UserError, match=r"99.png is \(7, 5\), but .* is \(6, 5\); all images need one size"):
        datasets.get(root, None)


def test_a_dataset_whose_classes_or_width_do_not_fit_the_model_is_refused(tmp_path):
    import models
    from config import checks
    x, y = tiny_images(9, h=28, w=28)
    path = tmp_path / "three.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y)
    with pytest.raises(UserError, match="has 3 classes, but --model=hinton1200 has 10 outputs"):
        checks.dataset_fits(models.get("hinton1200"), datasets.get(str(path), None))
    with pytest.raises(UserError, match="inputs 784 wide, but --model=lenet expects 1024.*; use --dataset=.*three.npz@32x32"):
        checks.dataset_fits(models.get("lenet"), datasets.get(str(path), None))


# --- the known datasets: found, verified by their uncompressed bytes, downloaded once ---

@pytest.fixture
def no_public_mirrors(monkeypatch):
    for name, known in idx.KNOWN.items():
        monkeypatch.setitem(idx.KNOWN, name, known._replace(mirrors=()))
        monkeypatch.delenv(known.mirror_env, raising=False)
    idx.load_known.cache_clear()
    mnist.load_arrays.cache_clear()
    yield
    idx.load_known.cache_clear()
    mnist.load_arrays.cache_clear()


def copy_mnist(src, dst):
    for name in idx.FILES.values():
        shutil.copy(os.path.join(src, name + ".gz"), dst)


def test_a_recompressed_copy_is_accepted_and_a_changed_byte_refused(tmp_path, mnist_dir, no_public_mirrors):
    for name in idx.FILES.values():
        raw = gzip.decompress((open(os.path.join(mnist_dir, name + ".gz"), "rb").read()))
        (tmp_path / (name + ".gz")).write_bytes(gzip.compress(raw, compresslevel=1, mtime=123))
    original = open(os.path.join(mnist_dir, idx.FILES["test_labels"] + ".gz"), "rb").read()
    assert (tmp_path / (idx.FILES["test_labels"] + ".gz")).read_bytes() != original   # other .gz bytes
    assert mnist.load_arrays("mnist", str(tmp_path))["test_labels"].shape == (10000,)
    path = tmp_path / (idx.FILES["test_labels"] + ".gz")
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[100] ^= 1
    path.write_bytes(gzip.compress(bytes(raw)))
    mnist.load_arrays.cache_clear()
    idx.load_known.cache_clear()
    with pytest.raises(UserError, match="SHA-256 of its uncompressed bytes does not match MNIST's"):
        mnist.load_arrays("mnist", str(tmp_path))


def test_missing_data_without_network_says_what_to_do(tmp_path, no_public_mirrors, monkeypatch):
    monkeypatch.setenv("DFKD_MNIST_MIRROR", (tmp_path / "nowhere").as_uri())
    with pytest.raises(UserError) as err:
        mnist.load_arrays("mnist", str(tmp_path / "data"))
    text = str(err.value)
    assert str(tmp_path / "data") in text and "train-images-idx3-ubyte.gz" in text and "DFKD_DATA_DIR" in text
    assert not (tmp_path / "data").exists()   # a look-up writes nothing


def test_download_from_mirror_verifies_and_keeps_files(tmp_path, mnist_dir, no_public_mirrors, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    copy_mnist(mnist_dir, mirror)
    monkeypatch.setenv("DFKD_MNIST_MIRROR", mirror.as_uri())
    target = tmp_path / "data"
    arrays = mnist.load_arrays("mnist", str(target))
    assert arrays["train_images"].shape == (60000, 28, 28)
    assert sorted(os.listdir(target)) == sorted(f + ".gz" for f in idx.FILES.values())


def test_download_with_wrong_hash_is_not_kept(tmp_path, mnist_dir, no_public_mirrors, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    copy_mnist(mnist_dir, mirror)
    (mirror / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"not mnist"))
    monkeypatch.setenv("DFKD_MNIST_MIRROR", mirror.as_uri())
    with pytest.raises(UserError, match="SHA-256 mismatch"):
        mnist.load_arrays("mnist", str(tmp_path / "data"))
    assert not (tmp_path / "data" / "train-labels-idx1-ubyte.gz").exists()


def test_keras_npz_is_read_when_idx_files_are_absent(tmp_path, mnist_dir, no_public_mirrors, monkeypatch):
    real = mnist.load_arrays("mnist", mnist_dir)
    npz = tmp_path / "mnist.npz"
    np.savez(npz, x_train=real["train_images"], y_train=real["train_labels"],
             x_test=real["test_images"], y_test=real["test_labels"])
    monkeypatch.setattr(mnist, "KERAS_NPZ", ("mnist.npz", idx.sha256_of(npz.read_bytes())))
    mnist.load_arrays.cache_clear()
    arrays = mnist.load_arrays("mnist", str(tmp_path))
    np.testing.assert_array_equal(arrays["test_labels"], real["test_labels"])


def test_real_mnist_shapes_and_range(mnist_dir):
    data = datasets.get("mnist", mnist_dir)
    assert data.io_shape == (784, 10) and data.input_shape == (28, 28, 1)
    assert data.train_x.shape == (60000, 784) and data.test_x.shape == (10000, 784)
    assert data.train_x.dtype == np.float32 and 0 <= data.train_x.min() and data.train_x.max() == 1.0
    assert np.bincount(data.train_y).tolist()[:3] == [5923, 6742, 5958]


@pytest.mark.slow
def test_fashion_mnist_is_found_beside_the_mnist_folder(mnist_dir):
    if not os.path.isdir(os.path.join(os.path.dirname(os.path.abspath(mnist_dir)), "fashion-mnist")):
        pytest.skip("no fashion-mnist folder beside the MNIST one")
    data = datasets.get("fashion_mnist_conv", mnist_dir)
    assert data.io_shape == (1024, 10) and data.input_shape == (32, 32, 1)
    assert np.bincount(data.test_y).tolist() == [1000] * 10


def test_resize_keeps_the_digit():
    image = np.zeros((1, 28, 28), np.uint8)
    image[0, 10:18, 12:16] = 255
    data = images.from_arrays("x", image, [0], image, [0], "x")
    out = images.resized(data, 32, 32).train_x.reshape(32, 32)
    assert 0 <= out.min() and out.max() <= 1
    # The bright bar stays in the same relative place (rows 10..18 of 28 -> ~11..21 of 32).
    assert out[16, 15] > 0.9 and out[2, 2] == 0


def test_batches_are_reproducible_and_cover_the_epoch(toy_dataset):
    a = [y for _, y in toy_dataset.train_batches(32, seed=1, epoch=0)]
    b = [y for _, y in toy_dataset.train_batches(32, seed=1, epoch=0)]
    c = [y for _, y in toy_dataset.train_batches(32, seed=1, epoch=1)]
    assert all((x == y).all() for x, y in zip(a, b))
    assert not all((x == y).all() for x, y in zip(a, c))
    assert sorted(np.concatenate(a).tolist()) == sorted(toy_dataset.train_y.tolist())
