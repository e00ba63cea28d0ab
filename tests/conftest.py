import os
from typing import NamedTuple

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


# Test-friendly values beside the flags' defaults: tiny runs, one worker, the data the tests point at.
TEST_VALUES = dict(run_name="test", dataset="mnist", model="hinton1200", procedure="train", epochs=1,
                   train_batch_size=64, optimization_objective="top_layer", samples_per_class=4,
                   optimization_steps=20, optimize_batch_size=16, optimize_workers=1, student_model="hinton800",
                   noise_samples=200, preset="")


def make_cfg(**overrides):
    """The config main.py would pass: every flag's default (config/flags.py), test values, then overrides."""
    import types
    from config import flags
    unknown = set(overrides) - set(flags.BY_NAME) - {"explicit_flags"}
    assert not unknown, f"not flags: {sorted(unknown)}"
    # As main.py's: the flags a test names count as named on the command line (presets and objectives'
    # defaults yield to them).
    cfg = {**flags.defaults(), **TEST_VALUES, "data_dir": os.environ["DFKD_DATA_DIR"],
           "explicit_flags": sorted(overrides)}
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


class CommandResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def main_in_process(capsys, *args):
    """What `python main.py ARGS` returns and prints, run in this process: the same parsing, checks and
    error lines, without a TensorFlow start-up per call (test_cli keeps the real command's own tests)."""
    import main
    capsys.readouterr()
    try:
        main.parse_flags(["main.py", *args])
        code = main.main(["main.py"])
    except SystemExit as e:
        code = e.code
    finally:
        main.FLAGS.unparse_flags()
    captured = capsys.readouterr()
    return CommandResult(code, captured.out, captured.err)


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
