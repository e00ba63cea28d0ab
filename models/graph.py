"""Trainable graphs (teacher training, students) and the frozen teacher, from one spec.

A trainable graph exposes, through collections, everything a later step needs to
use it from the .meta file alone: the input placeholder, the logits, the
temperature placeholder, the is_training switch and every pre-activation.
"""
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from models import builder
from utils.session import make_session

tf1 = tf.compat.v1

# Collection names in every saved meta graph.
MODEL_NAME = "dfkd_model_name"
INPUTS, LOGITS, TEMPERATURE, IS_TRAINING = "inputs", "logits", "temperature", "is_training"
PRE_ACTIVATIONS = "pre_activations"


class TrainableGraph(NamedTuple):
    inputs: tf.Tensor
    is_training: tf.Tensor
    temperature: tf.Tensor
    model: builder.Model

    @property
    def softened_logits(self):
        return self.model.logits / self.temperature

    def minimize(self, optimizer, loss, global_step, var_list=None):
        """One training step: the gradient update and, with it, BatchNorm's moving averages
        (one explicit group, not a collection that a caller can forget). Feed is_training=True.
        var_list: the variables to update, where the loss also reaches others (DFAD's generator)."""
        step = optimizer.minimize(loss, global_step=global_step, var_list=var_list)
        return tf.group(step, *self.model.updates)


def training_dropout(is_training, seed):
    """Standard (rescaled) dropout, active only while is_training is fed True.

    The masks are a pure function of (seed, layer, global step), so a training run
    resumed from a checkpoint draws exactly the masks an uninterrupted run would."""
    step = tf1.train.get_or_create_global_step()

    def apply(x, rate, index):
        noise = tf.random.stateless_uniform(tf.shape(x), seed=tf.stack([tf.cast((seed or 0) + 100 + index, tf.int64),
                                                                        tf.cast(step, tf.int64)]))
        keep = tf.cast(noise >= rate, x.dtype) / (1.0 - rate)
        return tf.where(is_training, x * keep, x)
    return apply


def build_trainable(spec, seed=None, scope=None, inputs=None):
    """Variables + placeholders for `spec`. `scope` keeps a student apart from a teacher."""
    with tf1.variable_scope(scope or "", reuse=False):
        if inputs is None:
            inputs = tf1.placeholder(tf.float32, [None, spec.input_size], name="inputs")
        is_training = tf1.placeholder_with_default(False, [], name="is_training")
        temperature = tf1.placeholder_with_default(1.0, [], name="temperature")
        params = builder.create_variables(spec, seed)
        model = builder.build(spec, inputs, params, training_dropout(is_training, seed), training=is_training)
    if scope is None:
        tf1.add_to_collection(MODEL_NAME, spec.name)
        tf1.add_to_collection(INPUTS, inputs)
        tf1.add_to_collection(LOGITS, model.logits)
        tf1.add_to_collection(TEMPERATURE, temperature)
        tf1.add_to_collection(IS_TRAINING, is_training)
        for z in model.pre_activations:
            tf1.add_to_collection(PRE_ACTIVATIONS, z)
    return TrainableGraph(inputs, is_training, temperature, model)


def build_frozen(spec, values, inputs, dropout=None):
    """The frozen teacher: `values` (numpy, from a checkpoint) become tf.constants."""
    with tf1.name_scope("teacher"):
        return builder.build(spec, inputs, builder.constants(spec, values), dropout)


def frozen_logits(spec, values, x, batch_size, num_threads=0):
    """The frozen model's logits for every row of x, batch by batch, in a graph of its own."""
    graph = tf.Graph()
    with graph.as_default():
        inputs = tf1.placeholder(tf.float32, [None, spec.input_size])
        logits = build_frozen(spec, values, inputs).logits
    with make_session(graph, num_threads) as sess:
        return np.concatenate([sess.run(logits, {inputs: x[i:i + batch_size]})
                               for i in range(0, len(x), batch_size)])


def recorded_layers(model, temperature):
    """Every pre-activation flattened to [batch, D]; the top one is logits / temperature,
    the quantity the statistics describe and the objectives match."""
    flat = [tf.reshape(z, (-1, int(np.prod(z.shape[1:])))) for z in model.pre_activations]
    flat[-1] = flat[-1] / temperature
    return flat
