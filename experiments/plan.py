"""Which rows a reproduce run makes, and with which options: a pure function of the preset's settings,
--rows and the teacher, so the table's shape is tested without running anything."""
from typing import NamedTuple

import generators
from experiments.presets import BEST, BEST_ROW, GENERATOR_ROWS, OBJECTIVES, PEERS, best_distill
from reconstruction import objectives
from utils.errors import UserError


class RowPlan(NamedTuple):
    objective: str
    optimize: dict   # optimize_dataset's flags beyond the run's
    distill: dict    # distill's flags beyond the run's


def own_steps_budget(samples_per_class, steps, own_steps, distill_epochs):
    """(samples a class, steps, distill epochs) of a row whose authors optimize each sample for `own_steps`:
    the table's sample-steps (samples_per_class x steps) spent at those steps on fewer samples, and a student
    that takes as many steps as the other rows' over proportionally more epochs. A budget under one sample
    a class at its steps gets one sample a class at the budget's steps."""
    own = min(own_steps, samples_per_class * steps)
    per_class = max(1, round(samples_per_class * steps / own))
    return per_class, own, max(1, round(distill_epochs * samples_per_class / per_class))


def paper_objectives(paper_rows, teacher, no_graph):
    """The paper's objectives this teacher can run: dropout needs a teacher trained with it, the spectral
    ones a graph of its layers (no_graph: why there is none). A preset's own list keeps its first."""
    possible = [o for o in OBJECTIVES
                if not (objectives.get(o).dropout_masks and not any(l.dropout > 0 for l in teacher.weighted_layers))
                and not (objectives.get(o).spectral and no_graph)]
    if paper_rows is not True:
        possible = [next(o for o in paper_rows if o in possible)]
    return possible


def plan_rows(settings, rows_flag, teacher, student, no_graph, extra_folder, natural_images=False):
    """({row: RowPlan} of the reconstruction rows in the order they run, [generator rows]). settings: the
    preset's (experiments.presets.settings_for); rows_flag: --rows, '' for every row of the preset;
    extra_folder: where the rows beyond the paper keep their reconstructions; natural_images: the dataset's
    kind (datasets.natural_images), which some later methods' options depend on."""
    plans = {}
    if settings["paper_rows"]:
        for objective in paper_objectives(settings["paper_rows"], teacher, no_graph):
            plans[objective] = RowPlan(objective, dict(optimization_steps=settings["optimization_steps"]), {})
    plans[BEST_ROW] = RowPlan(BEST["objective"], dict(BEST["optimize"],
                                                      optimization_steps=settings["best_optimization_steps"],
                                                      summary_folder=extra_folder,
                                                      run_name=BEST_ROW.replace(" ", "_")), best_distill(teacher, student))
    chosen = [r.strip() for r in rows_flag.split(",") if r.strip()]
    for row, (objective, options, natural) in PEERS.items():   # in --preset=peers, or where --rows names them
        if settings.get("peer_rows") or row in chosen:
            options = {**options, **(natural if natural_images else {}), "summary_folder": extra_folder,
                       "run_name": row, "optimization_steps": settings["optimization_steps"]}
            # Its student learns as dfkd best's does, so that the rows beyond the paper differ in their samples
            # alone: DeepInversion's 500 samples at 2,000 steps on the ResNet fashion pair gave 24.42 with
            # distill's defaults and 79.81 (two seeds) with dfkd best's student (notes/2026-12-07-resnet-gap.md,
            # "DeepInversion's row").
            distill = best_distill(teacher, student)
            own_steps = objectives.get(objective).defaults.get("optimization_steps")
            if own_steps:   # DeepInversion: its authors' 2,000 steps, on the samples the table's budget buys
                per_class, steps, epochs = own_steps_budget(settings["samples_per_class"],
                                                            settings["optimization_steps"], own_steps,
                                                            settings["distill_epochs"])
                options.update(samples_per_class=per_class, optimization_steps=steps)
                distill["epochs"] = epochs
            plans[row] = RowPlan(objective, options, distill)
    # The field's generator methods this teacher can run (Fast reads BatchNorm statistics); --rows may name
    # the others, and dfkd's own metadata generator.
    methods = {r: generators.METHODS[GENERATOR_ROWS[r]] for r in GENERATOR_ROWS}
    possible = [r for r, m in methods.items() if m.in_peers and (teacher.has_batchnorm or not m.needs_batchnorm)]
    generator_rows = [r for r in (GENERATOR_ROWS if chosen else possible)
                      if (r in chosen if chosen else settings.get("peer_rows"))]
    if chosen:   # a part of the grid, e.g. what a time-limited session can finish, in the order given
        unknown = [r for r in chosen if r not in plans and r not in GENERATOR_ROWS]
        if unknown:
            raise UserError(f"--rows: {', '.join(map(repr, unknown))} is not a row of --preset={settings['preset']} "
                            f"for {teacher.name}; choose from {', '.join(list(plans) + list(GENERATOR_ROWS))}")
        plans = {row: plans[row] for row in dict.fromkeys(chosen) if row not in GENERATOR_ROWS}
    return plans, generator_rows
