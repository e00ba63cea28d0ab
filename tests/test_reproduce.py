import json
import os
from unittest import mock

import numpy as np
import pytest

import datasets
import generators
from experiments import presets
from experiments.stages import Stages
from metadata import stats_file
from procedures import reproduce
from tests.conftest import make_cfg, toy_for

TINY = dict(train_epochs=1, samples_per_class=2, optimization_steps=10, distill_epochs=1, kd_epochs=1)


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setitem(presets.PRESETS, "tiny", TINY)
    monkeypatch.setattr(datasets, "get", lambda name, data_dir, flag="--dataset":
                        toy_for(784) if name in ("mnist", "toy") else REAL_GET(name, data_dir, flag))
    return make_cfg(procedure="reproduce", run_name="grid", summary_folder=str(tmp_path), model="hinton1200",
                    student_model="hinton800", dataset="mnist", preset="tiny", train_batch_size=32)


REAL_GET = datasets.get


@pytest.mark.slow
def test_grid_runs_every_stage_then_reuses_and_repairs(tiny, tmp_path, capsys):
    table = reproduce.run(tiny)
    rows = [r["row"] for r in table]
    assert rows == ["teacher", "student trained on data", "vanilla KD", "KD on noise", "top_layer", "all_layers",
                    "all_layers_dropout", "spectral_all_layers", "spectral_layer_pairs", "dfkd best"]
    assert next(r for r in table if r["row"] == "top_layer")["paper"] == 68.75
    run_dir = tmp_path / "grid"
    for name in ("results.md", "results.json", "results.png"):
        assert (run_dir / name).stat().st_size > 0
    assert "| spectral_layer_pairs |" in (run_dir / "results.md").read_text()
    assert_tensorboard_shows_the_promised_scalars(run_dir)

    # A second invocation reuses everything.
    capsys.readouterr()
    again = reproduce.run(tiny)
    out = capsys.readouterr().out
    assert "running" not in out and out.count("reusing the finished result") == 17
    assert again == table
    # A part of the grid lists only its own stages' times, though the others stay on file for reuse.
    tiny.rows = "top_layer"
    reproduce.run(tiny)
    times = (run_dir / "results.md").read_text().split("Stage wall times (s): ")[1]
    assert "optimize_dataset top_layer" in times and "dfkd best" not in times and "all_layers" not in times
    assert "optimize_dataset dfkd best" in json.loads((run_dir / "results.json").read_text())["stages"]
    tiny.rows = ""
    # A result recorded before results named their steps still shows its synthesis cost, from its settings.
    saved = json.loads((run_dir / "results.json").read_text())
    del saved["stages"]["optimize_dataset top_layer"]["result"]["optimization_steps"]
    (run_dir / "results.json").write_text(json.dumps(saved))
    assert reproduce.run(tiny) == table and table[4]["synthesis_sample_steps"] == 20 * TINY["optimization_steps"]
    capsys.readouterr()

    # A corrupted reconstruction is detected and rebuilt, not silently used.
    stages = json.loads((run_dir / "results.json").read_text())["stages"]
    npy = stages["optimize_dataset all_layers"]["result"]["output"]
    with open(npy, "r+b") as f:
        f.truncate(100)
    reproduce.run(tiny)
    out = capsys.readouterr().out
    assert "optimize_dataset all_layers: the saved artifact does not hold up" in out
    assert "optimize_dataset all_layers: running" in out
    assert "distill all_layers: running" in out              # and distilled again, not the old student
    assert "distill top_layer: reusing the finished result" in out
    assert np.load(npy).shape == (20, 784)


def test_explicit_flags_override_the_preset():
    cfg = make_cfg(preset="quick", samples_per_class=7, epochs=3, explicit_flags=["samples_per_class"])
    chosen = presets.settings_for(cfg)
    assert chosen["samples_per_class"] == 7
    assert chosen["distill_epochs"] == presets.PRESETS["quick"]["distill_epochs"]  # --epochs not given


