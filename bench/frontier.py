"""The cost-accuracy frontier (issue #60): each method's student accuracy against the wall time it took
(synthesis plus distillation), at a few sample budgets, all on one teacher.

    python -m bench.frontier --teacher_run=~/dfkd-runs/meta/meta_lenet_fashion --budgets=100,250,500 \\
        [--methods="dfkd best,DeepInversion,DAFL,metadata generator"] [--also_runs=FOLDER,...] \\
        [--out=docs/frontier_lenet_fashion.png]

--teacher_run is a finished `--procedure=reproduce` run: its teacher, metadata, pair, dataset and
vanilla KD row (the ceiling). A budget is reproduce's --samples_per_class; every point runs the real CLI
with the flags reproduce gives that row at that budget (experiments.plan), so its commands are the
table's. --also_runs adds the table rows of reproduce runs on the same teacher (same weights; the
teacher run itself too) as points at their budgets; a point the frontier measured wins over a row of the
same method and budget. Finished points are kept in <teacher_run>/frontier/frontier.json, and a rerun
continues where it stopped. Wall seconds are each procedure's own (log.json), as reproduce's table
counts them, and the picture plots them; on a shared machine they grow with the load. The table also
gives the CPU seconds of the commands an invocation ran itself, which the load barely changes.
"""
import argparse
import json
import os
import resource
import shlex
import sys
from types import SimpleNamespace

from utils.quiet_tf import import_tensorflow

import_tensorflow()   # before the modules below import it, without its start-up lines

import datasets  # noqa: E402
import generators  # noqa: E402
import models  # noqa: E402
from bench.ablation import as_flags, main_py, run_logged  # noqa: E402
from datasets.mnist import default_data_dir  # noqa: E402
from experiments.plan import plan_rows  # noqa: E402
from experiments.presets import BEST_ROW, GENERATOR_ROWS, best_modes, best_on_modes, settings_for  # noqa: E402
from metadata import stats_file  # noqa: E402
from models import checkpoint  # noqa: E402
from procedures.reproduce import generator_row  # noqa: E402
from utils import atomic  # noqa: E402

CEILING = "vanilla KD"
NOT_METHODS = ("teacher", "student trained on data", CEILING, "KD on noise")
# Where a row's folders go: names a shell and a file system take as they are.
SLUG = {ord(" "): "_", ord("("): None, ord(")"): None, ord(","): None, ord("'"): None}


def read_run(folder):
    """(results, stages) of a finished reproduce run, or exits naming what is missing."""
    path = os.path.join(folder, "results.json")
    try:
        with open(path) as f:
            results = json.load(f)
        stages = results["stages"]
        stages["compute_stats"]["result"]["stats_file"]   # noqa: B018 (its metadata must exist)
        return results, stages
    except (OSError, ValueError, KeyError, TypeError):
        sys.exit(f"error: {path} is not a finished --procedure=reproduce run (no table, or no metadata)")


def student_of(results, stages, teacher):
    """The ModelSpec of a reproduce run's student, from the flag its training stage read."""
    flag = stages[f"train {results['student']}"]["settings"]["model"]
    return models.get(flag, "--student_model", channels=teacher.channels, classes=teacher.num_classes)


def teacher_of(results, stages):
    """(ModelSpec, {model, model_meta, model_checkpoint} flags, fingerprint) of a reproduce run's teacher."""
    name = results["teacher"]
    made = stages.get(f"train {name}", stages.get(f"evaluate {name}", {})).get("result")
    if made is None:
        sys.exit(f"error: the reproduce run has no finished teacher stage for {name}")
    flags = dict(model=stages["compute_stats"]["settings"]["model"], model_meta=made.get("model_meta", ""),
                 model_checkpoint=made["model_checkpoint"])
    spec = checkpoint.spec_for(flags["model"], flags["model_checkpoint"])
    return spec, flags, stages["compute_stats"]["settings"]["teacher"]


def table_points(results, source, classes):
    """{(row, samples_per_class): point} of a reproduce run's own table rows."""
    per_class = results["settings"]["samples_per_class"]
    return {(row["row"], per_class): dict(test_accuracy=row["test_accuracy"], seconds=row["wall_seconds"],
                                          samples=per_class * classes, source=source)
            for row in results["table"] if row["row"] not in NOT_METHODS and row["test_accuracy"] is not None}


