"""A grid of reconstructed samples: one row per class, N per row; with a teacher
checkpoint, each sample is titled with the teacher's prediction and confidence;
with --real_dataset, real digits of the same class sit to the right.

Any float32 [N, 784 | 1024] .npy can be viewed: without its .labels.npy the rows
are the teacher's predicted classes when --model is given, else a plain grid.

    python -m viz.view --dataset=summaries/experiment/data/data_optimized_top_layer_experiment.npy \
        [--model=hinton1200 --model_checkpoint=...] [--real_dataset=mnist] [--per_class=8] [--output=x.png]
"""
import argparse
import sys

import numpy as np

from viz import common  # noqa: E402


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help="a .npy of images, e.g. a reconstruction from optimize_dataset")
    p.add_argument("--per_class", type=int, default=8)
    p.add_argument("--model", default="", help="teacher model, with --model_checkpoint, to show its predictions")
    p.add_argument("--model_checkpoint", default="")
    p.add_argument("--real_dataset", default="",
                   help="the real dataset (e.g. mnist, mnist_conv): show real examples alongside")
    p.add_argument("--data_dir", default="")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default="")
    return p.parse_args(argv)


def run(argv=None):
    args = parse(argv)
    if args.per_class <= 0:
        raise common.UserError(f"--per_class must be > 0, got {args.per_class}")
    common.check_teacher_flags(args)
    x, labels, shape = common.load_reconstruction(args.dataset, args.model)
    labels, grouped_by = common.grouping(args, x, labels)
    rng = np.random.default_rng(args.seed)
    if labels is None:  # a plain grid, 10 rows of --per_class
        picked = np.sort(rng.permutation(len(x))[:10 * args.per_class])
        classes = list(range(-(-len(picked) // args.per_class)))
        chosen = {r: picked[r * args.per_class:(r + 1) * args.per_class] for r in classes}
    else:
        classes = sorted(set(labels.tolist()))
        chosen = {c: rng.permutation(np.flatnonzero(labels == c))[:args.per_class] for c in classes}
    probs = None
    if args.model:
        rows = np.concatenate(list(chosen.values()))
        probs = dict(zip(rows.tolist(), common.teacher_predictions(args.model, args.model_checkpoint, x[rows])))
    if args.real_dataset and labels is None:
        raise common.UserError("--real_dataset needs classes to pair with: give the .labels.npy or --model")
    real = common.real_images(args.real_dataset, args.data_dir) if args.real_dataset else None
    cols = args.per_class + (args.per_class if real is not None else 0)
    cell = 64
    height = len(classes) * (cell + 14) + 50
    fig = common.figure(cols * cell + 80, height)
    grid = fig.add_gridspec(len(classes), cols, left=80 / fig.bbox.width, right=0.99, top=1 - 50 / height,
                            bottom=0.01,
                            wspace=0.05, hspace=0.35)
    for r, c in enumerate(classes):
        for k, row in enumerate(chosen[c]):
            ax = fig.add_subplot(grid[r, k])
            common.show(ax, x[row], shape)
            if probs is not None:
                p = probs[int(row)]
                ax.set_title(f"{int(np.argmax(p))} {p.max():.2f}", fontsize=7,
                             color="green" if int(np.argmax(p)) == c else "red", pad=1)
            if k == 0 and labels is not None:
                ax.set_ylabel(f"class {c}", rotation=0, labelpad=30, fontsize=9, va="center")
        if real is not None:
            rx, ry = real
            for k, row in enumerate(rng.permutation(np.flatnonzero(ry == c))[:args.per_class]):
                ax = fig.add_subplot(grid[r, args.per_class + k])
                common.show(ax, rx[row], shape, cmap="Blues_r")
    title = f"reconstructed (clipped to [0, 1]); rows: {grouped_by}" + (" | real (blue)" if real is not None else "")
    if probs is not None:
        title += "\nabove each: teacher's prediction, confidence"
    fig.suptitle(title, fontsize=8)
    return common.save(fig, args.output or common.beside(args.dataset, "view"))


if __name__ == "__main__":
    sys.exit(common.main_guard(run))
