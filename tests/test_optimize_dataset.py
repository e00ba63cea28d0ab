import os

import numpy as np
import pytest
import tensorflow as tf

import datasets
import models
from datasets.optimized import labels_path
from metadata import stats_file
from models import checkpoint
from procedures import optimize_dataset
from reconstruction import objectives
from tests.conftest import make_cfg
from utils.errors import UserError

tf1 = tf.compat.v1


@pytest.fixture(scope="module")
def setups(teachers, tmp_path_factory):
    """compute_stats for both tiny teachers; returns {model: cfg ready for optimize_dataset}."""
    from unittest import mock

    from procedures import compute_stats
    from tests.conftest import toy_for
    out = {}
    for model, (train_cfg, result) in teachers.items():
        cfg = make_cfg(summary_folder=train_cfg.summary_folder, run_name=train_cfg.run_name, model=model,
                       procedure="compute_stats", model_meta=result["model_meta"],
                       model_checkpoint=result["model_checkpoint"], max_full_cov_dim=1600,
                       compute_graphwise_stats=(model == "hinton1200"))
        with mock.patch.object(datasets, "get", lambda *a, w=models.get(model).input_size, **k: toy_for(w)):
            compute_stats.run(cfg)
        cfg.procedure = "optimize_dataset"
        out[model] = cfg
    return out


def load_stats(cfg):
    return stats_file.load(os.path.join(cfg.summary_folder, cfg.run_name, "stats",
                                        f"activation_stats_{cfg.run_name}.npz"))


def reconstruction(cfg, objective_name, steps, reading="sampled_full", loss_form="dfkd"):
    spec = models.get(cfg.model)
    values = checkpoint.load_teacher_values(spec, cfg.model_meta, cfg.model_checkpoint)
    objective = objectives.get(objective_name)
    sampler = objective.targets(load_stats(cfg), reading, loss_form)
    rg = optimize_dataset.ReconstructionGraph(spec, values, objective, sampler, 8.0, 0.07, steps)
    return spec, values, sampler, rg


@pytest.mark.parametrize("model, objective, reading, loss_form", [
    ("hinton1200", "top_layer", "", "dfkd"), ("hinton1200", "all_layers", "", "dfkd"),
    ("hinton1200", "all_layers", "", "authors"), ("hinton1200", "all_layers_dropout", "", "dfkd"),
    ("hinton1200", "spectral_all_layers", "sampled_full", "dfkd"),
    ("hinton1200", "spectral_all_layers", "vertex", "authors"),
    ("hinton1200", "spectral_layer_pairs", "sampled_diag", "dfkd"),
    ("hinton1200", "spectral_layer_pairs", "kept_mean", "authors"),
    ("lenet", "top_layer", "", "authors"), ("lenet", "all_layers", "", "dfkd")])
@pytest.mark.slow
def test_each_objective_loss_falls_and_teacher_is_untouched(setups, model, objective, reading, loss_form):
    cfg = setups[model]
    cfg.optimization_objective = objective
    spec, values, sampler, rg = reconstruction(cfg, objective, 30, reading or "sampled_full", loss_form)
    labels, _, x0, targets, rng = optimize_dataset.draw_batch(cfg, spec, sampler, 0, 0, 20, 10, 0)
    masks = optimize_dataset.dropout_masks(spec, rg, rng, 20)
    assert bool(masks) == (objective == "all_layers_dropout")
    with rg.graph.as_default():
        # The input batch is the only variable; every weight is a constant.
        assert [v.name for v in tf1.trainable_variables()] == ["reconstructed_inputs:0"]
        weight_tensors = {name: rg.graph.get_tensor_by_name(f"teacher/{name.replace('/', '_')}:0")
                          for name in values}
    with tf1.Session(graph=rg.graph) as sess:
        x, history, _ = rg.run_batch(sess, x0, targets, masks, labels)
        after = sess.run(weight_tensors)
    assert history[-1] < 0.5 * history[0]
    assert not np.allclose(x, x0)
    for name in values:
        np.testing.assert_array_equal(after[name], values[name])


