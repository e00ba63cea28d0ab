"""Where a reconstruction step's time goes, by TensorFlow op type.

    python -m bench.profile [--model=lenet] [--objective=top_layer] [--batch=640] [--steps=20]

Runs --steps Adam steps of one optimize_dataset batch (random weights, statistics of
the right shapes: the cost does not depend on their values) with a full trace, sums
every op's time by op type and prints the table. Op times overlap on several cores, so
the shares are of summed op time, not of wall time.
"""
import argparse
import collections
import os
import re
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

import models  # noqa: E402
from bench.run import reconstruction_batch  # noqa: E402

tf1 = tf.compat.v1


def op_times(step_stats):
    """{op type: summed microseconds} from a RunMetadata's step_stats."""
    totals = collections.Counter()
    for device in step_stats.dev_stats:
        for node in device.node_stats:
            match = re.search(r"= (\w+)\(", node.timeline_label)
            if match:
                totals[match.group(1)] += node.all_end_rel_micros
    return totals


def profile(model, objective_name, batch, steps, threads):
    rg, sess, batch_args, _ = reconstruction_batch(models.get(model), objective_name, batch, steps, threads)
    rg.start(sess, *batch_args)
    sess.run(rg.step, {rg.step_index: 0})  # warm-up
    totals = collections.Counter()
    t0 = time.perf_counter()
    for t in range(1, steps + 1):
        meta = tf1.RunMetadata()
        sess.run(rg.step, {rg.step_index: t}, options=tf1.RunOptions(trace_level=tf1.RunOptions.FULL_TRACE),
                 run_metadata=meta)
        totals += op_times(meta.step_stats)
    return totals, time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="lenet")
    p.add_argument("--objective", default="top_layer")
    p.add_argument("--batch", type=int, default=640)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--num_threads", type=int, default=0)
    p.add_argument("--top", type=int, default=12)
    args = p.parse_args(argv)
    tf1.disable_eager_execution()
    tf.get_logger().setLevel("ERROR")
    totals, wall = profile(args.model, args.objective, args.batch, args.steps, args.num_threads)
    summed = sum(totals.values())
    print(f"{args.model} {args.objective}, batch {args.batch}, {args.steps} steps: {wall:.2f} s wall (traced), "
          f"{summed / 1e6:.2f} s summed op time")
    print(f"{'op type':<28} {'ms/step':>9} {'share':>7}")
    for op, micros in totals.most_common(args.top):
        print(f"{op:<28} {micros / 1e3 / args.steps:>9.2f} {100 * micros / summed:>6.1f}%")


if __name__ == "__main__":
    main()
