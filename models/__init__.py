"""Model registry: `get(name)` returns a ModelSpec: a built-in one (models/<name>.py), or
the SPEC declared by a user's Python file when `name` is a path ending in .py."""
import importlib

from utils.errors import UserError

NAMES = ("hinton1200", "hinton800", "lenet", "lenet_half", "resnet20", "resnet8")


def adapts_to_channels(name):
    """A built-in whose input channels follow the data (resnet20, resnet8)."""
    return name in NAMES and hasattr(importlib.import_module(f"models.{name}"), "for_channels")


def get(name, flag="--model", channels=None):
    """channels: the input's channel count, for a built-in that adapts to it (resnet20, resnet8: grey by
    default, RGB for colour data); other models ignore it and keep their declared input."""
    if name in NAMES:
        module = importlib.import_module(f"models.{name}")
        if channels and hasattr(module, "for_channels"):
            return module.for_channels(channels)
        return module.SPEC
    if name.endswith(".py"):
        from models import user_file
        return user_file.load(name, flag)
    raise UserError(f"{flag}: unknown model {name!r}; choose one of {', '.join(NAMES)}, or a path to a .py file "
                    "that declares SPEC (see examples/models/)")
