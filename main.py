"""dfkd: data-free knowledge distillation (Lopes, Fenu & Starner 2017).

    python main.py --procedure=train|compute_stats|optimize_dataset|distill|evaluate|reproduce --run_name=NAME ...
    python main.py --flagfile=FILE ...     # flags one per line in FILE; later flags on the command line win
    python main.py --help                  # the flags, by procedure
"""
import sys
import traceback
import types

from absl import app, flags

from config import choices, flag_use  # plain data, no TensorFlow
from config import flags as config_flags

FLAGS = flags.FLAGS
_ABSL_FLAGS = set(FLAGS)  # absl's own (--logtostderr, ...), not passed to procedures
config_flags.define_absl(flags)   # config/flags.py: every flag, defined once
OURS = [flag.name for flag in config_flags.FLAGS]   # what procedures receive


def config_from_flags():
    cfg = types.SimpleNamespace(**{name: FLAGS[name].value for name in OURS})
    cfg.explicit_flags = sorted(name for name in OURS if FLAGS[name].present)  # presets yield to these
    if not cfg.data_dir:
        from datasets.mnist import default_data_dir
        cfg.data_dir = default_data_dir()
    return cfg


def parse_flags(argv):
    """absl's parsing, with a bad flag (an unknown choice, a malformed number) reported as one error line;
    -h and --help print the flags by procedure and exit 0 (absl's --helpfull lists absl's own too)."""
    if any(arg in ("-h", "--help", "-help", "--h") for arg in argv[1:]):
        sys.stdout.write(config_flags.help_text())
        sys.exit(0)
    try:
        return FLAGS(argv)
    except flags.Error as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def warn_unread(cfg):
    """A flag the procedure does not read is named, not silently dropped; a warning, so one --flagfile can
    serve several procedures."""
    for name in flag_use.unread(cfg.procedure, cfg.explicit_flags):
        print(f"warning: --{name} is not read by --procedure={cfg.procedure}; ignored", file=sys.stderr)


def check_model_files(cfg):
    """A model file is loaded and checked before TensorFlow starts, so a bad one fails in a moment."""
    import models
    for flag in ("model", "student_model"):
        if str(getattr(cfg, flag) or "").endswith(".py"):
            models.get(getattr(cfg, flag), f"--{flag}")


def main(argv):
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}; every option is a --flag=value", file=sys.stderr)
        return 2
    from utils.errors import UserError
    cfg = config_from_flags()
    try:
        if not cfg.procedure:
            raise UserError(f"--procedure is required; choose one of {', '.join(choices.PROCEDURES)}")
        warn_unread(cfg)
        config_flags.validate(cfg, cfg.procedure)
        check_model_files(cfg)
        from utils.quiet_tf import import_tensorflow
        import_tensorflow().compat.v1.disable_eager_execution()
        from utils import runlog
        runlog.code_commit()   # cached now: a result names the code it ran, not the commit at its end
        import procedures
        procedures.get(cfg.procedure).run(cfg)
    except UserError as e:
        if cfg.verbose:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished artifacts are kept; run the same command again to resume", file=sys.stderr)
        return 130
    except OSError as e:
        if cfg.verbose:
            traceback.print_exc()
        print(f"error: {e.strerror or e} ({e.filename or 'I/O'}); check disk space and permissions",
              file=sys.stderr)
        return 1
    return 0


def run():
    """The `dfkd` command that `pip install` puts on the PATH: the same as `python main.py`."""
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
