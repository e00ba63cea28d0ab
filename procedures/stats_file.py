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


def _scalar(arrays, key, kinds):
    value = arrays[key]
    return value.ndim == 0 and value.dtype.kind in kinds


def _check_schema(arrays, path, flag):
    """Every member has the type and shape the format promises, before anything uses it."""
    def bad(member, expected):
        raise UserError(f"{flag}: {path} has a malformed {member} (expected {expected}); rerun compute_stats")

    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise UserError(f"{flag}: {path} is not a dfkd stats file (missing {', '.join(missing)})")
    if not _scalar(arrays, "format_version", "iu"):
        bad("format_version", "an integer")
    if int(arrays["format_version"]) != FORMAT_VERSION:
        raise UserError(f"{flag}: {path} has format version {int(arrays['format_version'])}, this dfkd reads "
                        f"{FORMAT_VERSION}; rerun --procedure=compute_stats")
    for key in ("model", "run_name", "fingerprint"):
        if not _scalar(arrays, key, "U"):
            bad(key, "a string")
    if not _scalar(arrays, "temperature", "fiu") or not float(arrays["temperature"]) > 0:
        bad("temperature", "a positive number")
    counts = arrays["counts"]
    if counts.ndim != 1 or len(counts) < 1 or counts.dtype.kind not in "iu":
        bad("counts", "a 1-d integer array")
    names, kinds = arrays["layer_names"], arrays["cov_kind"]
    if names.ndim != 1 or names.dtype.kind != "U" or len(names) < 1 or kinds.shape != names.shape \
            or kinds.dtype.kind != "U" or not set(kinds.tolist()) <= {"full", "diag"}:
        bad("layer_names/cov_kind", "matching 1-d string arrays")
    for name, kind in zip(names.tolist(), kinds.tolist()):
        for key in ("mean", "std", "shape") + (("cov",) if kind == "full" else ()):
            if f"{key}__{name}" not in arrays:
                raise UserError(f"{flag}: {path} lacks {key}__{name}; the file is incomplete")
        mean, std, shape = arrays[f"mean__{name}"], arrays[f"std__{name}"], arrays[f"shape__{name}"]
        if mean.ndim != 2 or mean.shape[0] != len(counts) or mean.dtype.kind != "f" or not np.isfinite(mean).all():
            bad(f"mean__{name}", f"finite floats [{len(counts)}, units]")
        if std.shape != mean.shape or std.dtype.kind != "f":
            bad(f"std__{name}", f"floats shaped like mean__{name}")
        if shape.ndim != 1 or shape.dtype.kind not in "iu" or int(np.prod(shape)) != mean.shape[1]:
            bad(f"shape__{name}", f"integers whose product is {mean.shape[1]}")
        if kind == "full" and arrays[f"cov__{name}"].shape != mean.shape + mean.shape[1:]:
            bad(f"cov__{name}", f"[{len(counts)}, {mean.shape[1]}, {mean.shape[1]}]")
    if "graph__groups" in arrays:
        groups = arrays["graph__groups"]
        if groups.ndim != 1 or groups.dtype.kind != "U":
            bad("graph__groups", "a 1-d string array")
        for group in groups.tolist():
            layers, target = arrays.get(f"graph__{group}__layers"), arrays.get(f"graph__{group}__target")
            if layers is None or target is None or layers.dtype.kind != "U" or layers.ndim != 1 \
                    or not set(layers.tolist()) <= set(names.tolist()):
                bad(f"graph__{group}", "the layers and target of a graph over recorded layers")
            width = sum(arrays[f"mean__{n}"].shape[1] for n in layers.tolist())
            if target.shape != (len(counts), width) or target.dtype.kind != "f":
                bad(f"graph__{group}__target", f"floats [{len(counts)}, {width}]")


REQUIRED = ("format_version", "model", "run_name", "temperature", "fingerprint", "counts", "layer_names", "cov_kind")


def load(path, flag="--stats_file"):
    arrays = load_npz(path, flag)
    _check_schema(arrays, path, flag)
    return Stats(arrays, path)


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
