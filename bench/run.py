"""Throughput of every stage against this machine's own limit, measured in one run.

    python -m bench.run [--quick] [--json_out=bench.json] [--num_threads=0]

Limits: GFLOP/s of plain TensorFlow float32 matrix products of the hinton1200
shapes (forward and input-gradient products of one reconstruction step, fused in a
tf.while_loop), and of plain convolutions of lenet's shapes. Each stage is reported
as examples/s (or sample-steps/s), achieved GFLOP/s and its fraction of the limit.
FLOPs count 2 per multiply-add: forward; plus input gradients for reconstruction
(2x forward); plus weight gradients for training (3x forward, less the input layer's
input gradient, which is not needed).
"""
import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import models  # noqa: E402
from distillation.student import kd_loss  # noqa: E402
from metadata import spectral, stats_file  # noqa: E402
from models import builder  # noqa: E402
from models.graph import build_frozen, frozen_logits  # noqa: E402
from models.spec import Conv, Dense  # noqa: E402
from procedures import compute_stats, optimize_dataset, train  # noqa: E402
from reconstruction import objectives  # noqa: E402
from utils.session import available_cores, make_session  # noqa: E402

tf1 = tf.compat.v1
OBJECTIVE_NAMES = ("top_layer", "all_layers", "all_layers_dropout", "spectral_all_layers", "spectral_layer_pairs")


def timed(fn, repeats=2):
    """Best wall time of `repeats` calls after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def random_weights(spec, seed=0):
    rng = np.random.default_rng(seed)
    ones = ("gamma", "moving_variance")   # BatchNorm: the identity, so that activations keep their scale

    def value(name, shape):
        if name.endswith(builder.BATCHNORM_PARAMS):
            return np.full(shape, 1.0 if name.endswith(ones) else 0.0, np.float32)
        return (rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[:-1]))).astype(np.float32)
    return {n: value(n, s) for n, s in builder.param_shapes(spec).items()}


def matmul_limit(spec, batch, steps, threads):
    """Plain matmuls: every Dense layer's forward product and its input-gradient product."""
    shapes = [builder.param_shapes(spec)[f"{l.name}/weights"] for l in spec.weighted_layers]
    graph = tf.Graph()
    with graph.as_default():
        ws = [tf.constant(np.random.default_rng(0).standard_normal(s).astype(np.float32) * 0.01) for s in shapes]
        x0 = tf.constant(np.random.default_rng(1).uniform(size=(batch, shapes[0][0])).astype(np.float32))

        def body(t, x):
            h = x
            for w in ws:
                h = tf.matmul(h, w)
            g = h
            for w in reversed(ws):
                g = tf.matmul(g, w, transpose_b=True)
            return t + 1, x + 1e-9 * g
        out = tf1.while_loop(lambda t, x: t < steps, body, [0, x0])[1]
    sess = make_session(graph, threads)
    seconds = timed(lambda: sess.run(out))
    flops = steps * 2 * 2 * batch * sum(a * b for a, b in shapes)
    return flops / seconds / 1e9


def conv_limit(spec, batch, steps, threads, with_input_gradient=False):
    """Plain convolutions of every Conv layer's shape: forward, or forward plus the
    input-gradient convolution (Conv2DBackpropInput) that reconstruction also needs."""
    walk = [(l, i, o) for _, l, i, o in builder.walk(spec) if isinstance(l, Conv)]
    graph = tf.Graph()
    with graph.as_default():
        rng = np.random.default_rng(0)
        inputs = [tf.constant(rng.uniform(size=(batch,) + i).astype(np.float32)) for _, i, _ in walk]
        kernels = [tf.constant(rng.standard_normal((l.kernel, l.kernel, i[-1], l.filters)).astype(np.float32))
                   for l, i, _ in walk]

        def body(t, acc):
            total = acc
            for (layer, _, _), x, k in zip(walk, inputs, kernels):
                x = x + acc * 1e-9
                top, bottom, left, right = layer.pads or (0, 0, 0, 0)
                padded = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]) if layer.pads else x
                y = tf.nn.conv2d(padded, k, layer.stride, "VALID" if layer.pads else layer.padding)
                total += tf.reduce_mean(tf.gradients(tf.reduce_sum(y), x)[0] if with_input_gradient else y)
            return t + 1, total
        out = tf1.while_loop(lambda t, a: t < steps, body, [0, tf.constant(0.0)])[1]
    sess = make_session(graph, threads)
    seconds = timed(lambda: sess.run(out))
    macs = sum(l.kernel * l.kernel * i[-1] * int(np.prod(o)) for l, i, o in walk)
    return steps * 2 * batch * macs * (2 if with_input_gradient else 1) / seconds / 1e9


