"""reproduce's row planning, a pure function: which rows a preset, --rows and a teacher give."""
import pytest

import datasets
import models
from experiments import presets
from experiments.plan import own_steps_budget, plan_rows
from tests.test_modern_models import tiny_resnet_file
from utils.errors import UserError


def settings(preset, **overrides):
    cfg = type("Cfg", (), {"preset": preset, "explicit_flags": (), **overrides})()
    return presets.settings_for(cfg)


def test_the_paper_preset_plans_every_objective_the_teacher_can_run_then_dfkd_best():
    plans, generator_rows = plan_rows(settings("paper"), "", models.get("hinton1200"), models.get("hinton800"), None, "/x")
    assert list(plans) == list(presets.OBJECTIVES) + [presets.BEST_ROW] and generator_rows == []
    assert plans["top_layer"].optimize == {"optimization_steps": 1000}
    best = plans[presets.BEST_ROW]
    assert best.objective == presets.BEST["objective"] and best.distill == presets.BEST["distill"]
    assert best.optimize["summary_folder"] == "/x" and best.optimize["optimization_steps"] == 200


def test_dfkd_best_mixes_and_matches_feature_maps_only_for_a_student_with_batchnorm(tmp_path):
    narrow = tiny_resnet_file(str(tmp_path), "narrow", 2)
    for teacher, student, expected in (
            ("hinton1200", "hinton800", {}), ("lenet", "lenet_half", {}), ("resnet20", "hinton800", {}),
            ("resnet20", "resnet8", dict(mixup_alpha=1.0, hint_weight=10.0)),   # the same channels at each size
            (tiny_resnet_file(str(tmp_path), "wide", 4), narrow, dict(mixup_alpha=1.0, attention_weight=250.0)),
            ("lenet", "resnet8", dict(mixup_alpha=1.0))):   # no feature-map size in common
        plans, _ = plan_rows(settings("peers"), "dfkd best", models.get(teacher), models.get(student), "no graph", "/x")
        distill = plans["dfkd best"].distill
        assert {k: v for k, v in distill.items() if k not in presets.BEST["distill"]} == expected, (teacher, student)
        assert {k: distill[k] for k in presets.BEST["distill"]} == presets.BEST["distill"]


def test_a_teacher_without_dropout_or_graph_loses_those_rows():
    plans, _ = plan_rows(settings("paper"), "", models.get("lenet"), models.get("lenet_half"), "no graph", "/x")
    assert list(plans) == ["top_layer", "all_layers", presets.BEST_ROW]


def test_the_peers_preset_adds_the_later_methods_and_the_generators():
    plans, generator_rows = plan_rows(settings("peers"), "", models.get("hinton1200"), models.get("hinton800"), None, "/x")
    assert list(plans) == ["spectral_layer_pairs", presets.BEST_ROW] + list(presets.PEERS)
    assert generator_rows == ["DAFL", "DFAD"]   # Fast reads BatchNorm statistics, which hinton1200 has not
    _, with_batchnorm = plan_rows(settings("peers"), "", models.get("resnet20"), models.get("resnet8"), "no graph", "/x")
    assert with_batchnorm == ["DAFL", "DFAD", "Fast", "CMI"]   # dfkd's metadata generator is not a peer
    _, named = plan_rows(settings("paper"), "metadata generator", models.get("hinton1200"), models.get("hinton800"), None, "/x")
    assert named == ["metadata generator"]


def test_a_fast_row_makes_a_reconstructions_count_and_shows_its_student_as_many():
    import generators
    budget = generators.row_budget("fast", 5000, 5000 * 30, 256)
    assert budget["epochs"] == 20   # rounds of 256: 5,120 samples
    learning = budget["epochs"] - generators.fast.warmup_rounds(budget["epochs"])
    assert learning * budget["student_steps_per_round"] * 256 >= 150000 > \
        learning * (budget["student_steps_per_round"] - 1) * 256
    assert generators.row_budget("dafl", 5000, 5000 * 30, 512) == {"epochs": 3}


def test_deep_inversion_mirrors_natural_images_only():
    """Its row leaves its authors' settings to the objective; the flip depends on the dataset."""
    for natural in (False, True):
        plans, _ = plan_rows(settings("peers"), "DeepInversion", models.get("resnet20"), models.get("resnet8"), None, "/x", natural)
        assert plans["DeepInversion"].optimize.get("flip", False) == natural
        assert "jitter" not in plans["DeepInversion"].optimize
    assert datasets.natural_images("cifar10@16x16") and not datasets.natural_images("fashion_mnist_conv")


