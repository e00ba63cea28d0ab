"""Procedure lookup: each module here has run(cfg) -> dict of results."""
import importlib

from config.choices import PROCEDURES as NAMES
from utils.errors import UserError


def get(name):
    if name not in NAMES:
        raise UserError(f"--procedure: unknown procedure {name!r}; choose one of {', '.join(NAMES)}")
    return importlib.import_module(f"procedures.{name}")
