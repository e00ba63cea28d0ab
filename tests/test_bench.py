"""The benchmark's pieces run and count FLOPs the way the README says (tiny sizes)."""
import os

import numpy as np
import pytest

import models
from bench import run as bench
from models import builder
from models.spec import Conv
from utils.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


TINY_PRESET = dict(train_epochs=1, samples_per_class=2, optimization_steps=5, distill_epochs=1, kd_epochs=1,
                   paper_rows=False)


@pytest.fixture(scope="module")
def tiny_teacher_run(tmp_path_factory):
    """A finished tiny reproduce run (hinton1200 -> hinton800 on toy MNIST-shaped data, the reference rows
    and dfkd best), read by the ablation and the frontier: (summary folder, run name)."""
    import datasets
    from experiments import presets
    from procedures import reproduce
    from tests.conftest import make_cfg, toy_for
    folder = tmp_path_factory.mktemp("teacher_run")
    real_get = datasets.get
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(presets.PRESETS, "tiny", TINY_PRESET)
        patch.setattr(datasets, "get", lambda name, data_dir, flag="--dataset":
                      toy_for(784) if name == "mnist" else real_get(name, data_dir, flag))
        reproduce.run(make_cfg(procedure="reproduce", run_name="teacher", summary_folder=str(folder),
                               model="hinton1200", student_model="hinton800", dataset="mnist", preset="tiny",
                               train_batch_size=32))
    return folder, "teacher"


def test_forward_macs():
    assert builder.forward_macs(models.get("hinton1200")) == 784 * 1200 + 1200 * 1200 + 1200 * 10
    # conv1 28*28*25*6, conv2 10*10*150*16, then 400*120 + 120*84 + 84*10
    assert builder.forward_macs(models.get("lenet")) == 117600 + 240000 + 48000 + 10080 + 840


@pytest.mark.slow
def test_every_measurement_runs():
    hinton, lenet = models.get("hinton1200"), models.get("lenet")
    assert bench.matmul_limit(hinton, 8, 2, 0) > 0
    assert bench.conv_limit(lenet, 8, 2, 0, with_input_gradient=True) > 0
    for objective in bench.OBJECTIVE_NAMES:
        assert bench.reconstruction_rate(hinton, objective, 8, 2, 0)[0] > 0
    assert bench.reconstruction_rate(lenet, "spectral_layer_pairs", 8, 2, 0)[0] > 0
    assert bench.unfused_reconstruction_rate(lenet, 8, 2, 0) > 0
    assert bench.train_rate(lenet, 8, 2, 0) > 0
    assert bench.distill_rate(hinton, models.get("hinton800"), 8, 2, 0) > 0
    assert bench.stats_rate(lenet, 50, 0) > 0


@pytest.mark.slow
def test_the_resnet_measurements_run():
    resnet8 = models.get("resnet8")
    assert bench.conv_limit(resnet8, 2, 1, 0, with_input_gradient=True) > 0   # strided, padded, inside blocks
    assert bench.reconstruction_rate(resnet8, "all_layers", 4, 2, 0)[0] > 0
    assert bench.train_rate(resnet8, 4, 2, 0) > 0
    assert bench.distill_rate(resnet8, resnet8, 4, 2, 0) > 0
    # 3x3 convs of the stem and blocks, the 1x1 projections; weighted layers only
    assert builder.forward_macs(resnet8) == sum(
        l.kernel ** 2 * i[-1] * (o[0] * o[1] * o[2] if len(o) == 3 else o[0])
        for _, l, i, o in builder.walk(resnet8) if isinstance(l, Conv)) + 64 * 10


@pytest.mark.slow
def test_the_kept_projection_is_counted_over_the_columns_it_reads():
    """LeNet's whole graph: 6,518 vertices, 652 kept; conv1 (4,704 units) is read through its 1,024
    pixels and conv2 (1,600 units) through its 1,176 inputs: 2,414 columns."""
    lenet, hinton = models.get("lenet"), models.get("hinton1200")
    assert bench.reconstruction_rate(lenet, "spectral_all_layers", 8, 1, 0)[1] == (1024 + 1176 + 120 + 84 + 10) * 652
    # hinton1200: only the first layer (784 pixels -> 1,200 units) is read through its input
    assert bench.reconstruction_rate(hinton, "spectral_all_layers", 8, 1, 0)[1] == (784 + 1200 + 10) * 241
    assert bench.reconstruction_rate(hinton, "all_layers", 8, 1, 0)[1] == 0


def test_profile_attributes_time_to_the_ops_a_lenet_step_runs():
    from bench import profile
    totals, wall = profile.profile("lenet", "top_layer", 8, 2, 0)
    assert wall > 0
    assert any("Conv2DBackpropInput" in op for op in totals)  # the input gradient of a convolution
    assert any("MaxPool" in op for op in totals)


