"""Loading arrays a user hands us: never unpickle, refuse anything malformed in one line."""
import numpy as np

from utils.errors import UserError

NPY_MAGIC, ZIP_MAGIC, PICKLE_PROTOCOL_MARK = b"\x93NUMPY", b"PK\x03\x04", b"\x80"


def _check_magic(path, flag, magic, kind):
    try:
        with open(path, "rb") as f:
            head = f.read(len(magic))
    except FileNotFoundError:
        raise UserError(f"{flag}: file not found: {path}")
    except OSError as e:
        raise UserError(f"{flag}: cannot read {path} ({e.strerror})")
    if head.startswith(PICKLE_PROTOCOL_MARK):
        raise UserError(f"{flag}: {path} is a Python pickle; refused, expected a {kind} file")
    if head != magic:
        raise UserError(f"{flag}: {path} is not a valid {kind} file (wrong magic bytes)")


def load_npy(path, flag):
    _check_magic(path, flag, NPY_MAGIC, ".npy")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise UserError(f"{flag}: {path} holds Python objects (pickle); refused, expected a numeric .npy")
        raise UserError(f"{flag}: {path} is not a valid .npy file ({e})")
    except Exception as e:  # truncated data, bad header...
        raise UserError(f"{flag}: {path} is not a valid .npy file ({type(e).__name__})")
    return array


def load_npz(path, flag):
    """Returns a dict of arrays, fully read (so a truncated member fails here, not later)."""
    _check_magic(path, flag, ZIP_MAGIC, ".npz")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise UserError(f"{flag}: {path} holds Python objects (pickle); refused")
        raise UserError(f"{flag}: {path} is not a valid .npz file ({e})")
    except Exception as e:  # BadZipFile, EOFError, zlib errors on random bytes...
        raise UserError(f"{flag}: {path} is not a valid .npz file ({type(e).__name__})")
