import numpy as np
import pytest

from models.spec import Conv, Dense, MaxPool, ModelSpec
from procedures import spectral

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
