"""Reconstruction objectives. They share one sampling path and one loss; each is the
small difference: which recorded layers it matches, and whether fixed dropout
masks are applied to the teacher.

Loss per sample: sum over matched layers of mean_j (f(target_j) - f(activation_j))^2,
with f = ReLU on hidden layers (what the next layer actually sees) and identity on
the top layer (logits / T, which have no ReLU). Summing over samples keeps every
sample's optimization independent of its batch (Adam is element-wise).
"""
from typing import Callable, NamedTuple

import tensorflow as tf

from procedures.sampling import layer_samplers
from utils.errors import UserError


class Objective(NamedTuple):
    name: str
    matched_layers: Callable       # layer names -> the names this objective matches
    dropout_masks: bool = False    # fixed random masks on the teacher, no rescaling


def _top(names):
    return names[-1:]


def _all(names):
    return list(names)


OBJECTIVES = {
    "top_layer": Objective("top_layer", _top),
    "all_layers": Objective("all_layers", _all),
    "all_layers_dropout": Objective("all_layers_dropout", _all, dropout_masks=True),
}


def get(name):
    if name not in OBJECTIVES:
        raise UserError(f"--optimization_objective: unknown objective {name!r}; choose one of "
                        f"{', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]


class TargetSampler:
    """Draws, per sample, the target activations of the layers an objective matches."""

    def __init__(self, objective, stats):
        self.layers = objective.matched_layers(stats.layer_names)
        self.samplers = layer_samplers(stats, self.layers)

    def sample(self, labels, rng):
        return {name: self.samplers[name].sample(labels, rng) for name in self.layers}


def per_sample_loss(activations, targets, top_layer):
    """activations / targets: {layer name: [B, D] tensor}. Returns [B]."""
    total = 0.0
    for name, target in targets.items():
        act = activations[name]
        if name != top_layer:
            act, target = tf.nn.relu(act), tf.nn.relu(target)
        total += tf.reduce_mean(tf.square(target - act), axis=1)
    return total
