"""Spectral metadata: the teacher as a graph, its graph Fourier transform, and per class
the kept (largest) coefficients of the activation signal with their spread over the
class's examples (Lopes et al. 2017, after Sandryhaila & Moura).

Vertices are the units of the recorded layers (every Dense/Conv pre-activation; the
input image is not a vertex, since the signal is the recorded pre-activations). Edges
are the weights between consecutive recorded layers, undirected (A = A^T), so that
A = V diag(lambda) V^T with orthonormal V and the transform is F = V^T.
- A convolution contributes its unrolled connections: each output position is linked
  to each position of its input window, with that kernel weight.
- Pooling rule: a max-pool between two recorded layers links every unit of a pooling
  window to the units that read the pooled value, with the weight they read it with
  (a pooled unit is a unit edge to its window, composed with the next layer's weights).
  An average pool is the same with edges of 1 / size^2, the weight it really applies.
"""
import time

import numpy as np
import scipy.sparse as sp

from models import builder
from models.spec import POOLS, BatchNorm, Conv, GlobalAvgPool, MaxPool, ReLU, Residual
from procedures import sampling
from utils.errors import UserError

MAX_DENSE_VERTICES = 20000   # a dense float64 eigendecomposition of this size needs ~10 GB


def _pool_matrix(in_shape, size, weight):
    """[pooled units, window units] matrix of a pool of `size`: each pooled unit linked to its window
    with `weight` (1 for a max-pool, 1 / size^2 for an average pool)."""
    h, w, c = in_shape
    ho, wo = h // size, w // size
    y, x, ch, i, j = np.meshgrid(np.arange(ho), np.arange(wo), np.arange(c), np.arange(size), np.arange(size),
                                 indexing="ij")
    rows = ((y * wo + x) * c + ch).ravel()
    cols = (((y * size + i) * w + (x * size + j)) * c + ch).ravel()
    return sp.csr_matrix((np.full(len(rows), float(weight)), (rows, cols)), shape=(ho * wo * c, h * w * c))


def _conv_matrix(in_shape, kernel, conv):
    """[input units, output units] unrolled convolution (its stride and padding) with weights `kernel`;
    a window position in the zero padding links to nothing."""
    h, w, cin = in_shape
    k, _, _, cout = kernel.shape
    ho, wo = builder.conv_out(h, conv), builder.conv_out(w, conv)
    top, left = builder.same_padding_before(h, conv), builder.same_padding_before(w, conv)
    y, x, i, j, ci, co = np.meshgrid(np.arange(ho), np.arange(wo), np.arange(k), np.arange(k), np.arange(cin),
                                     np.arange(cout), indexing="ij")
    row_in, col_in = y * conv.stride + i - top, x * conv.stride + j - left
    inside = ((row_in >= 0) & (row_in < h) & (col_in >= 0) & (col_in < w)).ravel()
    rows = ((row_in * w + col_in) * cin + ci).ravel()[inside]
    cols = ((y * wo + x) * cout + co).ravel()[inside]
    vals = kernel[i, j, ci, co].ravel().astype(np.float64)[inside]
    return sp.csr_matrix((vals, (rows, cols)), shape=(h * w * cin, ho * wo * cout))


def _reads(layer, in_shape, weights):
    """[input units, output units]: how a Dense/Conv layer's pre-activation reads its (flattened) input."""
    if isinstance(layer, Conv):
        return _conv_matrix(in_shape, weights, layer)
    return sp.csr_matrix(weights.astype(np.float64))


