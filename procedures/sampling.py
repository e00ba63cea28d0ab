"""Drawing layer activations from the recorded per-class Gaussians.

A multivariate draw is mean + z @ L.T with L the Cholesky factor of the covariance
(computed once, in float64, with a ridge where the covariance is singular); layers
recorded with a diagonal only draw mean + z * std.
"""
import sys

import numpy as np


def cholesky_with_ridge(cov):
    """(L, ridge): lower-triangular L with L L^T = cov + ridge*I, the ridge grown from 0 until it works."""
    cov = np.asarray(cov, np.float64)
    scale = max(float(np.mean(np.diag(cov))), 1e-12)
    for ridge in [0.0] + [scale * 10.0 ** k for k in range(-8, 1)]:
        try:
            return np.linalg.cholesky(cov + ridge * np.eye(len(cov))), ridge
        except np.linalg.LinAlgError:
            continue
    raise ValueError("covariance cannot be factorized even with a ridge")


class LayerSampler:
    """Per-class Gaussian of one layer."""

    def __init__(self, mean, std, cov=None, name=""):
        self.mean = np.asarray(mean, np.float64)          # [C, D]
        self.std = np.asarray(std, np.float64)            # [C, D]
        self.chol = None
        if cov is not None:
            factors = [cholesky_with_ridge(c) for c in cov]
            self.chol = np.stack([L for L, _ in factors])
            ridged = {k: r for k, (_, r) in enumerate(factors) if r > 0}
            if ridged:
                print(f"warning: covariance of layer {name} is not positive definite for classes "
                      f"{sorted(ridged)}; added a ridge of up to {max(ridged.values()):.3g} to its diagonal",
                      file=sys.stderr)

    def sample(self, labels, rng):
        """One draw per label: [len(labels), D] float32. Vectorized per class."""
        labels = np.asarray(labels)
        z = rng.standard_normal((len(labels), self.mean.shape[1]))
        out = np.empty_like(z)
        for c in np.unique(labels):
            rows = labels == c
            if self.chol is None:
                out[rows] = self.mean[c] + z[rows] * self.std[c]
            else:
                out[rows] = self.mean[c] + z[rows] @ self.chol[c].T
        return out.astype(np.float32)


def layer_samplers(stats, layer_names):
    return {name: LayerSampler(stats.mean(name), stats.std(name), stats.cov(name), name) for name in layer_names}
