"""Worker processes: each a fresh interpreter (spawn: a forked TensorFlow would copy its threads) that
imports TensorFlow quietly before the module holding its work."""
import importlib
import multiprocessing


def process(target, args):
    """A daemon process that runs target(*args); target is a module-level function."""
    context = multiprocessing.get_context("spawn")
    return context.Process(target=_run, args=(target.__module__, target.__name__, args), daemon=True)


def queue():
    return multiprocessing.get_context("spawn").SimpleQueue()


def _run(module, name, args):
    from utils.quiet_tf import import_tensorflow
    import_tensorflow().compat.v1.disable_eager_execution()
    getattr(importlib.import_module(module), name)(*args)
