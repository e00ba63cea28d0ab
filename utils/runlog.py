"""summaries/<run>/log.json: flags, versions and results, merged across procedures."""
import functools
import json
import os
import platform
import subprocess
import time

from utils import atomic
from utils.hashing import file_sha256


def run_dir(summary_folder, run_name):
    return os.path.join(summary_folder, run_name)


def dataset_tag(dataset):
    """The one folder name that a distillation on --dataset=`dataset` gets inside its run folder: a built-in
    name as it is, a file or folder by its own name (a .npy without its extension), a resize kept
    (/data/mine.npz@32x32 -> mine.npz@32x32). Never a path, so nothing is written outside the run."""
    path, at, size = dataset.partition("@")
    name = os.path.basename(os.path.abspath(path)) or "data"   # ".", "..": the folder they name
    if name.endswith(".npy"):
        name = name[:-len(".npy")]
    return name + at + size


def versions():
    """What a reported number depends on besides the flags: versions, processor and code."""
    import numpy
    import tensorflow as tf
    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "numpy": numpy.__version__, "machine": platform.machine(), "cpu": cpu_model(),
            "cpu_count": os.cpu_count(), "commit": code_commit()}


@functools.lru_cache(maxsize=None)
def cpu_model():
    """The processor's name (Linux: /proc/cpuinfo), else what platform knows, else None."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


@functools.lru_cache(maxsize=None)
def code_commit():
    """The git commit of this code, with "+changes" if tracked files differ from it; None outside git."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        status = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0 or status.returncode != 0:
        return None
    return head.stdout.strip() + ("+changes" if status.stdout.strip() else "")


def model_files(flags):
    """Path and SHA-256 of every user model file the flags name (built-in models have none)."""
    return {flag: {"path": os.path.abspath(flags[flag]), "sha256": file_sha256(flags[flag])}
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
