"""--procedure=reproduce: the paper's MNIST table for one teacher/student pair, in one
resumable command. It calls the same procedures a user runs by hand:

  1. train the teacher and the student on data      3. distill on real data (vanilla KD) and on noise
  2. compute_stats (with graphwise stats; per mode  4. per objective (and the beyond-the-paper recipe,
                                                       BEST, as an extra row): optimize_dataset, then
                                                       distill on that reconstruction
     of each class too, for BEST)                   5. the table: results.md/json/png

Each stage is recorded in summaries/<run>/results.json with the settings it ran
with; a later invocation reuses a stage whose settings match and whose artifact
still loads and validates, and redoes the rest (train and optimize_dataset resume
from their own checkpoints / finished batches).
"""
import copy
import os

import datasets
import generators
import models
import procedures  # the other commands, run through the dispatch main.py uses, never imported
from config import checks, flag_use
from config.flags import DEFAULT_BATCH_SIZE
from datasets import optimized
from experiments.plan import plan_rows
from experiments.presets import (
    BEST,
    BEST_ROW,
    BEYOND_PAPER_OFF,
    GENERATOR_ROWS,
    best_modes,
    best_on_modes,
    settings_for,
)
from experiments.stages import Stages
from experiments.tables import write_table
from generators import dafl
from metadata import spectral, stats_file
from models import checkpoint
from models.spec import to_json
from runtime import resumable
from utils import runlog
from utils.errors import UserError


def derived(cfg, **overrides):
    child = copy.copy(cfg)
    for key, value in overrides.items():
        setattr(child, key, value)
    return child


def pair_of(cfg):
    """(teacher, student) ModelSpecs, checked to fit each other and a real dataset."""
    if cfg.model_checkpoint:
        teacher = checkpoint.spec_for(cfg.model, cfg.model_checkpoint)
    elif models.adapts_to_data(cfg.model) and datasets.is_real(cfg.dataset):   # the ResNets: from the data
        data = datasets.get(cfg.dataset, cfg.data_dir)
        teacher = models.get(cfg.model, channels=datasets.channels(data), classes=data.num_classes)
    else:
        teacher = models.get(cfg.model)
    student = models.get(cfg.student_model, "--student_model", channels=teacher.channels,
                         classes=teacher.num_classes)
    if not datasets.is_real(cfg.dataset):
        raise UserError(f"--dataset: reproduce needs a real dataset (mnist, mnist_conv, fashion_mnist, a folder, an "
                        f".npz...), got {cfg.dataset!r}")
    if teacher.input_size != student.input_size:
        raise UserError(f"--student_model={student.name} takes {student.input_size} inputs but "
                        f"--model={teacher.name} takes {teacher.input_size}")
    return teacher, student


