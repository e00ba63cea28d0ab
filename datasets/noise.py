"""Gaussian noise inputs: the honest floor for any data-free method.

The input size comes from the teacher (--model), since noise has no shape of its own."""
import numpy as np

from datasets.base import ArrayDataset


def make(input_shape, count, mean, std, seed, num_classes):
    rng = np.random.default_rng([seed, 7])
    size = int(np.prod(input_shape))
    x = rng.normal(mean, std, (count, size)).astype(np.float32)
    labels = np.zeros(count, np.int64)  # unused: distillation only needs the teacher's outputs
    return ArrayDataset("noise", x, labels, None, None, input_shape=input_shape, num_classes=num_classes)
