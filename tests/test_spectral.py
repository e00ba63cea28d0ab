import numpy as np
import pytest

from models.spec import Conv, Dense, MaxPool, ModelSpec
from metadata import spectral

# A tiny network: 3x3x1 input -> conv 2x2 (1 filter) -> 2x2x1 -> conv 2x2 -> 1x1x1 ... and a
# second one with pooling; small enough to write every edge by hand.
CONV_SPEC = ModelSpec("tiny_conv", (3, 3, 1), (Conv("a", 1, 2), Conv("b", 1, 2), Dense("d", 2)))
POOL_SPEC = ModelSpec("tiny_pool", (5, 5, 1), (Conv("a", 1, 2), MaxPool(2), Dense("d", 2)))


def tiny_values(spec, seed=0):
    from models import builder
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=shape).astype(np.float32) for name, shape in builder.param_shapes(spec).items()}


def test_adjacency_of_conv_net_matches_hand_written():
    values = tiny_values(CONV_SPEC)
    kb, wd = values["b/weights"][:, :, 0, 0].astype(np.float64), values["d/weights"].astype(np.float64)
    # Vertices: a (2x2 = 4 units, row-major), b (1 unit), d (2 units): 7 in all.
    expected = np.zeros((7, 7))
    for i in range(2):
        for j in range(2):
            expected[i * 2 + j, 4] = kb[i, j]      # b's single output reads all of a's window
    expected[4, 5:7] = wd[0]                       # d reads b
    expected = expected + expected.T
    A = spectral.adjacency(CONV_SPEC, values, ["a", "b", "d"]).toarray()
    np.testing.assert_allclose(A, expected, rtol=1e-6)