def test_deep_inversion_spends_the_tables_budget_at_its_authors_steps():
    """5,000 samples x 200 steps buy 500 samples at 2,000; its student takes as many steps over 10x the epochs."""
    s = settings("peers", explicit_flags=("samples_per_class", "optimization_steps"), samples_per_class=500,
                 optimization_steps=200)
    plans, _ = plan_rows(s, "dfkd best,DeepInversion,ZSKD", models.get("resnet20"), models.get("resnet8"), None, "/x")
    di = plans["DeepInversion"]
    best = plans["dfkd best"].distill
    assert (di.optimize["samples_per_class"], di.optimize["optimization_steps"], di.distill) == \
        (50, 2000, dict(best, epochs=300))   # and its student learns as dfkd best's
    assert "samples_per_class" not in plans["ZSKD"].optimize and plans["ZSKD"].distill == best   # ZSKD names no steps
    assert plans["ZSKD"].optimize["optimization_steps"] == 200
    # a budget under one sample a class at 2,000 steps: one sample a class at the budget
    assert own_steps_budget(2, 10, 2000, 1) == (1, 20, 2)
    assert own_steps_budget(6400, 200, 2000, 30) == (640, 2000, 300)
    assert own_steps_budget(300, 300, 2000, 10) == (45, 2000, 67)


def test_rows_keeps_the_rows_named_in_their_order():
    plans, generator_rows = plan_rows(settings("paper"), "dfkd best, top_layer,DAFL", models.get("lenet"), models.get("lenet_half"), None, "/x")
    assert list(plans) == [presets.BEST_ROW, "top_layer"] and generator_rows == ["DAFL"]


def test_an_unknown_row_is_one_line_with_the_choices():
    with pytest.raises(UserError, match=r"^--rows: 'spectral_all_layers' is not a row of --preset=paper for lenet; "
                                        r"choose from top_layer, all_layers, dfkd best"):
        plan_rows(settings("paper"), "spectral_all_layers", models.get("lenet"), models.get("lenet_half"), "no graph", "/x")


def test_an_explicit_step_count_reaches_every_reconstruction_row():
    s = settings("paper", explicit_flags=("optimization_steps",), optimization_steps=7)
    plans, _ = plan_rows(s, "", models.get("lenet"), models.get("lenet_half"), "no graph", "/x")
    assert {p.optimize["optimization_steps"] for p in plans.values()} == {7}


def test_the_table_is_written_once_with_its_settings_line(tmp_path, capsys):
    from experiments.stages import Stages
    from experiments.tables import write_table
    teacher, student = models.get("hinton1200"), models.get("hinton800")
    cfg = type("Cfg", (), dict(dataset="mnist", model_checkpoint="", rng_seed=42, temperature=8.0))()
    stages = Stages(str(tmp_path / "results.json"))
    stages.run("optimize_dataset top_layer", {"optimization_steps": 5}, lambda: {}, lambda r: None)
    s = dict(preset="tiny", best_distill=dict(lr=0.002))
    trained = {"hinton1200": {"test_accuracy": 0.9}, "hinton800": {"test_accuracy": 0.8}}
    made = {"top_layer": {"teacher_agreement": 0.5, "samples": 20}}
    distilled = {"vanilla KD": {"test_accuracy": 0.85}, "top_layer": {"test_accuracy": 0.6}}
    capsys.readouterr()
    table = write_table(cfg, teacher, student, s, trained, made, distilled, stages, str(tmp_path), show=False)
    assert capsys.readouterr().out == ""   # rows written as they finish say nothing; the last table speaks
    assert [r["row"] for r in table] == ["teacher", "student trained on data", "vanilla KD", "top_layer"]
    assert table[-1]["synthesis_sample_steps"] == 100 and table[-1]["test_accuracy"] == 60.0
    text = (tmp_path / "results.md").read_text()
    assert "Settings: preset=tiny best_distill=(lr=0.002) rng_seed=42 temperature=8" in text
    write_table(cfg, teacher, student, s, trained, made, distilled, stages, str(tmp_path), show=True)
    out = capsys.readouterr().out
    assert out.count("wrote ") == 1 and "| top_layer | 60.00 |" in out


def test_reproduce_refuses_a_dataset_that_is_not_real_in_one_line(tmp_path):
    from procedures import reproduce
    from tests.conftest import make_cfg
    with pytest.raises(UserError, match="^--dataset: reproduce needs a real dataset"):
        reproduce.run(make_cfg(procedure="reproduce", dataset="noise", summary_folder=str(tmp_path)))
