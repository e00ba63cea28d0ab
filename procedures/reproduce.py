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
import json
import os
import time

import datasets
import models
from datasets import optimized
from models import checkpoint
from models.spec import to_json
import procedures
from procedures import checks, dafl, distill, flag_use, generator_methods, resumable, spectral, stats_file
from procedures import objectives as objectives_registry
from procedures.priors import Priors
from utils import atomic, runlog
from utils.errors import UserError

PRESETS = {
    # The paper's scale: 10-epoch teachers, 64,000 samples x 1,000 steps, 30-epoch distillation.
    "paper": dict(train_epochs=10, samples_per_class=6400, optimization_steps=1000, distill_epochs=30,
                  kd_epochs=10),
    # Minutes on 2 CPU cores; small reconstructions, same ordering of the methods.
    "quick": dict(train_epochs=10, samples_per_class=300, optimization_steps=300, distill_epochs=10,
                  kd_epochs=2),
    # Beyond the paper: only the reference rows and the best recipe (BEST), at full size.
    "best": dict(train_epochs=10, samples_per_class=6400, optimization_steps=200, distill_epochs=30,
                 kd_epochs=10, paper_rows=False),
    # The later methods beside the paper's best objective and dfkd best, one sample budget for all.
    "peers": dict(train_epochs=10, samples_per_class=6400, optimization_steps=200, distill_epochs=30,
                  kd_epochs=10, paper_rows=("spectral_layer_pairs", "all_layers"), peer_rows=True),
}
# The later data-free methods (issue #32), as rows: objective and optimize_dataset options. DeepInversion
# sees its batch jittered and flipped, as its authors' code does; both keep pixels in [0, 1].
PEERS = {"DeepInversion": ("deep_inversion", dict(jitter=2, flip=True, clip_inputs=True)),
         "ZSKD": ("zskd", dict(clip_inputs=True))}
# DAFL and DFAD train their generators inside distillation (procedures/dafl.py, dfad.py); their students
# see as many generated samples as the other rows' students see reconstructed ones over their epochs.
GENERATOR_ROWS = {"DAFL": "dafl", "DFAD": "dfad"}   # row -> distill's --dataset
# Beyond the paper (issue #10): the best combination bench/ablation.py measured; every preset
# adds it as an extra row. It runs its own, shorter optimization (200 steps reach the accuracy
# of 1,000 on per-class metadata: see README; 400 at 16 modes), unless --optimization_steps is given.
BEST_ROW = "dfkd best"
BEYOND_PAPER_OFF = dict(Priors()._asdict(), augment_shift=0, augment_flip=False, mixup_alpha=0.0, boundary_steps=0,
                        boundary_step_size=0.03, student_average=0.0)
BEST = dict(objective="top_layer", optimization_steps=200,
            optimize=dict(batch_stats_weight=1.0, clip_inputs=True),
            # Twice distill's default rate, and the average of the student's steps: on Fashion-MNIST lenet
            # +0.54 and +0.145 on four seeds' mean, the ResNet pair +0.155, the MNIST pairs within their
            # seeds (results.md, "The student's rate and its average").
            distill=dict(augment_shift=2, lr=0.002, student_average=0.999),
            # Metadata per mode of each class (--stats_modes): 16 modes measured on classes of 5,421-6,742
            # examples and 6,400 samples a class (results.md, "Modes"); fewer modes where a class has under
            # 300 examples or the reconstruction under 400 samples a mode (5,000 samples lost 2.6 points).
            stats_modes=16, examples_per_mode=300, samples_per_mode=400,
            # At the full 16 modes a class, where a spread batch of 640 holds about 4 samples of each of 160
            # modes: batches of whole modes, so the batch-statistics term matches each mode on hundreds of
            # samples, and twice the steps to close that match. On Fashion-MNIST lenet +0.35 on four seeds'
            # mean, on MNIST within the seeds (results.md, "Reconstruction steps and grouped batches"). At
            # fewer modes (the ResNet pair's 2 at 1,000 samples a class: 32 a batch) it is not measured.
            modes_optimize=dict(optimize_batch_order="grouped", optimization_steps=400), modes_optimize_from=16)