def test_adjacency_through_max_pool_links_each_window_unit():
    values = tiny_values(POOL_SPEC)
    wd = values["d/weights"].astype(np.float64)   # [4 pooled units, 2]
    # a is 4x4 (16 units); the pool gives 2x2; pooled unit p covers a's 2x2 window.
    expected = np.zeros((18, 18))
    for y in range(4):
        for x in range(4):
            pooled = (y // 2) * 2 + (x // 2)
            expected[y * 4 + x, 16:18] = wd[pooled]
    expected = expected + expected.T
    A = spectral.adjacency(POOL_SPEC, values, ["a", "d"]).toarray()
    np.testing.assert_allclose(A, expected, rtol=1e-6)


@pytest.fixture
def basis():
    values = tiny_values(POOL_SPEC, seed=3)
    return spectral.graph_basis(spectral.adjacency(POOL_SPEC, values, ["a", "d"]))


def test_basis_is_orthonormal_and_diagonalizes(basis):
    eigenvalues, V = basis
    np.testing.assert_allclose(V.T @ V, np.eye(len(V)), atol=1e-10)


def test_keeping_every_coefficient_gives_back_the_signal(basis):
    _, V = basis
    signals = np.random.default_rng(0).normal(size=(3, len(V)))
    indices, coefficients = spectral.compress(V, signals, keep=len(V))
    np.testing.assert_allclose(spectral.reconstruct(V, indices, coefficients), signals, atol=1e-10)


def test_largest_coefficients_give_the_smallest_error(basis):
    _, V = basis
    rng = np.random.default_rng(1)
    signal = rng.normal(size=(1, len(V)))
    keep = 5
    indices, coefficients = spectral.compress(V, signal, keep)
    best = np.linalg.norm(spectral.reconstruct(V, indices, coefficients) - signal)
    spectrum = signal @ V
    for _ in range(200):
        other = np.sort(rng.choice(len(V), keep, replace=False))[None]
        error = np.linalg.norm(spectral.reconstruct(V, other, spectrum[:, other[0]]) - signal)
        assert best <= error + 1e-12


def test_too_large_graph_is_refused(monkeypatch):
    import scipy.sparse as sp
    from utils.errors import UserError
    monkeypatch.setattr(spectral, "MAX_DENSE_VERTICES", 10)
    with pytest.raises(UserError, match="dense eigendecomposition"):
        spectral.graph_basis(sp.eye(11).tocsr())


# --- the kept-coefficient statistics (compute_stats) and the kept-only loss (optimize_dataset) ---

def saved_graph_stats(path, spec, values, fraction, classes):
    """The graph statistics of `spec` recorded from given activations, saved and loaded as a real stats
    file. classes: one {layer: [n, D] activations} per class."""
    from metadata import stats_file
    layers = list(classes[0])
    recorder = spectral.GraphwiseRecorder(spec, values, layers, fraction, log=lambda *a: None)
    for acts in classes:
        recorder.record(acts)
    moments = {n: {"mean": np.stack([a[n].mean(0) for a in classes]), "std": np.stack([a[n].std(0) for a in classes]),
                   "cov": None, "shape": (classes[0][n].shape[1],)} for n in layers}
    graphwise = {**recorder.arrays(), "graph__fingerprint": np.str_("x")}
    stats_file.save(path, {"model": spec.name, "run_name": "t", "temperature": 8.0, "fingerprint": "x",
                           "counts": np.array([len(a[layers[0]]) for a in classes]), "graphwise": graphwise}, moments)
    return stats_file.load(path)


def recorded_stats(tmp_path, fraction, n_per_class=40, seed=0):
    """POOL_SPEC's graph statistics recorded from synthetic activations. Returns (stats, {class: [n, N] signals})."""
    rng = np.random.default_rng(seed)
    signals = {c: rng.normal(size=(n_per_class, 18)) @ rng.normal(size=(18, 18)) + rng.normal(size=18) * 3
               for c in range(3)}
    classes = [{"a": s[:, :16], "d": s[:, 16:]} for s in signals.values()]
    return saved_graph_stats(str(tmp_path / f"stats_{fraction}.npz"), POOL_SPEC, tiny_values(POOL_SPEC, seed),
                             fraction, classes), signals


def kept_loss(targets, signals, labels, matched):
    """The objective's per-sample loss for signals [B, 18] (layers a, d) against matched targets."""
    import tensorflow as tf
    from reconstruction import objectives
    graph = tf.Graph()
    with graph.as_default():
        acts = {"a": tf.constant(signals[:, :16], tf.float32), "d": tf.constant(signals[:, 16:], tf.float32)}
        constants = {k: tf.constant(v) for k, v in targets.constants.items()}
        loss = objectives.per_sample_loss(
            targets.compared(acts, tf.constant(labels, tf.int32), constants),
            targets.matched({k: tf.constant(v) for k, v in matched.items()}), targets.weights)
    with tf.compat.v1.Session(graph=graph) as sess:
        return sess.run(loss)


def test_recorded_kept_coefficients_equal_numpy_reference(tmp_path):
    stats, signals = recorded_stats(tmp_path, fraction=0.3)
    _, V = spectral.graph_basis(spectral.adjacency(POOL_SPEC, tiny_values(POOL_SPEC, 0), ["a", "d"]))
    g = stats.graph("all")
    assert g.kept.shape == (3, round(0.3 * 18))
    for c, s in signals.items():
        spectrum_of_mean = s.mean(0) @ V
        expected_kept = np.sort(np.argsort(-np.abs(spectrum_of_mean))[:g.kept.shape[1]])
        np.testing.assert_array_equal(g.kept[c], expected_kept)
        coefficients = s @ V[:, expected_kept]
        np.testing.assert_allclose(g.class_basis(c), V[:, expected_kept], atol=1e-6)
        np.testing.assert_allclose(g.coef_mean[c], coefficients.mean(0), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(g.coef_chol[c] @ g.coef_chol[c].T, np.cov(coefficients.T), rtol=1e-3, atol=1e-3)


def test_kept_loss_with_every_coefficient_and_no_spread_equals_matching_the_full_signal(tmp_path):
    from reconstruction import objectives
    stats, signals = recorded_stats(tmp_path, fraction=1.0)
    targets = objectives.get("spectral_all_layers").targets(stats, "kept_mean")
    labels = np.array([0, 1, 2, 1])
    x = np.random.default_rng(5).normal(size=(4, 18))
    drawn = targets.sample(labels, np.random.default_rng(0))
    class_means = np.stack([signals[c].mean(0) for c in range(3)])
    expected = ((x - class_means[labels]) ** 2).mean(1)    # orthonormal V: same distance in both domains
    np.testing.assert_allclose(kept_loss(targets, x, labels, drawn), expected, rtol=1e-4)


def test_moving_the_signal_along_a_dropped_eigenvector_leaves_the_kept_loss_unchanged(tmp_path):
    from reconstruction import objectives
    stats, _ = recorded_stats(tmp_path, fraction=0.3)
    _, V = spectral.graph_basis(spectral.adjacency(POOL_SPEC, tiny_values(POOL_SPEC, 0), ["a", "d"]))
    targets = objectives.get("spectral_all_layers").targets(stats)
    labels = np.array([1])
    drawn = targets.sample(labels, np.random.default_rng(0))
    kept = set(stats.graph("all").kept[1].tolist())
    dropped, held = min(set(range(18)) - kept), min(kept)
    x = np.random.default_rng(6).normal(size=(1, 18))
    base = kept_loss(targets, x, labels, drawn)
    np.testing.assert_allclose(kept_loss(targets, x + 5 * V[:, dropped], labels, drawn), base, rtol=1e-4)
    assert abs(kept_loss(targets, x + 5 * V[:, held], labels, drawn)[0] - base[0]) > 1e-2


def test_sampled_targets_reproduce_the_recorded_mean_and_covariance(tmp_path):
    from reconstruction import objectives
    stats, signals = recorded_stats(tmp_path, fraction=0.5)
    g = stats.graph("all")
    full = objectives.get("spectral_all_layers").targets(stats, "sampled_full")
    diagonal = objectives.get("spectral_all_layers").targets(stats, "sampled_diag")
    labels = np.full(100_000, 2)
    draws = full.sample(labels, np.random.default_rng(1))["all"].astype(np.float64)
    recorded = np.cov((signals[2] @ g.class_basis(2).astype(np.float64)).T)
    scale = np.sqrt(np.diag(recorded))
    np.testing.assert_allclose(draws.mean(0), g.coef_mean[2], atol=0.02 * scale.max())
    np.testing.assert_allclose(np.cov(draws.T) / np.outer(scale, scale), recorded / np.outer(scale, scale),
                               atol=0.03)
    flat = diagonal.sample(labels, np.random.default_rng(1))["all"].astype(np.float64)
    np.testing.assert_allclose(flat.std(0), g.coef_std[2], rtol=0.03)
    off_diagonal = np.corrcoef(flat.T)[~np.eye(len(scale), dtype=bool)]
    assert np.abs(off_diagonal).max() < 0.03


def test_stats_files_of_format_version_1_are_refused(tmp_path):
    from metadata import stats_file
    from utils.errors import UserError
    stats, _ = recorded_stats(tmp_path, fraction=0.3)
    old = dict(stats.arrays, format_version=np.int64(1))
    np.savez(tmp_path / "old.npz", **old)
    with pytest.raises(UserError, match="format version 1, this dfkd reads 2; rerun --procedure=compute_stats"):
        stats_file.load(str(tmp_path / "old.npz"))


@pytest.mark.parametrize("stride, padding, size", [(1, "VALID", 7), (2, "SAME", 7), (2, "SAME", 8), (3, "VALID", 9),
                                                   (1, "SAME", 5)])
def test_unrolled_convolution_equals_tensorflows(stride, padding, size):
    """x @ the unrolled matrix = tf.nn.conv2d(x) for any stride and padding: the graph's conv edges
    are the connections the layer really has."""
    import tensorflow as tf
    from models.spec import Conv
    rng = np.random.default_rng(0)
    conv = Conv("c", 4, 3, stride=stride, padding=padding)
    kernel = rng.normal(size=(3, 3, 2, 4))
    x = rng.normal(size=(2, size, size, 2))
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        expected = sess.run(tf.nn.conv2d(tf.constant(x), tf.constant(kernel), stride, padding))
    unrolled = spectral._conv_matrix((size, size, 2), kernel, conv)
    np.testing.assert_allclose(unrolled.T @ x.reshape(2, -1).T, expected.reshape(2, -1).T, atol=1e-10)


@pytest.mark.parametrize("size,stride,padding", [(2, None, "VALID"), (3, 2, "SAME"), (3, 1, "SAME"), (3, 2, "VALID")])
def test_pool_edges_are_the_windows_tensorflow_pools(size, stride, padding):
    """An average pool's edges are the weights it applies (1 / the window's units inside the input, as
    TensorFlow divides under SAME); a max-pool links each output to exactly the units its window covers."""
    import tensorflow as tf
    from models.spec import AvgPool, next_shape
    in_shape = (7, 6, 2)
    layer = AvgPool(size, stride, padding)
    out_shape = next_shape(layer, in_shape)
    n = int(np.prod(in_shape))
    x = np.random.default_rng(1).normal(size=(1,) + in_shape)
    units = np.eye(n).reshape((n,) + in_shape) + 1e-3   # one unit lit per row (max-pool's windows)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        averaged, lit = sess.run([tf.nn.avg_pool2d(tf.constant(x), size, stride or size, padding),
                                  tf.nn.max_pool2d(tf.constant(units), size, stride or size, padding)])
    avg = spectral._pool_matrix(layer, in_shape, out_shape)
    np.testing.assert_allclose(x.reshape(1, -1) @ avg, averaged.reshape(1, -1), atol=1e-12)
    covered = lit.reshape(n, -1) > 0.5
    np.testing.assert_array_equal(spectral._pool_matrix(MaxPool(size, stride, padding), in_shape,
                                                        out_shape).toarray() != 0, covered)


