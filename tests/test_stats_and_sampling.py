import numpy as np
import pytest
import tensorflow as tf

import models
from metadata import stats_file
from metadata.sampling import GaussianSampler, cholesky_with_ridge
from models import checkpoint
from models.graph import build_frozen, recorded_layers
from procedures import compute_stats
from tests.conftest import toy_for
from utils.errors import UserError

tf1 = tf.compat.v1


def test_full_covariance_draws_match_recorded_moments():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4))
    cov = np.stack([a @ a.T + np.eye(4), np.diag([1.0, 2.0, 3.0, 4.0])])
    mean = np.array([[1.0, -2.0, 0.5, 3.0], [0.0, 0.0, 0.0, 0.0]])
    sampler = GaussianSampler.from_covariance(mean, np.sqrt(np.diagonal(cov, axis1=1, axis2=2)), cov)
    draws = sampler.sample(np.zeros(200_000, int), np.random.default_rng(1)).astype(np.float64)
    np.testing.assert_allclose(draws.mean(0), mean[0], atol=0.02)
    np.testing.assert_allclose(np.cov(draws.T), cov[0], atol=0.05)


def test_diagonal_draws_match_std():
    sampler = GaussianSampler(np.array([[0.0, 5.0]]), np.array([[1.0, 0.1]]))
    draws = sampler.sample(np.zeros(100_000, int), np.random.default_rng(2))
    np.testing.assert_allclose(draws.mean(0), [0.0, 5.0], atol=0.02)
    np.testing.assert_allclose(draws.std(0), [1.0, 0.1], rtol=0.02)


def test_singular_covariance_gets_a_ridge_not_a_crash(capsys):
    v = np.array([1.0, 2.0, 3.0])
    L, ridge = cholesky_with_ridge(np.outer(v, v))
    assert ridge > 0
    np.testing.assert_allclose(L @ L.T, np.outer(v, v), atol=1e-3)
    GaussianSampler.from_covariance(np.zeros((1, 3)), np.ones((1, 3)), np.outer(v, v)[None], "fc9")
    assert "covariance of layer fc9 is not positive definite for groups [0]" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["hinton1200", "lenet"])
def test_stats_equal_numpy_reference(teachers, model):
    cfg, result = teachers[model]
    spec = models.get(model)
    values = checkpoint.load_teacher_values(spec, result["model_meta"], result["model_checkpoint"])
    data = toy_for(spec.input_size)
    with tf.Graph().as_default() as graph:
        inputs = tf1.placeholder(tf.float32, [None, spec.input_size])
        frozen = build_frozen(spec, values, inputs)
        tensors = recorded_layers(frozen, 8.0)
    with tf1.Session(graph=graph) as sess:
        # Small batches and a low full-covariance limit exercise both covariance kinds.
        layers, counts = compute_stats.compute(sess, inputs, tensors, frozen.layer_names, data.train_x,
                                               data.train_y, 10, 7, max_full_cov_dim=200)
        everything = sess.run(tensors, {inputs: data.train_x})
    assert counts.tolist() == np.bincount(data.train_y).tolist()
    for name, acts in zip(frozen.layer_names, everything):
        for c in range(10):
            a = acts[data.train_y == c].astype(np.float64)
            np.testing.assert_allclose(layers[name]["mean"][c], a.mean(0), rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(layers[name]["std"][c], a.std(0, ddof=1), rtol=1e-4, atol=1e-5)
            if a.shape[1] <= 200:
                np.testing.assert_allclose(layers[name]["cov"][c], np.cov(a.T), rtol=1e-4, atol=1e-5)
            else:
                assert layers[name]["cov"] is None
    # The top layer is logits / T.
    assert np.allclose(everything[-1] * 8.0, sess_logits(spec, values, data.train_x), atol=1e-4)


def sess_logits(spec, values, x):
    with tf.Graph().as_default() as graph:
        inputs = tf1.placeholder(tf.float32, [None, spec.input_size])
        logits = build_frozen(spec, values, inputs).logits
    with tf1.Session(graph=graph) as sess:
        return sess.run(logits, {inputs: x})


@pytest.fixture(scope="module")
def hinton_stats(teachers, tmp_path_factory):
    from unittest import mock

    import datasets
    cfg, result = teachers["hinton1200"]
    cfg = type(cfg)(**vars(cfg))
    cfg.procedure, cfg.model_meta, cfg.model_checkpoint = "compute_stats", result["model_meta"], result["model_checkpoint"]
    with mock.patch.object(datasets, "get", lambda *a, **k: toy_for(784)):
        out = compute_stats.run(cfg)
    return cfg, out


def test_stats_file_roundtrip_and_metadata(hinton_stats):
    cfg, out = hinton_stats
    stats = stats_file.load(out["stats_file"])
    assert stats.model == "hinton1200" and stats.temperature == 8.0
    assert stats.layer_names == ["fc1", "fc2", "logits"]
    assert stats.cov("fc1").shape == (10, 1200, 1200) and stats.cov_kind["logits"] == "full"
    assert stats.counts.sum() == 150


def test_stats_of_other_model_or_temperature_or_checkpoint_are_refused(hinton_stats, teachers):
    cfg, out = hinton_stats
    stats = stats_file.load(out["stats_file"])
    with pytest.raises(UserError, match="computed for --model=hinton1200, not lenet"):
        stats_file.validate(stats, models.get("lenet"), 8.0, stats.fingerprint)
    with pytest.raises(UserError, match="--temperature=8, not 4"):
        stats_file.validate(stats, models.get("hinton1200"), 4.0, stats.fingerprint)
    with pytest.raises(UserError, match="another checkpoint"):
        stats_file.validate(stats, models.get("hinton1200"), 8.0, "0123456789abcdef")


def test_corrupt_stats_file_is_refused(tmp_path):
    bad = tmp_path / "stats.npz"
    bad.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(UserError, match="not a valid .npz"):
        stats_file.load(str(bad))
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(UserError, match="not a dfkd stats file"):
        stats_file.load(str(tmp_path / "other.npz"))
