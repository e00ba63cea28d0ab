"""Up-front checks shared by procedures: each failure is one line naming the flag."""
import os
import re

from utils.errors import UserError


def require(cfg, *names):
    for name in names:
        if not getattr(cfg, name, None):
            raise UserError(f"--{name} is required for --procedure={cfg.procedure}")


def run_name(cfg):
    require(cfg, "run_name")
    if not re.fullmatch(r"[A-Za-z0-9._-]+", cfg.run_name):
        raise UserError(f"--run_name: {cfg.run_name!r} may only use letters, digits, '.', '_' and '-'")


def writable_folder(path, flag):
    """Creates `path` if needed and proves we can write there."""
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".dfkd_write_probe")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise UserError(f"{flag}: cannot write to {path} ({e.strerror})")


def resize_hint(spec, dataset):
    """'; use --dataset=NAME@HxW' where resizing the images would give the model's input, else ''."""
    if len(dataset.input_shape) != 3:
        return ""
    channels = dataset.input_shape[2]
    if len(spec.input_shape) == 3:
        if spec.input_shape[2] != channels:
            return ""
        h, w = spec.input_shape[:2]
    else:
        side = int(round((spec.input_size / channels) ** 0.5))
        if side * side * channels != spec.input_size:
            return ""
        h = w = side
    base = dataset.name.split("@")[0]
    base = {"mnist_conv": "mnist", "fashion_mnist_conv": "fashion_mnist"}.get(base, base)
    better = f"{base}_conv" if (h, w) == (32, 32) and base in ("mnist", "fashion_mnist") else f"{base}@{h}x{w}"
    return f"; use --dataset={better}" if better != dataset.name else ""


def dataset_fits(spec, dataset, model_flag="--model", data_flag="--dataset", classes=True):
    """The dataset's inputs are as wide as the model's, and (classes=True) its classes are the model's outputs."""
    width = dataset.io_shape[0]
    if width != spec.input_size:
        hint = resize_hint(spec, dataset)
        raise UserError(f"{data_flag}={dataset.name} gives inputs {width} wide, but {model_flag}={spec.name} expects "
                        f"{spec.input_size} (data {tuple(dataset.input_shape)}, model {tuple(spec.input_shape)}){hint}")
    if classes and dataset.num_classes != spec.num_classes:
        raise UserError(f"{data_flag}={dataset.name} has {dataset.num_classes} classes, but {model_flag}={spec.name} "
                        f"has {spec.num_classes} outputs")