def test_the_pairs_targets_are_drawn_together_with_their_recorded_cross_covariance(tmp_path):
    """Two pairs share a layer: their kept coefficients are correlated over the examples, and the
    draws keep that correlation (independent draws would give the shared layer unrelated targets)."""
    from reconstruction import objectives
    spec = ModelSpec("tiny_dense", (6,), (Dense("a", 5), Dense("b", 4), Dense("d", 3)))
    rng = np.random.default_rng(4)
    signal = rng.normal(size=(400, 12)) @ rng.normal(size=(12, 12))
    split = {"a": signal[:, :5], "b": signal[:, 5:9], "d": signal[:, 9:]}
    stats = saved_graph_stats(str(tmp_path / "stats.npz"), spec, tiny_values(spec, 4), 0.5, [split])
    recorded = np.concatenate([signal[:, :9] @ stats.graph("pair0").class_basis(0),
                               signal[:, 5:] @ stats.graph("pair1").class_basis(0)], axis=1)
    targets = objectives.get("spectral_layer_pairs").targets(stats, "sampled_full")
    drawn = targets.sample(np.zeros(100_000, int), np.random.default_rng(0))
    both = np.concatenate([drawn["pair0"], drawn["pair1"]], axis=1).astype(np.float64)
    k0 = stats.graph("pair0").kept.shape[1]
    cross_recorded = np.corrcoef(recorded.T)[:k0, k0:]
    cross_drawn = np.corrcoef(both.T)[:k0, k0:]
    assert np.abs(cross_recorded).max() > 0.3          # the pairs really are correlated
    np.testing.assert_allclose(cross_drawn, cross_recorded, atol=0.03)


