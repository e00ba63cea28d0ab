"""summaries/<run>/log.json: flags, versions and results, merged across procedures."""
import json
import os
import platform
import time

from utils import atomic


def run_dir(summary_folder, run_name):
    return os.path.join(summary_folder, run_name)


def versions():
    import numpy
    import tensorflow as tf
    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "numpy": numpy.__version__, "machine": platform.machine(),
            "cpu_count": os.cpu_count()}


def model_files(flags):
    """Path and SHA-256 of every user model file the flags name (built-in models have none)."""
    from models.user_file import sha256_of
    return {flag: {"path": os.path.abspath(flags[flag]), "sha256": sha256_of(flags[flag])}
            for flag in ("model", "student_model")
            if str(flags.get(flag) or "").endswith(".py") and os.path.isfile(flags[flag])}


def update_log(summary_folder, run_name, procedure, flags, results):
    """Adds this procedure's flags and results under its name; other procedures' entries stay."""
    path = os.path.join(run_dir(summary_folder, run_name), "log.json")
    log = {}
    if os.path.exists(path):
        try:
            with open(path) as f:
                log = json.load(f)
        except (OSError, ValueError):
            log = {}  # a damaged log is replaced rather than blocking the run
    log.setdefault("procedures", {})[procedure] = {
        "flags": flags, "results": results, "versions": versions(), "model_files": model_files(flags),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    atomic.save_json(path, log)
    return path