@pytest.mark.slow
def test_ablation_runs_rows_through_the_cli_and_reuses_them(tiny_teacher_run, mnist_dir):
    """A tiny teacher from a tiny reproduce run; two rows sharing one reconstruction."""
    import json
    import subprocess
    import sys
    tmp_path, _ = tiny_teacher_run
    command = [sys.executable, "-m", "bench.ablation", "--teacher_run=teacher", f"--summary_folder={tmp_path}",
               "--rows=faithful top_layer,distill: shift 2", "--samples_per_class=2", "--optimization_steps=5",
               "--epochs=1"]
    env = dict(os.environ, DFKD_DATA_DIR=mnist_dir)
    first = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    assert first.returncode == 0, first.stderr[-2000:]
    table = json.loads((tmp_path / "ablation_teacher" / "ablation.json").read_text())["rows"]
    assert set(table) == {"faithful top_layer", "distill: shift 2"}
    assert first.stdout.count("--procedure=optimize_dataset") == 1  # the reconstruction is shared
    assert "--augment_shift=2" in " ".join(table["distill: shift 2"]["commands"][1])
    from utils import runlog
    assert table["faithful top_layer"]["cpu"] == runlog.cpu_model()   # where the timed reconstruction ran
    assert table["faithful top_layer"]["commit"] == runlog.code_commit()
    assert table["faithful top_layer"]["workers"] == 1   # 20 samples are one batch: no worker processes
    again = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    assert again.stdout.count("done before") == 2 and "$ " not in again.stdout
    assert "| distill: shift 2 | distill: --augment_shift=2 |" in (tmp_path / "ablation_teacher" / "ablation.md").read_text()


def test_a_real_subset_is_a_seeded_draw_without_repeats_and_keeps_the_test_split():
    from bench.real_subset import subset
    rng = np.random.default_rng(1)
    arrays = {"train_images": np.arange(100)[:, None, None] * np.ones((1, 2, 2), np.uint8),
              "train_labels": np.arange(100) % 10, "test_images": np.zeros((7, 2, 2)), "test_labels": np.ones(7)}
    picked = subset(arrays, 30, seed=0)
    ids = picked["x_train"][:, 0, 0]
    assert len(set(ids.tolist())) == 30 and list(ids) == sorted(ids)
    assert np.array_equal(picked["y_train"], ids % 10) and len(picked["x_test"]) == 7
    assert np.array_equal(subset(arrays, 30, seed=0)["x_train"], picked["x_train"])
    assert not np.array_equal(subset(arrays, 30, seed=1)["x_train"], picked["x_train"])
    with pytest.raises(UserError, match="--count: 101 is not in 1..100"):
        subset(arrays, 101, seed=int(rng.integers(10)))


