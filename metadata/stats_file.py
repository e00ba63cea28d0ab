"""The activation-statistics file (the teacher's "metadata"): format, save, load, validate.

One .npz of plain arrays (no pickle). Per recorded layer NAME:
  mean__NAME [C, D], std__NAME [C, D], and either cov__NAME [C, D, D] (full) or nothing
  (diagonal only: std is the whole story); cov_kind lists "full"/"diag" per layer.
The top layer ("logits") holds logits / temperature. D is the flattened layer size.
C counts the file's groups: one per class, or with --stats_modes several per class, each
group's class in group_class [C] (metadata/stats_modes.py).
With --compute_graphwise_stats, per graph GROUP ("all", "pair0", "pair1", ...), N its
vertices (the units of its layers, in order), k the coefficients kept per class:
  graph__GROUP__layers, __eigenvalues [N],
  __kept [C, k]       which eigenvectors each class keeps (the largest coefficients of its mean signal),
  __columns [U]       the eigenvectors some class keeps, sorted; __basis [N, U] those columns of V,
  __coef_mean, __coef_std [C, k] and __coef_chol [C, k, k] (Cholesky factor of the covariance, with
                      a ridge where needed) of the kept coefficients over the class's examples;
and graph__pairs__coef_chol [C, K, K]: the same over the kept coefficients of all "pair" graphs
together (K their total, in group order), so that the pairs' targets are drawn jointly.
See metadata/spectral.py. Version 1 files (one vertex-domain target per class) are refused.
"""
import hashlib
import os
from typing import List, NamedTuple

import numpy as np

from datasets.safe_npy import load_npz
from utils import atomic, runlog
from utils.errors import UserError

FORMAT_VERSION = 2


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
    if meta.get("group_class") is not None:
        arrays["group_class"] = np.asarray(meta["group_class"], np.int64)
    arrays.update(meta.get("graphwise", {}))
    atomic.save_npz(path, **arrays)


class GraphStats(NamedTuple):
    """One graph's spectral statistics; positions [C, k] index each class's kept columns in basis."""
    layers: List[str]
    basis: np.ndarray
    kept: np.ndarray
    positions: np.ndarray
    coef_mean: np.ndarray
    coef_std: np.ndarray
    coef_chol: np.ndarray

    def class_basis(self, c):
        """[N, k] the eigenvectors class c keeps: its coefficients are signal @ class_basis(c)."""
        return self.basis[:, self.positions[c]]


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
    def num_groups(self):
        """Rows of every per-layer array: classes, or the modes of a --stats_modes file."""
        return len(self.counts)

    @property
    def has_modes(self):
        return "group_class" in self.arrays

    @property
    def group_class(self):
        return self.arrays["group_class"] if self.has_modes else np.arange(self.num_groups)

    @property
    def num_classes(self):
        return int(self.group_class.max()) + 1

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

    @property
    def pairs_chol(self):
        return self.arrays["graph__pairs__coef_chol"]

    def graph(self, group):
        a = lambda key: self.arrays[f"graph__{group}__{key}"]
        return GraphStats(self.graph_layers(group), a("basis"), a("kept"), np.searchsorted(a("columns"), a("kept")),
                          a("coef_mean"), a("coef_std"), a("coef_chol"))

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
                        f"{FORMAT_VERSION}; rerun --procedure=compute_stats (with --compute_graphwise_stats for the "
                        "spectral objectives)")
    for key in ("model", "run_name", "fingerprint"):
        if not _scalar(arrays, key, "U"):
            bad(key, "a string")
    if not _scalar(arrays, "temperature", "fiu") or not float(arrays["temperature"]) > 0:
        bad("temperature", "a positive number")
    counts = arrays["counts"]
    if counts.ndim != 1 or len(counts) < 1 or counts.dtype.kind not in "iu":
        bad("counts", "a 1-d integer array")
    if "group_class" in arrays:
        group_class = arrays["group_class"]
        if group_class.shape != counts.shape or group_class.dtype.kind not in "iu" or (group_class < 0).any() \
                or set(group_class.tolist()) != set(range(int(group_class.max()) + 1)):
            bad("group_class", "a class for every group, every class from 0 up having one")
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
            _check_graph(arrays, group, names.tolist(), len(counts), bad)
        total = sum(arrays[f"graph__{g}__kept"].shape[1] for g in groups.tolist() if g.startswith("pair"))
        joint = arrays.get("graph__pairs__coef_chol")
        if total and (joint is None or joint.shape != (len(counts), total, total) or joint.dtype.kind != "f"
                      or not np.isfinite(joint).all()):
            bad("graph__pairs__coef_chol", f"finite floats [{len(counts)}, {total}, {total}]")


def _check_graph(arrays, group, layer_names, num_classes, bad):
    member = lambda key: arrays.get(f"graph__{group}__{key}")
    missing = [key for key in GRAPH_MEMBERS if member(key) is None]
    if missing:
        bad(f"graph__{group}", f"members {', '.join(GRAPH_MEMBERS)} (missing {', '.join(missing)})")
    layers = member("layers")
    if layers.dtype.kind != "U" or layers.ndim != 1 or not set(layers.tolist()) <= set(layer_names):
        bad(f"graph__{group}__layers", "recorded layer names")
    width = sum(arrays[f"mean__{n}"].shape[1] for n in layers.tolist())
    columns, basis, kept = member("columns"), member("basis"), member("kept")
    if columns.ndim != 1 or columns.dtype.kind not in "iu" or len(columns) < 1 \
            or (np.diff(columns) <= 0).any() or columns[0] < 0 or columns[-1] >= width:
        bad(f"graph__{group}__columns", f"sorted distinct indices below {width}")
    if basis.shape != (width, len(columns)) or basis.dtype.kind != "f" or not np.isfinite(basis).all():
        bad(f"graph__{group}__basis", f"finite floats [{width}, {len(columns)}]")
    if kept.ndim != 2 or kept.shape[0] != num_classes or kept.shape[1] < 1 or kept.dtype.kind not in "iu" \
            or not np.isin(kept, columns).all():
        bad(f"graph__{group}__kept", f"[{num_classes}, k] indices among graph__{group}__columns")
    for key, shape in (("coef_mean", kept.shape), ("coef_std", kept.shape), ("coef_chol", kept.shape + kept.shape[1:])):
        value = member(key)
        if value.shape != shape or value.dtype.kind != "f" or not np.isfinite(value).all():
            bad(f"graph__{group}__{key}", f"finite floats {list(shape)}")


GRAPH_MEMBERS = ("layers", "columns", "basis", "kept", "coef_mean", "coef_std", "coef_chol")
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
    if stats.num_classes != spec.num_classes:
        raise UserError(f"{flag}: {stats.path} describes {stats.num_classes} classes; {spec.name} has "
                        f"{spec.num_classes}")
    expected = builder.recorded_shapes(spec)
    if stats.layer_names != list(expected) or any(stats.shape(n) != expected[n] for n in expected):
        raise UserError(f"{flag}: {stats.path} layers do not match {spec.name}")


def default_path(cfg):
    """Where compute_stats writes, and optimize_dataset looks, when --stats_file is not given."""
    modes = f"_modes{cfg.stats_modes}" if cfg.stats_modes > 1 else ""
    return os.path.join(runlog.run_dir(cfg.summary_folder, cfg.run_name), "stats",
                        f"activation_stats_{cfg.run_name}{modes}.npz")
