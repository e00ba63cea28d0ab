"""--procedure=compute_stats: one pass of the frozen teacher over the training set,
recording per class and per layer the mean, standard deviation, covariance (full
where the layer is at most --max_full_cov_dim wide, else diagonal) and count; with
--compute_graphwise_stats, in the same pass, the spectral statistics (metadata/spectral.py); with
--stats_modes=K, per mode of each class instead (metadata/stats_modes.py), in a file of its own, with
a layer's covariance full only where every mode has more examples than the layer has units."""
import os
import time

import numpy as np
import tensorflow as tf

import datasets
from config import checks
from config import flags as config_flags
from metadata import sampling, spectral, stats_file, stats_modes
from models import builder, checkpoint
from models.graph import build_frozen, recorded_layers
from utils import runlog
from utils.errors import UserError
from utils.progress import Progress
from utils.session import make_session

tf1 = tf.compat.v1


def compute(sess, inputs, layer_tensors, layer_names, x, y, num_classes, batch_size, max_full_cov_dim,
            progress=None, graphwise=None):
    """Per-class statistics of every layer in layer_tensors, from examples x with labels y; with a
    spectral.GraphwiseRecorder, its per-class spectral statistics in the same pass."""
    moments = {name: {"mean": [], "std": [], "cov": []} for name in layer_names}
    counts = np.bincount(y, minlength=num_classes)
    if (counts == 0).any():
        raise UserError(f"--dataset: classes {np.flatnonzero(counts == 0).tolist()} have no training examples; "
                        "statistics need every class")
    done = 0
    for c in range(num_classes):
        xc = x[y == c]
        per_layer = [[] for _ in layer_names]
        for start in range(0, len(xc), batch_size):
            for store, value in zip(per_layer, sess.run(layer_tensors, {inputs: xc[start:start + batch_size]})):
                store.append(value)
            done += len(xc[start:start + batch_size])
            if progress:
                progress.update(done)
        acts_of = {name: np.concatenate(chunks) for name, chunks in zip(layer_names, per_layer)}
        if graphwise is not None:
            graphwise.record(acts_of)
        for name, acts in acts_of.items():
            mean, std, cov = sampling.moments(acts, acts.shape[1] <= max_full_cov_dim)
            moments[name]["mean"].append(mean)
            moments[name]["std"].append(std)
            moments[name]["cov"].append(cov)
    layers = {}
    for name in layer_names:
        m = moments[name]
        layers[name] = {"mean": np.stack(m["mean"]), "std": np.stack(m["std"]),
                        "cov": None if m["cov"][0] is None else np.stack(m["cov"])}
    return layers, counts


def modes_of(sess, inputs, layer, data, cfg):
    """(mode of each training example, class of each mode): k-means on the next-to-top layer."""
    if data.num_classes * cfg.stats_modes > len(data.train_x):
        raise UserError(f"--stats_modes={cfg.stats_modes}: {len(data.train_x)} training examples cannot fill "
                        f"{cfg.stats_modes} modes for each of {data.num_classes} classes")
    progress = Progress(len(data.train_x), "compute_stats modes", unit="examples")
    features = []
    for start in range(0, len(data.train_x), cfg.test_batch_size):
        features.append(sess.run(layer, {inputs: data.train_x[start:start + cfg.test_batch_size]}))
        progress.update(start + len(features[-1]))
    groups, group_class = stats_modes.split(np.concatenate(features), data.train_y, data.num_classes,
                                            cfg.stats_modes, seed=0)
    print(f"[compute_stats] {len(group_class)} modes; examples per mode from {np.bincount(groups).min()} "
          f"to {np.bincount(groups).max()}")
    return groups, group_class