def test_dropout_objective_needs_a_dropout_teacher(setups):
    cfg = setups["lenet"]
    cfg.optimization_objective = "all_layers_dropout"
    with pytest.raises(UserError, match="needs a teacher trained with dropout"):
        optimize_dataset.run(cfg)


def test_spectral_objective_without_graphwise_stats_says_how_to_fix(setups):
    cfg = setups["lenet"]
    cfg.optimization_objective = "spectral_layer_pairs"
    with pytest.raises(UserError, match="rerun --procedure=compute_stats with --compute_graphwise_stats"):
        optimize_dataset.run(cfg)


def test_spectral_pairs_count_a_shared_layer_twice_in_the_vertex_reading(setups):
    stats = load_stats(setups["hinton1200"])
    targets = objectives.get("spectral_layer_pairs").targets(stats, "vertex")
    assert sorted(targets.layer_of) == ["pair0/fc1", "pair0/fc2", "pair1/fc2", "pair1/logits"]
    drawn = targets.sample(np.array([3, 3, 7]), np.random.default_rng(0))
    np.testing.assert_array_equal(drawn["pair1/logits"][0], drawn["pair1/logits"][1])
    assert drawn["pair0/fc2"].shape == (3, 1200)


@pytest.mark.parametrize("reading, same_for_a_class", [("sampled_full", False), ("sampled_diag", False),
                                                       ("kept_mean", True)])
def test_kept_readings_draw_one_target_per_graph_of_the_kept_width(setups, reading, same_for_a_class):
    stats = load_stats(setups["hinton1200"])
    targets = objectives.get("spectral_layer_pairs").targets(stats, reading)
    drawn = targets.sample(np.array([3, 3, 7]), np.random.default_rng(0))
    assert sorted(drawn) == ["pair0", "pair1"]
    assert drawn["pair0"].shape == (3, stats.graph("pair0").kept.shape[1])
    assert np.array_equal(drawn["pair1"][0], drawn["pair1"][1]) == same_for_a_class


def test_unknown_objective_lists_choices():
    with pytest.raises(UserError, match="choose one of top_layer, all_layers"):
        objectives.get("middle_layer")


def test_full_run_writes_npy_that_loads_as_a_dataset(setups):
    cfg = setups["hinton1200"]
    cfg.optimization_objective = "top_layer"
    result = optimize_dataset.run(cfg)
    data = datasets.get(result["output"], data_dir=None)
    assert data.train_x.shape == (40, 784) and data.train_x.dtype == np.float32
    assert data.train_y.tolist() == [i % 10 for i in range(40)]
    assert data.io_shape == (784, 10)
    assert 0 <= result["teacher_agreement"] <= 1
    assert not [p for p in os.listdir(os.path.dirname(result["output"])) if p.startswith(".")]


@pytest.mark.slow
def test_same_seed_repeats_the_reconstruction(setups):
    cfg = setups["hinton1200"]
    cfg.optimization_objective = "all_layers"
    first = np.load(optimize_dataset.run(cfg)["output"])
    second = np.load(optimize_dataset.run(cfg)["output"])
    np.testing.assert_array_equal(first, second)
    cfg.rng_seed = 43
    try:
        assert not np.array_equal(first, np.load(optimize_dataset.run(cfg)["output"]))
    finally:
        cfg.rng_seed = 42


def test_stats_missing_says_run_compute_stats(setups, tmp_path):
    cfg = setups["hinton1200"]
    cfg.stats_file = str(tmp_path / "nope.npz")
    try:
        with pytest.raises(UserError, match="run --procedure=compute_stats first"):
            optimize_dataset.run(cfg)
    finally:
        cfg.stats_file = ""