def test_the_diagnosis_reestimates_batchnorm_from_the_inputs_and_counts_confusions():
    from bench import student_diagnosis
    from models.spec import BatchNorm, Dense, GlobalAvgPool, ModelSpec, ReLU
    spec = ModelSpec("bn", (4, 4, 3), (BatchNorm("bn"), ReLU(), GlobalAvgPool(), Dense("logits", 2)))
    rng = np.random.default_rng(0)
    values = {name: rng.normal(size=shape).astype(np.float32) for name, shape in builder.param_shapes(spec).items()}
    x = rng.normal(0.3, 0.5, (1200, 48)).astype(np.float32)
    # the first BatchNorm reads the inputs: its estimate is their moments, over batches of 500, 500 and 200
    made = student_diagnosis.reestimated_batchnorm(spec, values, x)
    images = x.reshape(-1, 3)
    np.testing.assert_allclose(made["bn/moving_mean"], images.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(made["bn/moving_variance"], images.var(axis=0), rtol=1e-4)
    assert np.array_equal(made["logits/weights"], values["logits/weights"])

    class Data:
        test_x, test_y = x[:40], np.arange(40) % 2
    report = student_diagnosis.diagnose(spec, values, spec, values, Data, reestimate_on=())
    assert report["agreement"] == 1.0 and report["class_agreement"] == [1.0, 1.0]
    assert np.sum(report["student_confusion"]) == 40
    assert np.trace(report["student_confusion"]) == round(40 * report["student_accuracy"])
    assert "| 0 |" in student_diagnosis.table(report)


def test_the_gap_curve_takes_only_finished_runs_of_their_own_size(tmp_path, capsys):
    import json

    from bench import gap_curve

    def reproduce_result(run, per_class, accuracy):
        (tmp_path / run).mkdir()
        table = [{"row": "teacher", "test_accuracy": 93.0, "teacher_assigns_intended_class": None},
                 {"row": "dfkd best", "test_accuracy": accuracy, "teacher_assigns_intended_class": 97.0}]
        (tmp_path / run / "results.json").write_text(json.dumps({"settings": {"samples_per_class": per_class},
                                                                 "table": table}))

    reproduce_result("rf5k", 500, 77.5)
    reproduce_result("rf20k", 500, 77.5)   # a copy of rf5k's folder whose own run has not finished
    (tmp_path / "kd_real_5k").mkdir()
    (tmp_path / "kd_real_5k" / "log.json").write_text(json.dumps(
        {"procedures": {"distill/f5k.npz@32x32": {"results": {"test_accuracy": 0.9, "teacher_agreement": 0.925}}}}))
    picture = tmp_path / "curve.png"
    gap_curve.main([f"--gap_folder={tmp_path}", f"--out={picture}"])
    out = capsys.readouterr().out
    assert "| 5,000 | 77.5 | 97.0 | 90.0 | 92.5 |" in out and "| 20,000 |" not in out
    assert "not finished yet: rf20k, rf64k, kd_real_20k, kd_real_60k" in out
    assert picture.stat().st_size > 0
    with pytest.raises(SystemExit, match="no finished run"):
        gap_curve.main([f"--gap_folder={tmp_path / 'kd_real_5k'}"])


@pytest.mark.slow
def test_the_frontier_runs_each_method_at_a_budget_as_reproduce_would_and_keeps_its_points(
        tiny_teacher_run, mnist_dir, monkeypatch, capsys):
    """A tiny reproduce run gives the teacher, the metadata, the ceiling and its own rows as points; the
    frontier adds each method at another budget through the CLI, and a rerun runs nothing again."""
    import json

    from bench import frontier
    from experiments import presets
    monkeypatch.setitem(presets.PRESETS, "tiny", TINY_PRESET)   # the run's preset, which the frontier reads
    monkeypatch.setenv("DFKD_DATA_DIR", mnist_dir)
    folder, name = tiny_teacher_run
    run_dir = folder / name
    # The metadata generator stands for the generator rows: 2 rounds at this budget, where DAFL's whole epochs of
    # 120 steps of 512 would take minutes (its command is checked below, without running it).
    args = [f"--teacher_run={run_dir}", "--budgets=3", "--methods=dfkd best,metadata generator",
            f"--also_runs={run_dir}"]
    frontier.main(args)
    points = json.loads((run_dir / "frontier" / "frontier.json").read_text())["points"]
    assert {(p["row"], p["samples_per_class"]) for p in points} == {("dfkd best", 3), ("metadata generator", 3)}
    assert all(0 <= p["test_accuracy"] <= 100 and p["seconds"] > 0 and p["cpu_seconds"] > 0 for p in points)
    assert {p["samples"] for p in points} == {30}
    best = next(p for p in points if p["row"] == "dfkd best")
    optimize, distill = (" ".join(c) for c in best["commands"])
    assert "--samples_per_class=3" in optimize and "--batch_stats_weight=1.0 --clip_inputs" in optimize
    stages = json.loads((run_dir / "results.json").read_text())["stages"]
    for key, value in stages["distill dfkd best"]["settings"].items():   # the recipe reproduce's row has
        if key in presets.BEST["distill"]:
            assert f"--{key}={value}" in distill
    table = (run_dir / "frontier" / "frontier.md").read_text()
    assert "| vanilla KD (the ceiling) |" in table
    for row, samples in (("dfkd best", 20), ("dfkd best", 30), ("metadata generator", 30)):
        assert f"| {row} | {samples} |" in table   # the run's own row at 2 a class, the frontier's at 3
    generated = " ".join(next(p for p in points if p["row"] == "metadata generator")["commands"][0])
    assert "--method=metadata" in generated and "--stats_file=" in generated
    run, run_stages = frontier.read_run(str(run_dir))
    teacher, teacher_flags, _ = frontier.teacher_of(run, run_stages)
    (dafl,) = frontier.point_commands("DAFL", 3, run, teacher, teacher_flags, run_stages, str(run_dir / "frontier"))
    assert {"--method=dafl", "--epochs=1", "--train_batch_size=512"} <= set(dafl)   # one DAFL epoch, its batch
    assert any(flag.startswith("--pixel_mean=") for flag in dafl)   # the data's constants, as reproduce's row
    assert (run_dir / "frontier" / "frontier.png").stat().st_size > 0
    capsys.readouterr()
    frontier.main(args)
    assert "[frontier] dfkd best at 3" not in capsys.readouterr().out   # kept, not measured again
    with pytest.raises(SystemExit, match="--methods: 'NAYER' is not a method here"):
        frontier.main([f"--teacher_run={run_dir}", "--methods=NAYER"])
    with pytest.raises(SystemExit, match="--budgets: samples a class as positive whole numbers"):
        frontier.main([f"--teacher_run={run_dir}", "--budgets=100,0"])