def modes_full_cov_limit(groups, cfg):
    """The widest layer whose covariance a modes file records in full. A covariance of n examples has
    rank below n, so a mode of 31 examples cannot describe 2,048 units (sampling it needs a ridge),
    and 160 such matrices of one layer fill gigabytes; those layers keep their diagonal."""
    smallest = int(np.bincount(groups).min())
    limit = min(cfg.max_full_cov_dim, smallest - 1)
    print(f"[compute_stats] the smallest mode has {smallest} examples: full covariances for layers of at "
          f"most {limit} units, diagonal above")
    return limit


def run(cfg):
    checks.run_name(cfg)
    checks.require(cfg, "model", "dataset")
    config_flags.validate(cfg, "compute_stats")
    if cfg.compute_graphwise_stats and cfg.stats_modes > 1:
        raise UserError(f"--stats_modes={cfg.stats_modes} records a class as several modes, which the spectral "
                        "objectives do not read; run --compute_graphwise_stats in a compute_stats of its own")
    if cfg.compute_graphwise_stats and not 0 < cfg.spectral_fraction <= 1:
        raise UserError(f"--spectral_fraction must be in (0, 1], got {cfg.spectral_fraction}")
    spec = checkpoint.spec_for(cfg.model, cfg.model_checkpoint)
    values = checkpoint.load_teacher_values(spec, cfg.model_meta, cfg.model_checkpoint)
    data = datasets.get(cfg.dataset, cfg.data_dir)
    checks.dataset_fits(spec, data)
    out = stats_file.default_path(cfg)
    checks.writable_folder(os.path.dirname(out), "--summary_folder")

    t0 = time.time()
    graph = tf.Graph()
    with graph.as_default():
        inputs = tf1.placeholder(tf.float32, [None, spec.input_size], name="inputs")
        model = build_frozen(spec, values, inputs)
        tensors = recorded_layers(model, cfg.temperature)
    graphwise, graph_seconds = None, None
    if cfg.compute_graphwise_stats:
        graph_seconds = time.time()
        graphwise = spectral.GraphwiseRecorder(spec, values, model.layer_names, cfg.spectral_fraction)
        graph_seconds = time.time() - graph_seconds
    groups, num_groups, group_class = data.train_y, data.num_classes, None
    with make_session(graph, cfg.num_threads) as sess:
        if cfg.stats_modes > 1:
            groups, group_class = modes_of(sess, inputs, tensors[max(len(tensors) - 2, 0)], data, cfg)
            num_groups = len(group_class)
        full_cov_limit = cfg.max_full_cov_dim if group_class is None else modes_full_cov_limit(groups, cfg)
        progress = Progress(len(data.train_x), "compute_stats", unit="examples")
        layers, counts = compute(sess, inputs, tensors, model.layer_names, data.train_x, groups,
                                 num_groups, cfg.test_batch_size, full_cov_limit, progress, graphwise)
    shapes = builder.recorded_shapes(spec)
    for name in layers:
        layers[name]["shape"] = shapes[name]
    meta = {"model": spec.name, "run_name": cfg.run_name, "temperature": cfg.temperature,
            "fingerprint": stats_file.weights_fingerprint(values), "counts": counts}
    if group_class is not None:
        meta["group_class"] = group_class
    if graphwise is not None:
        meta["graphwise"] = graphwise.arrays()
        meta["graphwise"]["graph__fingerprint"] = np.str_(meta["fingerprint"])
    stats_file.save(out, meta, layers)
    wall = time.time() - t0
    kinds = {n: ("full" if l["cov"] is not None else "diag") for n, l in layers.items()}
    results = {"stats_file": out, "wall_seconds": round(wall, 1), "covariance": kinds, "groups": len(counts),
               "examples_per_second": round(len(data.train_x) / wall, 1),
               "eigendecomposition_seconds": None if graph_seconds is None else round(graph_seconds, 1)}
    runlog.update_log(cfg.summary_folder, cfg.run_name, "compute_stats", vars(cfg), results)
    print(f"[compute_stats] {len(data.train_x)} examples, layers {kinds}, {wall:.1f}s")
    print(f"[compute_stats] wrote {out}")
    return results
