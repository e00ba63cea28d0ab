"""Spectral metadata: the teacher as a graph, its graph Fourier transform, and per class
the kept (largest) coefficients of the activation signal with their spread over the
class's examples (Lopes et al. 2017, after Sandryhaila & Moura).

Vertices are the units of the recorded points (what each ReLU sees, then the logits;
for the paper's chains, every Dense/Conv pre-activation). The input image is not a
vertex, since the signal is the recorded pre-activations. Edges are the linear part of
the path from one point's ReLU output to the next points, undirected (A = A^T), so that
A = V diag(lambda) V^T with orthonormal V and the transform is F = V^T.
- A convolution contributes its unrolled connections: each output position is linked
  to each position of its input window (inside any padding), with that kernel weight.
- Pooling rule: a max-pool links every unit of a pooling window to the units that read
  the pooled value, with the weight they read it with (a pooled unit is a unit edge to
  its window, composed with the next layer's weights). An average pool is the same with
  edges of 1 / the window's size, the weight it really applies; a global average pool
  is one window over the whole map.
- BatchNorm scales its channel's edges by gamma / sqrt(moving variance + epsilon), the
  inference map; a residual block's sum has, beside the body's edges, skip edges from
  the block's input point through the shortcut (identity: weight 1 per unit).
"""
import time

import numpy as np
import scipy.sparse as sp

from models import builder
from models.spec import (NAMED, POOLS, BatchNorm, Conv, Dense, GlobalAvgPool, MaxPool, ReLU, Residual,
                         activated_layers, next_shape, pool_stride, recorded_points)
from metadata import sampling
from utils.errors import UserError

MAX_DENSE_VERTICES = 20000   # a dense float64 eigendecomposition of this size needs ~10 GB


def _window_matrix(in_shape, out_shape, size, stride, before, weight):
    """[input units, output units] matrix of a pooling window of `size`: each output unit linked to the
    input units of its window (zero padding, `before` rows/columns of it, links to nothing). weight:
    "max" gives each link 1; "avg" gives 1 / the window's units inside the input, as TensorFlow divides;
    "avg_all" 1 / size^2, explicit zero pads counting in the mean."""
    h, w, c = in_shape
    ho, wo, _ = out_shape
    y, x, ch, i, j = np.meshgrid(np.arange(ho), np.arange(wo), np.arange(c), np.arange(size), np.arange(size),
                                 indexing="ij")
    row_in, col_in = y * stride + i - before[0], x * stride + j - before[1]
    inside = (row_in >= 0) & (row_in < h) & (col_in >= 0) & (col_in < w)
    vals = np.ones(inside.shape)
    if weight == "avg":
        vals = vals / inside.sum(axis=(3, 4), keepdims=True)
    elif weight == "avg_all":
        vals = vals / size ** 2
    inside = inside.ravel()
    rows = ((row_in * w + col_in) * c + ch).ravel()[inside]
    cols = ((y * wo + x) * c + ch).ravel()[inside]
    return sp.csr_matrix((vals.ravel()[inside], (rows, cols)), shape=(h * w * c, ho * wo * c))


def _pool_matrix(layer, in_shape, out_shape):
    stride = pool_stride(layer)
    before = [max((o - 1) * stride + layer.size - i, 0) // 2 if layer.padding == "SAME" else 0
              for i, o in zip(in_shape[:2], out_shape[:2])]
    if layer.pads:
        before = [layer.pads[0], layer.pads[2]]
    weight = "max" if isinstance(layer, MaxPool) else "avg_all" if layer.pads else "avg"
    return _window_matrix(in_shape, out_shape, layer.size, stride, before, weight)


def _conv_matrix(in_shape, kernel, conv):
    """[input units, output units] unrolled convolution (its stride and padding) with weights `kernel`;
    a window position in the zero padding links to nothing."""
    h, w, cin = in_shape
    k, _, _, cout = kernel.shape
    ho, wo = builder.conv_out(h, conv), builder.conv_out(w, conv, 1)
    top, left = builder.same_padding_before(h, conv), _padding_left(w, conv)
    y, x, i, j, ci, co = np.meshgrid(np.arange(ho), np.arange(wo), np.arange(k), np.arange(k), np.arange(cin),
                                     np.arange(cout), indexing="ij")
    row_in, col_in = y * conv.stride + i - top, x * conv.stride + j - left
    inside = ((row_in >= 0) & (row_in < h) & (col_in >= 0) & (col_in < w)).ravel()
    rows = ((row_in * w + col_in) * cin + ci).ravel()[inside]
    cols = ((y * wo + x) * cout + co).ravel()[inside]
    vals = kernel[i, j, ci, co].ravel().astype(np.float64)[inside]
    return sp.csr_matrix((vals, (rows, cols)), shape=(h * w * cin, ho * wo * cout))


def _padding_left(width, conv):
    return conv.pads[2] if conv.pads else builder.same_padding_before(width, conv)


def _reads(layer, in_shape, weights):
    """[input units, output units]: how a Dense/Conv layer's pre-activation reads its (flattened) input."""
    if isinstance(layer, Conv):
        return _conv_matrix(in_shape, weights, layer)
    return sp.csr_matrix(weights.astype(np.float64))


def _foldable(spec):
    """A paper-style chain (a ReLU after every weighted layer, no BatchNorm, no explicit pads): each
    recorded layer is then one affine map of what its Dense/Conv layer reads (builder's layer_inputs)."""
    return (not spec.explicit_activations and not spec.has_batchnorm
            and not any(isinstance(layer, Conv) and layer.pads for layer in spec.layers))


