import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("DFKD_DATA_DIR", os.path.join(ROOT, "..", "shared", "data", "mnist"))

import tensorflow as tf  # noqa: E402

tf.compat.v1.disable_eager_execution()


@pytest.fixture
def mnist_dir():
    path = os.environ["DFKD_DATA_DIR"]
    if not os.path.exists(os.path.join(path, "train-images-idx3-ubyte.gz")):
        pytest.skip(f"MNIST not found in {path}")
    return path


@pytest.fixture
def toy_dataset():
    """100 784-wide examples of 10 classes that a network can tell apart."""
    from datasets.base import ArrayDataset
    rng = np.random.default_rng(0)
    labels = np.arange(200) % 10
    centers = rng.uniform(0, 1, (10, 784)).astype(np.float32)
    x = np.clip(centers[labels] + 0.1 * rng.standard_normal((200, 784)), 0, 1).astype(np.float32)
    return ArrayDataset("toy", x[:150], labels[:150], x[150:], labels[150:], (784,), 10)


def make_cfg(**overrides):
    """The flags main.py would pass, with test-friendly values."""
    import types
    cfg = dict(run_name="test", summary_folder="summaries/", dataset="mnist", model="hinton1200",
               rng_seed=42, procedure="train", lr=0.001, epochs=1, train_batch_size=64,
               test_batch_size=1000, eval_interval=1000, checkpoint_interval=1000,
               model_meta="", model_checkpoint="", data_dir=os.environ["DFKD_DATA_DIR"],
               num_threads=0, verbose=False)
    cfg.update(overrides)
    return types.SimpleNamespace(**cfg)
