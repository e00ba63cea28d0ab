"""Reading a teacher checkpoint back, with checks that name the flag and the problem."""
import glob
import json
import os
import re
import sys

import numpy as np
import tensorflow as tf

import models
from models import builder
from models.graph import MODEL_NAME
from models.spec import to_json
from utils import atomic
from utils.errors import UserError


def _meta_model_name(meta_path, flag="--model_meta"):
    from tensorflow.core.protobuf import meta_graph_pb2
    meta = meta_graph_pb2.MetaGraphDef()
    try:
        with open(meta_path, "rb") as f:
            meta.ParseFromString(f.read())
    except Exception as e:  # protobuf raises DecodeError, or worse on random bytes
        raise UserError(f"{flag}: {meta_path} is not a readable TensorFlow .meta file ({type(e).__name__})")
    values = meta.collection_def[MODEL_NAME].bytes_list.value if MODEL_NAME in meta.collection_def else []
    return values[0].decode() if values else None


def _architecture_of(shapes):
    for name in models.NAMES:
        if builder.param_shapes(models.get(name)) == shapes:
            return name
    return "an unknown architecture"


def definition_path(checkpoint_dir, spec):
    """The model definition saved beside a checkpoint: <dir>/<model>.spec.json."""
    return os.path.join(checkpoint_dir, f"{spec.name}.spec.json")


def save_definition(checkpoint_dir, spec, flag="--model"):
    """Writes the definition beside the checkpoints; refuses a folder whose checkpoints came from another one."""
    path = definition_path(checkpoint_dir, spec)
    if os.path.exists(path):
        check_definition(spec, os.path.join(checkpoint_dir, spec.name), flag)
    else:
        atomic.save_json(path, to_json(spec))


def check_definition(spec, checkpoint_prefix, flag="--model"):
    path = definition_path(os.path.dirname(checkpoint_prefix), spec)
    if not os.path.exists(path):
        return  # checkpoints from elsewhere carry none: the variable shapes are checked instead
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        raise UserError(f"{flag}: {path} (the model definition beside the checkpoint) is unreadable")
    if saved != json.loads(json.dumps(to_json(spec))):
        raise UserError(f"{flag}: {spec.name} is not defined as it was when {checkpoint_prefix} was trained (see "
                        f"{path}); use that definition, or train again")


def checkpoint_steps(checkpoint_dir, model_name):
    """Steps of the complete `<model>-<step>` checkpoints in the folder, in order."""
    return sorted(int(m.group(1)) for path in glob.glob(os.path.join(checkpoint_dir, f"{model_name}-*.index"))
                  if (m := re.search(rf"{re.escape(model_name)}-(\d+)\.index$", path)))


def latest_step(checkpoint_dir, model_name):
    """Step of the newest complete `<model>-<step>` checkpoint in the folder, or 0."""
    return max(checkpoint_steps(checkpoint_dir, model_name), default=0)


def later_checkpoint(model_checkpoint):
    """The last `<model>-<step>` prefix beside `model_checkpoint` with a higher step, or None.

    Training keeps a few intermediate checkpoints next to the final one; a teacher given by one
    of those is a different teacher, which is easy to miss."""
    folder, name = os.path.split(model_checkpoint)
    match = re.fullmatch(r"(.+)-(\d+)", name)
    if not match:
        return None
    model_name, step = match.group(1), int(match.group(2))
    last = latest_step(folder, model_name)
    return os.path.join(folder, f"{model_name}-{last}") if last > step else None


def check_meta(spec, meta_path, flag):
    if not os.path.isfile(meta_path):
        raise UserError(f"{flag}: file not found: {meta_path}")
    meta_name = _meta_model_name(meta_path, flag)
    if meta_name is not None and meta_name != spec.name:
        raise UserError(f"{flag}: {meta_path} is a {meta_name} graph, but --model={spec.name}")


def channels_and_classes(spec, model_checkpoint):
    """(input channels of `spec`'s first Conv, outputs of its last Dense) as the checkpoint holds them
    (weights [k, k, in, out] and [in, out]); None for either where the checkpoint has no such variable."""
    names = [n for n in builder.param_shapes(spec) if n.endswith("/weights")]
    try:
        shapes = dict(tf.train.list_variables(model_checkpoint))
    except Exception:   # no checkpoint there: load_teacher_values says so, naming the flag
        return None, None
    first, last = shapes.get(names[0]), shapes.get(names[-1])
    return (int(first[2]) if first is not None and len(first) == 4 else None,
            int(last[-1]) if last is not None and len(last) == 2 else None)


def spec_for(name, model_checkpoint, flag="--model"):
    """The spec of `name` as its checkpoint was trained: a built-in that adapts its input channels and
    classes (resnet20, resnet8) takes them from the checkpoint's weights."""
    spec = models.get(name, flag)
    if not (model_checkpoint and models.adapts_to_data(name)):   # the others keep what they declare
        return spec
    channels, classes = channels_and_classes(spec, model_checkpoint)
    return models.get(name, flag, channels=channels, classes=classes)


def load_teacher_values(spec, model_meta, model_checkpoint):
    """Returns {variable name: numpy array} for `spec`, after checking both flags. Without --model_meta,
    the graph beside the checkpoint is checked where there is one (an imported checkpoint has none)."""
    if not model_checkpoint:
        raise UserError("--model_checkpoint is required: the checkpoint prefix printed by --procedure=train, "
                        "e.g. summaries/<run>/train/checkpoint/<model>-<step>")
    if not os.path.exists(model_checkpoint + ".index"):
        raise UserError(f"--model_checkpoint: no checkpoint at {model_checkpoint} (expected {model_checkpoint}.index "
                        "and .data-* files; give the prefix without extension)")
    if model_meta:
        check_meta(spec, model_meta, "--model_meta")
    try:
        reader = tf.train.load_checkpoint(model_checkpoint)
        shapes = {name: tuple(shape) for name, shape in tf.train.list_variables(model_checkpoint)}
    except Exception as e:
        raise UserError(f"--model_checkpoint: {model_checkpoint} is unreadable or incomplete ({type(e).__name__})")
    check_definition(spec, model_checkpoint)
    later = later_checkpoint(model_checkpoint)
    if later:
        print(f"warning: --model_checkpoint={model_checkpoint} is not its training's last checkpoint; {later} is "
              "(give that one unless an earlier teacher is meant)", file=sys.stderr)
    expected = builder.param_shapes(spec)
    found = {k: v for k, v in shapes.items() if k in expected}
    if found != expected:
        ours = {k: v for k, v in shapes.items() if k.split("/")[-1] in ("weights", "biases")}
        raise UserError(f"--model_checkpoint: {model_checkpoint} holds {_architecture_of(ours)}, "
                        f"not --model={spec.name}")
    if not model_meta and os.path.isfile(model_checkpoint + ".meta"):   # train writes the graph there
        check_meta(spec, model_checkpoint + ".meta", "--model_checkpoint")
    try:
        return {name: np.asarray(reader.get_tensor(name), dtype=np.float32) for name in expected}
    except Exception as e:
        raise UserError(f"--model_checkpoint: {model_checkpoint} could not be read ({type(e).__name__}: {e})")
