"""A user's model: a Python file that declares `SPEC = ModelSpec(...)` with the layers of
models/spec.py. The file is code and runs when loaded, in its own namespace (a module
named after its path), never in ours. What it declares is checked before any use."""
import hashlib
import importlib.util
import os
import re

from models.spec import LAYER_TYPES, Conv, Dense, ModelSpec, layer_shapes
from utils.errors import UserError

_loaded = {}   # absolute path -> (SHA-256 of the file, SPEC)


def sha256_of(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def load(path, flag):
    if not os.path.isfile(path):
        raise UserError(f"{flag}: no model file at {path}")
    key = os.path.abspath(path)
    digest = sha256_of(key)
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
    names = set()
    for index, layer in enumerate(spec.layers):
        if not isinstance(layer, LAYER_TYPES):
            bad(f"layer {index} is {type(layer).__name__}, not a supported layer (Dense, Conv, MaxPool, AvgPool "
                f"from models.spec)")
        positive = {k: v for k, v in layer._asdict().items() if k in ("units", "filters", "kernel", "stride", "size")}
        if not all(isinstance(v, int) and v > 0 for v in positive.values()):
            bad(f"layer {index} ({layer!r}) needs positive integer sizes")
        if isinstance(layer, (Dense, Conv)):
            if not isinstance(layer.name, str) or not re.fullmatch(r"[A-Za-z0-9_]+", layer.name):
                bad(f"layer {index} name {layer.name!r} must be letters, digits or '_'")
            if layer.name in names:
                bad(f"two layers are named {layer.name!r}; names must be unique")
            names.add(layer.name)
            if not 0 <= layer.dropout < 1:
                bad(f"layer {layer.name} dropout {layer.dropout} must be in [0, 1)")
        if isinstance(layer, Conv) and layer.padding not in ("VALID", "SAME"):
            bad(f"layer {layer.name} padding {layer.padding!r} must be 'VALID' or 'SAME'")
    if not isinstance(spec.layers[-1], Dense):
        bad("the last layer must be a Dense layer (it gives the logits, one unit per class)")
    current = shape
    for layer in spec.layers:
        if not isinstance(layer, Dense) and len(current) != 3:
            bad(f"{layer!r} needs an image input (height, width, channels), but gets {current}")
        current = _next_shape(layer, current)
        if not all(d > 0 for d in current):
            bad(f"{layer!r} leaves no output ({current}); the input is too small for it")


def _next_shape(layer, shape):
    for _, _, out in layer_shapes(ModelSpec("check", shape, (layer,))):
        return out
