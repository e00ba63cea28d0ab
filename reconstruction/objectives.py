"""Reconstruction objectives. They share one sampling path (metadata/sampling.py) and
one loss; each is the small difference: which targets it draws per sample, where it
compares them, and whether fixed dropout masks are applied to the teacher.

Loss per sample: sum over matched keys of weight * mean_j (target_j - compared_j)^2.
- Layer-wise keys compare in the vertex domain: f(activation) against f(target), f = ReLU
  on hidden layers (what the next layer sees). The top layer (logits / T) is compared as
  is (--loss_form=dfkd) or through ReLU too (--loss_form=authors, as the authors' code).
- Spectral keys (one per graph) compare only the kept graph Fourier coefficients of the
  sample's class, (V^T s(x))[kept], against a target drawn from the class's recorded
  coefficients (--spectral_reading): sampled_full (full covariance, default),
  sampled_diag, kept_mean (the class mean alone); or `vertex`: the class mean rebuilt
  from its kept coefficients, F^-1(kept), matched layer by layer like a layer-wise target.
- Weights: 1 per key (dfkd), or 1 / its width (authors: each layer's mean squared error / size).
Summing over samples keeps every sample's optimization independent of its batch.
"""
import copy
from typing import Callable, NamedTuple

import numpy as np
import tensorflow as tf

from config.choices import LOSS_FORMS, SPECTRAL_READINGS
from metadata import spectral
from metadata.sampling import GaussianSampler, layer_samplers
from utils.errors import UserError


def seen(x, is_top, loss_form):
    """f: ReLU on hidden layers; the top layer as is, unless the authors' form."""
    return x if is_top and loss_form == "dfkd" else tf.nn.relu(x)


class VertexDomainTargets:
    """Keys that each name a recorded layer (layer_of[key]); targets [B, D] compared with f(activation)."""

    def __init__(self, layer_of, widths, top_layer, loss_form):
        self.layer_of, self.widths, self.top_layer, self.loss_form = layer_of, widths, top_layer, loss_form
        self.weights = {key: 1.0 / widths[key] if loss_form == "authors" else 1.0 for key in layer_of}
        self.constants = {}   # arrays the graph holds for the whole run

    def matched(self, targets):
        """f(target), computed once per batch, outside the optimization loop."""
        return {key: seen(t, self.layer_of[key] == self.top_layer, self.loss_form) for key, t in targets.items()}

    def compared(self, activations, labels, constants, layer_inputs=None):
        return {key: seen(activations[layer], layer == self.top_layer, self.loss_form)
                for key, layer in self.layer_of.items()}


class LayerwiseTargets(VertexDomainTargets):
    """Per sample, a draw from its class's recorded Gaussian for each matched layer."""

    def __init__(self, stats, layers, loss_form="dfkd"):
        super().__init__({n: n for n in layers}, {n: stats.mean(n).shape[1] for n in layers},
                         stats.layer_names[-1], loss_form)
        self.samplers = layer_samplers(stats, layers)

    def sample(self, labels, rng):
        return {name: sampler.sample(labels, rng) for name, sampler in self.samplers.items()}


def _graphs(stats, groups):
    if not stats.has_graphwise:
        raise UserError(f"--stats_file: {stats.path} has no graphwise statistics; rerun "
                        "--procedure=compute_stats with --compute_graphwise_stats")
    return {group: stats.graph(group) for group in groups}


class VertexSpectralTargets(VertexDomainTargets):
    """The `vertex` reading: per class one deterministic target, its mean signal rebuilt from the
    kept coefficients (the rest zero), split by layer and matched like layer-wise targets."""

    def __init__(self, stats, groups, loss_form="dfkd"):
        layer_of, widths, self.slices = {}, {}, {}
        for group, g in _graphs(stats, groups).items():
            rebuilt = np.stack([g.class_basis(c) @ g.coef_mean[c] for c in range(len(g.kept))])
            offset = 0
            for layer in g.layers:
                key, size = f"{group}/{layer}", stats.mean(layer).shape[1]
                layer_of[key], widths[key] = layer, size
                self.slices[key] = rebuilt[:, offset:offset + size].astype(np.float32)
                offset += size
        super().__init__(layer_of, widths, stats.layer_names[-1], loss_form)

    def sample(self, labels, rng):
        return {key: targets[labels] for key, targets in self.slices.items()}


class FrozenTeacher(NamedTuple):
    """The weights the statistics were recorded from, and the top layer's temperature."""
    spec: object
    values: dict
    temperature: float


