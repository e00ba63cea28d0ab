"""Histograms of pixel intensities of a reconstruction, optionally against real data,
overall or per class: does the reconstruction live in the same value range?

    python -m viz.pixel_intensities --dataset=summaries/.../data_optimized_top_layer_experiment.npy \
        [--real_dataset=mnist] [--per_class [--model=hinton1200 --model_checkpoint=...]] [--output=x.png]

--per_class groups by the intended class (the .labels.npy beside the file); a .npy without
labels is grouped by the teacher's prediction when --model is given, else shown overall.
"""
import argparse
import sys

import numpy as np

from viz import common  # noqa: E402


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help="a .npy of images, e.g. a reconstruction from optimize_dataset")
    p.add_argument("--real_dataset", default="", help="the real dataset (e.g. mnist, mnist_conv): overlay real data")
    p.add_argument("--data_dir", default="")
    p.add_argument("--per_class", action="store_true", help="one panel per class instead of one overall")
    p.add_argument("--model", default="", help="teacher model, with --model_checkpoint: classes for a .npy "
                   "without labels")
    p.add_argument("--model_checkpoint", default="")
    p.add_argument("--bins", type=int, default=60)
    p.add_argument("--output", default="")
    return p.parse_args(argv)


def run(argv=None):
    args = parse(argv)
    common.check_teacher_flags(args)
    x, labels, _ = common.load_reconstruction(args.dataset, args.model)
    if args.per_class:
        labels, grouped_by = common.grouping(args, x, labels)
        if labels is None:
            print(f"note: {args.dataset} has no labels and no --model was given; showing all samples together",
                  file=sys.stderr)
    real = common.real_images(args.real_dataset, args.data_dir) if args.real_dataset else None
    if real is not None and real[0].shape[1] != x.shape[1]:
        raise common.UserError(f"--real_dataset={args.real_dataset} is {real[0].shape[1]} wide but "
                               f"{args.dataset} is {x.shape[1]} wide")
    lo = min(float(x.min()), 0.0)
    hi = max(float(x.max()), 1.0)
    bins = np.linspace(lo, hi, args.bins + 1)
    panels = sorted(set(labels.tolist())) if args.per_class and labels is not None else [None]
    cols = min(len(panels), 5)
    rows = -(-len(panels) // cols)
    fig = common.figure(640 if cols == 1 else 300 * cols, 240 * rows + 60)
    for i, c in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        mine = x if c is None else x[labels == c]
        ax.hist(mine.ravel(), bins=bins, density=True, alpha=0.6, label="reconstructed", color="tab:orange")
        if real is not None:
            theirs = real[0] if c is None else real[0][real[1] == c]
            ax.hist(theirs.ravel(), bins=bins, density=True, alpha=0.5, label="real", color="tab:blue")
        ax.set_yscale("log")
        ax.set_title("all classes" if c is None else f"class {c} ({grouped_by})", fontsize=9)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7)
    fig.suptitle(f"pixel intensities (log density), range [{float(x.min()):.2f}, {float(x.max()):.2f}]",
                 fontsize=10)
    fig.subplots_adjust(hspace=0.4, wspace=0.3, top=0.85 if rows == 1 else 0.9)
    return common.save(fig, args.output or common.beside(args.dataset, "pixels"))


if __name__ == "__main__":
    sys.exit(common.main_guard(run))