def test_two_shards_merged_equal_the_unsharded_run(setups):
    cfg = setups["hinton1200"]
    cfg.optimization_objective, cfg.samples_per_class, cfg.optimize_batch_size = "top_layer", 5, 8  # 7 batches
    try:
        whole = datasets.get(optimize_dataset.run(cfg)["output"], None)
        cfg.num_shards = 2
        outputs = []
        for shard in (1, 0):  # any order, any machine
            cfg.shard_index = shard
            outputs.append(optimize_dataset.run(cfg)["output"])
        assert all(".shard-" in o for o in outputs)
        merged = datasets.get(outputs[0].replace(".shard-1-of-2", ".shard-*-of-2"), None)
        np.testing.assert_array_equal(merged.train_x, whole.train_x)
        np.testing.assert_array_equal(merged.train_y, whole.train_y)
        os.remove(outputs[0])
        with pytest.raises(UserError, match="must match every shard"):
            datasets.get(outputs[1].replace(".shard-0-of-2", ".shard-*-of-2"), None)
    finally:
        cfg.num_shards, cfg.shard_index, cfg.samples_per_class, cfg.optimize_batch_size = 1, 0, 4, 16


@pytest.mark.slow
def test_worker_processes_make_the_one_process_dataset(setups, capfd):
    cfg = setups["hinton1200"]
    cfg.optimization_objective, cfg.samples_per_class, cfg.optimize_batch_size = "all_layers", 5, 8  # 7 batches
    try:
        one = optimize_dataset.run(cfg)
        x_one, y_one = np.load(one["output"]), np.load(labels_path(one["output"]))
        capfd.readouterr()
        cfg.optimize_workers = 2
        two = optimize_dataset.run(cfg)
        warnings = [line for line in capfd.readouterr().err.splitlines() if line.startswith("warning:")]
        assert warnings and len(set(warnings)) == len(warnings), warnings   # printed once, not once a process
        assert (one["workers"], two["workers"]) == (1, 2)
        # The same batches from the same seeds; only the thread count per batch differs.
        np.testing.assert_array_equal(np.load(labels_path(two["output"])), y_one)
        np.testing.assert_allclose(np.load(two["output"]), x_one, atol=1e-4)
        assert two["teacher_agreement"] == one["teacher_agreement"]
        cfg.lr = 1e38   # every batch overflows: the workers' error reaches the caller as the usual one line
        with pytest.raises(UserError, match="lower --lr"):
            optimize_dataset.run(cfg)
    finally:
        cfg.samples_per_class, cfg.optimize_batch_size, cfg.optimize_workers, cfg.lr = 4, 16, 1, None


def test_worker_count_follows_the_flag_the_cores_and_the_batches():
    cores = len(os.sched_getaffinity(0))   # Linux, as CI
    assert optimize_dataset.worker_count(3, 100) == 3
    assert optimize_dataset.worker_count(3, 2) == 2        # never more workers than batches left
    assert optimize_dataset.worker_count(0, 100) == min(cores, optimize_dataset.MAX_AUTO_WORKERS)
    assert optimize_dataset.worker_count(0, 0) == 1


def test_available_cores_without_sched_getaffinity(monkeypatch):
    """macOS and Windows have no os.sched_getaffinity: every core counts there."""
    from utils import session
    assert session.available_cores() == len(os.sched_getaffinity(0))
    monkeypatch.delattr(os, "sched_getaffinity")
    assert session.available_cores() == os.cpu_count()