class KeptSpectralTargets:
    """Only the kept coefficients: per sample, (V^T s(x))[kept of its class] against a draw from the
    class's recorded coefficients. Each class's projection uses only its own kept columns of V
    ([N, k] per class), never the whole N x N spectrum.

    Given the teacher, a layer whose input is narrower than its output (LeNet's conv1 reads 1,024
    pixels and has 4,704 units) has its share of the projection moved onto its input: its
    pre-activation is affine in its input, s = h M + b, so s B = h (M B) + b B, the same numbers
    for fewer multiply-adds (lenet's whole graph: 2,414 columns instead of 6,518)."""

    def __init__(self, stats, groups, reading="sampled_full", loss_form="dfkd", teacher=None):
        self.graphs = _graphs(stats, groups)
        self.num_classes = stats.num_classes
        self.widths = {group: g.kept.shape[1] for group, g in self.graphs.items()}
        # One Gaussian over the kept coefficients of every graph, drawn together: the pairs' joint
        # covariance where there are several graphs (they share layers), else the graph's own.
        mean = np.concatenate([g.coef_mean for g in self.graphs.values()], axis=1)
        std = np.concatenate([g.coef_std for g in self.graphs.values()], axis=1)
        chol = None
        if reading == "sampled_full":
            chol = stats.pairs_chol if len(self.graphs) > 1 else next(iter(self.graphs.values())).coef_chol
        self.sampler = GaussianSampler(mean, std if reading == "sampled_diag" else np.zeros_like(std), chol)
        widths = {layer: stats.mean(layer).shape[1] for g in self.graphs.values() for layer in g.layers}
        self.constants, self.read_from_input = projection_constants(self.graphs, widths, stats.layer_names[-1],
                                                                    self.num_classes, teacher)
        self.weights = {group: 1.0 / k if loss_form == "authors" else 1.0 for group, k in self.widths.items()}

    def sample(self, labels, rng):
        drawn = self.sampler.sample(labels, rng)
        ends = np.cumsum(list(self.widths.values()))
        return dict(zip(self.widths, np.split(drawn, ends[:-1], axis=1)))

    def matched(self, targets):
        return dict(targets)

    def compared(self, activations, labels, constants, layer_inputs=None):
        """layer_inputs: {layer: its flattened input [B, D]}, needed when the teacher was given."""
        out = {}
        for group, g in self.graphs.items():
            signal = tf.concat([layer_inputs[layer] if layer in self.read_from_input else activations[layer]
                                for layer in g.layers], axis=1)
            bases = [constants[f"basis_{group}_{c}"] for c in range(self.num_classes)]
            out[group] = kept_coefficients(signal, labels, bases)
            if f"offset_{group}" in constants:
                out[group] += tf.gather(constants[f"offset_{group}"], labels)
        return out


def projection_constants(graphs, widths, top_layer, num_classes, teacher=None):
    """Per graph and class, the [D, k] matrix that maps the signal to the class's kept coefficients,
    and the layers whose rows of it read their input instead of their pre-activation (with the
    bias's share as a per-class offset [C, k]). Without the teacher: the kept columns of V as they are."""
    maps = spectral.affine_maps(teacher.spec, teacher.values) if teacher is not None else {}
    folded = {layer for layer in widths if layer in maps and maps[layer][0].shape[0] < maps[layer][0].shape[1]}
    constants = {}
    for group, g in graphs.items():
        offsets = []
        for c in range(num_classes):
            basis = g.class_basis(c).astype(np.float64)
            rows = np.split(basis, np.cumsum([widths[layer] for layer in g.layers])[:-1])
            parts, offset = [], np.zeros(basis.shape[1])
            for layer, part in zip(g.layers, rows):
                if layer in folded:
                    scale = 1.0 / teacher.temperature if layer == top_layer else 1.0
                    weights, bias = maps[layer]
                    part, offset = scale * (weights @ part), offset + scale * (bias @ part)
                parts.append(part)
            constants[f"basis_{group}_{c}"] = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
            offsets.append(offset)
        if folded & set(g.layers):
            constants[f"offset_{group}"] = np.stack(offsets).astype(np.float32)
    return constants, folded


def kept_coefficients(signal, labels, bases):
    """Row i: signal[i] @ bases[labels[i]]; one matmul per class over its rows ([n_c, N] x [N, k])."""
    rows = tf.dynamic_partition(signal, labels, len(bases))
    where = tf.dynamic_partition(tf.range(tf.shape(signal)[0]), labels, len(bases))
    return tf.dynamic_stitch(where, [tf.matmul(r, b) for r, b in zip(rows, bases)])


def spectral_targets(groups_of):
    def make(stats, reading="sampled_full", loss_form="dfkd", teacher=None, bn_weights=None):
        groups = groups_of(stats)
        if reading == "vertex":
            return VertexSpectralTargets(stats, groups, loss_form)
        return KeptSpectralTargets(stats, groups, reading, loss_form, teacher)
    return make


