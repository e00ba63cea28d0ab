"""The one exception type that means "the user asked for something we can't do"."""


class UserError(Exception):
    """A problem with flags or input files. main.py prints it as one line and exits 2."""
