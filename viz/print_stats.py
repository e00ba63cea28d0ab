"""A text summary of an activation-stats file.

    python -m viz.print_stats --stats_file=summaries/experiment/stats/activation_stats_experiment.npz
"""
import argparse
import sys

import numpy as np

from viz import common  # noqa: E402


def summary(stats):
    lines = [f"file:          {stats.path}",
             f"format:        version {int(stats.arrays['format_version'])}",
             f"model:         {stats.model} (run {stats.run_name}, weights fingerprint {stats.fingerprint})",
             f"temperature:   {stats.temperature:g} (the top layer holds logits / T)",
             f"classes:       {stats.num_classes}, examples per {'mode' if stats.has_modes else 'class'} "
             f"{stats.counts.tolist()} (total {int(stats.counts.sum())})",
             "layers:"]
    for name in stats.layer_names:
        mean = stats.mean(name)
        lines.append(f"  {name:<8} shape {str(stats.shape(name)):<14} {mean.shape[1]:>5} units  "
                     f"covariance {stats.cov_kind[name]:<4}  mean of means {float(mean.mean()):+.3f}  "
                     f"mean std {float(stats.std(name).mean()):.3f}")
    if stats.has_modes:
        lines.append(f"modes:         {stats.num_groups} (--stats_modes), their classes {stats.group_class.tolist()}")
    if stats.has_graphwise:
        lines.append(f"graphwise:     yes, keeping {float(stats.arrays['graph__fraction']):.0%} of coefficients")
        for group in [str(g) for g in stats.arrays["graph__groups"]]:
            eig = stats.arrays[f"graph__{group}__eigenvalues"]
            kept = stats.arrays[f"graph__{group}__kept"].shape[1]
            lines.append(f"  {group:<6} {'+'.join(stats.graph_layers(group)):<32} {len(eig)} vertices, {kept} "
                         f"kept, eigenvalues [{float(np.min(eig)):.3g}, {float(np.max(eig)):.3g}]")
    else:
        lines.append("graphwise:     no (compute_stats --compute_graphwise_stats adds them)")
    return "\n".join(lines)


def run(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stats_file", required=True)
    args = p.parse_args(argv)
    from metadata import stats_file
    text = summary(stats_file.load(args.stats_file))
    print(text)
    return text


if __name__ == "__main__":
    sys.exit(common.main_guard(run))
