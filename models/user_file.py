"""A user's model: a Python file that declares `SPEC = ModelSpec(...)` with the layers of
models/spec.py. The file is code and runs when loaded, in its own namespace (a module
named after its path), never in ours. What it declares is checked before any use."""

import hashlib
import importlib.util
import os
import re

from models.spec import (LAYER_TYPES, NAMED, AvgPool, BatchNorm, Conv, Dense, MaxPool, ModelSpec, ReLU, Residual,
                         next_shape, recorded_points)
from utils.errors import UserError
from utils.hashing import file_sha256

_loaded = {}   # absolute path -> (SHA-256 of the file, SPEC)


def load(path, flag):
    if not os.path.isfile(path):
        raise UserError(f"{flag}: no model file at {path}")
    key = os.path.abspath(path)
    digest = file_sha256(key)
    if key in _loaded and _loaded[key][0] == digest:
        return _loaded[key][1]
    module_name = "dfkd_user_model_" + hashlib.sha1(key.encode()).hexdigest()[:12]
    module_spec = importlib.util.spec_from_file_location(module_name, key)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as e:  # the user's code: any error becomes one line naming the file
        raise UserError(f"{flag}: {path} failed to load ({type(e).__name__}: {e})")
    if not hasattr(module, "SPEC"):
        raise UserError(f"{flag}: {path} declares no SPEC (expected SPEC = models.spec.ModelSpec(...))")
    validate(module.SPEC, path, flag)
    _loaded[key] = (digest, module.SPEC)
    return module.SPEC


def validate(spec, path, flag):
    """Refuses, in one line, anything the builder could not build exactly as declared."""
    def bad(what):
        raise UserError(f"{flag}: {path}: {what}")

    if not isinstance(spec, ModelSpec):
        bad(f"SPEC is a {type(spec).__name__}, expected models.spec.ModelSpec")
    if not isinstance(spec.name, str) or not re.fullmatch(r"[A-Za-z0-9._-]+", spec.name):
        bad(f"SPEC.name {spec.name!r} must be letters, digits, '.', '_' or '-'")
    shape = tuple(spec.input_shape) if isinstance(spec.input_shape, (tuple, list)) else ()
    if len(shape) not in (1, 3) or not all(isinstance(d, int) and d > 0 for d in shape):
        bad(f"input_shape {spec.input_shape!r} must be (features,) or (height, width, channels) of positive ints")
    if not isinstance(spec.layers, (tuple, list)) or not spec.layers:
        bad("layers must be a non-empty tuple")
    if spec.normalize is not None:
        _check_normalize(spec.normalize, shape, bad)
    if not isinstance(spec.layers[-1], Dense):
        bad("the last layer must be a Dense layer (it gives the logits, one unit per class)")
    _check_sequence(spec.layers, shape, "", set(), bad)
    recorded = [name for name, _ in recorded_points(spec)]
    twice = sorted({n for n in recorded if recorded.count(n) > 1})
    if twice:
        bad(f"two ReLUs read the output of {twice[0]}; put a named layer between them")


def _check_normalize(normalize, shape, bad):
    channels = shape[-1] if len(shape) == 3 else 1
    for field in ("mean", "std"):
        values = getattr(normalize, field)
        if not isinstance(values, (tuple, list)) or len(values) not in (1, channels) or \
                not all(isinstance(v, (int, float)) for v in values):
            bad(f"normalize.{field} {values!r} must be one number or one per channel ({channels})")
    if not all(v > 0 for v in normalize.std):
        bad(f"normalize.std {normalize.std!r} must be positive")


def _check_sequence(layers, current, prefix, names, bad):
    """Checks each layer of a sequence (blocks' insides too) and returns the sequence's output shape."""
    for index, layer in enumerate(layers):
        where = f"layer {prefix}{index}"
        if not isinstance(layer, LAYER_TYPES):
            bad(f"{where} is {type(layer).__name__}, not a supported layer (Dense, Conv, MaxPool, AvgPool, "
                "GlobalAvgPool, BatchNorm, ReLU, Residual from models.spec)")
        positive = {k: v for k, v in layer._asdict().items() if k in ("units", "filters", "kernel", "size")
                    or (k == "stride" and v is not None)}
        if not all(isinstance(v, int) and v > 0 for v in positive.values()):
            bad(f"{where} ({layer!r}) needs positive integer sizes")
        if isinstance(layer, NAMED):
            if not isinstance(layer.name, str) or not re.fullmatch(r"[A-Za-z0-9_]+", layer.name):
                bad(f"{where} name {layer.name!r} must be letters, digits or '_'")
            if prefix + layer.name in names:
                bad(f"two layers are named {prefix + layer.name!r}; names must be unique")
            names.add(prefix + layer.name)
            where = f"layer {prefix + layer.name}"
        if isinstance(layer, (Dense, Conv)) and not 0 <= layer.dropout < 1:
            bad(f"{where} dropout {layer.dropout} must be in [0, 1)")
        if isinstance(layer, (Conv, MaxPool, AvgPool)) and layer.padding not in ("VALID", "SAME"):
            bad(f"{where} padding {layer.padding!r} must be 'VALID' or 'SAME'")
        if isinstance(layer, (Conv, MaxPool, AvgPool)) and layer.pads is not None and (
                len(layer.pads) != 4 or not all(isinstance(p, int) and p >= 0 for p in layer.pads)
                or layer.padding != "VALID"):
            bad(f"{where} pads {layer.pads!r} must be 4 non-negative ints (top, bottom, left, right), with "
                "padding VALID")
        if isinstance(layer, BatchNorm) and not (layer.epsilon > 0 and 0 <= layer.momentum < 1):
            bad(f"{where} needs epsilon > 0 and momentum in [0, 1)")
        if not isinstance(layer, (Dense, ReLU, BatchNorm, Residual)) and len(current) != 3:
            bad(f"{layer!r} needs an image input (height, width, channels), but gets {current}")
        if isinstance(layer, Residual):
            if not isinstance(layer.body, (tuple, list)) or not layer.body or \
                    not isinstance(layer.shortcut, (tuple, list)):
                bad(f"{where}: body must be a non-empty tuple of layers and shortcut a tuple (empty = identity)")
            body = _check_sequence(layer.body, current, prefix + layer.name + "/", names, bad)
            shortcut = _check_sequence(layer.shortcut, current, prefix + layer.name + "/", names, bad)
            if body != shortcut:
                bad(f"{where}: the body gives {body} but the shortcut gives {shortcut}; they are added")
        current = next_shape(layer, current)
        if not all(d > 0 for d in current):
            bad(f"{layer!r} leaves no output ({current}); the input is too small for it")
    return tuple(current)
