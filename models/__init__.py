"""Model registry: `get(name)` returns a ModelSpec: a built-in one (models/<name>.py), or
the SPEC declared by a user's Python file when `name` is a path ending in .py."""
import importlib

from utils.errors import UserError

NAMES = ("hinton1200", "hinton800", "lenet", "lenet_half", "resnet20", "resnet8")


def get(name, flag="--model"):
    if name in NAMES:
        return importlib.import_module(f"models.{name}").SPEC
    if name.endswith(".py"):
        from models import user_file
        return user_file.load(name, flag)
    raise UserError(f"{flag}: unknown model {name!r}; choose one of {', '.join(NAMES)}, or a path to a .py file "
                    "that declares SPEC (see examples/models/)")