def point_commands(row, per_class, run, teacher, teacher_flags, stages, out_dir):
    """The CLI commands (lists of flags) that make `row`'s point at `per_class` samples a class, as
    reproduce would run them."""
    dataset = stages["compute_stats"]["settings"]["dataset"]
    settings = settings_for(SimpleNamespace(preset=run["settings"]["preset"], samples_per_class=per_class,
                                            optimization_steps=run["settings"]["optimization_steps"],
                                            explicit_flags=("samples_per_class", "optimization_steps")))
    base = {**teacher_flags, "summary_folder": out_dir}
    tag = f"{row.translate(SLUG)}_{per_class}"
    stats = stages["compute_stats"]["result"]["stats_file"]
    student_flags = dict(student_model=stages[f"train {run['student']}"]["settings"]["model"], eval_dataset=dataset,
                         epochs=settings["distill_epochs"])
    if row in GENERATOR_ROWS:
        epochs, options = generator_row(row, per_class * teacher.num_classes, settings["distill_epochs"], teacher,
                                        SimpleNamespace(dataset=dataset, data_dir=default_data_dir()), stats)
        distill = {**base, **student_flags, "run_name": tag, "epochs": epochs, **options}
        return [main_py("--procedure=distill", *as_flags(distill))]
    plans, _ = plan_rows(settings, row, teacher, student_of(run, stages, teacher), "frontier: no paper rows",
                         out_dir, datasets.natural_images(dataset))
    plan = plans[row]
    optimize = {k: v for k, v in plan.optimize.items() if k not in ("summary_folder", "run_name")}
    if row == BEST_ROW:
        modes = best_modes(stats_file.load(stats).counts, per_class)
        if modes > 1:
            stage = stages.get(f"compute_stats modes{modes}", {}).get("result")
            if stage is None:
                sys.exit(f"error: dfkd best at {per_class} samples a class reads {modes} modes a class; "
                         f"--teacher_run has no such metadata (run reproduce at that size first)")
            stats = stage["stats_file"]
            optimize.update(best_on_modes(modes, ()), stats_modes=modes)
    recon = f"recon_{tag}"
    optimize_cmd = main_py("--procedure=optimize_dataset", *as_flags({   # a row may set its own sample count
        **base, "run_name": recon, "optimization_objective": plan.objective, "samples_per_class": per_class,
        "stats_file": stats, **optimize}))
    npy = os.path.join(out_dir, recon, "data", f"data_optimized_{plan.objective}_{recon}.npy")
    distill_cmd = main_py("--procedure=distill", *as_flags({**base, **student_flags, "run_name": tag, "dataset": npy,
                                                             **plan.distill}))
    return [optimize_cmd, distill_cmd]


def logged_result(out_dir, run_name):
    """(results) of the one procedure a run folder's log.json holds."""
    with open(os.path.join(out_dir, run_name, "log.json")) as f:
        (entry,) = json.load(f)["procedures"].values()
    return entry["results"]


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(commands, out_dir, samples):
    """Runs a point's commands (each at most once, so an interrupted point continues); returns its point.
    Its CPU seconds (every core's, user and system) are known where this call ran all of its commands:
    unlike wall time, they barely grow when other work shares the cores."""
    log_file = os.path.join(out_dir, "commands.log")
    seconds, cpu = 0.0, 0.0
    for command in commands:
        run_name = next(c.split("=", 1)[1] for c in command if c.startswith("--run_name="))
        try:
            result = logged_result(out_dir, run_name)
            cpu = None   # finished by an earlier invocation, whose CPU time was not kept
        except (OSError, ValueError, KeyError):
            before = children_cpu_seconds()
            run_logged(command, log_file)
            cpu = None if cpu is None else cpu + children_cpu_seconds() - before
            result = logged_result(out_dir, run_name)
        seconds += result["wall_seconds"]
    return dict(test_accuracy=round(100 * result["test_accuracy"], 2), seconds=round(seconds, 1),
                cpu_seconds=None if cpu is None else round(cpu, 1), samples=samples, source="bench.frontier",
                commands=[c[1:] for c in commands])


