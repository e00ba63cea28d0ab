"""Reconstruction objectives. They share one sampling path and one loss; each is the
small difference: where its per-sample targets come from (draws from the recorded
Gaussians of some layers, or the spectrally compressed class means of some graphs)
and whether fixed dropout masks are applied to the teacher.

Loss per sample: sum over matched layers of mean_j (f(target_j) - f(activation_j))^2,
with f = ReLU on hidden layers (what the next layer actually sees) and identity on
the top layer (logits / T, which have no ReLU). Summing over samples keeps every
sample's optimization independent of its batch (Adam is element-wise).
"""
from typing import Callable, NamedTuple

import tensorflow as tf

from procedures.sampling import layer_samplers
from utils.errors import UserError


class LayerwiseTargets:
    """Per sample, a draw from its class's recorded Gaussian for each matched layer."""

    def __init__(self, stats, layers):
        self.layer_of = {name: name for name in layers}
        self.samplers = layer_samplers(stats, layers)

    def sample(self, labels, rng):
        return {name: sampler.sample(labels, rng) for name, sampler in self.samplers.items()}


class SpectralTargets:
    """Per sample, its class's spectrally compressed mean signal of each graph, split by layer."""

    def __init__(self, stats, groups):
        if not stats.has_graphwise:
            raise UserError(f"--stats_file: {stats.path} has no graphwise statistics; rerun "
                            "--procedure=compute_stats with --compute_graphwise_stats")
        self.layer_of, self.slices = {}, {}
        for group in groups:
            layers, target = stats.graph_layers(group), stats.arrays[f"graph__{group}__target"]
            offset = 0
            for layer in layers:
                size = stats.mean(layer).shape[1]
                key = f"{group}/{layer}"
                self.layer_of[key] = layer
                self.slices[key] = target[:, offset:offset + size]
                offset += size

    def sample(self, labels, rng):
        return {key: targets[labels] for key, targets in self.slices.items()}


class Objective(NamedTuple):
    name: str
    targets: Callable              # stats -> a *Targets object
    dropout_masks: bool = False    # fixed random masks on the teacher, no rescaling


OBJECTIVES = {
    "top_layer": Objective("top_layer", lambda stats: LayerwiseTargets(stats, stats.layer_names[-1:])),
    "all_layers": Objective("all_layers", lambda stats: LayerwiseTargets(stats, stats.layer_names)),
    "all_layers_dropout": Objective("all_layers_dropout", lambda stats: LayerwiseTargets(stats, stats.layer_names),
                                    dropout_masks=True),
    "spectral_all_layers": Objective("spectral_all_layers", lambda stats: SpectralTargets(stats, ["all"])),
    "spectral_layer_pairs": Objective("spectral_layer_pairs",
                                      lambda stats: SpectralTargets(stats, stats.graph_pairs)),
}


def get(name):
    if name not in OBJECTIVES:
        raise UserError(f"--optimization_objective: unknown objective {name!r}; choose one of "
                        f"{', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]


def matched_targets(targets, layer_of, top_layer):
    """f(target) per key: ReLU on hidden layers, identity on the top. Computed once per batch,
    outside the optimization loop, since the targets do not change while it runs."""
    return {key: t if layer_of[key] == top_layer else tf.nn.relu(t) for key, t in targets.items()}


def per_sample_loss(activations, matched, layer_of, top_layer):
    """activations: {layer: [B, D] tensor}; matched: {key: [B, D] tensor} from matched_targets,
    key -> layer by layer_of (a layer in two spectral pairs has two keys and counts twice). Returns [B]."""
    total = 0.0
    for key, target in matched.items():
        layer = layer_of[key]
        act = activations[layer] if layer == top_layer else tf.nn.relu(activations[layer])
        total += tf.reduce_mean(tf.square(target - act), axis=1)
    return total