def run(cfg):
    checks.run_name(cfg)
    checks.require(cfg, "model", "student_model", "dataset")
    teacher, student = pair_of(cfg)
    s = settings_for(cfg)
    run_dir = runlog.run_dir(cfg.summary_folder, cfg.run_name)
    checks.writable_folder(run_dir, "--summary_folder")
    stages = Stages(os.path.join(run_dir, "results.json"))
    no_graph = spectral.why_no_graph(teacher)   # why the spectral rows cannot run, or None
    # Rows run as the paper describes unless a row sets an option itself (flag_use.REPRODUCE_SETS).
    base = derived(cfg, model_meta="", model_checkpoint="", stats_file="", num_shards=1, shard_index=0, stats_modes=1,
                   compute_graphwise_stats=not no_graph,
                   train_batch_size=cfg.train_batch_size or DEFAULT_BATCH_SIZE,
                   **BEYOND_PAPER_OFF)

    def checkpoint_valid(spec, key="model_checkpoint"):
        return lambda r: checkpoint.load_teacher_values(spec, r.get("model_meta", ""), r[key])

    def stage(name, procedure, child, still_valid, start_over=None, **artifacts):
        """Runs `procedure` on the child config; its identity: what it reads, and the artifacts named."""
        settings = {**flag_use.identity(procedure, child), **artifacts}
        return stages.run(name, settings, lambda: procedures.get(procedure).run(child), still_valid, start_over)

    if s["paper_rows"] and no_graph:
        print(f"[reproduce] no spectral rows: {teacher.name}: {no_graph}")
    plans, generator_rows = plan_rows(s, cfg.rows, teacher, no_graph, os.path.join(run_dir, "extra_rows"))

    # 1. teacher and student trained on data
    trained = {}
    train_dir = os.path.join(run_dir, "train", "checkpoint")
    if cfg.model_checkpoint:   # a given teacher (imported, or trained elsewhere) is used as it is
        given = checkpoint.load_teacher_values(teacher, cfg.model_meta, cfg.model_checkpoint)
        trained[teacher.name] = stage(
            f"evaluate {teacher.name}", "evaluate", derived(base, procedure="evaluate", model=cfg.model,
                                                            model_meta=cfg.model_meta,
                                                            model_checkpoint=cfg.model_checkpoint),
            lambda r: None, teacher=stats_file.weights_fingerprint(given))
    for spec, flag in ((teacher, cfg.model), (student, cfg.student_model)):   # flag: a name or a model file
        if spec.name in trained:
            continue
        trained[spec.name] = stage(
            f"train {spec.name}", "train", derived(base, procedure="train", model=flag, epochs=s["train_epochs"]),
            checkpoint_valid(spec), lambda spec=spec: resumable.discard(train_dir, spec.name),
            definition=to_json(spec))
    teacher_flags = dict(model=cfg.model, model_meta=trained[teacher.name].get("model_meta", cfg.model_meta),
                         model_checkpoint=trained[teacher.name]["model_checkpoint"])
    values = checkpoint.load_teacher_values(teacher, teacher_flags["model_meta"], teacher_flags["model_checkpoint"])
    fingerprint = stats_file.weights_fingerprint(values)

    # 2. metadata
    def stats_valid(r):
        stats_file.validate(stats_file.load(r["stats_file"]), teacher, cfg.temperature, fingerprint)
    stats = stage("compute_stats", "compute_stats", derived(base, procedure="compute_stats", **teacher_flags),
                  stats_valid, teacher=fingerprint)
    best_stats, modes = stats, 1   # dfkd best's metadata: per mode where its classes and samples allow
    if BEST_ROW in plans:
        modes = best_modes(stats_file.load(stats["stats_file"]).counts, s["samples_per_class"])
        s["best_stats_modes"] = modes   # the table's settings line says which metadata dfkd best read
        s["best_distill"] = BEST["distill"]   # and how its student learns
        if modes > 1:
            best_stats = stage(f"compute_stats modes{modes}", "compute_stats",
                               derived(base, procedure="compute_stats", stats_modes=modes,
                                       compute_graphwise_stats=False, **teacher_flags),
                               stats_valid, teacher=fingerprint)
        plans[BEST_ROW].optimize.update(best_on_modes(modes, getattr(cfg, "explicit_flags", ())))
        s.update(best_optimization_steps=plans[BEST_ROW].optimize["optimization_steps"],
                 best_optimize_batch_order=plans[BEST_ROW].optimize.get("optimize_batch_order", "spread"))

    # 3-4. distillation rows, each in its own folder under the run: the reference rows first, then each
    # reconstruction as soon as it exists, so an interrupted grid has finished whole rows (and a table).
    rows_folder = os.path.join(run_dir, "distill_rows")
    distilled, reconstructions = {}, {}

    def distill_row(row, dataset, epochs, options):
        tag = row.replace(" ", "_")
        child = derived(base, procedure="distill", student_model=cfg.student_model, dataset=dataset, epochs=epochs,
                        eval_dataset=cfg.dataset, summary_folder=rows_folder, run_name=tag,
                        noise_samples=s["samples_per_class"] * teacher.num_classes, **options, **teacher_flags)
        artifacts = dict(teacher=fingerprint, student_definition=to_json(student))
        if row in reconstructions:   # a reconstruction made again is distilled again
            artifacts["reconstruction_written"] = os.stat(dataset).st_mtime_ns
        method = options.get("method")
        artifacts.update(generators.definition_versions(method))   # another generator's row is trained again
        ckpt_dir = os.path.join(rows_folder, tag, "distill", runlog.dataset_tag(method or dataset), "checkpoint")
        distilled[row] = stage(f"distill {row}", "distill", child, checkpoint_valid(student, "student_checkpoint"),
                               lambda: resumable.discard(ckpt_dir, student.name), **artifacts)

    distill_row("vanilla KD", cfg.dataset, s["kd_epochs"], {})
    distill_row("KD on noise", "noise", s["distill_epochs"], {})
    for row, (objective, options, distill_options) in plans.items():
        expected_rows = s["samples_per_class"] * teacher.num_classes

        def npy_valid(r, rows=expected_rows):
            if len(optimized.load(r["output"]).train_x) != rows:
                raise UserError(f"{r['output']} does not hold {rows} samples")
        metadata, row_modes = (best_stats["stats_file"], modes) if row == BEST_ROW else (stats["stats_file"], 1)
        child = derived(base, procedure="optimize_dataset", lr=None, optimization_objective=objective,
                        samples_per_class=s["samples_per_class"], stats_file=metadata, stats_modes=row_modes,
                        **options, **teacher_flags)
        reconstructions[row] = stage(f"optimize_dataset {row}", "optimize_dataset", child, npy_valid,
                                     teacher=fingerprint, stats_written=os.stat(metadata).st_mtime_ns)
        distill_row(row, reconstructions[row]["output"], s["distill_epochs"], distill_options)
        write_table(cfg, teacher, student, s, trained, reconstructions, distilled, stages, run_dir, show=False)

    pixels = pixel_constants(cfg, teacher) if generator_rows else {}
    for row in generator_rows:   # as many samples as a reconstruction row's student sees, in the method's batches
        presented = s["samples_per_class"] * teacher.num_classes * s["distill_epochs"]
        batch = generators.train_batch_size(GENERATOR_ROWS[row], cfg.train_batch_size)
        epochs = -(-presented // (dafl.STEPS_PER_EPOCH * batch))
        distill_row(row, "", epochs, dict(pixels, train_batch_size=batch, method=GENERATOR_ROWS[row]))
        write_table(cfg, teacher, student, s, trained, reconstructions, distilled, stages, run_dir, show=False)

    # 5. the table
    return write_table(cfg, teacher, student, s, trained, reconstructions, distilled, stages, run_dir)


def pixel_constants(cfg, teacher):
    """DAFL's and DFAD's normalization constants as distill's flags: the training pixels' mean and std per
    channel, for a teacher that normalizes no input (one that does carries its own)."""
    if teacher.normalize is not None:
        return {}
    x = datasets.get(cfg.dataset, cfg.data_dir).train_x
    per_channel = x.reshape(len(x), -1, dafl.generator_shape(teacher)[2])
    text = lambda values: ",".join(f"{v:.4f}" for v in values)  # noqa: E731
    return dict(pixel_mean=text(per_channel.mean(axis=(0, 1))), pixel_std=text(per_channel.std(axis=(0, 1))))
