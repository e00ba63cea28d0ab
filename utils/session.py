"""tf.compat.v1 sessions with thread settings that fit the machine."""
import os

import tensorflow as tf


def available_cores():
    """The cores this process may run on (a CPU set or a container's limit can make it fewer than the
    machine has); os.sched_getaffinity exists on Linux only, so elsewhere every core counts."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def make_session(graph, num_threads=0):
    """num_threads=0 means every core this process may use."""
    threads = num_threads or available_cores()
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads,
                                      inter_op_parallelism_threads=2,
                                      allow_soft_placement=True)
    config.gpu_options.allow_growth = True
    return tf.compat.v1.Session(graph=graph, config=config)