def fake_stats(spec):
    """Statistics of the right shapes (diagonal Gaussians, random spectral targets): what the
    reconstruction loop costs does not depend on their values."""
    names = list(builder.recorded_shapes(spec))
    sizes = [int(np.prod(s)) for s in builder.recorded_shapes(spec).values()]
    rng = np.random.default_rng(0)
    arrays = {"model": np.str_(spec.name), "run_name": np.str_("bench"), "temperature": np.float64(8.0),
              "fingerprint": np.str_("bench"), "counts": np.full(10, 100),
              "format_version": np.int64(stats_file.FORMAT_VERSION),
              "layer_names": np.array(names), "cov_kind": np.array(["diag"] * len(names))}
    for name, size, shape in zip(names, sizes, builder.recorded_shapes(spec).values()):
        arrays[f"mean__{name}"] = rng.standard_normal((10, size)).astype(np.float32)
        arrays[f"std__{name}"] = np.ones((10, size), np.float32)
        arrays[f"shape__{name}"] = np.array(shape)
    if spectral.why_no_graph(spec):   # no spectral objective: no graph arrays (a ResNet's would be huge)
        return stats_file.Stats(arrays, "bench")
    groups = spectral.graph_groups(names)
    arrays["graph__groups"] = np.array(list(groups))
    for group, layers in groups.items():
        # Random kept columns of the real count (10% of the vertices per class), different per class.
        width = sum(sizes[names.index(n)] for n in layers)
        keep = max(1, round(0.1 * width))
        columns = np.arange(min(width, 10 * keep))
        arrays[f"graph__{group}__layers"] = np.array(layers)
        arrays[f"graph__{group}__columns"] = columns
        arrays[f"graph__{group}__basis"] = rng.standard_normal((width, len(columns))).astype(np.float32) / width ** 0.5
        arrays[f"graph__{group}__kept"] = np.sort((np.arange(10)[:, None] * keep + np.arange(keep)) % len(columns))
        arrays[f"graph__{group}__coef_mean"] = rng.standard_normal((10, keep)).astype(np.float32)
        arrays[f"graph__{group}__coef_std"] = np.ones((10, keep), np.float32)
        arrays[f"graph__{group}__coef_chol"] = np.tile(np.eye(keep, dtype=np.float32), (10, 1, 1))
    total = sum(arrays[f"graph__{g}__kept"].shape[1] for g in groups if g.startswith("pair"))
    arrays["graph__pairs__coef_chol"] = np.tile(np.eye(total, dtype=np.float32), (10, 1, 1))
    return stats_file.Stats(arrays, "bench")


def kept_projection_macs(targets_source):
    """Multiply-adds per sample of a spectral objective's kept-coefficient projection: one [D, k] matrix
    per graph (a reconstruction batch is one class; class 0's), read from the matrices the objective
    built, so D already counts a layer read through its narrower input (objectives.projection_constants)."""
    if not isinstance(targets_source, objectives.KeptSpectralTargets):   # layer-wise or vertex-domain targets
        return 0
    return sum(int(np.prod(targets_source.constants[f"basis_{group}_0"].shape)) for group in targets_source.graphs)


def reconstruction_batch(spec, objective_name, batch, steps, threads):
    """(graph, session, run_batch arguments) of one optimize_dataset batch on random weights."""
    values, stats = random_weights(spec), fake_stats(spec)
    objective = objectives.get(objective_name)
    targets_source = objective.targets(stats, teacher=objectives.FrozenTeacher(spec, values, 8.0))
    rg = optimize_dataset.ReconstructionGraph(spec, values, objective, targets_source, 8.0, 0.07, steps)
    rng = np.random.default_rng(0)
    # As optimize_dataset draws them at the default 6,400 per class (spectral batches: one class).
    labels = optimize_dataset.batch_labels(0, batch, [6400] * 10, objective.spectral)
    x0 = rng.normal(0.15, 0.1, (batch, spec.input_size)).astype(np.float32)
    targets = targets_source.sample(labels, rng)
    masks = optimize_dataset.dropout_masks(spec, rg, rng, batch)
    return rg, make_session(rg.graph, threads), (x0, targets, masks, labels), targets_source


