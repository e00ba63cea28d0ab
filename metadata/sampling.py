"""Per-class Gaussians: their moments from examples, and draws from them.

One path serves every objective: a layer's activations (layer-wise objectives) and a
graph's kept spectral coefficients (spectral objectives) are both drawn here.
A multivariate draw is mean + z @ L.T with L the Cholesky factor of the covariance
(computed once, in float64, with a ridge where the covariance is singular); a
diagonal Gaussian draws mean + z * std, and a zero std gives the mean itself.
"""
import sys

import numpy as np


def moments(acts, full_cov):
    """acts [n, D] -> mean, std, cov (or None), two-pass in float64 for stability."""
    a = np.asarray(acts, np.float64)
    mean = a.mean(axis=0)
    centered = a - mean
    denom = max(len(a) - 1, 1)
    if full_cov:
        cov = centered.T @ centered / denom
        std = np.sqrt(np.clip(np.diag(cov), 0, None))
    else:
        cov = None
        std = np.sqrt((centered ** 2).sum(axis=0) / denom)
    return mean, std, cov


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


def cholesky_factors(cov, name):
    """[C, D, D] covariances -> [C, D, D] Cholesky factors and [C] ridges; warns where a ridge was needed."""
    factors = [cholesky_with_ridge(c) for c in cov]
    ridges = np.array([r for _, r in factors])
    if (ridges > 0).any():
        print(f"warning: covariance of {name} is not positive definite for groups "
              f"{np.flatnonzero(ridges > 0).tolist()} (classes, or modes of a --stats_modes file); added a ridge "
              f"of up to {ridges.max():.3g} to its diagonal", file=sys.stderr)
    return np.stack([L for L, _ in factors]), ridges


class GaussianSampler:
    """Per-class Gaussian: mean [C, D] with either a Cholesky factor chol [C, D, D] or a std [C, D]."""

    def __init__(self, mean, std, chol=None):
        self.mean = np.asarray(mean, np.float64)
        self.std = np.asarray(std, np.float64)
        self.chol = None if chol is None else np.asarray(chol, np.float64)

    @classmethod
    def from_covariance(cls, mean, std, cov=None, name=""):
        """A recorded layer: full covariance where one was recorded, else diagonal."""
        return cls(mean, std, None if cov is None else cholesky_factors(cov, f"layer {name}")[0])

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
    return {name: GaussianSampler.from_covariance(stats.mean(name), stats.std(name), stats.cov(name), name)
            for name in layer_names}
