"""Up-front checks shared by procedures: each failure is one line naming the flag."""
import os
import re

from utils.errors import UserError


def require(cfg, *names):
    for name in names:
        if not getattr(cfg, name, None):
            raise UserError(f"--{name} is required for --procedure={cfg.procedure}")


def positive(cfg, *names):
    for name in names:
        value = getattr(cfg, name)
        if value is None or value <= 0:
            raise UserError(f"--{name} must be > 0, got {value}")


def non_negative(cfg, *names):
    for name in names:
        value = getattr(cfg, name)
        if value < 0:
            raise UserError(f"--{name} must be >= 0, got {value}")


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


def same_input_size(spec, dataset, model_flag="--model", data_flag="--dataset"):
    width = dataset.io_shape[0]
    if width != spec.input_size:
        hint = " (use mnist_conv for lenet models, mnist for hinton models)" if width in (784, 1024) else ""
        raise UserError(f"{data_flag}={dataset.name} gives inputs {width} wide, but {model_flag}={spec.name} "
                        f"expects {spec.input_size}{hint}")