def reconstruction_rate(spec, objective_name, batch, steps, threads):
    """(sample-steps/s, multiply-adds per sample of the kept projection, 0 if none)."""
    rg, sess, batch_args, targets_source = reconstruction_batch(spec, objective_name, batch, steps, threads)
    seconds = timed(lambda: rg.run_batch(sess, *batch_args), repeats=1)
    return batch * steps / seconds, kept_projection_macs(targets_source)


def unfused_reconstruction_rate(spec, batch, steps, threads):
    """Reference: the plainest loop (tf1 AdamOptimizer on an input Variable, top layer only,
    one session.run per step, targets fed every step): what optimize_dataset's steps should match."""
    values, stats = random_weights(spec), fake_stats(spec)
    graph = tf.Graph()
    with graph.as_default():
        x = tf1.Variable(np.random.default_rng(0).normal(0.15, 0.1, (batch, spec.input_size)).astype(np.float32))
        frozen = build_frozen(spec, values, x)
        top = models.graph.recorded_layers(frozen, 8.0)[-1]
        target = tf1.placeholder(tf.float32, top.shape)
        step = tf1.train.AdamOptimizer(0.07).minimize(tf.reduce_sum(tf.reduce_mean(tf.square(target - top), 1)))
        init = tf1.global_variables_initializer()
    sess = make_session(graph, threads)
    sess.run(init)
    feed = {target: objectives.LayerwiseTargets(stats, ["logits"]).sample(np.arange(batch) % 10,
                                                                            np.random.default_rng(0))["logits"]}

    def loop():
        for _ in range(steps):
            sess.run(step, feed)
    return batch * steps / timed(loop, repeats=1)


def train_rate(spec, batch, steps, threads):
    graph = tf.Graph()
    with graph.as_default():
        g, _, labels, loss, _, train_op = train.build_training_graph(spec, 0.001, 0)
        init = tf1.global_variables_initializer()
    sess = make_session(graph, threads)
    sess.run(init)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(batch * 50, spec.input_size)).astype(np.float32)
    y = rng.integers(0, 10, batch * 50)

    def loop():
        for i in range(steps):
            j = (i % 50) * batch
            sess.run(train_op, {g.inputs: x[j:j + batch], labels: y[j:j + batch], g.is_training: True})
    return batch * steps / timed(loop, repeats=1)


def distill_rate(teacher, student, batch, steps, threads):
    """Student steps on precomputed teacher logits (as distill runs), plus the one-off
    teacher pass over the data amortized per example."""
    graph = tf.Graph()
    with graph.as_default():
        g = models.graph.build_trainable(student, seed=0)
        soft = tf1.placeholder(tf.float32, [None, 10])
        train_op = g.minimize(tf1.train.AdamOptimizer(0.001), kd_loss(g.model.logits, soft, 8.0),
                              tf1.train.get_or_create_global_step())
        init = tf1.global_variables_initializer()
    sess = make_session(graph, threads)
    sess.run(init)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(batch * 50, student.input_size)).astype(np.float32)
    t0 = time.perf_counter()
    logits = frozen_logits(teacher, random_weights(teacher), x, 1000, threads)
    teacher_seconds_per_example = (time.perf_counter() - t0) / len(x)

    def loop():
        for i in range(steps):
            j = (i % 50) * batch
            sess.run(train_op, {g.inputs: x[j:j + batch], soft: logits[j:j + batch], g.is_training: True})
    student_seconds = timed(loop, repeats=1)
    return batch * steps / (student_seconds + teacher_seconds_per_example * batch * steps)


def stats_rate(spec, n, threads):
    values = random_weights(spec)
    graph = tf.Graph()
    with graph.as_default():
        inputs = tf1.placeholder(tf.float32, [None, spec.input_size])
        frozen = build_frozen(spec, values, inputs)
        tensors = models.graph.recorded_layers(frozen, 8.0)
    sess = make_session(graph, threads)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(n, spec.input_size)).astype(np.float32)
    y = np.arange(n) % 10
    seconds = timed(lambda: compute_stats.compute(sess, inputs, tensors, frozen.layer_names, x, y, 10, 1000, 2048),
                    repeats=1)
    return n / seconds