@pytest.mark.parametrize("group", ["all", "pair0", "pair1"])
def test_projection_read_through_narrow_layers_inputs_equals_the_plain_one(tmp_path, group):
    """Given the teacher, a layer wider than its input has its share of V^T s moved onto that input
    (s = h M + b): every kept coefficient must come out the same, for a convolution with padding and
    stride, behind a pool, and for a top layer divided by the temperature."""
    import tensorflow as tf
    from models.graph import build_frozen, recorded_layers
    from reconstruction import objectives
    spec = ModelSpec("tiny_fold", (6, 6, 1), (Conv("a", 4, 3, padding="SAME"), MaxPool(2),
                                             Conv("b", 8, 2, stride=1, padding="SAME"), Dense("d", 80)))
    values = tiny_values(spec, 7)
    rng = np.random.default_rng(7)
    classes = [{n: rng.normal(size=(30, w)) + c for n, w in (("a", 144), ("b", 72), ("d", 80))} for c in range(2)]
    stats = saved_graph_stats(str(tmp_path / "stats.npz"), spec, values, 0.2, classes)
    objective = objectives.get("spectral_all_layers" if group == "all" else "spectral_layer_pairs")
    plain = objective.targets(stats)
    folded = objective.targets(stats, teacher=objectives.FrozenTeacher(spec, values, 8.0))
    assert folded.read_from_input == {"a", "b", "d"}     # 36 < 144, 36 < 72, 72 < 80
    x = rng.normal(size=(5, 36)).astype(np.float32)
    labels = np.array([0, 1, 1, 0, 1], np.int32)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        model = build_frozen(spec, values, tf.constant(x))
        acts = dict(zip(model.layer_names, recorded_layers(model, 8.0)))
        inputs = {n: tf.reshape(h, (-1, int(np.prod(h.shape[1:])))) for n, h in zip(model.layer_names,
                                                                                    model.layer_inputs)}
        runs = [t.compared(acts, tf.constant(labels), {k: tf.constant(v) for k, v in t.constants.items()}, inputs)
                for t in (plain, folded)]
        expected, got = sess.run(runs)
    assert expected[group].shape == (5, stats.graph(group).kept.shape[1])
    np.testing.assert_allclose(got[group], expected[group], rtol=1e-4, atol=1e-4 * np.abs(expected[group]).max())


