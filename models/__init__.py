"""Model registry: `get(name)` returns a ModelSpec: a built-in one (models/<name>.py), or
the SPEC declared by a user's Python file when `name` is a path ending in .py."""
import importlib

from utils.errors import UserError

NAMES = ("hinton1200", "hinton800", "lenet", "lenet_half", "resnet20", "resnet8")


def adapts_to_data(name):
    """A built-in whose input channels and classes follow the data (resnet20, resnet8)."""
    return name in NAMES and hasattr(importlib.import_module(f"models.{name}"), "for_data")


def get(name, flag="--model", channels=None, classes=None):
    """channels, classes: the input's channel count and the class count, for a built-in that adapts to
    them (resnet20, resnet8: grey and 10 classes by default; RGB, CIFAR-100's 100 classes); other models
    ignore them and keep what they declare."""
    if name in NAMES:
        module = importlib.import_module(f"models.{name}")
        if (channels or classes) and hasattr(module, "for_data"):
            return module.for_data(channels or 1, classes or 10)
        return module.SPEC
    if name.endswith(".py"):
        from models import user_file
        return user_file.load(name, flag)
    raise UserError(f"{flag}: unknown model {name!r}; choose one of {', '.join(NAMES)}, or a path to a .py file "
                    "that declares SPEC (see examples/models/)")