@pytest.mark.slow
def test_best_preset_runs_the_reference_rows_and_the_recipe_with_its_options(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(presets.PRESETS, "tinybest", dict(TINY, paper_rows=False))
    tiny.preset, tiny.jitter = "tinybest", 5  # a user's beyond-paper flag must not leak into the rows
    table = reproduce.run(tiny)
    assert [r["row"] for r in table] == ["teacher", "student trained on data", "vanilla KD", "KD on noise",
                                         "dfkd best"]
    stages = json.loads((tmp_path / "grid" / "results.json").read_text())["stages"]
    optimize = stages["optimize_dataset dfkd best"]["settings"]
    assert {k: optimize[k] for k in presets.BEST["optimize"]} == presets.BEST["optimize"]
    assert optimize["optimization_steps"] == presets.BEST["optimization_steps"]
    recipe = stages["distill dfkd best"]["settings"]
    assert {k: recipe[k] for k in presets.BEST["distill"]} == presets.BEST["distill"]
    assert "best_distill=(augment_shift=2, lr=0.002, student_average=0.999)" in \
        (tmp_path / "grid" / "results.md").read_text()
    log = json.loads((tmp_path / "grid" / "extra_rows" / "dfkd_best" / "log.json").read_text())
    assert log["procedures"]["optimize_dataset/top_layer"]["flags"]["jitter"] == 0  # not the user's 5
    vanilla = json.loads((tmp_path / "grid" / "distill_rows" / "vanilla_KD" / "log.json").read_text())
    vanilla_flags = vanilla["procedures"]["distill/mnist"]["flags"]
    assert (vanilla_flags["augment_shift"], vanilla_flags["lr"], vanilla_flags["student_average"]) == (0, 0.001, 0)
    # The toy's classes of 15 examples are too small for modes: the per-class metadata, as the paper's rows.
    assert not any(name.startswith("compute_stats modes") for name in stages)
    assert optimize["stats_file"] == stages["compute_stats"]["result"]["stats_file"]
    assert "optimize_batch_order" not in optimize   # spread, for BEST's own steps


@pytest.mark.slow
def test_dfkd_best_reads_its_own_modes_metadata_where_the_classes_are_large_enough(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(presets.PRESETS, "tinybest", dict(TINY, paper_rows=("top_layer",)))
    monkeypatch.setitem(presets.BEST, "examples_per_mode", 5)
    monkeypatch.setitem(presets.BEST, "samples_per_mode", 1)
    monkeypatch.setitem(presets.BEST, "modes_optimize", dict(optimize_batch_order="grouped", optimization_steps=7))
    monkeypatch.setitem(presets.BEST, "modes_optimize_from", 2)
    tiny.preset = "tinybest"
    table = reproduce.run(tiny)
    assert [r["row"] for r in table][-2:] == ["top_layer", "dfkd best"]
    stages = json.loads((tmp_path / "grid" / "results.json").read_text())["stages"]
    smallest_class = np.bincount(toy_for(784).train_y).min()
    modes = min(presets.BEST["stats_modes"], smallest_class // 5, TINY["samples_per_class"])
    assert modes > 1
    made = stats_file.load(stages[f"compute_stats modes{modes}"]["result"]["stats_file"])
    assert made.has_modes and made.num_groups > 10 and made.path.endswith(f"_modes{modes}.npz")
    best = stages["optimize_dataset dfkd best"]["settings"]
    assert best["stats_file"] == made.path and best["stats_modes"] == modes
    # On modes the row batches whole modes together, for its own number of steps.
    assert (best["optimize_batch_order"], best["optimization_steps"]) == ("grouped", 7)
    assert table[-1]["synthesis_sample_steps"] == 7 * 10 * TINY["samples_per_class"]
    assert f"best_stats_modes={modes}" in (tmp_path / "grid" / "results.md").read_text()
    paper_row = stages["optimize_dataset top_layer"]["settings"]     # the paper's rows keep per-class metadata
    assert paper_row["stats_file"] == stages["compute_stats"]["result"]["stats_file"]
    assert "stats_modes" not in paper_row and "optimize_batch_order" not in paper_row


def test_dfkd_best_batches_whole_modes_for_longer_only_at_its_full_modes():
    full = presets.BEST["modes_optimize_from"]
    assert presets.best_on_modes(full, ()) == {"optimize_batch_order": "grouped", "optimization_steps": 400}
    assert presets.best_on_modes(full - 1, ()) == {} == presets.best_on_modes(1, ())
    assert presets.best_on_modes(full, ("optimization_steps",)) == {"optimize_batch_order": "grouped"}


def test_dfkd_best_gives_small_classes_and_small_reconstructions_fewer_modes():
    assert presets.best_modes([5421, 6742], 6400) == presets.BEST["stats_modes"] == 16
    assert presets.best_modes([6000, 1000], 6400) == 1000 // presets.BEST["examples_per_mode"]
    assert presets.best_modes([500] * 100, 6400) == 1           # CIFAR-100: per class
    assert presets.best_modes([6000] * 10, 1000) == 1000 // presets.BEST["samples_per_mode"]
    assert presets.best_modes([6000] * 10, 500) == 1            # 5,000 samples: per class


def assert_tensorboard_shows_the_promised_scalars(run_dir):
    """What `tensorboard --logdir` lists, read with TensorBoard's own reader: the scalars the README
    promises for train, optimize_dataset and distill."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    tags = {}
    for folder, _, files in os.walk(run_dir):
        if any(f.startswith("events.out.tfevents") for f in files):
            events = EventAccumulator(folder)
            events.Reload()
            tags[os.path.relpath(folder, run_dir)] = set(events.Tags()["scalars"])
    assert {"loss", "test_accuracy"} <= tags["train"]
    assert {"initial_loss", "final_loss", "teacher_agreement", "loss_curve_batch0"} <= tags[
        os.path.join("optimize_dataset", "spectral_all_layers")]
    distill_rows = [t for folder, t in tags.items() if folder.startswith("distill_rows")]
    assert distill_rows and all({"test_accuracy", "teacher_agreement", "kd_loss"} <= t for t in distill_rows)


@pytest.mark.slow
def test_an_interrupted_grid_keeps_each_finished_row_and_its_table(tiny, tmp_path):
    """Each objective is distilled as soon as its reconstruction exists, and the table is written after
    every row: a grid stopped in its second objective already reports the first."""
    from procedures import optimize_dataset
    real_run = optimize_dataset.run

    def stop_at_all_layers(cfg):
        if cfg.optimization_objective == "all_layers":
            raise KeyboardInterrupt
        return real_run(cfg)
    with mock.patch.object(optimize_dataset, "run", stop_at_all_layers), pytest.raises(KeyboardInterrupt):
        reproduce.run(tiny)
    saved = json.loads((tmp_path / "grid" / "results.json").read_text())
    assert "distill top_layer" in saved["stages"] and "distill vanilla KD" in saved["stages"]
    assert [r["row"] for r in saved["table"]] == ["teacher", "student trained on data", "vanilla KD", "KD on noise",
                                                  "top_layer"]
    assert "| top_layer |" in (tmp_path / "grid" / "results.md").read_text()


@pytest.mark.slow
def test_rows_runs_a_part_of_the_grid_and_refuses_an_unknown_row(tiny, tmp_path):
    from utils.errors import UserError
    tiny.rows = "all_layers,spectral"
    with pytest.raises(UserError, match="--rows: 'spectral' is not a row of --preset=tiny for hinton1200"):
        reproduce.run(tiny)
    assert not (tmp_path / "grid" / "results.json").exists()        # refused before any work
    tiny.rows = "dfkd best,all_layers,dfkd best"
    table = reproduce.run(tiny)
    assert [r["row"] for r in table] == ["teacher", "student trained on data", "vanilla KD", "KD on noise",
                                         "all_layers", "dfkd best"]   # the table keeps the grid's order
    saved = json.loads((tmp_path / "grid" / "results.json").read_text())["stages"]
    written = {row: os.stat(saved[f"optimize_dataset {row}"]["result"]["output"]).st_mtime_ns
               for row in ("dfkd best", "all_layers")}
    assert written["dfkd best"] < written["all_layers"]   # the work follows the order given


def test_a_stage_resumed_from_earlier_pieces_counts_their_time(tmp_path, monkeypatch):
    import itertools

    from experiments import stages as stages_module
    clock = itertools.count(0.0, 2.0)   # each reading of the clock 2 s after the last
    monkeypatch.setattr(stages_module.time, "time", lambda: next(clock))
    stages = Stages(str(tmp_path / "results.json"))
    stages.run("optimize_dataset x", {"a": 1}, lambda: {"earlier_pieces_seconds": 600.0}, lambda r: None)
    stages.run("train y", {"a": 1}, lambda: {}, lambda r: None)
    saved = json.loads((tmp_path / "results.json").read_text())["stages"]
    assert saved["optimize_dataset x"]["wall_seconds"] == 602.0   # its own 2 s and the earlier pieces' 600
    assert saved["train y"]["wall_seconds"] == 2.0


@pytest.mark.slow
def test_a_stage_is_redone_when_a_flag_its_procedure_reads_changes(tiny, tmp_path, capsys):
    """A stage's identity is every flag value its procedure reads: --temperature redoes the KD rows (and the
    metadata, whose top layer is logits / T) but not the training; the same flags again reuse every stage."""
    from config import flag_use
    tiny.rows = "top_layer"
    reproduce.run(tiny)
    stages = json.loads((tmp_path / "grid" / "results.json").read_text())["stages"]
    for name, record in stages.items():   # derived from the table, not a hand-kept list per stage
        procedure = name.split(" ")[0]
        assert set(flag_use.identity(procedure, make_cfg())) <= set(record["settings"]), name
    capsys.readouterr()
    tiny.temperature = 4.0
    reproduce.run(tiny)
    out = capsys.readouterr().out
    for stage in ("compute_stats", "distill vanilla KD", "distill KD on noise", "optimize_dataset top_layer",
                  "distill top_layer"):
        assert f"{stage}: running" in out
    assert "train hinton1200: reusing" in out and "train hinton800: reusing" in out
    log = json.loads((tmp_path / "grid" / "distill_rows" / "vanilla_KD" / "log.json").read_text())
    assert log["procedures"]["distill/mnist"]["flags"]["temperature"] == 4.0

    reproduce.run(tiny)
    out = capsys.readouterr().out
    assert "running" not in out and out.count("reusing the finished result") == 7


@pytest.mark.slow
def test_a_train_stage_with_changed_settings_starts_over_instead_of_resuming(tiny, tmp_path, capsys):
    tiny.rows = "top_layer"
    reproduce.run(tiny)
    capsys.readouterr()
    tiny.lr_schedule = "constant"
    reproduce.run(tiny)
    out = capsys.readouterr().out
    assert "train hinton1200: settings changed (lr_schedule); starting it over" in out
    assert "resuming from" not in out   # the finished cosine run's checkpoint is not picked up
    log = json.loads((tmp_path / "grid" / "log.json").read_text())
    assert log["procedures"]["train/hinton1200"]["flags"]["lr_schedule"] == "constant"


@pytest.mark.slow
def test_a_given_teacher_is_used_as_it_is_and_its_row_says_so(tiny, tmp_path, teachers, capsys):
    import hashlib
    given = teachers["hinton1200"][1]["model_checkpoint"]

    def digest():
        with open(given + ".data-00000-of-00001", "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    before = digest()
    tiny.rows, tiny.model_checkpoint = "top_layer", given
    table = reproduce.run(tiny)
    out = capsys.readouterr().out
    assert table[0]["row"] == "teacher (given, not trained)" and table[0]["paper"] is None
    assert "train hinton1200" not in out and "evaluate hinton1200: running" in out
    assert table[0]["test_accuracy"] == pytest.approx(100 * teachers["hinton1200"][1]["test_accuracy"], abs=0.01)
    assert digest() == before
    stages = json.loads((tmp_path / "grid" / "results.json").read_text())["stages"]
    assert stages["compute_stats"]["settings"]["model_checkpoint"] == given


@pytest.mark.slow
def test_the_peers_preset_runs_the_later_methods_beside_the_papers_best_and_dfkd_best(tiny, tmp_path, monkeypatch,
                                                                                      capsys):
    monkeypatch.setitem(presets.PRESETS, "tiny_peers", dict(TINY, paper_rows=("spectral_layer_pairs",),
                                                              peer_rows=True))
    monkeypatch.setattr(reproduce.dafl, "STEPS_PER_EPOCH", 4)
    tiny.preset = "tiny_peers"
    table = reproduce.run(tiny)
    assert [r["row"] for r in table] == ["teacher", "student trained on data", "vanilla KD", "KD on noise",
                                         "spectral_layer_pairs", "dfkd best", "DeepInversion", "ZSKD", "DAFL",
                                         "DFAD"]
    # DAFL's student sees as many generated samples as the others' see reconstructed ones (20 x 1 epoch):
    # one epoch of 4 steps of 32; DFAD's student as many (its generator steps come every 5th: none here)
    assert table[-2]["synthesis_sample_steps"] == table[-1]["synthesis_sample_steps"] == 4 * 32
    peers = {r["row"]: r for r in table if r["row"] in presets.PEERS}
    assert all(r["synthesis_sample_steps"] == 20 * TINY["optimization_steps"] for r in peers.values())
    # hinton1200 -> hinton800 on MNIST: DAFL's paper has the pair, the others' do not
    assert [r["row"] for r in table if r["paper"] is not None and r["row"] in ("DeepInversion", "ZSKD", "DAFL",
                                                                                 "DFAD")] == ["DAFL"]
    assert next(r for r in table if r["row"] == "DAFL")["paper"] == 97.91
    text = (tmp_path / "grid" / "results.md").read_text()
    assert "Protocol: every student is the last epoch's; none is chosen on test data." in text
    assert "| DeepInversion |" in text and "| 200 |" in text   # its synthesis cost column
    assert "DAFL: Chen et al. 2019 (teacher 98.91 lenet, 98.39 hinton1200)" in text and "ZSKD: Nayak" not in text
    saved = json.loads((tmp_path / "grid" / "results.json").read_text())["stages"]
    di = saved["optimize_dataset DeepInversion"]["settings"]
    # its authors' settings, as optimize_dataset takes them; no mirror on digits; the preset's sample-step
    # budget, here under one sample a class at its 2,000 steps: one a class at 20 steps, distilled twice as long
    assert di["optimization_objective"] == "deep_inversion" and not di.get("flip") and di["jitter"] == 2
    assert (di["lr"], di["optimize_beta1"], di["tv_norm_weight"], di["optimization_steps"], di["samples_per_class"]) \
        == (0.01, 0.5, 1.25e-4, 2 * TINY["optimization_steps"], 1)
    assert saved["distill DeepInversion"]["settings"]["epochs"] == 2 * TINY["distill_epochs"]
    # the generators' pixels take the training data's mean and std (DAFL's normalization constants)
    import datasets
    train_x = datasets.get(tiny.dataset, tiny.data_dir).train_x
    for row in ("DAFL", "DFAD"):
        settings = saved[f"distill {row}"]["settings"]
        assert float(settings["pixel_mean"]) == pytest.approx(train_x.mean(), abs=1e-4)
        assert float(settings["pixel_std"]) == pytest.approx(train_x.std(), abs=1e-4)
    tiny.rows = "ZSKD"   # --rows runs only what it names, DAFL included
    assert [r["row"] for r in reproduce.run(tiny)][4:] == ["ZSKD"]
    tiny.preset = "tiny"   # any preset runs a peer row that --rows names
    assert [r["row"] for r in reproduce.run(tiny)][-1] == "ZSKD"
    # a generator of another definition is never reused: its row is trained again
    methods = generators.METHODS
    monkeypatch.setitem(methods, "dafl", methods["dafl"]._replace(
        layers=methods["dafl"].layers._replace(version=methods["dafl"].layers.version + 1)))
    tiny.preset, tiny.rows = "tiny_peers", "DAFL"
    capsys.readouterr()
    reproduce.run(tiny)
    assert "distill DAFL: settings changed (generator_version); starting it over" in capsys.readouterr().out


def test_published_numbers_follow_the_data_not_its_layout():
    """Lopes et al.'s numbers are MNIST's only; a later method's appear on any layout of its paper's data."""
    lenet_mnist = presets.published("mnist_conv", "lenet", "lenet_half")
    assert lenet_mnist["spectral_layer_pairs"] == 92.47 and lenet_mnist["DAFL"] == 98.20
    assert presets.published("fashion_mnist_conv", "lenet", "lenet_half") == {"ZSKD": 79.62}
    assert presets.published("cifar10", "resnet20", "resnet8") == {}
    fashion = presets.published_sources("fashion_mnist_conv", "lenet", "lenet_half", ["vanilla KD", "ZSKD", "DAFL"])
    assert fashion.startswith("Paper: ZSKD: Nayak et al. 2019") and "Lopes" not in fashion and "DAFL" not in fashion
    assert "Lopes et al. 2017" in presets.published_sources("mnist_conv", "lenet", "lenet_half", ["DAFL"])
    assert presets.published_sources("mnist_conv", "lenet", "lenet_half", ["DeepInversion"]) is None


@pytest.mark.slow
def test_a_batchnorm_teacher_gets_the_generator_rows_that_read_its_statistics(tmp_path, monkeypatch):
    """On a tiny BatchNorm ResNet, --rows=DeepInversion,Fast,CMI runs each as its plan says: DeepInversion at
    the budget's steps on one sample a class, Fast and CMI as rounds whose students train."""
    from tests.test_modern_models import tiny_resnet_file, toy8x8
    monkeypatch.setitem(presets.PRESETS, "tiny", TINY)
    monkeypatch.setattr(datasets, "get", lambda name, data_dir, flag="--dataset": toy8x8())
    cfg = make_cfg(procedure="reproduce", run_name="bn", summary_folder=str(tmp_path), preset="tiny",
                   model=tiny_resnet_file(str(tmp_path), "bn_teacher", 4),
                   student_model=tiny_resnet_file(str(tmp_path), "bn_student", 2), dataset="toy",
                   train_batch_size=25, rows="DeepInversion,Fast,CMI")
    table = reproduce.run(cfg)
    assert [r["row"] for r in table][4:] == ["DeepInversion", "Fast", "CMI"]
    stages = json.loads((tmp_path / "bn" / "results.json").read_text())["stages"]
    assert stages["optimize_dataset DeepInversion"]["settings"]["samples_per_class"] == 1
    for row in ("Fast", "CMI"):
        settings, result = stages[f"distill {row}"]["settings"], stages[f"distill {row}"]["result"]
        assert settings["method"] == row.lower() and result["student_steps"] > 0
    cmi = stages["distill CMI"]
    assert cmi["result"]["generator_steps"] == cmi["settings"]["epochs"] * 200   # its authors' 200 a round
    assert (tmp_path / "bn" / "distill_rows" / "CMI" / "distill" / "cmi" / "memory" / "features_00000.npy").exists()
