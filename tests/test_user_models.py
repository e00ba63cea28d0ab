"""A user's model file and a user's dataset through every procedure of the real CLI, and the
one-line refusals of model files that cannot be built as declared."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import models
from tests.conftest import ROOT, main_in_process
from utils.errors import UserError

EXAMPLES = os.path.join(ROOT, "examples", "models")


def cli(*args):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), *args], capture_output=True, text=True,
                            cwd=ROOT, timeout=600)
    return result


def ok(*args):
    result = cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory):
    """A 28x28 grey dataset of 10 classes a network can tell apart, as a Keras-layout .npz."""
    rng = np.random.default_rng(0)
    centers = rng.integers(0, 256, (10, 28, 28))
    labels = np.arange(120) % 10
    x = np.clip(centers[labels] + rng.normal(0, 20, (120, 28, 28)), 0, 255).astype(np.uint8)
    path = str(tmp_path_factory.mktemp("data") / "tiny.npz")
    np.savez(path, x_train=x[:100], y_train=labels[:100], x_test=x[100:], y_test=labels[100:])
    return path


@pytest.mark.slow
def test_example_user_pair_runs_train_stats_every_objective_and_distill(tmp_path, tiny_npz, capsys):
    teacher = str(tmp_path / "my_teacher.py")
    shutil.copy(os.path.join(EXAMPLES, "mlp3.py"), teacher)
    student = os.path.join(EXAMPLES, "small_cnn.py")
    common = [f"--summary_folder={tmp_path}", "--run_name=mine", f"--dataset={tiny_npz}"]
    out = ok("--procedure=train", f"--model={teacher}", "--epochs=2", "--train_batch_size=20", *common)
    ckpt = os.path.join(tmp_path, "mine", "train", "checkpoint", "mlp3-10")
    assert ckpt in out
    flags = [f"--model={teacher}", f"--model_checkpoint={ckpt}"]
    ok("--procedure=compute_stats", "--compute_graphwise_stats", *flags, *common)
    for objective in ("top_layer", "all_layers", "spectral_all_layers", "spectral_layer_pairs"):
        made = main_in_process(capsys, "--procedure=optimize_dataset", f"--optimization_objective={objective}",
                               "--samples_per_class=2", "--optimization_steps=5", *flags, *common)
        assert made.returncode == 0, made.stderr[-3000:]
    npy = os.path.join(tmp_path, "mine", "data", "data_optimized_spectral_layer_pairs_mine.npy")
    assert np.load(npy).shape == (20, 784)
    out = ok("--procedure=distill", f"--student_model={student}", "--epochs=1", f"--eval_dataset={tiny_npz}",
             *flags, f"--summary_folder={tmp_path}", "--run_name=mine", f"--dataset={npy}")
    log = json.loads(open(os.path.join(tmp_path, "mine", "log.json")).read())
    files = log["procedures"][f"distill/{os.path.basename(npy)[:-4]}"]["model_files"]
    assert files["student_model"]["path"] == student and len(files["student_model"]["sha256"]) == 64
    assert os.path.exists(os.path.join(tmp_path, "mine", "distill", os.path.basename(npy)[:-4], "checkpoint",
                                       "small_cnn.spec.json"))

    # The teacher file edited after training: refused, not silently rebuilt another way.
    with open(teacher) as f:
        text = f.read()
    with open(teacher, "w") as f:
        f.write(text.replace('Dense("fc3", 256, dropout=0.3)', 'Dense("fc3", 256, dropout=0.1)'))
    result = cli("--procedure=compute_stats", *flags, *common)
    assert result.returncode == 2 and "mlp3 is not defined as it was when" in result.stderr


def write_model(tmp_path, body, name="m.py"):
    path = tmp_path / name
    path.write_text("from models.spec import *\n" + body)
    return str(path)


@pytest.mark.parametrize("body, message", [
    ("X = 1\n", "declares no SPEC"),
    ("SPEC = 3\n", "SPEC is a int, expected models.spec.ModelSpec"),
    ("class Lstm(tuple): pass\nSPEC = ModelSpec('m', (784,), (Lstm(), Dense('logits', 10)))\n",
     "layer 0 is Lstm, not a supported layer"),
    ("SPEC = ModelSpec('m', (784,), (Dense('a', 5), Dense('a', 10)))\n", "two layers are named 'a'"),
    ("SPEC = ModelSpec('m', (784,), (Conv('c', 4, 3), Dense('logits', 10)))\n", "needs an image input"),
    ("SPEC = ModelSpec('m', (4, 4, 1), (Conv('c', 4, 5), Dense('logits', 10)))\n", "leaves no output"),
    ("SPEC = ModelSpec('m', (784,), (Dense('a', 0), Dense('logits', 10)))\n", "needs positive integer sizes"),
    ("SPEC = ModelSpec('m', (8, 8, 1), (Conv('c', 4, 3, padding='FULL'), Dense('logits', 10)))\n",
     "padding 'FULL' must be 'VALID' or 'SAME'"),
    ("SPEC = ModelSpec('m', (784,), (Dense('a', 5), MaxPool(2)))\n", "the last layer must be a Dense layer"),
    ("raise RuntimeError('boom')\n", "failed to load (RuntimeError: boom)"),
])
def test_a_model_file_that_cannot_be_built_as_declared_is_one_clear_error(tmp_path, body, message):
    with pytest.raises(UserError, match=f"^--student_model: .*m.py:? .*{re.escape(message)}"):
        models.get(write_model(tmp_path, body), "--student_model")


def test_model_file_errors_reach_the_command_line_as_one_line(tmp_path):
    result = cli("--procedure=train", f"--model={write_model(tmp_path, 'X = 1')}", "--dataset=mnist",
                 f"--summary_folder={tmp_path}", "--run_name=x")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and "Traceback" not in result.stderr
    assert "declares no SPEC" in errors[0] and not os.path.exists(tmp_path / "x")


def test_a_checkpoint_written_elsewhere_as_the_readme_shows_is_read_back(tmp_path):
    import tensorflow as tf
    from models import builder, checkpoint
    spec = models.get(os.path.join(EXAMPLES, "small_cnn.py"))
    rng = np.random.default_rng(0)
    values = {name: rng.normal(size=shape).astype(np.float32) for name, shape in builder.param_shapes(spec).items()}
    prefix = str(tmp_path / "imported" / "small_cnn")
    with tf.Graph().as_default():
        variables = {name: tf.compat.v1.Variable(v, name=name) for name, v in values.items()}
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver(variables).save(sess, prefix)
    loaded = checkpoint.load_teacher_values(spec, "", prefix)
    for name, value in values.items():
        np.testing.assert_array_equal(loaded[name], value)
    wrong = models.get(os.path.join(EXAMPLES, "mlp3.py"))
    with pytest.raises(UserError, match="not --model=mlp3"):
        checkpoint.load_teacher_values(wrong, "", prefix)


KERAS_MODEL = """
import sys, keras
layers = [keras.Input((12, 12, 1)), keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
          keras.layers.AveragePooling2D(2), keras.layers.Conv2D(6, 3, activation="relu"), keras.layers.Flatten(),
          keras.layers.Dropout(0.3), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(5)]
