"""Scalar summaries written straight from Python values (no summary ops in the graph)."""
import tensorflow as tf


def write_scalars(writer, step, **values):
    summary = tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(tag=k, simple_value=float(v))
                                          for k, v in values.items()])
    writer.add_summary(summary, step)
