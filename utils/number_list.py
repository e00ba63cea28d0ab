"""Flags that take one number or a comma-separated list of them (per channel, per class)."""
from utils.errors import UserError


def parse(text, flag, expected):
    """The numbers of `text` as a tuple of floats, or one line naming the flag and what was expected."""
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"{flag}={text!r}: expected comma-separated numbers, {expected}") from None
