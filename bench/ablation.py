"""Tables of single options, each row measured on its own through the real CLI.

    python -m bench.ablation --teacher_run=paper10k_hinton [--row_set=recipe|spectral] [--rows=name,name]
                             [--samples_per_class=1000] [--optimization_steps=N] [--epochs=30]

--row_set=recipe (default): beyond the paper, each option of optimize_dataset and distill
(200 Adam steps unless --optimization_steps). --row_set=spectral: the evidence for the
spectral objectives, every --spectral_reading and both --loss_form values next to the
layer-wise rows (the paper's 1,000 steps unless --optimization_steps).

--teacher_run is a finished `--procedure=reproduce` run: its results.json names the
teacher checkpoint, the metadata and the pair. Every row runs the real CLI
(`python main.py ...`), so the table's commands are exactly what produced its
numbers. A reconstruction is shared by every row with the same optimize_dataset
flags, and a row whose distillation already finished is not run again. Output:
<summary_folder>/<row_set>_<teacher_run>/ablation.md and ablation.json (recipe: ablation_<teacher_run>).
"""
import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from utils import atomic  # noqa: E402

# name -> (optimize_dataset flags, distill flags); the faithful top_layer row is the reference.
TOP = {"optimization_objective": "top_layer"}
BSTATS = {**TOP, "batch_stats_weight": 1.0}
ROWS = {
    "faithful top_layer": (TOP, {}),
    "all_layers": ({"optimization_objective": "all_layers"}, {}),
    "clip pixels": ({**TOP, "clip_inputs": True}, {}),
    "jitter 2": ({**TOP, "jitter": 2}, {}),
    "TV + L2": ({**TOP, "tv_weight": 1e-3, "l2_weight": 1e-4}, {}),
    "batch statistics": (BSTATS, {}),
    "distill: shift 2": (TOP, {"augment_shift": 2}),
    "distill: mixup 1": (TOP, {"mixup_alpha": 1.0}),
    "distill: shift 2 + mixup 1": (TOP, {"augment_shift": 2, "mixup_alpha": 1.0}),
    "distill: shift 1": (TOP, {"augment_shift": 1}),
    "distill: shift 3": (TOP, {"augment_shift": 3}),
    "all_layers + shift 2": ({"optimization_objective": "all_layers"}, {"augment_shift": 2}),
    "batch statistics + shift 2": (BSTATS, {"augment_shift": 2}),
    "batch statistics + jitter + clip": ({**BSTATS, "jitter": 2, "clip_inputs": True}, {}),
    "batch statistics + clip": ({**BSTATS, "clip_inputs": True}, {}),
    "batch statistics + clip + shift 2": ({**BSTATS, "clip_inputs": True}, {"augment_shift": 2}),
    "batch statistics + jitter + clip + shift 2": ({**BSTATS, "jitter": 2, "clip_inputs": True},
                                                   {"augment_shift": 2}),
    "batch statistics + jitter + clip + TV + shift 2": ({**BSTATS, "jitter": 2, "clip_inputs": True,
                                                        "tv_weight": 1e-3, "l2_weight": 1e-4}, {"augment_shift": 2}),
    "batch statistics 10 + shift 2": ({**TOP, "batch_stats_weight": 10.0}, {"augment_shift": 2}),
}

# The spectral evidence: the default reading first, so a partial table already answers the question.
def objective_row(objective, **options):
    return {"optimization_objective": objective, **options}, {}