def affine_maps(spec, values):
    """{recorded layer: (M, b)}: its pre-activation as an affine function of its flattened input,
    s = h @ M + b, with M sparse [input units, units] and b [units] (a convolution's bias tiled).
    Only for paper-style chains (see _foldable); {} for other models."""
    if not _foldable(spec):
        return {}
    maps = {}
    for layer, in_shape, out_shape in builder.layer_shapes(spec):
        if isinstance(layer, (Dense, Conv)):
            bias = np.asarray(values[f"{layer.name}/biases"], np.float64)
            maps[layer.name] = (_reads(layer, in_shape, values[f"{layer.name}/weights"]).tocsr(),
                                np.tile(bias, int(np.prod(out_shape)) // len(bias)))
    return maps


class _EdgeTracer:
    """Follows the spec's inference graph with every tensor kept as its linear dependence on the recorded
    points feeding it: {source point: sparse [source units, tensor units]}. A ReLU ends the path, so the
    dependence then is the edges into the point that ReLU sees. Linear parts: Dense/Conv weights, pools
    (a max-pool as a unit edge to its window, an average pool as its 1 / count), global average pooling,
    BatchNorm's per-channel scale gamma / sqrt(moving variance + epsilon), and a residual sum, whose
    shortcut gives skip edges from the block's input point. The input image is not a vertex, so paths
    from it (and the input normalization) give no edges; biases and BatchNorm's shift are not edges."""

    def __init__(self, spec, values):
        self.values, self.edges = values, {}

    def point(self, name, terms, units):
        for source, matrix in terms.items():
            key = (source, name)
            self.edges[key] = (self.edges[key] + matrix if key in self.edges else matrix).tocsr()
        return {name: sp.identity(units, format="csr")}

    def sequence(self, layers, terms, shape, prefix, last):
        for layer in layers:
            name = prefix + layer.name if isinstance(layer, NAMED) else ""
            if isinstance(layer, ReLU):
                terms = self.point(last, terms, int(np.prod(shape)))
                continue
            if isinstance(layer, Residual):
                body, out = self.sequence(layer.body, terms, shape, name + "/", last)
                shortcut, _ = self.sequence(layer.shortcut, terms, shape, name + "/", last)
                summed = dict(body)
                for source, matrix in shortcut.items():
                    summed[source] = summed[source] + matrix if source in summed else matrix
                terms, shape = self.point(name, summed, int(np.prod(out))), out
            else:
                out = next_shape(layer, shape)
                linear = self.linear(layer, name, shape, out)
                terms, shape = {source: matrix @ linear for source, matrix in terms.items()}, out
            last = name or last
        return terms, shape

    def linear(self, layer, name, in_shape, out_shape):
        """[input units, output units]: the layer's linear part at inference."""
        if isinstance(layer, (Dense, Conv)):
            return _reads(layer, in_shape, self.values[f"{name}/weights"])
        if isinstance(layer, POOLS):
            return _pool_matrix(layer, in_shape, out_shape)
        if isinstance(layer, GlobalAvgPool):
            h, w, c = in_shape
            return _window_matrix(in_shape, (1, 1, c), max(h, w), 1, (0, 0), "avg")
        if isinstance(layer, BatchNorm):
            scale = np.asarray(self.values[f"{name}/gamma"], np.float64) / np.sqrt(
                np.asarray(self.values[f"{name}/moving_variance"], np.float64) + layer.epsilon)
            return sp.diags(np.tile(scale, int(np.prod(in_shape)) // len(scale)), format="csr")
        raise TypeError(f"no linear part for {layer!r}")


def layer_edges(spec, values):
    """{(recorded point, later recorded point): sparse [units, units] edge weights}: how each point's ReLU
    output feeds the points it reaches without another ReLU (the next one; in a residual net, also the
    block's sum through the shortcut)."""
    tracer = _EdgeTracer(spec, values)
    terms, shape = tracer.sequence(activated_layers(spec), {}, tuple(spec.input_shape), "", "")
    tracer.point(recorded_points(spec)[-1][0], terms, int(np.prod(shape)))
    return tracer.edges


def adjacency(spec, values, layers):
    """Symmetric sparse adjacency over the units of `layers` (two or more recorded points): every edge
    of layer_edges with both ends among them."""
    sizes = {n: int(np.prod(s)) for n, s in builder.recorded_shapes(spec).items()}
    offsets = dict(zip(layers, np.cumsum([0] + [sizes[n] for n in layers])))
    total = sum(sizes[n] for n in layers)
    blocks = [(offsets[a], offsets[b], e.tocoo()) for (a, b), e in layer_edges(spec, values).items()
              if a in offsets and b in offsets]
    rows = np.concatenate([b.row + r for r, _, b in blocks])
    cols = np.concatenate([b.col + c for _, c, b in blocks])
    data = np.concatenate([b.data for _, _, b in blocks])
    upper = sp.csr_matrix((data, (rows, cols)), shape=(total, total))
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
    """Why the spectral objectives cannot run on `spec` (its whole graph too large), or None where they can."""
    vertices = sum(int(np.prod(shape)) for shape in builder.recorded_shapes(spec).values())
    if vertices > MAX_DENSE_VERTICES:
        return (f"its spectral graph has {vertices:,} vertices, over the {MAX_DENSE_VERTICES:,}-vertex limit of a "
                "dense eigendecomposition")
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
            raise UserError("--compute_graphwise_stats: the spectral graphs link two or more recorded layers; "
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
        """npz-ready members (see metadata/stats_file.py)."""
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