class Objective(NamedTuple):
    """What an objective is, as the code that runs it asks: never by its name."""
    name: str
    targets: Callable              # (stats, spectral_reading, loss_form, teacher, bn_weights) -> a *Targets object
    dropout_masks: bool = False    # fixed random masks on the teacher, no rescaling
    spectral: bool = False         # reads each class's kept graph basis: its batches always group classes
    needs_stats: bool = True       # False: the later methods, which need only the teacher (stats may help)
    # Matches the teacher's BatchNorm moving statistics, which describe every class together (so its batches
    # must spread the classes); a teacher without BatchNorm gets the recorded per-layer statistics instead.
    matches_batchnorm: bool = False
    # Its authors' published settings, as optimize_dataset flags: what a flag left off the command line takes,
    # through optimize_dataset and through reproduce alike (docs/method.md names each one's source).
    defaults: dict = {}

# DeepInversion's settings, in dfkd's pixel units ([0, 1]; the authors' teachers read pixels standardized by
# a std of about 0.2, so their learning rate and total-variation weight are rescaled by it). From
# NVlabs/DeepInversion: cifar10/deepinversion_cifar10.py with its README's "paper parameters" (r_feature 10,
# di_lr 0.05, di_var_scale 2.5e-5, di_l2_scale 0, 2-pixel jitter, batch 256, 2,000 iterations) for what depends
# on the image size and the network's width; deepinversion.py for the rest (clipping to the pixel range, Adam
# betas 0.5 and 0.9, the first BatchNorm layer's multiplier 10). Its mirror flips are chosen per dataset:
# reproduce turns --flip on for natural images (datasets.MIRRORED), never on digits or Fashion-MNIST.
DEEP_INVERSION_DEFAULTS = dict(
    bn_weight=10.0, first_bn_weight=10.0, lr=0.01, optimize_beta1=0.5, optimize_beta2=0.9,   # lr: 0.05 x 0.2
    clip_inputs=True, jitter=2, tv_norm_weight=1.25e-4, l2_weight=0.0, optimize_batch_size=256,   # tv: 2.5e-5 / 0.2
    optimization_steps=2000)


class DeepInversionTargets:
    """DeepInversion (Yin et al., CVPR 2020): per sample, the cross-entropy of the teacher's logits towards
    the sample's class; per batch, for every BatchNorm layer, ||batch mean - moving mean||_2 + ||batch
    variance - moving variance||_2 of what it normalizes (the first layer's times --first_bn_weight), times
    --bn_weight and the batch size (the loss is a sum over samples, so each sample feels the same pull at any
    batch size, as the authors' mean cross-entropy does). A teacher without BatchNorm gets the per-class
    layer statistics compute_stats recorded instead (--batch_stats_weight's term)."""

    def __init__(self, stats, teacher, bn_weight, first_bn_weight=1.0):
        self.weights, self.constants = {}, {}
        self.teacher, self.bn_weight, self.first_bn_weight, self.stats = teacher, bn_weight, first_bn_weight, stats

    def sample(self, labels, rng):
        return {}

    def matched(self, targets):
        return {}

    def compared(self, activations, labels, constants, layer_inputs=None):
        return {}

    def sample_loss(self, model, activations, labels, matched):
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=model.logits)

    def batch_loss(self, model, activations, groups):
        """groups: each row's group in the stats file (its class, or its mode with --stats_modes)."""
        if not self.bn_weight:
            return 0.0
        if not model.batchnorm_inputs:
            from reconstruction.priors import RecordedMoments
            return self.bn_weight * RecordedMoments(self.stats).batch_loss(activations, groups)
        total, values = 0.0, self.teacher.values
        for index, (name, x) in enumerate(model.batchnorm_inputs.items()):   # in the order the input meets them
            mean, variance = tf.nn.moments(x, axes=list(range(len(x.shape) - 1)))
            term = tf.norm(mean - values[f"{name}/moving_mean"]) + tf.norm(variance - values[f"{name}/moving_variance"])
            total += (self.first_bn_weight if index == 0 else 1.0) * term
        return self.bn_weight * tf.cast(tf.shape(groups)[0], tf.float32) * total


ZSKD_TEMPERATURE = 20.0   # Nayak et al. 2019 optimize their data impressions at T = 20
ZSKD_BETAS = (1.0, 0.1)   # the two concentration scales, half of the samples each


def class_similarity(final_weights):
    """ZSKD's class similarity: cosine similarity of the final layer's weight vectors (columns of the
    [features, classes] Dense weights), each row min-max scaled to [0, 1]."""
    w = np.asarray(final_weights, np.float64)
    w = w / np.maximum(np.linalg.norm(w, axis=0, keepdims=True), 1e-12)
    cos = w.T @ w
    low, high = cos.min(axis=1, keepdims=True), cos.max(axis=1, keepdims=True)
    return (cos - low) / np.maximum(high - low, 1e-12)


