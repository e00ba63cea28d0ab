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
from config.flags import BY_NAME, batch_size
from datasets import optimized
from experiments.plan import plan_rows
from experiments.presets import (
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
from reconstruction import objectives
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


def checkpoint_valid(spec, key="model_checkpoint"):
    """A stage's check that its checkpoint still loads as `spec`."""
    return lambda r: checkpoint.load_teacher_values(spec, r.get("model_meta", ""), r[key])


class Grid:
    """One reproduce run: the stages of its table, each run through the same dispatch as main.py's and
    recorded in results.json, so a later invocation reuses what still holds."""

    def __init__(self, cfg):
        checks.run_name(cfg)
        checks.require(cfg, "model", "student_model", "dataset")
        self.cfg = cfg
        self.teacher, self.student = pair_of(cfg)
        self.s = settings_for(cfg)
        self.run_dir = runlog.run_dir(cfg.summary_folder, cfg.run_name)
        checks.writable_folder(self.run_dir, "--summary_folder")
        self.stages = Stages(os.path.join(self.run_dir, "results.json"))
        self.no_graph = spectral.why_no_graph(self.teacher)   # why the spectral rows cannot run, or None
        # Rows run as the paper describes unless a row sets an option itself (flag_use.REPRODUCE_SETS).
        self.base = derived(cfg, model_meta="", model_checkpoint="", stats_file="", num_shards=1, shard_index=0,
                            stats_modes=1, compute_graphwise_stats=not self.no_graph,
                            train_batch_size=batch_size(cfg.train_batch_size), **BEYOND_PAPER_OFF)
        self.trained, self.distilled, self.reconstructions = {}, {}, {}

    def stage(self, name, procedure, child, still_valid, start_over=None, **artifacts):
        """Runs `procedure` on the child config; its identity: what it reads, and the artifacts named."""
        settings = {**flag_use.identity(procedure, child), **artifacts}
        return self.stages.run(name, settings, lambda: procedures.get(procedure).run(child), still_valid,
                               start_over)

    def train_pair(self):
        """1. The teacher (or a given one, evaluated as it is) and the student trained on data."""
        cfg, teacher = self.cfg, self.teacher
        train_dir = os.path.join(self.run_dir, "train", "checkpoint")
        if cfg.model_checkpoint:   # a given teacher (imported, or trained elsewhere) is used as it is
            given = checkpoint.load_teacher_values(teacher, cfg.model_meta, cfg.model_checkpoint)
            self.trained[teacher.name] = self.stage(
                f"evaluate {teacher.name}", "evaluate",
                derived(self.base, procedure="evaluate", model=cfg.model, model_meta=cfg.model_meta,
                        model_checkpoint=cfg.model_checkpoint),
                lambda r: None, teacher=stats_file.weights_fingerprint(given))
        for spec, flag in ((teacher, cfg.model), (self.student, cfg.student_model)):   # a name or a model file
            if spec.name in self.trained:
                continue
            self.trained[spec.name] = self.stage(
                f"train {spec.name}", "train",
                derived(self.base, procedure="train", model=flag, epochs=self.s["train_epochs"]),
                checkpoint_valid(spec), lambda spec=spec: resumable.discard(train_dir, spec.name),
                definition=to_json(spec))
        made = self.trained[teacher.name]
        self.teacher_flags = dict(model=cfg.model, model_meta=made.get("model_meta", cfg.model_meta),
                                  model_checkpoint=made["model_checkpoint"])
        values = checkpoint.load_teacher_values(teacher, self.teacher_flags["model_meta"],
                                                self.teacher_flags["model_checkpoint"])
        self.fingerprint = stats_file.weights_fingerprint(values)

    def record_metadata(self, plans):
        """2. The teacher's metadata: per class, and per mode for dfkd best where its classes allow."""
        def stats_valid(r):
            stats_file.validate(stats_file.load(r["stats_file"]), self.teacher, self.cfg.temperature,
                                self.fingerprint)
        self.stats = self.stage("compute_stats", "compute_stats",
                                derived(self.base, procedure="compute_stats", **self.teacher_flags),
                                stats_valid, teacher=self.fingerprint)
        self.best_stats, self.modes = self.stats, 1
        if BEST_ROW not in plans:
            return
        s = self.s
        self.modes = best_modes(stats_file.load(self.stats["stats_file"]).counts, s["samples_per_class"])
        s["best_stats_modes"] = self.modes   # the table's settings line says which metadata dfkd best read
        s["best_distill"] = plans[BEST_ROW].distill   # and how its student learns
        if self.modes > 1:
            self.best_stats = self.stage(f"compute_stats modes{self.modes}", "compute_stats",
                                         derived(self.base, procedure="compute_stats", stats_modes=self.modes,
                                                 compute_graphwise_stats=False, **self.teacher_flags),
                                         stats_valid, teacher=self.fingerprint)
        best = plans[BEST_ROW].optimize
        best.update(best_on_modes(self.modes, getattr(self.cfg, "explicit_flags", ())))
        s.update(best_optimization_steps=best["optimization_steps"],
                 best_optimize_batch_order=best.get("optimize_batch_order", "spread"))

    def distill_row(self, row, dataset, epochs, options):
        """A student distilled on `dataset` (or a generator method's samples), in the row's own folder."""
        cfg, student = self.cfg, self.student
        tag, rows_folder = row.replace(" ", "_"), os.path.join(self.run_dir, "distill_rows")
        child = derived(self.base, procedure="distill", student_model=cfg.student_model, dataset=dataset,
                        epochs=epochs, eval_dataset=cfg.dataset, summary_folder=rows_folder, run_name=tag,
                        noise_samples=self.s["samples_per_class"] * self.teacher.num_classes)
        child = derived(child, **options, **self.teacher_flags)   # a row's options may set its epochs
        artifacts = dict(teacher=self.fingerprint, student_definition=to_json(student))
        if row in self.reconstructions:   # a reconstruction made again is distilled again
            artifacts["reconstruction_written"] = os.stat(dataset).st_mtime_ns
        method = options.get("method")
        artifacts.update(generators.definition_versions(method))   # another generator's row is trained again
        ckpt_dir = os.path.join(rows_folder, tag, "distill", runlog.dataset_tag(method or dataset), "checkpoint")
        self.distilled[row] = self.stage(f"distill {row}", "distill", child,
                                         checkpoint_valid(student, "student_checkpoint"),
                                         lambda: resumable.discard(ckpt_dir, student.name), **artifacts)

    def reconstruct_row(self, row, plan):
        """A reconstruction row's samples, on its metadata (per mode for dfkd best)."""
        per_class = plan.optimize.get("samples_per_class", self.s["samples_per_class"])
        expected = per_class * self.teacher.num_classes

        def npy_valid(r):
            if len(optimized.load(r["output"]).train_x) != expected:
                raise UserError(f"{r['output']} does not hold {expected} samples")
        metadata, row_modes = (self.best_stats["stats_file"], self.modes) if row == BEST_ROW else \
            (self.stats["stats_file"], 1)
        child = derived(self.base, procedure="optimize_dataset", lr=None, optimization_objective=plan.objective,
                        stats_file=metadata, stats_modes=row_modes,
                        **{**plan.optimize, "samples_per_class": per_class}, **self.teacher_flags)
        # The objective's authors' settings, where the row sets nothing else, as optimize_dataset would take
        # them; settled here, so the stage's identity holds them and optimize_dataset takes nothing more.
        child = objectives.with_defaults(child, objectives.get(plan.objective), set(plan.optimize))
        child.explicit_flags = list(BY_NAME)
        self.reconstructions[row] = self.stage(f"optimize_dataset {row}", "optimize_dataset", child, npy_valid,
                                               teacher=self.fingerprint,
                                               stats_written=os.stat(metadata).st_mtime_ns)
        return self.reconstructions[row]["output"]

    def table(self, show=False):
        return write_table(self.cfg, self.teacher, self.student, self.s, self.trained, self.reconstructions,
                           self.distilled, self.stages, self.run_dir, show=show)

    def run(self):
        s, teacher = self.s, self.teacher
        if s["paper_rows"] and self.no_graph:
            print(f"[reproduce] no spectral rows: {teacher.name}: {self.no_graph}")
        plans, generator_rows = plan_rows(s, self.cfg.rows, teacher, self.student, self.no_graph,
                                          os.path.join(self.run_dir, "extra_rows"),
                                          datasets.natural_images(self.cfg.dataset))
        self.train_pair()
        self.record_metadata(plans)
        # 3-4. the reference rows first, then each reconstruction as soon as it exists, so an interrupted
        # grid has finished whole rows (and a table).
        self.distill_row("vanilla KD", self.cfg.dataset, s["kd_epochs"], {})
        self.distill_row("KD on noise", "noise", s["distill_epochs"], {})
        for row, plan in plans.items():
            self.distill_row(row, self.reconstruct_row(row, plan), s["distill_epochs"], plan.distill)
            self.table()
        for row in generator_rows:
            epochs, options = generator_row(row, s["samples_per_class"] * teacher.num_classes, s["distill_epochs"],
                                            teacher, self.cfg, self.stats["stats_file"], self.cfg.train_batch_size)
            self.distill_row(row, "", epochs, options)
            self.table()
        return self.table(show=True)   # 5. the table


def run(cfg):
    return Grid(cfg).run()


def generator_row(row, samples, distill_epochs, teacher, cfg, stats_path, batch=None):
    """(--epochs, distill's other options) of a generator row whose student sees as many samples as a
    reconstruction row's of `samples` over `distill_epochs`, in the method's batches (or `batch`, given).
    cfg: the dataset and data_dir the pixel constants come from; stats_path: the metadata generator's file."""
    method = GENERATOR_ROWS[row]
    batch = generators.train_batch_size(method, batch)
    budget = generators.row_budget(method, samples, samples * distill_epochs, batch)
    # DAFL's and DFAD's images take the data's pixel constants; Fast's generator makes pixels itself
    pixels = {} if generators.METHODS[method].memory else pixel_constants(cfg, teacher)
    recorded = {"stats_file": stats_path} if generators.METHODS[method].needs_stats else {}
    return budget.pop("epochs"), dict(pixels, train_batch_size=batch, method=method, **recorded, **budget)


def pixel_constants(cfg, teacher):
    """DAFL's and DFAD's normalization constants as distill's flags: the training pixels' mean and std per
    channel, for a teacher that normalizes no input (one that does carries its own)."""
    if teacher.normalize is not None:
        return {}
    x = datasets.get(cfg.dataset, cfg.data_dir).train_x
    per_channel = x.reshape(len(x), -1, dafl.generator_shape(teacher)[2])
    text = lambda values: ",".join(f"{v:.4f}" for v in values)  # noqa: E731
    return dict(pixel_mean=text(per_channel.mean(axis=(0, 1))), pixel_std=text(per_channel.std(axis=(0, 1))))
