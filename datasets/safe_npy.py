"""Loading arrays a user hands us: never unpickle, refuse anything malformed in one line."""
import zipfile

import numpy as np

from utils.errors import UserError


def load_npy(path, flag):
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"{flag}: file not found: {path}")
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise UserError(f"{flag}: {path} holds Python objects (pickle); refused, expected a numeric .npy")
        raise UserError(f"{flag}: {path} is not a valid .npy file ({e})")
    except Exception as e:  # truncated header, random bytes, a directory...
        raise UserError(f"{flag}: {path} is not a valid .npy file ({type(e).__name__})")
    if not isinstance(array, np.ndarray):
        raise UserError(f"{flag}: {path} is an archive, expected a single .npy array")
    return array


def load_npz(path, flag):
    """Returns a dict of arrays, fully read (so a truncated member fails here, not later)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise UserError(f"{flag}: file not found: {path}")
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise UserError(f"{flag}: {path} holds Python objects (pickle); refused")
        raise UserError(f"{flag}: {path} is not a valid .npz file ({e})")
    except (zipfile.BadZipFile, OSError, EOFError, Exception) as e:
        raise UserError(f"{flag}: {path} is not a valid .npz file ({type(e).__name__})")