# Which explicit flag overrides which preset value.
OVERRIDES = {"epochs": "distill_epochs", "samples_per_class": "samples_per_class",
             "optimization_steps": "optimization_steps"}
OBJECTIVES = objectives_registry.PAPER_OBJECTIVES   # the paper's rows
PAPER_DATASETS = ("mnist", "mnist_conv")   # the paper's numbers are MNIST's; other datasets get no paper column
PAPER = {  # test accuracy (%) from Lopes et al. 2017, Tables 1 and 2
    ("hinton1200", "hinton800"): {"teacher": 96.95, "student trained on data": 95.70, "vanilla KD": 95.74,
                                  "top_layer": 68.75, "all_layers": 76.38, "all_layers_dropout": 76.23,
                                  "spectral_all_layers": 89.41, "spectral_layer_pairs": 91.24},
    ("lenet", "lenet_half"): {"teacher": 98.91, "student trained on data": 98.65, "vanilla KD": 98.91,
                              "top_layer": 77.30, "all_layers": 85.61, "spectral_all_layers": 90.28,
                              "spectral_layer_pairs": 92.47},
}

# Each later method's own published number on a pair dfkd also has (keyed by the data without its
# layout suffix); their teachers differ from ours, so results.md names each source and its teacher.
PEERS_PUBLISHED = {
    ("mnist", "lenet", "lenet_half"): {"ZSKD": 98.77, "DAFL": 98.20, "DFAD": 98.3},
    ("mnist", "hinton1200", "hinton800"): {"DAFL": 97.91},
    ("fashion_mnist", "lenet", "lenet_half"): {"ZSKD": 79.62},
}
PUBLISHED_SOURCES = {
    "ZSKD": "ZSKD: Nayak et al. 2019 (teacher 99.34 on MNIST, 90.84 on Fashion-MNIST)",
    "DAFL": "DAFL: Chen et al. 2019 (teacher 98.91 lenet, 98.39 hinton1200)",
    "DFAD": "DFAD: Fang et al. 2019",
}


def published(dataset, teacher, student):
    """{row: test accuracy (%)} that papers report for this pair: Lopes et al.'s rows on MNIST, and
    the later methods' own numbers where their papers have the pair."""
    numbers = dict(PAPER.get((teacher, student), {})) if dataset in PAPER_DATASETS else {}
    family = dataset.removesuffix("_conv")
    numbers.update(PEERS_PUBLISHED.get((family, teacher, student), {}))
    return numbers


def published_sources(dataset, teacher, student, rows):
    """The line under a table that names where its later methods' published numbers come from, or None."""
    numbers = published(dataset, teacher, student)
    sources = [PUBLISHED_SOURCES[row] for row in rows if row in PUBLISHED_SOURCES and row in numbers]
    if not sources:
        return None
    lopes = ["Lopes et al. 2017 for the reference rows and the paper's objectives"] \
        if dataset in PAPER_DATASETS and (teacher, student) in PAPER else []
    return ("Paper: " + "; ".join(lopes + sources) +
            ". The later methods' released scripts keep the student of the best test epoch.")


