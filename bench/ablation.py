"""Beyond the paper: each option of optimize_dataset and distill measured on its own.

    python -m bench.ablation --teacher_run=paper10k_hinton [--rows=name,name] [--samples_per_class=1000]
                             [--optimization_steps=200] [--epochs=30]

--teacher_run is a finished `--procedure=reproduce` run: its results.json names the
teacher checkpoint, the metadata and the pair. Every row runs the real CLI
(`python main.py ...`), so the table's commands are exactly what produced its
numbers. A reconstruction is shared by every row with the same optimize_dataset
flags, and a row whose distillation already finished is not run again. Output:
summaries/ablation_<teacher_run>/ablation.md and ablation.json.
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
sys.path.insert(0, ROOT)

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


def read_result(summary_folder, run, procedure):
    with open(os.path.join(summary_folder, run, "log.json")) as f:
        return json.load(f)["procedures"][procedure]["results"]


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
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--samples_per_class", type=int, default=1000)
    parser.add_argument("--optimization_steps", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()

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
    unknown = [r for r in args.rows.split(",") if r not in ROWS]
    if unknown:
        sys.exit(f"error: --rows: unknown {unknown}; choose from {list(ROWS)}")

    out_dir = os.path.join(args.summary_folder, f"ablation_{args.teacher_run}")
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
        optimize_opts, distill_opts = ROWS[name]
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
        recon = read_result(out_dir, recon_run, f"optimize_dataset/{objective}")
        run_logged(distill_cmd, log_file)
        result = read_result(out_dir, distill_run, f"distill/{os.path.basename(npy)[:-4]}")
        table[name] = {"test_accuracy": round(100 * result["test_accuracy"], 2),
                       "teacher_assigns_intended_class": round(100 * recon["teacher_agreement"], 1),
                       "optimize_seconds": recon["wall_seconds"], "distill_seconds": result["wall_seconds"],
                       "commands": [recon_cmd[1:], distill_cmd[1:]]}
        print(f"[ablation] {name}: {table[name]['test_accuracy']:.2f}% "
              f"(optimize {recon['wall_seconds']} s, distill {result['wall_seconds']} s)", flush=True)
        atomic.save_json(table_file, {"teacher_run": args.teacher_run, "teacher": teacher_name,
                                      "student": student_name, "scale": {**scale, "epochs": args.epochs},
                                      "rows": table})
    write_markdown(out_dir, args, teacher_name, student_name, table)


def shown_command(command):
    """python main.py ... with the script path relative to the repository."""
    return " ".join(["python", os.path.relpath(command[0], ROOT)] + [shlex.quote(c) for c in command[1:]])


def write_markdown(out_dir, args, teacher_name, student_name, table):
    lines = [f"# Ablation: {teacher_name} -> {student_name}, {10 * args.samples_per_class} samples x "
             f"{args.optimization_steps} steps, {args.epochs} distillation epochs", "",
             "| row | options (beyond the faithful top_layer) | test accuracy (%) | teacher assigns intended "
             "class (%) | optimize (s) | distill (s) |", "|---|---|---|---|---|---|"]
    for name in [n for n in ROWS if n in table]:
        r, (optimize_opts, distill_opts) = table[name], ROWS[name]
        options = " ".join(as_flags({k: v for k, v in optimize_opts.items() if (k, v) not in TOP.items()}))
        if distill_opts:
            options += ("; " if options else "") + "distill: " + " ".join(as_flags(distill_opts))
        lines.append(f"| {name} | {options or '(none)'} | {r['test_accuracy']:.2f} | "
                     f"{r['teacher_assigns_intended_class']} | {r['optimize_seconds']} | {r['distill_seconds']} |")
    lines += ["", "Commands:", ""]
    for name in [n for n in ROWS if n in table]:
        lines.append(f"- {name}:")
        lines += [f"  `{shown_command(cmd)}`" for cmd in table[name]["commands"]]
    atomic.save_bytes(os.path.join(out_dir, "ablation.md"), ("\n".join(lines) + "\n").encode())
    print("\n".join(lines[:4 + len(table)]))


if __name__ == "__main__":
    main()
