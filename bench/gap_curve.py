"""The ResNet gap's curve (issue #59): student accuracy against the number of samples it learns from,
`dfkd best`'s reconstructions beside real training images, from the folders bench/resnet_gap.sh fills.
Whatever has finished is plotted; the rest is left out and named.

    python -m bench.gap_curve --gap_folder=~/dfkd-runs/gap --out=docs/resnet_gap_fashion.png
"""
import argparse
import json
import os
import sys

RECONSTRUCTED = {5000: "rf5k", 20000: "rf20k", 64000: "rf64k"}   # bench/resnet_gap.sh's run names
REAL = {5000: "kd_real_5k", 20000: "kd_real_20k", 60000: "kd_real_60k"}
CLASSES = 10   # Fashion-MNIST's


def reconstructed_point(folder, samples):
    """dfkd best's row of a finished reproduce run of `samples` samples: (accuracy %, assigned %), or None.
    (The larger runs start from a copy of rf5k's folder, whose table is rf5k's until their own is written.)"""
    try:
        with open(os.path.join(folder, "results.json")) as f:
            results = json.load(f)
        table, per_class = results["table"], results["settings"]["samples_per_class"]
    except (OSError, ValueError, KeyError):
        return None
    if per_class * CLASSES != samples:
        return None
    rows = {row["row"]: row for row in table}
    best = rows.get("dfkd best")
    return None if best is None else (best["test_accuracy"], best["teacher_assigns_intended_class"])


def real_point(folder):
    """A distillation on real images: (accuracy %, agreement with the teacher %), or None."""
    try:
        with open(os.path.join(folder, "log.json")) as f:
            (entry,) = json.load(f)["procedures"].values()
    except (OSError, ValueError, KeyError):
        return None
    results = entry["results"]
    return round(100 * results["test_accuracy"], 2), round(100 * results["teacher_agreement"], 2)


def points(gap_folder):
    reconstructed = {n: reconstructed_point(os.path.join(gap_folder, run), n) for n, run in RECONSTRUCTED.items()}
    real = {n: real_point(os.path.join(gap_folder, run)) for n, run in REAL.items()}
    missing = [RECONSTRUCTED[n] for n, p in reconstructed.items() if not p] + \
        [REAL[n] for n, p in real.items() if not p]
    return {n: p for n, p in reconstructed.items() if p}, {n: p for n, p in real.items() if p}, missing


def table(reconstructed, real):
    lines = ["| samples | `dfkd best` reconstructions (%) | teacher assigns (%) | real training images (%) | "
             "agreement with the teacher (%) |", "|---|---|---|---|---|"]
    for n in sorted(set(reconstructed) | set(real)):
        r, k = reconstructed.get(n), real.get(n)
        lines.append(f"| {n:,} | {r[0] if r else ''} | {r[1] if r else ''} | {k[0] if k else ''} | "
                     f"{k[1] if k else ''} |")
    return "\n".join(lines)


def plot(reconstructed, real, teacher, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, series, marker in (("dfkd best, reconstructions", reconstructed, "o"),
                                  ("KD on real training images", real, "s")):
        xs = sorted(series)
        ax.plot(xs, [series[n][0] for n in xs], marker=marker, label=label)
    if teacher is not None:
        ax.axhline(teacher, color="gray", linestyle="--", label=f"teacher ({teacher:.2f}%)")
    ax.set_xscale("log")
    ticks = sorted(set(RECONSTRUCTED) | set(REAL))
    ax.set_xticks(ticks, [f"{n:,}" for n in ticks])
    ax.minorticks_off()
    ax.set_xlabel("samples the student learns from")
    ax.set_ylabel("student test accuracy (%)")
    ax.set_title("resnet20 -> resnet8, fashion_mnist_conv")
    ax.legend(loc="lower right")
    fig.tight_layout()
    partial = f"{out}.partial.png"
    fig.savefig(partial, dpi=100)
    os.replace(partial, out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gap_folder", required=True, help="bench/resnet_gap.sh's summary folder")
    parser.add_argument("--out", help="the PNG to write; none: the table only")
    args = parser.parse_args(argv)
    folder = os.path.expanduser(args.gap_folder)
    if not os.path.isdir(folder):
        sys.exit(f"error: --gap_folder={folder}: no such folder; run bench/resnet_gap.sh first")
    reconstructed, real, missing = points(folder)
    if not reconstructed and not real:
        sys.exit(f"error: --gap_folder={folder}: no finished run of bench/resnet_gap.sh in it")
    print(table(reconstructed, real))
    if missing:
        print(f"not finished yet: {', '.join(missing)}")
    if args.out:
        teacher = reconstructed_teacher(folder)
        plot(reconstructed, real, teacher, args.out)
        print(f"wrote {args.out}")


def reconstructed_teacher(gap_folder):
    try:
        with open(os.path.join(gap_folder, RECONSTRUCTED[5000], "results.json")) as f:
            return {row["row"]: row for row in json.load(f)["table"]}["teacher"]["test_accuracy"]
    except (OSError, ValueError, KeyError):
        return None


if __name__ == "__main__":
    main()