def settings_for(cfg):
    preset = cfg.preset or "paper"
    if preset not in PRESETS:
        raise UserError(f"--preset: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    chosen = dict(PRESETS[preset], preset=preset)
    chosen.setdefault("paper_rows", True)
    chosen["best_optimization_steps"] = BEST["optimization_steps"]
    for flag, key in OVERRIDES.items():
        if flag in getattr(cfg, "explicit_flags", ()):
            chosen[key] = getattr(cfg, flag)
            if flag == "optimization_steps":
                chosen["best_optimization_steps"] = cfg.optimization_steps
    return chosen


class Stages:
    """results.json: what each stage ran with and produced; reused when both still hold.

    A stage's settings are every flag value its procedure reads (procedures/flag_use.py) plus
    fingerprints of the artifacts it reads, so any change that can change its result redoes it."""

    def __init__(self, path):
        self.path = path
        self.state, self.table = {}, {}   # table: the last table written, kept beside the stages
        self.visited = set()   # this invocation's stages: others stay on file for later reuse, off its table
        if os.path.exists(path):
            try:
                with open(path) as f:
                    saved = json.load(f)
                self.state = saved.pop("stages", {})
                self.table = saved
            except (OSError, ValueError):
                print(f"[reproduce] {path} is unreadable; redoing every stage")

    def run(self, name, settings, work, still_valid, start_over=None):
        """start_over: removes the stage's own checkpoints, so that a stage begun (or finished) with other
        settings is not resumed from them."""
        settings = json.loads(json.dumps(settings))   # as results.json reads back
        self.visited.add(name)
        record = self.state.get(name)
        if record and record["settings"] == settings and "result" in record:
            try:
                still_valid(record["result"])
                print(f"[reproduce] {name}: reusing the finished result")
                return record["result"]
            except (UserError, OSError, KeyError) as e:
                print(f"[reproduce] {name}: the saved artifact does not hold up ({e}); redoing it")
        if record and record["settings"] != settings and start_over:
            changed = sorted(k for k in set(settings) | set(record["settings"])
                             if settings.get(k) != record["settings"].get(k))
            print(f"[reproduce] {name}: settings changed ({', '.join(changed)}); starting it over")
            start_over()
        print(f"[reproduce] {name}: running")
        self.state[name] = {"settings": settings}   # begun: a later run with other settings starts over
        self.save()
        t0 = time.time()
        result = work()
        # A stage resumed from an earlier invocation's pieces counts their time too.
        seconds = time.time() - t0 + result.get("earlier_pieces_seconds", 0)
        self.state[name] = {"settings": settings, "result": result, "wall_seconds": round(seconds, 1)}
        self.save()
        return result

    def save(self, **table):
        self.table = table or self.table
        atomic.save_json(self.path, {"stages": self.state, **self.table})


def derived(cfg, **overrides):
    child = copy.copy(cfg)
    for key, value in overrides.items():
        setattr(child, key, value)
    return child


def run(cfg):
    checks.run_name(cfg)
    checks.require(cfg, "model", "student_model", "dataset")
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
    s = settings_for(cfg)
    run_dir = runlog.run_dir(cfg.summary_folder, cfg.run_name)
    checks.writable_folder(run_dir, "--summary_folder")
    stages = Stages(os.path.join(run_dir, "results.json"))
    no_graph = spectral.why_no_graph(teacher)   # why the spectral rows cannot run, or None
    # Rows run as the paper describes unless a row sets an option itself (flag_use.REPRODUCE_SETS).
    base = derived(cfg, model_meta="", model_checkpoint="", stats_file="", num_shards=1, shard_index=0, stats_modes=1,
                   compute_graphwise_stats=not no_graph,
                   train_batch_size=generator_methods.train_batch_size(cfg.dataset, cfg.train_batch_size),
                   **BEYOND_PAPER_OFF)

    def checkpoint_valid(spec, key="model_checkpoint"):
        return lambda r: checkpoint.load_teacher_values(spec, r.get("model_meta", ""), r[key])

    def stage(name, procedure, child, still_valid, start_over=None, **artifacts):
        """Runs `procedure` on the child config; its identity: what it reads, and the artifacts named."""
        settings = {**flag_use.identity(procedure, child), **artifacts}
        return stages.run(name, settings, lambda: procedures.get(procedure).run(child), still_valid, start_over)

    # What each data-free row runs: the paper's objectives, then the extra (beyond the paper) row.
    plans = {}  # row -> (objective, optimize_dataset flags, distill flags)
    if s["paper_rows"]:
        if no_graph:
            print(f"[reproduce] no spectral rows: {teacher.name}: {no_graph}")
        possible = [o for o in OBJECTIVES if not (o == "all_layers_dropout" and not any(
            l.dropout > 0 for l in teacher.weighted_layers)) and not (objectives_registry.get(o).spectral and no_graph)]
        if s["paper_rows"] is not True:   # the preset's choice: the first of its list this teacher can run
            possible = [next(o for o in s["paper_rows"] if o in possible)]
        for objective in possible:
            plans[objective] = (objective, dict(optimization_steps=s["optimization_steps"]), {})
    plans[BEST_ROW] = (BEST["objective"], dict(BEST["optimize"], optimization_steps=s["best_optimization_steps"],
                                               summary_folder=os.path.join(run_dir, "extra_rows"),
                                               run_name=BEST_ROW.replace(" ", "_")), BEST["distill"])
    chosen = [r.strip() for r in cfg.rows.split(",") if r.strip()] if cfg.rows else []
    for row, (objective, options) in PEERS.items():   # in --preset=peers, or where --rows names them
        if s.get("peer_rows") or row in chosen:
            plans[row] = (objective, dict(options, optimization_steps=s["optimization_steps"],
                                          summary_folder=os.path.join(run_dir, "extra_rows"), run_name=row), {})
    # --rows: only the rows it names
    generator_rows = [r for r in GENERATOR_ROWS if (r in chosen if cfg.rows else s.get("peer_rows"))]
    if cfg.rows:   # a part of the grid, e.g. what a time-limited session can finish
        unknown = [r for r in chosen if r not in plans and r not in GENERATOR_ROWS]
        if unknown:
            raise UserError(f"--rows: {', '.join(map(repr, unknown))} is not a row of --preset={s['preset']} for "
                            f"{teacher.name}; choose from {', '.join(list(plans) + list(GENERATOR_ROWS))}")
        plans = {row: plans[row] for row in dict.fromkeys(chosen) if row not in GENERATOR_ROWS}   # in the order given

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
        plans[BEST_ROW][1].update(best_on_modes(modes, getattr(cfg, "explicit_flags", ())))
        s.update(best_optimization_steps=plans[BEST_ROW][1]["optimization_steps"],
                 best_optimize_batch_order=plans[BEST_ROW][1].get("optimize_batch_order", "spread"))

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
        artifacts.update(distill.definition_versions(dataset))   # another generator's row is trained again
        ckpt_dir = os.path.join(rows_folder, tag, "distill", distill.dataset_tag(dataset), "checkpoint")
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
        batch = generator_methods.train_batch_size(GENERATOR_ROWS[row], cfg.train_batch_size)
        epochs = -(-presented // (dafl.STEPS_PER_EPOCH * batch))
        distill_row(row, GENERATOR_ROWS[row], epochs, dict(pixels, train_batch_size=batch))
        write_table(cfg, teacher, student, s, trained, reconstructions, distilled, stages, run_dir, show=False)

    # 5. the table
    return write_table(cfg, teacher, student, s, trained, reconstructions, distilled, stages, run_dir)


def best_on_modes(modes, explicit_flags):
    """dfkd best's reconstruction options beyond BEST["optimize"] at `modes` modes a class; a given
    --optimization_steps still rules."""
    if modes < BEST["modes_optimize_from"]:
        return {}
    return {k: v for k, v in BEST["modes_optimize"].items() if not (k == "optimization_steps" and k in explicit_flags)}


def best_modes(class_counts, samples_per_class):
    """How many modes a class dfkd best's metadata records: BEST's, fewer where the smallest class
    cannot give each mode examples_per_mode examples or the reconstruction samples_per_mode samples;
    1 (per class) below two modes' worth."""
    return max(1, min(BEST["stats_modes"], int(min(class_counts)) // BEST["examples_per_mode"],
                      samples_per_class // BEST["samples_per_mode"]))


def pixel_constants(cfg, teacher):
    """DAFL's and DFAD's normalization constants as distill's flags: the training pixels' mean and std per
    channel, for a teacher that normalizes no input (one that does carries its own)."""
    if teacher.normalize is not None:
        return {}
    x = datasets.get(cfg.dataset, cfg.data_dir).train_x
    per_channel = x.reshape(len(x), -1, dafl.generator_shape(teacher)[2])
    text = lambda values: ",".join(f"{v:.4f}" for v in values)  # noqa: E731
    return dict(pixel_mean=text(per_channel.mean(axis=(0, 1))), pixel_std=text(per_channel.std(axis=(0, 1))))


def write_table(cfg, teacher, student, s, trained, reconstructions, distilled, stages, run_dir, show=True):
    paper = published(cfg.dataset, teacher.name, student.name)
    wall = {name: rec["wall_seconds"] for name, rec in stages.state.items()
            if "wall_seconds" in rec and name in stages.visited}
    teacher_row = "teacher (given, not trained)" if cfg.model_checkpoint else "teacher"
    rows = [(teacher_row, trained[teacher.name]["test_accuracy"],
             wall.get(f"evaluate {teacher.name}" if cfg.model_checkpoint else f"train {teacher.name}"), None),
            ("student trained on data", trained[student.name]["test_accuracy"], wall.get(f"train {student.name}"),
             None)]
    for row, result in distilled.items():
        made = reconstructions.get(row)
        agreement = made["teacher_agreement"] if made else None
        # The steps its stage ran with (results recorded by older versions do not name them).
        sample_steps = made["samples"] * stages.state[f"optimize_dataset {row}"]["settings"]["optimization_steps"] \
            if made else result.get("generated_samples")
        seconds = (wall.get(f"distill {row}") or 0) + (wall.get(f"optimize_dataset {row}") or 0)
        rows.append((row, result["test_accuracy"], seconds, agreement, sample_steps))
    order = [teacher_row, "student trained on data", "vanilla KD", "KD on noise"] + list(OBJECTIVES) + [BEST_ROW] + \
        list(PEERS) + list(GENERATOR_ROWS)
    rows = [r + (None,) * (5 - len(r)) for r in rows]
    rows.sort(key=lambda r: order.index(r[0]) if r[0] in order else len(order))
    table = [{"row": name, "test_accuracy": round(100 * acc, 2), "paper": paper.get(name),
              "wall_seconds": seconds, "teacher_assigns_intended_class": None if agree is None else
              round(100 * agree, 1), "synthesis_sample_steps": steps} for name, acc, seconds, agree, steps in rows]
    blank = lambda v: "" if v is None else v  # noqa: E731
    lines = [f"# {teacher.name} -> {student.name} on {cfg.dataset} (preset {s['preset']})", "",
             f"Settings: {s}; seed {cfg.rng_seed}; temperature {cfg.temperature:g}.",
             "Protocol: every student is the last epoch's; none is chosen on test data.", "",
             "| row | test accuracy (%) | paper (%) | reconstructed samples the teacher assigns to their class (%) "
             "| synthesis (sample-steps; DAFL, DFAD: generated samples) | wall time (s) |", "|---|---|---|---|---|---|"]
    for r in table:
        steps = r["synthesis_sample_steps"]
        lines.append(f"| {r['row']} | {r['test_accuracy']:.2f} | {blank(r['paper'])} | "
                     f"{blank(r['teacher_assigns_intended_class'])} | {'' if steps is None else f'{steps:,}'} | "
                     f"{'' if r['wall_seconds'] is None else round(r['wall_seconds'])} |")
    sources = published_sources(cfg.dataset, teacher.name, student.name, [r["row"] for r in table])
    if sources:
        lines += ["", sources]
    lines += ["", "Stage wall times (s): " + ", ".join(f"{k} {v}" for k, v in wall.items()), ""]
    markdown = "\n".join(lines)
    atomic.save_bytes(os.path.join(run_dir, "results.md"), markdown.encode())
    stages.save(table=table, settings=s, teacher=teacher.name, student=student.name)
    from viz import compare_runs
    bars = {r["row"]: r["test_accuracy"] / 100 for r in table
            if r["row"] in OBJECTIVES + (BEST_ROW,) + tuple(PEERS) + tuple(GENERATOR_ROWS)}
    refs = {r["row"]: r["test_accuracy"] / 100 for r in table if r["row"] not in bars}
    compare_runs.plot(bars, refs, f"{teacher.name} -> {student.name} ({s['preset']})",
                      os.path.join(run_dir, "results.png"),
                      paper={r["row"]: r["paper"] / 100 for r in table if r["paper"] is not None})
    if show:
        print(markdown)
    return table
