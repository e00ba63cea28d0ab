"""The activation-statistics file (the teacher's "metadata"): format, save, load, validate.

One .npz of plain arrays (no pickle). Per recorded layer NAME:
  mean__NAME [C, D], std__NAME [C, D], and either cov__NAME [C, D, D] (full) or nothing
  (diagonal only: std is the whole story); cov_kind lists "full"/"diag" per layer.
The top layer ("logits") holds logits / temperature. D is the flattened layer size.
With --compute_graphwise_stats, per graph GROUP ("all", "pair0", "pair1", ...):
  graph__GROUP__layers, __eigenvalues, __indices [C, k], __coefficients [C, k] (the kept
  spectral coefficients of each class's mean signal) and __target [C, vertices] (their
  inverse transform); see procedures/spectral.py.
"""
import hashlib

import numpy as np

from datasets.safe_npy import load_npz
from utils import atomic
from utils.errors import UserError

FORMAT_VERSION = 1


def weights_fingerprint(values):
    """Short hash of the teacher's weights: ties stats to the exact checkpoint."""
    h = hashlib.sha256()
    for name in sorted(values):
        h.update(name.encode())
        h.update(np.ascontiguousarray(values[name], dtype=np.float32).tobytes())
    return h.hexdigest()[:16]


def save(path, meta, layers):
    """meta: dict of scalars/strings; layers: {name: dict(mean, std, cov or None, shape)}."""
    arrays = {
        "format_version": np.int64(FORMAT_VERSION),
        "model": np.str_(meta["model"]), "run_name": np.str_(meta["run_name"]),
        "temperature": np.float64(meta["temperature"]), "fingerprint": np.str_(meta["fingerprint"]),
        "counts": np.asarray(meta["counts"], np.int64),
        "layer_names": np.array(list(layers), dtype=np.str_),
        "cov_kind": np.array(["full" if l["cov"] is not None else "diag" for l in layers.values()], np.str_),
    }
    for name, layer in layers.items():
        arrays[f"mean__{name}"] = layer["mean"].astype(np.float32)
        arrays[f"std__{name}"] = layer["std"].astype(np.float32)
        arrays[f"shape__{name}"] = np.asarray(layer["shape"], np.int64)
        if layer["cov"] is not None:
            arrays[f"cov__{name}"] = layer["cov"].astype(np.float32)
    arrays.update(meta.get("graphwise", {}))
    atomic.save_npz(path, **arrays)


class Stats:
    """A loaded, validated stats file."""

    def __init__(self, arrays, path):
        self.arrays, self.path = arrays, path
        self.model = str(arrays["model"])
        self.run_name = str(arrays["run_name"])
        self.temperature = float(arrays["temperature"])
        self.fingerprint = str(arrays["fingerprint"])
        self.counts = arrays["counts"]
        self.layer_names = [str(n) for n in arrays["layer_names"]]
        self.cov_kind = dict(zip(self.layer_names, (str(k) for k in arrays["cov_kind"])))

    @property
    def num_classes(self):
        return len(self.counts)

    def mean(self, layer):
        return self.arrays[f"mean__{layer}"]

    def std(self, layer):
        return self.arrays[f"std__{layer}"]

    def cov(self, layer):
        return self.arrays.get(f"cov__{layer}")

    @property
    def has_graphwise(self):
        return "graph__groups" in self.arrays

    @property
    def graph_pairs(self):
        groups = self.arrays.get("graph__groups", [])
        return [str(g) for g in groups if str(g).startswith("pair")]

    def graph_layers(self, group):
        return [str(n) for n in self.arrays[f"graph__{group}__layers"]]

    def shape(self, layer):
        return tuple(int(d) for d in self.arrays[f"shape__{layer}"])


REQUIRED = ("format_version", "model", "run_name", "temperature", "fingerprint", "counts", "layer_names", "cov_kind")


def load(path, flag="--stats_file"):
    arrays = load_npz(path, flag)
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise UserError(f"{flag}: {path} is not a dfkd stats file (missing {', '.join(missing)})")
    if int(arrays["format_version"]) != FORMAT_VERSION:
        raise UserError(f"{flag}: {path} has format version {int(arrays['format_version'])}, this dfkd reads "
                        f"{FORMAT_VERSION}; rerun --procedure=compute_stats")
    stats = Stats(arrays, path)
    for name in stats.layer_names:
        for key in ("mean", "std", "shape"):
            if f"{key}__{name}" not in arrays:
                raise UserError(f"{flag}: {path} lacks {key}__{name}; the file is incomplete")
        mean = arrays[f"mean__{name}"]
        if mean.ndim != 2 or mean.shape[0] != stats.num_classes or not np.isfinite(mean).all():
            raise UserError(f"{flag}: {path} has a malformed mean for layer {name}")
    return stats


def validate(stats, spec, temperature, fingerprint, flag="--stats_file"):
    """Refuses stats that belong to another model, temperature or checkpoint."""
    from models import builder
    if stats.model != spec.name:
        raise UserError(f"{flag}: {stats.path} was computed for --model={stats.model}, not {spec.name}")
    if abs(stats.temperature - temperature) > 1e-9:
        raise UserError(f"{flag}: {stats.path} was computed with --temperature={stats.temperature:g}, "
                        f"not {temperature:g}; rerun compute_stats or pass the same temperature")
    graph_fingerprint = str(stats.arrays.get("graph__fingerprint", stats.fingerprint))
    if stats.fingerprint != fingerprint or graph_fingerprint != fingerprint:
        raise UserError(f"{flag}: {stats.path} was computed from another checkpoint of {spec.name} "
                        f"(weights fingerprint {stats.fingerprint}, this checkpoint {fingerprint})")
    expected = builder.recorded_shapes(spec)
    if stats.layer_names != list(expected) or any(stats.shape(n) != expected[n] for n in expected):
        raise UserError(f"{flag}: {stats.path} layers do not match {spec.name}")