def affine_maps(spec, values):
    """{recorded layer: (M, b)}: its pre-activation as an affine function of its flattened input,
    s = h @ M + b, with M sparse [input units, units] and b [units] (a convolution's bias tiled)."""
    maps = {}
    for layer, in_shape, out_shape in builder.layer_shapes(spec):
        if not isinstance(layer, POOLS):
            bias = np.asarray(values[f"{layer.name}/biases"], np.float64)
            maps[layer.name] = (_reads(layer, in_shape, values[f"{layer.name}/weights"]).tocsr(),
                                np.tile(bias, int(np.prod(out_shape)) // len(bias)))
    return maps


def layer_edges(spec, values):
    """{(previous recorded layer, recorded layer): sparse [prev units, units] edge weights}."""
    edges, prev, window = {}, None, None
    for layer, in_shape, out_shape in builder.layer_shapes(spec):
        if isinstance(layer, POOLS):
            pool = _pool_matrix(in_shape, layer.size, 1.0 if isinstance(layer, MaxPool) else 1.0 / layer.size ** 2)
            window = pool if window is None else pool @ window
            continue
        if prev is not None:
            reads = _reads(layer, in_shape, values[f"{layer.name}/weights"])
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


def why_no_graph(spec):
    """Why the spectral objectives cannot run on `spec` (its whole graph too large, or a layer the graph
    cannot represent yet), or None where they can."""
    vertices = sum(int(np.prod(shape)) for shape in builder.recorded_shapes(spec).values())
    if vertices > MAX_DENSE_VERTICES:
        return (f"its spectral graph has {vertices:,} vertices, over the {MAX_DENSE_VERTICES:,}-vertex limit of a "
                "dense eigendecomposition")
    for name, layer, _, _ in builder.walk(spec):
        pool_ok = not isinstance(layer, POOLS) or (layer.stride in (None, layer.size) and layer.padding == "VALID")
        conv_ok = not isinstance(layer, Conv) or (layer.bias and not layer.pads)
        if isinstance(layer, (BatchNorm, Residual, GlobalAvgPool, ReLU)) or not pool_ok or not conv_ok:
            kind = type(layer).__name__
            return (f"its layer {name or kind} ({kind}) is not in the spectral graph's vocabulary yet (chains of "
                    "Dense, Conv with biases and VALID/SAME padding, and pools of stride = window)")
    return None


class GraphwiseRecorder:
    """The spectral metadata, recorded in compute_stats' one pass over the training set.

    Before the pass: each graph's basis V (an eigendecomposition of its adjacency). During
    it, per class: the kept coefficients (the `fraction` largest in magnitude of the class's
    mean signal, as the paper compresses it) and their mean, std and covariance over the
    class's examples, from which optimize_dataset draws one target per sample."""

    def __init__(self, spec, values, layer_names, fraction, log=print):
        reason = why_no_graph(spec)
        if reason:
            raise UserError(f"--compute_graphwise_stats: {spec.name}: {reason}; the other objectives take this model")
        if len(layer_names) < 2:
            raise UserError("--compute_graphwise_stats: the spectral graphs link consecutive Dense/Conv layers; "
                            f"this model has {len(layer_names)}")
        self.fraction, self.log = fraction, log
        self.graphs, self.classes = {}, {}
        for group, layers in graph_groups(list(layer_names)).items():
            t0 = time.time()
            A = adjacency(spec, values, layers)
            eigenvalues, V = graph_basis(A)
            keep = max(1, int(round(fraction * V.shape[0])))
            self.graphs[group] = dict(layers=layers, eigenvalues=eigenvalues, V=V, keep=keep)
            self.classes[group] = []
            log(f"[compute_stats] graph {group} ({'+'.join(layers)}): {V.shape[0]} vertices, {A.nnz // 2} edges, "
                f"eigendecomposition {time.time() - t0:.1f}s; keeping {keep} coefficients per class")
        self.pairs = [g for g in self.graphs if g.startswith("pair")]
        self.pairs_cov = []

    def record(self, acts):
        """acts: {layer: [n, D]} one class's recorded activations (its classes in order, one call each)."""
        coefficients_of = {}
        for group, g in self.graphs.items():
            signals = np.concatenate([np.asarray(acts[n], np.float64) for n in g["layers"]], axis=1)
            mean_signal = signals.mean(axis=0, keepdims=True)
            kept, kept_of_mean = compress(g["V"], mean_signal, g["keep"])
            coefficients = signals @ g["V"][:, kept[0]]
            mean, std, cov = sampling.moments(coefficients, full_cov=True)
            error = np.linalg.norm(reconstruct(g["V"], kept, kept_of_mean) - mean_signal) / max(
                np.linalg.norm(mean_signal), 1e-12)
            self.classes[group].append(dict(kept=kept[0], mean=mean, std=std, cov=cov, error=error))
            coefficients_of[group] = coefficients
        # The pairs share layers, so their targets are drawn together: one covariance over all their
        # kept coefficients (independent draws would give a shared layer two unrelated targets).
        if self.pairs:
            pairs = np.concatenate([coefficients_of[g] for g in self.pairs], axis=1)
            self.pairs_cov.append(sampling.moments(pairs, full_cov=True)[2])

    def arrays(self):
        """npz-ready members (see procedures/stats_file.py)."""
        arrays = {"graph__fraction": np.float64(self.fraction),
                  "graph__groups": np.array(list(self.graphs), dtype=np.str_)}
        for group, g in self.graphs.items():
            classes = self.classes[group]
            kept = np.stack([c["kept"] for c in classes]).astype(np.int64)
            columns = np.unique(kept)                       # store only the eigenvectors some class keeps
            chol, _ = sampling.cholesky_factors(np.stack([c["cov"] for c in classes]),
                                                f"graph {group}'s kept coefficients")
            arrays.update({f"graph__{group}__layers": np.array(g["layers"], dtype=np.str_),
                           f"graph__{group}__eigenvalues": g["eigenvalues"],
                           f"graph__{group}__columns": columns,
                           f"graph__{group}__basis": g["V"][:, columns].astype(np.float32),
                           f"graph__{group}__kept": kept,
                           f"graph__{group}__coef_mean": np.stack([c["mean"] for c in classes]).astype(np.float32),
                           f"graph__{group}__coef_std": np.stack([c["std"] for c in classes]).astype(np.float32),
                           f"graph__{group}__coef_chol": chol.astype(np.float32)})
            errors = [c["error"] for c in classes]
            self.log(f"[compute_stats] graph {group}: {len(columns)} of {g['V'].shape[0]} eigenvectors kept by some "
                     f"class; relative error of the class mean signals from their kept coefficients "
                     f"{min(errors):.3f}..{max(errors):.3f}")
        if self.pairs:
            chol, _ = sampling.cholesky_factors(np.stack(self.pairs_cov), "the pairs' kept coefficients, together")
            arrays["graph__pairs__coef_chol"] = chol.astype(np.float32)
        return arrays
