"""Model registry: `get(name)` returns the ModelSpec declared in models/<name>.py."""
import importlib

from utils.errors import UserError

NAMES = ("hinton1200", "hinton800", "lenet", "lenet_half")


def get(name):
    if name not in NAMES:
        raise UserError(f"--model/--student_model: unknown model {name!r}; choose one of {', '.join(NAMES)}")
    return importlib.import_module(f"models.{name}").SPEC