class ZskdTargets:
    """Zero-Shot KD (Nayak et al., ICML 2019): per sample, a soft target drawn from Dirichlet(beta *
    similarity row of its class), beta 1.0 for half of the samples and 0.1 for the other half; the input
    is optimized so that softmax(logits / 20) matches it (cross-entropy)."""

    def __init__(self, teacher):
        last = teacher.spec.weighted_layers[-1]
        self.similarity = class_similarity(teacher.values[f"{last.name}/weights"])
        self.weights, self.constants = {"soft": 1.0}, {}

    def concentration(self, labels):
        """[B, C]: beta * the similarity row of each sample's class, the first half of a batch at beta 1.0."""
        betas = np.where(np.arange(len(labels)) < (len(labels) + 1) // 2, *ZSKD_BETAS)
        return np.maximum(betas[:, None] * self.similarity[labels], 1e-3)   # Dirichlet needs alpha > 0

    def sample(self, labels, rng):
        alpha = self.concentration(np.asarray(labels))
        return {"soft": np.stack([rng.dirichlet(a) for a in alpha]).astype(np.float32)}

    def matched(self, targets):
        return dict(targets)

    def compared(self, activations, labels, constants, layer_inputs=None):
        return {}

    def sample_loss(self, model, activations, labels, matched):
        return tf.nn.softmax_cross_entropy_with_logits(labels=matched["soft"],
                                                       logits=model.logits / ZSKD_TEMPERATURE)


def _layerwise(layers_of):
    return lambda stats, reading="sampled_full", loss_form="dfkd", teacher=None, bn_weights=None: LayerwiseTargets(
        stats, layers_of(stats), loss_form)


OBJECTIVES = {
    "top_layer": Objective("top_layer", _layerwise(lambda stats: stats.layer_names[-1:])),
    "all_layers": Objective("all_layers", _layerwise(lambda stats: stats.layer_names)),
    "all_layers_dropout": Objective("all_layers_dropout", _layerwise(lambda stats: stats.layer_names),
                                    dropout_masks=True),
    "spectral_all_layers": Objective("spectral_all_layers", spectral_targets(lambda stats: ["all"]), spectral=True),
    "spectral_layer_pairs": Objective("spectral_layer_pairs", spectral_targets(lambda stats: stats.graph_pairs),
                                      spectral=True),
    "deep_inversion": Objective("deep_inversion", lambda stats, reading, loss_form, teacher, bn_weights:
                                DeepInversionTargets(stats, teacher, *bn_weights), needs_stats=False,
                                matches_batchnorm=True, defaults=DEEP_INVERSION_DEFAULTS),
    "zskd": Objective("zskd", lambda stats, reading, loss_form, teacher, bn_weights: ZskdTargets(teacher),
                      needs_stats=False),
}
PAPER_OBJECTIVES = tuple(list(OBJECTIVES)[:5])   # the paper's five; the rest came after it


def targets_of(objective, stats, teacher, cfg):
    """The targets object of `objective` for a run of `cfg` (stats may be None for the later methods)."""
    return objective.targets(stats, cfg.spectral_reading, cfg.loss_form, teacher,
                             (cfg.bn_weight, cfg.first_bn_weight))


def with_defaults(cfg, objective, given):
    """A copy of cfg with `objective`'s own defaults in each flag of its `defaults` that is not in `given` (the
    flags named on the command line, or set by a reproduce row) or is unset (None)."""
    settled = copy.copy(cfg)
    for name, value in objective.defaults.items():
        if name not in given or getattr(settled, name) is None:
            setattr(settled, name, value)
    return settled


def get(name):
    if name not in OBJECTIVES:
        raise UserError(f"--optimization_objective: unknown objective {name!r}; choose one of "
                        f"{', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]


def check_options(reading, loss_form):
    if reading not in SPECTRAL_READINGS:
        raise UserError(f"--spectral_reading: unknown reading {reading!r}; "
                        f"choose one of {', '.join(SPECTRAL_READINGS)}")
    if loss_form not in LOSS_FORMS:
        raise UserError(f"--loss_form: unknown form {loss_form!r}; choose one of {', '.join(LOSS_FORMS)}")


def per_sample_loss(compared, matched, weights):
    """compared, matched: {key: [B, D] tensor}; weights: {key: float}. Returns [B]."""
    total = 0.0
    for key, target in matched.items():
        total += weights[key] * tf.reduce_mean(tf.square(target - compared[key]), axis=1)
    return total
