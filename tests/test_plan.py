"""reproduce's row planning, a pure function: which rows a preset, --rows and a teacher give."""
import pytest

import models
from experiments import presets
from experiments.plan import plan_rows
from utils.errors import UserError


def settings(preset, **overrides):
    cfg = type("Cfg", (), {"preset": preset, "explicit_flags": (), **overrides})()
    return presets.settings_for(cfg)


def test_the_paper_preset_plans_every_objective_the_teacher_can_run_then_dfkd_best():
    plans, generator_rows = plan_rows(settings("paper"), "", models.get("hinton1200"), None, "/x")
    assert list(plans) == list(presets.OBJECTIVES) + [presets.BEST_ROW] and generator_rows == []
    assert plans["top_layer"].optimize == {"optimization_steps": 1000}
    best = plans[presets.BEST_ROW]
    assert best.objective == presets.BEST["objective"] and best.distill == presets.BEST["distill"]
    assert best.optimize["summary_folder"] == "/x" and best.optimize["optimization_steps"] == 200


def test_a_teacher_without_dropout_or_graph_loses_those_rows():
    plans, _ = plan_rows(settings("paper"), "", models.get("lenet"), "no graph", "/x")
    assert list(plans) == ["top_layer", "all_layers", presets.BEST_ROW]


def test_the_peers_preset_adds_the_later_methods_and_the_generators():
    plans, generator_rows = plan_rows(settings("peers"), "", models.get("hinton1200"), None, "/x")
    assert list(plans) == ["spectral_layer_pairs", presets.BEST_ROW] + list(presets.PEERS)
    assert generator_rows == list(presets.GENERATOR_ROWS)
    assert plans["DeepInversion"].optimize["jitter"] == 2


def test_rows_keeps_the_rows_named_in_their_order():
    plans, generator_rows = plan_rows(settings("paper"), "dfkd best, top_layer,DAFL", models.get("lenet"), None, "/x")
    assert list(plans) == [presets.BEST_ROW, "top_layer"] and generator_rows == ["DAFL"]


def test_an_unknown_row_is_one_line_with_the_choices():
    with pytest.raises(UserError, match=r"^--rows: 'spectral_all_layers' is not a row of --preset=paper for lenet; "
                                        r"choose from top_layer, all_layers, dfkd best"):
        plan_rows(settings("paper"), "spectral_all_layers", models.get("lenet"), "no graph", "/x")


def test_an_explicit_step_count_reaches_every_reconstruction_row():
    s = settings("paper", explicit_flags=("optimization_steps",), optimization_steps=7)
    plans, _ = plan_rows(s, "", models.get("lenet"), "no graph", "/x")
    assert {p.optimize["optimization_steps"] for p in plans.values()} == {7}