@pytest.mark.parametrize("loss_form", ["dfkd", "authors"])
def test_per_sample_loss_equals_numpy_reference(loss_form):
    """dfkd: ReLU on hidden layers (activation and target), identity on the top layer; mean per layer,
    summed. authors: ReLU on the top layer too, each layer's mean weighted by 1/size."""
    rng = np.random.default_rng(0)
    acts = {"fc1": rng.normal(size=(4, 6)), "logits": rng.normal(size=(4, 3))}
    targets = {"fc1": rng.normal(size=(4, 6)), "logits": rng.normal(size=(4, 3))}
    source = objectives.VertexDomainTargets({"fc1": "fc1", "logits": "logits"}, {"fc1": 6, "logits": 3}, "logits",
                                            loss_form)
    graph = tf.Graph()
    with graph.as_default():
        constant = lambda d: {k: tf.constant(v, tf.float32) for k, v in d.items()}
        loss = objectives.per_sample_loss(source.compared(constant(acts), None, {}),
                                          source.matched(constant(targets)), source.weights)
    with tf1.Session(graph=graph) as sess:
        got = sess.run(loss)
    relu = lambda a: np.maximum(a, 0)
    top = relu if loss_form == "authors" else (lambda a: a)
    w = {"fc1": 1 / 6, "logits": 1 / 3} if loss_form == "authors" else {"fc1": 1, "logits": 1}
    expected = (w["fc1"] * ((relu(targets["fc1"]) - relu(acts["fc1"])) ** 2).mean(1)
                + w["logits"] * ((top(targets["logits"]) - top(acts["logits"])) ** 2).mean(1))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_batch_labels_interleave_classes_or_keep_them_in_a_row():
    np.testing.assert_array_equal(optimize_dataset.batch_labels(3, 8, [2] * 4), [3, 0, 1, 2, 3])
    np.testing.assert_array_equal(optimize_dataset.batch_labels(3, 8, [2] * 4, class_major=True), [1, 2, 2, 3, 3])
    # Equal shares are the interleaving of runs made before --class_weights existed.
    np.testing.assert_array_equal(optimize_dataset.batch_labels(0, 640, [64] * 10), np.arange(640) % 10)


def test_class_weights_split_the_budget_in_proportion():
    counts = optimize_dataset.class_counts(64, 4, [1, 1, 2, 0])
    assert counts.tolist() == [16, 16, 32, 0]
    uneven = optimize_dataset.class_counts(10, 3, [1, 1, 1])   # the remainder goes somewhere, once
    assert uneven.sum() == 10 and sorted(uneven.tolist()) == [3, 3, 4]
    labels = optimize_dataset.batch_labels(0, 64, counts)
    assert np.bincount(labels, minlength=4).tolist() == [16, 16, 32, 0]
    # Spread over the run: each quarter (a batch) holds each class's share, not one class after another.
    for quarter in labels.reshape(4, 16):
        assert np.bincount(quarter, minlength=4).tolist() == [4, 4, 8, 0]
    major = optimize_dataset.batch_labels(0, 64, counts, class_major=True)
    assert major.tolist() == [0] * 16 + [1] * 16 + [2] * 32


@pytest.mark.parametrize("text, says", [("1,2", "2 numbers for a teacher of 10 classes"),
                                        ("1,x" + ",1" * 8, "comma-separated numbers"),
                                        ("-1" + ",1" * 9, ">= 0"), (",".join(["0"] * 10), "not all 0")])
def test_bad_class_weights_are_one_line_errors(text, says):
    with pytest.raises(UserError, match="--class_weights") as error:
        optimize_dataset.parse_class_weights(text, 10)
    assert says in str(error.value)


def test_class_weights_give_the_classes_their_samples(setups):
    cfg = setups["hinton1200"]
    cfg.optimization_objective, cfg.class_weights = "top_layer", "0,0,3,0,0,0,1,0,0,0"
    try:
        result = optimize_dataset.run(cfg)
    finally:
        cfg.class_weights = ""
    labels = datasets.get(result["output"], data_dir=None).train_y
    assert len(labels) == 40 and np.bincount(labels, minlength=10).tolist() == [0, 0, 30, 0, 0, 0, 10, 0, 0, 0]
    assert result["class_counts"] == [0, 0, 30, 0, 0, 0, 10, 0, 0, 0]