RESNET_TRAIN_BATCH = 64   # train's and distill's default batch


def resnet_rows(add, limits, lenet_rates, args, steps, threads):
    """resnet20 -> resnet8 against the conv+grad limit of resnet20's own convolutions (3x3, 16-64
    channels, strides 1 and 2), measured at each stage's own batch (the limit falls as the feature maps
    outgrow the caches: 64 -> 640 costs it about a third), and its reconstruction step time per sample
    beside lenet's at the same batch."""
    resnet20, resnet8 = models.get("resnet20"), models.get("resnet8")
    few = max(5, steps // 5)   # batch 64: fewer samples a step than the others, so more steps
    reconstruction_steps = max(3, steps // 20)   # a resnet20 step at batch 640 takes about a second
    limits["conv+grad resnet20"] = conv_limit(resnet20, args.batch, reconstruction_steps, threads,
                                              with_input_gradient=True)
    limits["conv+grad resnet20 batch 64"] = conv_limit(resnet20, RESNET_TRAIN_BATCH, few, threads,
                                                       with_input_gradient=True)
    print(f"limits: conv+grad resnet20 {limits['conv+grad resnet20']:.1f} GFLOP/s at batch {args.batch}, "
          f"{limits['conv+grad resnet20 batch 64']:.1f} at batch {RESNET_TRAIN_BATCH} (its convolutions, forward + "
          f"input gradient)", flush=True)
    fwd = builder.forward_macs(resnet20) * 2
    step = {}
    for objective in ("top_layer", "all_layers"):
        rate = reconstruction_rate(resnet20, objective, args.batch, reconstruction_steps, threads)[0]
        add(f"optimize_dataset {objective}", "resnet20", rate, "sample-steps/s", 2 * fwd, "conv+grad resnet20")
        step[objective] = {"resnet20_us_per_sample_step": round(1e6 / rate, 1),
                           "lenet_us_per_sample_step": round(1e6 / lenet_rates[objective], 1),
                           "ratio": round(lenet_rates[objective] / rate, 1)}
        print(f"  {objective} step: resnet20 {step[objective]['resnet20_us_per_sample_step']} us per sample, "
              f"lenet {step[objective]['lenet_us_per_sample_step']} us ({step[objective]['ratio']}x)", flush=True)
    add("train (batch 64)", "resnet20", train_rate(resnet20, RESNET_TRAIN_BATCH, few * 3, threads), "examples/s",
        3 * fwd, "conv+grad resnet20 batch 64")
    flops = 3 * builder.forward_macs(resnet8) * 2 + fwd
    add("distill (batch 64)", "resnet20->resnet8", distill_rate(resnet20, resnet8, RESNET_TRAIN_BATCH, few * 3,
                                                                threads), "examples/s", flops,
        "conv+grad resnet20 batch 64")
    return step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer steps (about a minute); noisier figures")
    p.add_argument("--num_threads", type=int, default=0)
    p.add_argument("--batch", type=int, default=640, help="reconstruction batch (optimize_dataset default)")
    p.add_argument("--json_out", default="")
    p.add_argument("--no_resnet", action="store_true", help="skip the resnet20 -> resnet8 pair (its rows take "
                   "about as long as all the others)")
    args = p.parse_args(argv)
    tf1.disable_eager_execution()
    tf.get_logger().setLevel("ERROR")
    steps = 20 if args.quick else 100
    threads = args.num_threads
    rows, step_cost = [], {}
    hinton, lenet = models.get("hinton1200"), models.get("lenet")
    limits = {"matmul": matmul_limit(hinton, args.batch, steps, threads),
              "conv": conv_limit(lenet, args.batch, steps, threads),
              "conv+grad": conv_limit(lenet, args.batch, steps, threads, with_input_gradient=True)}

    def add(stage, model, rate, unit, flops_per_unit, limit, matmul_flops_per_unit=0):
        """matmul_flops_per_unit: work beside the limit's own kind (a spectral projection), held to the
        matmul limit: the fraction is the time both would take at their limits over the time taken."""
        gflops = rate * (flops_per_unit + matmul_flops_per_unit) / 1e9
        fraction = rate * (flops_per_unit / limits[limit] + matmul_flops_per_unit / limits["matmul"]) / 1e9
        if matmul_flops_per_unit and limit != "matmul":
            limit = f"{limit} + matmul"
        rows.append({"stage": stage, "model": model, "rate": round(rate, 1), "unit": unit,
                     "gflops": round(gflops, 1), "limit": limit, "fraction_of_limit": round(fraction, 3)})
        r = rows[-1]
        print(f"{stage:<38} {model:<22} {r['rate']:>10.1f} {unit:<15} {r['gflops']:>7.1f} GFLOP/s "
              f"{100 * r['fraction_of_limit']:>5.1f}% of {limit}", flush=True)

    print(f"limits: matmul {limits['matmul']:.1f} GFLOP/s (hinton1200 shapes, forward + input-gradient "
          f"products, batch {args.batch}); conv {limits['conv']:.1f} GFLOP/s (lenet shapes, forward); conv+grad "
          f"{limits['conv+grad']:.1f} GFLOP/s (forward + input-gradient convolutions)")
    print(f"{'stage':<38} {'model':<22} {'rate':>10} {'unit':<15} {'achieved':>15} {'fraction':>6}")
    for spec, limit in ((hinton, "matmul"), (lenet, "conv")):
        fwd = builder.forward_macs(spec) * 2
        rates = {}
        for objective in OBJECTIVE_NAMES:
            if objective == "all_layers_dropout" and not any(l.dropout for l in spec.weighted_layers):
                continue
            rate, projection_macs = reconstruction_rate(spec, objective, args.batch, steps, threads)
            rates[objective] = rate
            # Forward and input gradient of the teacher, and of the kept projection for the spectral ones.
            projection = 4 * projection_macs
            add(f"optimize_dataset {objective}", spec.name, rate, "sample-steps/s", 2 * fwd, limit, projection)
            if spec is lenet:
                add(f"optimize_dataset {objective}", spec.name, rate, "sample-steps/s", 2 * fwd, "conv+grad",
                    projection)
        if spec is lenet:
            rates_of_lenet = rates
        for objective in ("spectral_all_layers", "spectral_layer_pairs"):
            step_cost[f"{spec.name} {objective}"] = round(rates["all_layers"] / rates[objective], 2)
            print(f"  {objective} step = {step_cost[f'{spec.name} {objective}']:.2f}x an all_layers step "
                  f"(goal: at most 1.5x)", flush=True)
        add("  reference: plain top_layer loop", spec.name, unfused_reconstruction_rate(spec, args.batch, steps,
                                                                                     threads),
            "sample-steps/s", 2 * fwd, limit)
        first_input_grad = 2 * int(np.prod(builder.weighted_input_shapes(spec)[0])) * \
            spec.weighted_layers[0].units if isinstance(spec.weighted_layers[0], Dense) else 0
        add("train (batch 64)", spec.name, train_rate(spec, 64, steps * 3, threads), "examples/s",
            3 * fwd - first_input_grad, limit)
        add("compute_stats", spec.name, stats_rate(spec, 2000 if args.quick else 10000, threads), "examples/s",
            fwd, limit)
    student_of = {"hinton1200": "hinton800", "lenet": "lenet_half"}
    for spec, limit in ((hinton, "matmul"), (lenet, "conv")):
        student = models.get(student_of[spec.name])
        flops = 3 * builder.forward_macs(student) * 2 + builder.forward_macs(spec) * 2
        add("distill (batch 64)", f"{spec.name}->{student.name}",
            distill_rate(spec, student, 64, steps * 3, threads), "examples/s", flops, limit)
    resnet_step = resnet_rows(add, limits, rates_of_lenet, args, steps, threads) if not args.no_resnet else {}
    report = {"machine": {"cpus": available_cores(), "tensorflow": tf.__version__},
              "settings": {"batch": args.batch, "steps": steps, "threads": threads}, "limits_gflops": limits,
              "stages": rows, "spectral_step_vs_all_layers_step": step_cost, "resnet": resnet_step}
    print(json.dumps(report, indent=1))
    if args.json_out:
        from utils import atomic
        atomic.save_json(args.json_out, report)
    return report


if __name__ == "__main__":
    main()
