"""The one exception type that means "the user asked for something we can't do", and the guard that
turns it into one line for a command-line tool."""
import sys


class UserError(Exception):
    """A problem with flags or input files. main.py prints it as one line and exits 2."""


def main_guard(fn, argv=None):
    """Runs a command-line tool's fn(argv); a UserError becomes one line on stderr and exit code 2."""
    try:
        fn(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
