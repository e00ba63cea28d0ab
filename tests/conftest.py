import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# MNIST for the tests: $DFKD_DATA_DIR, else the development layout's ../shared/data/mnist, else where
# dfkd itself keeps a downloaded copy (the quick start puts it there).
_SHARED_MNIST = os.path.join(ROOT, "..", "shared", "data", "mnist")
os.environ.setdefault("DFKD_DATA_DIR", _SHARED_MNIST if os.path.isdir(_SHARED_MNIST)
                      else os.path.join(os.path.expanduser("~"), ".keras", "datasets"))

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
               rng_seed=42, procedure="train", lr=None, lr_schedule="cosine", epochs=1, train_batch_size=64,
               test_batch_size=1000, eval_interval=1000, checkpoint_interval=1000,
               model_meta="", model_checkpoint="", data_dir=os.environ["DFKD_DATA_DIR"],
               num_threads=0, verbose=False, temperature=8.0, max_full_cov_dim=2048,
               optimization_objective="top_layer", stats_file="", samples_per_class=4, optimization_steps=20,
               optimize_batch_size=16, optimize_workers=1, noise_mean=0.15, noise_std=0.1,
               student_model="hinton800", eval_dataset="", noise_samples=200,
               compute_graphwise_stats=False, spectral_fraction=0.1, spectral_reading="sampled_full", loss_form="dfkd", num_shards=1, shard_index=0, preset="", rows="", explicit_flags=[],
               clip_inputs=False, jitter=0, tv_weight=0.0, l2_weight=0.0, batch_stats_weight=0.0,
               augment_shift=0, augment_flip=False, mixup_alpha=0.0, boundary_steps=0, boundary_step_size=0.03, distill_lr_schedule="constant", student_average=0.0, optimizer="adam", weight_decay=0.0, augment="none", flip=False,
               bn_weight=10.0, generator_lr=None, class_weights="", pixel_mean="", pixel_std="", stats_modes=1,
               optimize_batch_order="spread")
    cfg.update(overrides)
    return types.SimpleNamespace(**cfg)


def main_with(monkeypatch, procedure, *args):
    """main.main's exit status on `args`, with `procedure` (an object with run(cfg)) in place of the real one."""
    import main
    import procedures
    monkeypatch.setattr(procedures, "get", lambda name: procedure)
    main.FLAGS(["main.py", *args])
    try:
        return main.main(["main.py"])
    finally:
        main.FLAGS.unparse_flags()


def toy_arrays(input_size, n_train=150, n_test=50, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n_train + n_test) % 10
    centers = rng.uniform(0, 1, (10, input_size)).astype(np.float32)
    x = np.clip(centers[labels] + 0.1 * rng.standard_normal((len(labels), input_size)), 0, 1).astype(np.float32)
    return x, labels


def toy_for(input_size):
    from datasets.base import ArrayDataset
    x, y = toy_arrays(input_size)
    shape = (784,) if input_size == 784 else (32, 32, 1)
    return ArrayDataset(f"toy{input_size}", x[:150], y[:150], x[150:], y[150:], shape, 10)


@pytest.fixture(scope="session")
def teachers(tmp_path_factory):
    """Tiny trained teachers (a few steps on toy data): {model: (cfg, train results)}."""
    from unittest import mock

    import datasets
    from procedures import train
    root = tmp_path_factory.mktemp("teachers")
    out = {}
    for model, width in (("hinton1200", 784), ("lenet", 1024)):
        cfg = make_cfg(summary_folder=str(root), run_name=f"t_{model}", model=model, train_batch_size=32,
                       epochs=2)
        with mock.patch.object(datasets, "get", lambda name, data_dir, flag="--dataset", w=width: toy_for(w)):
            out[model] = (cfg, train.run(cfg))
    return out
