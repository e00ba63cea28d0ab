"""Pictures of an activation-stats file: per layer, a heatmap of the per-class mean
activations and the covariance of one class (or its diagonal), plus the graph
spectra (eigenvalues) when graphwise stats are present.

    python -m viz.stats_viz --stats_file=summaries/experiment/stats/activation_stats_experiment.npz \
        [--cov_class=0] [--output=x.png]
"""
import argparse
import sys

import numpy as np

from viz import common  # noqa: E402

MAX_COV_PIXELS = 400  # large covariances are shown block-averaged to this many rows


def block_average(matrix, size):
    n = matrix.shape[0]
    if n <= size:
        return matrix
    step = -(-n // size)
    pad = step * size - n
    m = np.pad(matrix, ((0, pad), (0, pad)))
    return m.reshape(size, step, size, step).mean(axis=(1, 3))


def run(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stats_file", required=True)
    p.add_argument("--cov_class", type=int, default=0)
    p.add_argument("--output", default="")
    args = p.parse_args(argv)
    from metadata import stats_file
    stats = stats_file.load(args.stats_file)
    # A --stats_modes file has a row per mode; --cov_class then names a mode.
    row_kind = "mode" if stats.has_modes else "class"
    if not 0 <= args.cov_class < stats.num_groups:
        raise common.UserError(f"--cov_class must be in 0..{stats.num_groups - 1} (a {row_kind}), got {args.cov_class}")
    shown_row = f"{row_kind} {args.cov_class}" + (f" (class {stats.group_class[args.cov_class]})"
                                                  if stats.has_modes else "")
    groups = [str(g) for g in stats.arrays["graph__groups"]] if stats.has_graphwise else []
    rows = len(stats.layer_names) + (1 if groups else 0)
    fig = common.figure(1000, 260 * rows + 40)
    grid = fig.add_gridspec(rows, 2, width_ratios=[2.2, 1], hspace=0.55, wspace=0.25, top=0.95, bottom=0.04,
                            left=0.07, right=0.97)
    for r, name in enumerate(stats.layer_names):
        ax = fig.add_subplot(grid[r, 0])
        im = ax.imshow(stats.mean(name), aspect="auto", cmap="coolwarm", interpolation="nearest")
        ax.set_title(f"{name}: per-{row_kind} mean pre-activation ({stats.mean(name).shape[1]} units)", fontsize=9)
        ax.set_ylabel(row_kind, fontsize=8)
        ax.tick_params(labelsize=7)
        fig.colorbar(im, ax=ax, fraction=0.03)
        ax = fig.add_subplot(grid[r, 1])
        cov = stats.cov(name)
        if cov is not None:
            shown = block_average(cov[args.cov_class].astype(np.float64), MAX_COV_PIXELS)
            im = ax.imshow(shown, cmap="magma", interpolation="nearest")
            ax.set_title(f"covariance, {shown_row}" + (" (block-averaged)" if len(cov[0]) >
                                                                    MAX_COV_PIXELS else ""), fontsize=9)
            fig.colorbar(im, ax=ax, fraction=0.046)
        else:
            ax.plot(stats.std(name)[args.cov_class] ** 2, lw=0.5)
            ax.set_title(f"variance (diagonal only), class {args.cov_class}", fontsize=9)
        ax.tick_params(labelsize=7)
    if groups:
        ax = fig.add_subplot(grid[rows - 1, :])
        for group in groups:
            eig = np.sort(stats.arrays[f"graph__{group}__eigenvalues"])
            ax.plot(np.linspace(0, 1, len(eig)), eig, label=f"{group} ({len(eig)} vertices)")
        ax.set_title("graph spectra: sorted adjacency eigenvalues", fontsize=9)
        ax.set_xlabel("eigenvalue rank (fraction)", fontsize=8)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=7)
    return common.save(fig, args.output or common.beside(args.stats_file, "stats"))


if __name__ == "__main__":
    sys.exit(common.main_guard(run))