SPECTRAL_ROWS = {
    "all_layers": objective_row("all_layers"),
    "spectral_all_layers: sampled_full": objective_row("spectral_all_layers", spectral_reading="sampled_full"),
    "spectral_layer_pairs: sampled_full": objective_row("spectral_layer_pairs", spectral_reading="sampled_full"),
    "top_layer": objective_row("top_layer"),
    "spectral_all_layers: sampled_diag": objective_row("spectral_all_layers", spectral_reading="sampled_diag"),
    "spectral_layer_pairs: sampled_diag": objective_row("spectral_layer_pairs", spectral_reading="sampled_diag"),
    "spectral_all_layers: kept_mean": objective_row("spectral_all_layers", spectral_reading="kept_mean"),
    "spectral_layer_pairs: kept_mean": objective_row("spectral_layer_pairs", spectral_reading="kept_mean"),
    "spectral_all_layers: vertex": objective_row("spectral_all_layers", spectral_reading="vertex"),
    "spectral_layer_pairs: vertex": objective_row("spectral_layer_pairs", spectral_reading="vertex"),
    "all_layers (authors' loss)": objective_row("all_layers", loss_form="authors"),
    "top_layer (authors' loss)": objective_row("top_layer", loss_form="authors"),
    "spectral_all_layers (authors' loss)": objective_row("spectral_all_layers", loss_form="authors"),
    "spectral_layer_pairs (authors' loss)": objective_row("spectral_layer_pairs", loss_form="authors"),
    "spectral_all_layers: vertex (authors' loss)": objective_row("spectral_all_layers", spectral_reading="vertex",
                                                                loss_form="authors"),
}
# name -> (rows, options every row of the set shares and the table leaves out, default Adam steps, folder prefix)
ROW_SETS = {"recipe": (ROWS, TOP, 200, "ablation"), "spectral": (SPECTRAL_ROWS, {}, 1000, "spectral")}


def as_flags(options):
    out = []
    for key, value in options.items():
        if value is True:
            out.append(f"--{key}")
        else:
            out.append(f"--{key}={value}")
    return out


def main_py(*flags):
    return [sys.executable, os.path.join(ROOT, "main.py"), *flags]


def read_log(summary_folder, run, procedure):
    """(results, versions) of one procedure of a run, from its log.json."""
    with open(os.path.join(summary_folder, run, "log.json")) as f:
        entry = json.load(f)["procedures"][procedure]
    return entry["results"], entry.get("versions", {})


