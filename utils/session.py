"""tf.compat.v1 sessions with thread settings that fit the machine."""
import os

import tensorflow as tf


def make_session(graph, num_threads=0):
    """num_threads=0 means every core this process may use."""
    threads = num_threads or len(os.sched_getaffinity(0))
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads,
                                      inter_op_parallelism_threads=2,
                                      allow_soft_placement=True)
    config.gpu_options.allow_growth = True
    return tf.compat.v1.Session(graph=graph, config=config)