def test_edges_of_a_batchnorm_resnet_are_its_inference_map_between_recorded_points():
    """Between two inputs, every recorded point after the first changes by exactly what its edges carry
    from the earlier points' ReLU outputs: the graph is the teacher's linear map, skip edges included
    (BatchNorm at inference, explicit pads, a strided SAME average pool, global pooling, both shortcut kinds)."""
    import tensorflow as tf
    from models import builder, graph as model_graph
    from models.spec import AvgPool, BatchNorm, GlobalAvgPool, ReLU, Residual
    conv = dict(pads=(1, 1, 1, 1), bias=False)
    spec = ModelSpec("res", (6, 6, 2), (
        Conv("stem", 3, 3, **conv), BatchNorm("stem_bn"), ReLU(),
        Residual("b1", (Conv("c1", 3, 3, **conv), BatchNorm("bn1"), ReLU(), Conv("c2", 3, 3, **conv), BatchNorm("bn2"))),
        AvgPool(3, 2, "SAME"),
        Residual("b2", (Conv("c1", 4, 3, stride=2, **conv), BatchNorm("bn1")),
                 (Conv("proj", 4, 1, stride=2, bias=False), BatchNorm("proj_bn"))),
        GlobalAvgPool(), Dense("logits", 3)))
    rng = np.random.default_rng(0)
    values = {name: rng.uniform(0.3, 1.5, shape).astype(np.float32) * (1 if "moving" in name else
                                                                       rng.choice([-1, 1], shape))
              for name, shape in builder.param_shapes(spec).items()}
    x = rng.uniform(0, 1, (2, 72)).astype(np.float32)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        inputs = tf.compat.v1.placeholder(tf.float32, [None, 72])
        model = model_graph.build_frozen(spec, values, inputs)
        points = dict(zip(model.layer_names, [p.reshape(2, -1).astype(np.float64)
                                              for p in sess.run(model.pre_activations, {inputs: x})]))
    edges = spectral.layer_edges(spec, values)
    assert ("b1", "b2") in edges and ("stem_bn", "b1") in edges   # the skip edges through the shortcuts
    names = model.layer_names
    for name in names[1:]:
        carried = sum(np.diff(np.maximum(points[src], 0), axis=0) @ e.toarray()
                      for (src, dst), e in edges.items() if dst == name)
        np.testing.assert_allclose(carried, np.diff(points[name], axis=0), rtol=1e-4, atol=1e-4)
    A = spectral.adjacency(spec, values, names)
    assert A.shape[0] == sum(p.shape[1] for p in points.values()) and abs(A - A.T).max() == 0