def run_logged(command, log_file):
    """Runs one CLI command; returns its wall time. Output goes to log_file."""
    print("$ " + " ".join(shlex.quote(c) for c in command), flush=True)
    t0 = time.time()
    with open(log_file, "a") as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    if code != 0:
        sys.exit(f"error: the command above failed (exit {code}); see {log_file}")
    return round(time.time() - t0, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher_run", required=True)
    parser.add_argument("--summary_folder", default="summaries")
    parser.add_argument("--row_set", choices=list(ROW_SETS), default="recipe")
    parser.add_argument("--rows", default="", help="comma-separated row names; default every row of the set")
    parser.add_argument("--samples_per_class", type=int, default=1000)
    parser.add_argument("--optimization_steps", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    rows_of_set, args.shared, default_steps, prefix = ROW_SETS[args.row_set]
    assert not any("," in name for name in rows_of_set), "row names are given comma-separated"
    args.rows = args.rows or ",".join(rows_of_set)
    args.optimization_steps = args.optimization_steps or default_steps

    results_file = os.path.join(args.summary_folder, args.teacher_run, "results.json")
    try:
        with open(results_file) as f:
            finished = json.load(f)
        stages, teacher_name, student_name = finished["stages"], finished["teacher"], finished["student"]
        teacher = stages[f"train {teacher_name}"]["result"]
        stats = stages["compute_stats"]["result"]["stats_file"]
        dataset = stages["compute_stats"]["settings"]["dataset"]
    except (OSError, ValueError, KeyError, TypeError):
        sys.exit(f"error: --teacher_run: {results_file} is not a finished --procedure=reproduce run")
    unknown = [r for r in args.rows.split(",") if r not in rows_of_set]
    if unknown:
        sys.exit(f"error: --rows: unknown {unknown}; choose from {list(rows_of_set)}")

    out_dir = os.path.join(args.summary_folder, f"{prefix}_{args.teacher_run}")
    os.makedirs(out_dir, exist_ok=True)
    log_file = os.path.join(out_dir, "commands.log")
    table_file = os.path.join(out_dir, "ablation.json")
    table = {}
    if os.path.exists(table_file):
        with open(table_file) as f:
            table = json.load(f).get("rows", {})
    teacher_flags = [f"--model={teacher_name}", f"--model_meta={teacher['model_meta']}",
                     f"--model_checkpoint={teacher['model_checkpoint']}", f"--summary_folder={out_dir}"]
    scale = {"samples_per_class": args.samples_per_class, "optimization_steps": args.optimization_steps}

    for name in args.rows.split(","):
        optimize_opts, distill_opts = rows_of_set[name]
        optimize_opts = {**scale, **optimize_opts}
        recon_run = "recon_" + hashlib.sha1(json.dumps(optimize_opts, sort_keys=True).encode()).hexdigest()[:10]
        recon_cmd = main_py("--procedure=optimize_dataset", f"--run_name={recon_run}", *teacher_flags,
                            f"--stats_file={stats}", *as_flags(optimize_opts))
        objective = optimize_opts["optimization_objective"]
        npy = os.path.join(out_dir, recon_run, "data", f"data_optimized_{objective}_{recon_run}.npy")
        distill_run = "distill_" + hashlib.sha1(json.dumps([optimize_opts, distill_opts, args.epochs],
                                                           sort_keys=True).encode()).hexdigest()[:10]
        distill_cmd = main_py("--procedure=distill", f"--run_name={distill_run}", *teacher_flags,
                              f"--student_model={student_name}", f"--dataset={npy}", f"--eval_dataset={dataset}",
                              *as_flags({"epochs": args.epochs, **distill_opts}))
        row = table.get(name)
        if row and row["commands"] == [recon_cmd[1:], distill_cmd[1:]]:
            print(f"[ablation] {name}: done before, {row['test_accuracy']:.2f}%")
            continue
        if not os.path.exists(npy):
            run_logged(recon_cmd, log_file)
        recon, recon_versions = read_log(out_dir, recon_run, f"optimize_dataset/{objective}")
        run_logged(distill_cmd, log_file)
        result, _ = read_log(out_dir, distill_run, f"distill/{os.path.basename(npy)[:-4]}")
        table[name] = {"test_accuracy": round(100 * result["test_accuracy"], 2),
                       "teacher_assigns_intended_class": round(100 * recon["teacher_agreement"], 1),
                       "optimize_seconds": recon["wall_seconds"], "distill_seconds": result["wall_seconds"],
                       # where the reconstruction ran, since its time depends on it
                       "cpu": recon_versions.get("cpu"), "commit": recon_versions.get("commit"),
                       "workers": recon.get("workers", 1),
                       "commands": [recon_cmd[1:], distill_cmd[1:]]}
        print(f"[ablation] {name}: {table[name]['test_accuracy']:.2f}% "
              f"(optimize {recon['wall_seconds']} s, distill {result['wall_seconds']} s)", flush=True)
        atomic.save_json(table_file, {"teacher_run": args.teacher_run, "teacher": teacher_name,
                                      "student": student_name, "scale": {**scale, "epochs": args.epochs},
                                      "rows": table})
    write_markdown(out_dir, args, teacher_name, student_name, table, rows_of_set)


def shown_command(command):
    """python main.py ... with the script path relative to the repository."""
    return " ".join(["python", os.path.relpath(command[0], ROOT)] + [shlex.quote(c) for c in command[1:]])


def write_markdown(out_dir, args, teacher_name, student_name, table, rows_of_set):
    lines = [f"# Ablation: {teacher_name} -> {student_name}, {10 * args.samples_per_class} samples x "
             f"{args.optimization_steps} steps, {args.epochs} distillation epochs", "",
             f"| row | options{' (beyond the faithful top_layer)' if args.shared else ''} | test accuracy (%) | "
             "teacher assigns intended class (%) | optimize (s) | distill (s) |", "|---|---|---|---|---|---|"]
    for name in [n for n in rows_of_set if n in table]:
        r, (optimize_opts, distill_opts) = table[name], rows_of_set[name]
        options = " ".join(as_flags({k: v for k, v in optimize_opts.items() if (k, v) not in args.shared.items()}))
        if distill_opts:
            options += ("; " if options else "") + "distill: " + " ".join(as_flags(distill_opts))
        lines.append(f"| {name} | {options or '(none)'} | {r['test_accuracy']:.2f} | "
                     f"{r['teacher_assigns_intended_class']} | {r['optimize_seconds']} | {r['distill_seconds']} |")
    lines += ["", "Commands:", ""]
    for name in [n for n in rows_of_set if n in table]:
        lines.append(f"- {name}:")
        lines += [f"  `{shown_command(cmd)}`" for cmd in table[name]["commands"]]
    atomic.save_bytes(os.path.join(out_dir, "ablation.md"), ("\n".join(lines) + "\n").encode())
    print("\n".join(lines[:4 + len(table)]))


if __name__ == "__main__":
    main()