def write_table(out_dir, title, ceiling, points):
    # A budget is what dfkd best's samples at the table's steps cost; DeepInversion spends it at its authors'
    # 2,000 steps on fewer samples (experiments.plan.own_steps_budget), a generator on as many generated ones.
    lines = [f"# {title}", "", "| method | sample budget | test accuracy (%) | wall time (s) | CPU time (s) | from |",
             "|---|---|---|---|---|---|", f"| {CEILING} (the ceiling) | the training set | {ceiling['test_accuracy']} | "
             f"{ceiling['seconds']:,.0f} | | {ceiling['source']} |"]
    for (row, _), p in sorted(points.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        cpu = "" if p.get("cpu_seconds") is None else f"{p['cpu_seconds']:,.0f}"
        lines.append(f"| {row} | {p['samples']:,} | {p['test_accuracy']} | {p['seconds']:,.0f} | {cpu} | {p['source']} |")
    commands = [(key, p["commands"]) for key, p in sorted(points.items()) if p.get("commands")]
    if commands:
        lines += ["", "Commands:", ""]
        for (row, per_class), cmds in commands:
            lines.append(f"- {row}, a budget of {points[(row, per_class)]['samples']:,} samples:")
            lines += ["  `python main.py " + " ".join(shlex.quote(flag) for flag in c[1:]) + "`" for c in cmds]
    text = "\n".join(lines) + "\n"
    atomic.save_bytes(os.path.join(out_dir, "frontier.md"), text.encode())
    return text


def plot(title, ceiling, points, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for row in dict.fromkeys(r for r, _ in sorted(points)):
        # in budget order, each point labelled with its sample count: on a shared machine a larger budget
        # can take less wall time than a smaller one
        mine = sorted((p["samples"], p["seconds"], p["test_accuracy"]) for (r, _), p in points.items() if r == row)
        line, = ax.plot([s for _, s, _ in mine], [a for _, _, a in mine], marker="o", label=row)
        for samples, seconds, accuracy in mine:
            ax.annotate(f"{samples / 1000:g}k", (seconds, accuracy), textcoords="offset points", xytext=(4, 4),
                        fontsize=7, color=line.get_color())
    ax.axhline(ceiling["test_accuracy"], color="gray", linestyle="--",
               label=f"{CEILING} ({ceiling['test_accuracy']:.2f}%, {ceiling['seconds']:,.0f} s)")
    ax.set_xscale("log")
    ax.set_xlabel("wall time, synthesis + distillation (s, 2 CPU cores)")
    ax.set_ylabel("student test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    tmp = out + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher_run", required=True)
    parser.add_argument("--budgets", default="", help="samples a class, comma-separated (e.g. 100,250)")
    parser.add_argument("--methods", default="dfkd best,DeepInversion,DAFL,metadata generator")
    parser.add_argument("--also_runs", default="", help="other reproduce runs on the same teacher, comma-separated")
    parser.add_argument("--out", default="", help="the PNG to write (default: <teacher_run>/frontier/frontier.png)")
    args = parser.parse_args(argv)
    folder = os.path.expanduser(args.teacher_run)
    run, stages = read_run(folder)
    teacher, teacher_flags, fingerprint = teacher_of(run, stages)
    try:
        budgets = [int(b) for b in args.budgets.split(",") if b.strip()]
        if any(b < 1 for b in budgets):
            raise ValueError
    except ValueError:
        sys.exit(f"error: --budgets: samples a class as positive whole numbers, comma-separated; got {args.budgets!r}")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    known = [BEST_ROW, "DeepInversion", "ZSKD", *GENERATOR_ROWS]
    unknown = [m for m in methods if m not in known]
    if unknown:
        sys.exit(f"error: --methods: {', '.join(map(repr, unknown))} is not a method here; choose from {', '.join(known)}")
    out_dir = os.path.join(folder, "frontier")
    os.makedirs(out_dir, exist_ok=True)
    state_file = os.path.join(out_dir, "frontier.json")

    rows = {row["row"]: row for row in run["table"]}
    if CEILING not in rows:
        sys.exit(f"error: {folder} has no {CEILING} row, the frontier's ceiling")
    ceiling = dict(test_accuracy=rows[CEILING]["test_accuracy"], seconds=rows[CEILING]["wall_seconds"],
                   source=os.path.basename(folder))
    points = {}
    for other in filter(None, (o.strip() for o in args.also_runs.split(","))):
        other_run, other_stages = read_run(os.path.expanduser(other))
        if teacher_of(other_run, other_stages)[2] != fingerprint:
            sys.exit(f"error: --also_runs: {other} distills another teacher than --teacher_run's")
        points.update(table_points(other_run, os.path.basename(os.path.normpath(other)), teacher.num_classes))
    measured = {}
    if os.path.exists(state_file):
        with open(state_file) as f:
            measured = {(p["row"], p["samples_per_class"]): dict(p, samples=p["samples_per_class"] * teacher.num_classes)
                        for p in json.load(f)["points"]}
    title = f"{teacher.name} -> {run['student']}, {stages['compute_stats']['settings']['dataset']}"
    for per_class in budgets:
        for row in methods:
            if (row, per_class) in measured:
                continue
            if row in GENERATOR_ROWS and generators.METHODS[GENERATOR_ROWS[row]].needs_batchnorm \
                    and not teacher.has_batchnorm:
                print(f"[frontier] {row}: {teacher.name} has no BatchNorm statistics to read; no point")
                continue
            commands = point_commands(row, per_class, run, teacher, teacher_flags, stages, out_dir)
            print(f"[frontier] {row} at {per_class} samples a class", flush=True)
            measured[(row, per_class)] = dict(measure(commands, out_dir, per_class * teacher.num_classes), row=row,
                                              samples_per_class=per_class)
            atomic.save_json(state_file, {"teacher_run": folder, "points": list(measured.values())})
            print(f"[frontier] {row} at {per_class}: {measured[(row, per_class)]['test_accuracy']}% in "
                  f"{measured[(row, per_class)]['seconds']} s", flush=True)
    points.update({key: p for key, p in measured.items() if key[0] in methods})
    print(write_table(out_dir, title, ceiling, points))
    plot(title, ceiling, points, os.path.expanduser(args.out) or os.path.join(out_dir, "frontier.png"))


if __name__ == "__main__":
    main()
