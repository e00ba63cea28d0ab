"""Each viz script on tiny generated artifacts: a PNG of the expected pixel size, and a
clear one-line refusal of a corrupt input."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from metadata import stats_file
from tests.conftest import ROOT
from utils import atomic
from viz import common, compare_runs, pixel_intensities, print_stats, stats_viz, view


def png_size(path):
    with open(path, "rb") as f:
        header = f.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


@pytest.fixture
def reconstruction(tmp_path):
    rng = np.random.default_rng(0)
    path = str(tmp_path / "data_optimized_top_layer_toy.npy")
    atomic.save_npy(path, rng.uniform(-0.2, 1.2, (40, 784)).astype(np.float32))
    atomic.save_npy(path.replace(".npy", ".labels.npy"), np.arange(40) % 10)
    return path


@pytest.fixture
def tiny_stats(tmp_path):
    rng = np.random.default_rng(0)
    layers = {}
    for name, d, full in (("fc1", 20, True), ("conv", 30, False), ("logits", 10, True)):
        a = rng.normal(size=(10, d, d))
        layers[name] = {"mean": rng.normal(size=(10, d)), "std": np.ones((10, d)), "shape": (d,),
                        "cov": a @ a.transpose(0, 2, 1) if full else None}
    path = str(tmp_path / "activation_stats_toy.npz")
    graphwise = {"graph__fraction": np.float64(0.1), "graph__groups": np.array(["all"]),
                 "graph__all__layers": np.array(list(layers)), "graph__all__eigenvalues": np.linspace(-1, 1, 60),
                 "graph__all__columns": np.arange(8), "graph__all__basis": np.ones((60, 8), np.float32),
                 "graph__all__kept": np.tile(np.arange(6), (10, 1)), "graph__all__coef_mean": np.ones((10, 6)),
                 "graph__all__coef_std": np.ones((10, 6)), "graph__all__coef_chol": np.tile(np.eye(6), (10, 1, 1))}
    stats_file.save(path, {"model": "toy", "run_name": "toy", "temperature": 8.0, "fingerprint": "abc",
                           "counts": np.full(10, 7), "graphwise": graphwise}, layers)
    return path


def test_view_grid_size(reconstruction, tmp_path):
    out = view.run(["--dataset", reconstruction, "--per_class", "3", "--output", str(tmp_path / "v.png")])
    assert png_size(out) == (3 * 64 + 80, 10 * (64 + 14) + 50)


def test_view_of_a_npy_without_labels_is_a_plain_grid_or_grouped_by_the_teacher(reconstruction, teachers,
                                                                               tmp_path):
    os.remove(reconstruction.replace(".npy", ".labels.npy"))
    plain = view.run(["--dataset", reconstruction, "--per_class", "4", "--output", str(tmp_path / "plain.png")])
    assert png_size(plain) == (4 * 64 + 80, 10 * (64 + 14) + 50)   # 40 samples: 10 rows of 4
    _, result = teachers["hinton1200"]
    flags = ["--model", "hinton1200", "--model_checkpoint", result["model_checkpoint"]]
    x = np.load(reconstruction)
    predicted = set(np.argmax(common.teacher_predictions("hinton1200", result["model_checkpoint"], x), 1).tolist())
    grouped = view.run(["--dataset", reconstruction, "--per_class", "2", "--output", str(tmp_path / "g.png"), *flags])
    assert png_size(grouped) == (2 * 64 + 80, len(predicted) * (64 + 14) + 50)  # one row per predicted class
    pixels = pixel_intensities.run(["--dataset", reconstruction, "--per_class", "--output", str(tmp_path / "p.png"),
                                    *flags])
    assert png_size(pixels)[0] == (640 if len(predicted) == 1 else 300 * min(len(predicted), 5))
    overall = pixel_intensities.run(["--dataset", reconstruction, "--per_class", "--output", str(tmp_path / "o.png")])
    assert png_size(overall)[0] == 640


def test_view_with_teacher_predictions(reconstruction, teachers, tmp_path):
    _, result = teachers["hinton1200"]
    out = view.run(["--dataset", reconstruction, "--per_class", "2", "--model", "hinton1200",
                    "--model_checkpoint", result["model_checkpoint"]])
    assert out == reconstruction.replace(".npy", "_view.png") and os.path.getsize(out) > 1000


def test_pixel_intensities_per_class(reconstruction, tmp_path):
    out = pixel_intensities.run(["--dataset", reconstruction, "--per_class", "--output", str(tmp_path / "p.png")])
    assert png_size(out) == (1500, 2 * 240 + 60)


def test_pixel_intensities_against_real_mnist(reconstruction, mnist_dir, tmp_path):
    out = pixel_intensities.run(["--dataset", reconstruction, "--real_dataset", "mnist", "--data_dir", mnist_dir,
                                 "--output", str(tmp_path / "p.png")])
    assert png_size(out) == (640, 300)


def test_stats_viz_and_print_stats(tiny_stats, capsys):
    out = stats_viz.run(["--stats_file", tiny_stats])
    assert png_size(out) == (1000, 4 * 260 + 40)
    text = print_stats.run(["--stats_file", tiny_stats])
    for expected in ("model:         toy", "temperature:   8", "fc1", "covariance diag", "graphwise:     yes",
                     f"format:        version {stats_file.FORMAT_VERSION}", "total 70"):
        assert expected in text


def test_compare_runs(tmp_path):
    log = {"procedures": {
        "train/hinton1200": {"flags": {"model": "hinton1200"}, "results": {"test_accuracy": 0.985}},
        "distill/mnist": {"flags": {"model": "hinton1200", "student_model": "hinton800", "dataset": "mnist"},
                          "results": {"test_accuracy": 0.98}},
        "distill/noise": {"flags": {"model": "hinton1200", "student_model": "hinton800", "dataset": "noise"},
                          "results": {"test_accuracy": 0.3}},
        "distill/x": {"flags": {"model": "hinton1200", "student_model": "hinton800",
                                "dataset": "summaries/e/data/data_optimized_all_layers_dropout_e.npy"},
                      "results": {"test_accuracy": 0.7}}}}
    path = tmp_path / "log.json"
    path.write_text(json.dumps(log))
    bars, refs, title = compare_runs.collect(compare_runs.read_logs([str(path)]))
    assert bars == {"all_layers_dropout": 0.7}
    assert refs == {"teacher": 0.985, "vanilla KD": 0.98, "KD on noise": 0.3}
    assert png_size(compare_runs.run(["--logs", str(path)])) == (900, 500)


def test_compare_runs_draws_the_papers_numbers_beside_ours(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(common, "save", lambda fig, path, announce=True: drawn.append(fig) or path)
    bars, refs = {"top_layer": 0.9, "all_layers": 0.95, "dfkd best": 0.98}, {"teacher": 0.985}
    compare_runs.plot(bars, refs, "t", str(tmp_path / "a.png"))
    compare_runs.plot(bars, refs, "t", str(tmp_path / "b.png"),
                      paper={"top_layer": 0.6875, "all_layers": 0.7638, "teacher": 0.9695})
    alone, beside = ([[round(p.get_height(), 2) for p in c] for c in fig.axes[0].containers] for fig in drawn)
    assert alone == [[90.0, 95.0, 98.0]]
    assert beside == [[90.0, 95.0, 98.0], [68.75, 76.38]]   # only bars with a paper number get one


def test_compare_runs_value_labels_keep_clear_of_the_reference_lines(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(common, "save", lambda fig, path, announce=True: drawn.append(fig) or path)
    compare_runs.plot({"top_layer": 0.9624, "all_layers": 0.05}, {"teacher": 0.9858}, "t", str(tmp_path / "a.png"))
    labels = {t.get_text(): t for t in drawn[0].axes[0].texts}
    assert set(labels) == {"96.24", "5.00"}   # the table's two decimals
    tall, short = labels["96.24"], labels["5.00"]
    assert tall.get_position()[1] < 96.24 and tall.get_va() == "top"     # inside its bar, below the teacher line
    assert short.get_position()[1] > 5.0 and short.get_va() == "bottom"  # too short to hold it: above


@pytest.mark.parametrize("script, flag", [("view", "--dataset"), ("pixel_intensities", "--dataset"),
                                          ("stats_viz", "--stats_file"), ("print_stats", "--stats_file"),
                                          ("compare_runs", "--logs")])
def test_corrupt_input_is_one_clear_line(script, flag, tmp_path):
    bad = tmp_path / ("bad.npy" if flag == "--dataset" else "bad.npz" if flag == "--stats_file" else "log.json")
    bad.write_bytes(b"\x93NUMPY garbage" if flag == "--dataset" else b"garbage")
    result = subprocess.run([sys.executable, os.path.join(ROOT, "viz", f"{script}.py"), f"{flag}={bad}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert str(bad) in result.stderr
    assert not list(tmp_path.glob("*.png"))


def test_a_file_is_announced_once_and_a_quiet_save_says_nothing(tmp_path, capsys):
    common.save(common.figure(40, 30), str(tmp_path / "a.png"), announce=False)
    assert capsys.readouterr().out == ""
    common.save(common.figure(40, 30), str(tmp_path / "b.png"))
    assert capsys.readouterr().out == f"wrote {tmp_path / 'b.png'}\n"
