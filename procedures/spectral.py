"""Spectral metadata: the teacher as a graph, its graph Fourier transform, and the
per-class compressed mean activation signals (Lopes et al. 2017, after Sandryhaila & Moura).

Vertices are the units of the recorded layers (every Dense/Conv pre-activation; the
input image is not a vertex, since the signal is the recorded pre-activations). Edges
are the weights between consecutive recorded layers, undirected (A = A^T), so that
A = V diag(lambda) V^T with orthonormal V and the transform is F = V^T.
- A convolution contributes its unrolled connections: each output position is linked
  to each position of its input window, with that kernel weight.
- Pooling rule: a max-pool between two recorded layers links every unit of a pooling
  window to the units that read the pooled value, with the weight they read it with
  (a pooled unit is a unit edge to its window, composed with the next layer's weights).
"""
import time

import numpy as np
import scipy.sparse as sp

from models import builder
from models.spec import Conv, MaxPool
from utils.errors import UserError

MAX_DENSE_VERTICES = 20000   # a dense float64 eigendecomposition of this size needs ~10 GB


def _pool_matrix(in_shape, size):
    """[pooled units, window units] 0/1 matrix of a max-pool of `size`."""
    h, w, c = in_shape
    ho, wo = h // size, w // size
    y, x, ch, i, j = np.meshgrid(np.arange(ho), np.arange(wo), np.arange(c), np.arange(size), np.arange(size),
                                 indexing="ij")
    rows = ((y * wo + x) * c + ch).ravel()
    cols = (((y * size + i) * w + (x * size + j)) * c + ch).ravel()
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(ho * wo * c, h * w * c))


def _conv_matrix(in_shape, kernel):
    """[input units, output units] unrolled VALID stride-1 convolution with weights `kernel`."""
    h, w, cin = in_shape
    k, _, _, cout = kernel.shape
    ho, wo = h - k + 1, w - k + 1
    y, x, i, j, ci, co = np.meshgrid(np.arange(ho), np.arange(wo), np.arange(k), np.arange(k), np.arange(cin),
                                     np.arange(cout), indexing="ij")
    rows = (((y + i) * w + (x + j)) * cin + ci).ravel()
    cols = ((y * wo + x) * cout + co).ravel()
    vals = kernel[i, j, ci, co].ravel().astype(np.float64)
    return sp.csr_matrix((vals, (rows, cols)), shape=(h * w * cin, ho * wo * cout))


def layer_edges(spec, values):
    """{(previous recorded layer, recorded layer): sparse [prev units, units] edge weights}."""
    edges, prev, window = {}, None, None
    for layer, in_shape, out_shape in builder.layer_shapes(spec):
        if isinstance(layer, MaxPool):
            pool = _pool_matrix(in_shape, layer.size)
            window = pool if window is None else pool @ window
            continue
        weights = values[f"{layer.name}/weights"]
        if prev is not None:
            if isinstance(layer, Conv):
                reads = _conv_matrix(in_shape, weights)
            else:
                reads = sp.csr_matrix(weights.astype(np.float64))
            # window maps this layer's inputs back onto the previous recorded layer's units
            edges[(prev, layer.name)] = (reads if window is None else window.T @ reads).tocsr()
        prev, window = layer.name, None
    return edges


def adjacency(spec, values, layers):
    """Symmetric sparse adjacency over the units of `layers` (two or more consecutive recorded layers)."""
    sizes = {n: int(np.prod(s)) for n, s in builder.recorded_shapes(spec).items()}
    offsets = np.cumsum([0] + [sizes[n] for n in layers])
    edges = layer_edges(spec, values)
    blocks = [edges[(layers[k], layers[k + 1])].tocoo() for k in range(len(layers) - 1)]
    rows = np.concatenate([b.row + offsets[k] for k, b in enumerate(blocks)])
    cols = np.concatenate([b.col + offsets[k + 1] for k, b in enumerate(blocks)])
    data = np.concatenate([b.data for b in blocks])
    upper = sp.csr_matrix((data, (rows, cols)), shape=(offsets[-1], offsets[-1]))
    return (upper + upper.T).tocsr()


def graph_basis(A):
    """Eigen-decomposition of a symmetric adjacency: (eigenvalues, V) with orthonormal V."""
    n = A.shape[0]
    if n > MAX_DENSE_VERTICES:
        raise UserError(f"--compute_graphwise_stats: the graph has {n} vertices; a dense eigendecomposition "
                        f"needs {n * n * 8 * 3 / 2 ** 30:.0f} GiB, over the {MAX_DENSE_VERTICES}-vertex limit")
    eigenvalues, V = np.linalg.eigh(A.toarray())
    return eigenvalues, V


def compress(V, signals, keep):
    """Graph Fourier transform of each row of `signals` (F = V^T); keeps the `keep`
    largest-magnitude coefficients. Returns (indices [C, keep], coefficients [C, keep])."""
    spectrum = signals @ V                       # row-wise F s = V^T s
    indices = np.sort(np.argsort(-np.abs(spectrum), axis=1)[:, :keep], axis=1)
    return indices, np.take_along_axis(spectrum, indices, axis=1)


def reconstruct(V, indices, coefficients):
    """Inverse transform of the kept coefficients (the rest zero): [C, vertices]."""
    return np.stack([V[:, idx] @ coef for idx, coef in zip(indices, coefficients)])


def graph_groups(layer_names):
    """The two objectives' graphs: one over all recorded layers, one per consecutive pair."""
    return {"all": list(layer_names),
            **{f"pair{k}": list(layer_names[k:k + 2]) for k in range(len(layer_names) - 1)}}


def compute_graphwise(spec, values, layer_means, fraction, log=print):
    """layer_means: {layer: [C, D] class means (top layer already / T)}. Returns npz-ready arrays."""
    if not 0 < fraction <= 1:
        raise UserError(f"--spectral_fraction must be in (0, 1], got {fraction}")
    arrays = {"graph__fraction": np.float64(fraction)}
    groups = graph_groups(list(layer_means))
    arrays["graph__groups"] = np.array(list(groups), dtype=np.str_)
    for group, layers in groups.items():
        t0 = time.time()
        A = adjacency(spec, values, layers)
        eigenvalues, V = graph_basis(A)
        signals = np.concatenate([np.asarray(layer_means[n], np.float64) for n in layers], axis=1)
        keep = max(1, int(round(fraction * V.shape[0])))
        indices, coefficients = compress(V, signals, keep)
        target = reconstruct(V, indices, coefficients)
        error = np.linalg.norm(target - signals) / max(np.linalg.norm(signals), 1e-12)
        arrays.update({f"graph__{group}__layers": np.array(layers, dtype=np.str_),
                       f"graph__{group}__eigenvalues": eigenvalues,
                       f"graph__{group}__indices": indices.astype(np.int64),
                       f"graph__{group}__coefficients": coefficients,
                       f"graph__{group}__target": target.astype(np.float32)})
        log(f"[compute_stats] graph {group} ({'+'.join(layers)}): {V.shape[0]} vertices, {A.nnz // 2} edges, "
            f"kept {keep} coefficients, relative error of the mean signal {error:.3f}, {time.time() - t0:.1f}s")
    return arrays