if sys.argv[2] == "unsupported":
    layers.insert(2, keras.layers.LayerNormalization())
keras.Sequential(layers, name="tiny_keras").save(sys.argv[1])
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["supported", "unsupported"])
def test_a_keras_sequential_model_is_imported_with_the_same_outputs_or_refused(tmp_path, kind):
    saved = str(tmp_path / "m.keras")
    made = subprocess.run([sys.executable, "-c", KERAS_MODEL, saved, kind], capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    result = subprocess.run([sys.executable, "-m", "models.keras_import", f"--keras_model={saved}",
                             f"--out_dir={tmp_path / 'imported'}"], capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    if kind == "unsupported":
        assert result.returncode == 2 and "(LayerNormalization): dfkd has no such layer; it takes" in result.stderr
        return
    assert result.returncode == 0, result.stderr[-2000:]
    difference = float(result.stdout.split("largest difference from Keras on 16 random inputs: ")[1].split()[0])
    assert difference < 1e-4
    spec = models.get(str(tmp_path / "imported" / "tiny_keras.py"))
    assert [type(l).__name__ for l in spec.layers] == ["Conv", "AvgPool", "Conv", "Dense", "Dense"]
    assert spec.layers[0].stride == 2 and spec.layers[0].padding == "SAME" and spec.layers[3].dropout == 0.3
