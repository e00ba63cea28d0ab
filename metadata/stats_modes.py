"""--stats_modes: a class recorded as several Gaussians rather than one.

compute_stats splits each class's training examples into modes by k-means on the teacher's
next-to-top layer (each unit standardized within the class), and records every layer's statistics
per mode: the "groups" of the stats file, with group_class naming each group's class. A file
without modes has one group per class. optimize_dataset spreads each class's samples over its
modes in proportion to their training examples; a sample draws its targets from, and its batch
matches the moments of, its mode."""
import numpy as np
from scipy.cluster.vq import kmeans2

KMEANS_ITERATIONS = 50


def split(features, labels, num_classes, modes, seed):
    """features [n, D], labels [n] -> (groups [n], group_class [G]): each class's examples split into
    at most `modes` non-empty k-means clusters, numbered class by class."""
    groups = np.empty(len(labels), np.int64)
    group_class = []
    for c in range(num_classes):
        rows = np.flatnonzero(labels == c)
        f = np.asarray(features[rows], np.float64)
        spread = f.std(axis=0)
        f = (f - f.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
        k = min(modes, len(rows))
        if k > 1:
            _, assigned = kmeans2(f, k, iter=KMEANS_ITERATIONS, minit="++", missing="warn", seed=seed * 1009 + c)
            assigned = np.searchsorted(np.unique(assigned), assigned)   # empty clusters dropped
        else:
            assigned = np.zeros(len(rows), np.int64)
        groups[rows] = len(group_class) + assigned
        group_class += [c] * (int(assigned.max()) + 1 if len(rows) else 0)
    return groups, np.array(group_class, np.int64)

