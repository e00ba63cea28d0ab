"""Bar chart of student test accuracy per objective, from one or more runs' log.json,
with the teacher, the data-trained student, vanilla KD and noise as reference lines.

    python -m viz.compare_runs --logs=summaries/experiment/log.json,summaries/student_hinton800/log.json \
        [--output=x.png]
"""
import argparse
import json
import re
import sys

from viz import common  # noqa: E402

# Same names as reconstruction/objectives.py (not imported: that would load TensorFlow for a chart).
OBJECTIVES = ("top_layer", "all_layers", "all_layers_dropout", "spectral_all_layers", "spectral_layer_pairs")
LABEL_INSIDE_ABOVE = 15.0   # % accuracy from which a bar is tall enough to hold its value label


def objective_of(dataset):
    """data_optimized_<objective>_<run>.npy -> objective (or the file stem if it is not one)."""
    stem = re.sub(r"\.npy$", "", dataset.split("/")[-1])
    for name in sorted(OBJECTIVES, key=len, reverse=True):
        if stem.startswith(f"data_optimized_{name}_"):
            return name
    return stem


def read_logs(paths):
    entries = []
    for path in paths:
        try:
            with open(path) as f:
                log = json.load(f)
            procedures = log["procedures"]
        except FileNotFoundError:
            raise common.UserError(f"--logs: file not found: {path}")
        except (ValueError, KeyError, TypeError):
            raise common.UserError(f"--logs: {path} is not a dfkd log.json")
        for name, entry in procedures.items():
            entries.append((name, entry.get("flags", {}), entry.get("results", {})))
    return entries


def collect(entries):
    """(bars {label: accuracy}, references {label: accuracy}, title) from log entries."""
    bars, refs, teachers, students = {}, {}, set(), set()
    for name, flags, results in entries:
        if name.startswith("distill/") and "test_accuracy" in results:
            teachers.add(flags.get("model"))
            students.add(flags.get("student_model"))
            dataset = flags.get("dataset", "")
            if dataset in ("mnist", "mnist_conv"):
                refs["vanilla KD"] = results["test_accuracy"]
            elif dataset == "noise":
                refs["KD on noise"] = results["test_accuracy"]
            else:
                bars[objective_of(dataset)] = results["test_accuracy"]
    for name, flags, results in entries:
        if name.split("/")[0] == "train" and "test_accuracy" in results:
            if flags.get("model") in teachers:
                refs["teacher"] = results["test_accuracy"]
            elif flags.get("model") in students:
                refs["student trained on data"] = results["test_accuracy"]
    if not bars and not refs:
        raise common.UserError("--logs: no distill results found (run --procedure=distill first)")
    title = f"{'/'.join(sorted(t for t in teachers if t))} -> {'/'.join(sorted(s for s in students if s))}"
    return bars, refs, title


def plot(bars, refs, title, output, paper=None, announce=True):
    """paper: {bar label: the paper's accuracy}, drawn as a grey bar beside ours where it has one."""
    order = [o for o in OBJECTIVES if o in bars] + sorted(k for k in bars if k not in OBJECTIVES)
    paper = {k: v for k, v in (paper or {}).items() if k in bars and v is not None}
    fig = common.figure(900, 500)
    ax = fig.add_axes([0.08, 0.22, 0.62, 0.68])
    width = 0.4 if paper else 0.8
    groups = [("ours", bars, "tab:blue", "white", -width / 2 if paper else 0.0)]   # bar colour, label colour inside it
    if paper:
        groups.append(("paper (64,000 samples)", paper, "silver", "black", width / 2))
    for label, values, color, inside_color, shift in groups:
        xs = [i + shift for i, k in enumerate(order) if k in values]
        heights = [100 * values[k] for k in order if k in values]
        ax.bar(xs, heights, width, color=color, label=label if paper else None)
        for x, v in zip(xs, heights):
            # Inside the top of a tall bar: above it, the label would sit on the teacher's line.
            inside = v >= LABEL_INSIDE_ABOVE
            ax.text(x, v - 1.0 if inside else v + 0.5, f"{v:.2f}", ha="center", va="top" if inside else "bottom",
                    fontsize=7 if paper else 8, color=inside_color if inside else "black",
                    zorder=3)
    styles = {"teacher": ("black", "-"), "student trained on data": ("green", "--"),
              "vanilla KD": ("navy", ":"), "KD on noise": ("red", "-.")}
    for label, acc in refs.items():
        color, linestyle = styles.get(label, ("gray", ":"))
        ax.axhline(100 * acc, color=color, linestyle=linestyle, label=f"{label} {100 * acc:.2f}")
    ax.set_xlim(-0.6, max(len(order), 3) - 0.4)   # a bar keeps its width when there are few
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels(order, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("student test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return common.save(fig, output, announce)


def run(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--logs", required=True, help="comma-separated log.json paths")
    p.add_argument("--output", default="")
    args = p.parse_args(argv)
    paths = [x for x in args.logs.split(",") if x]
    bars, refs, title = collect(read_logs(paths))
    return plot(bars, refs, title, args.output or common.beside(paths[0], "compare"))


if __name__ == "__main__":
    sys.exit(common.main_guard(run))
