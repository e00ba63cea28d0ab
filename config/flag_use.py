"""Which flags each procedure reads, and which of them make a run what it is; all derived from
config/flags.py. tests/test_flags.py runs every procedure on a config that records what it reads and
fails when a procedure reads a flag its definition does not name."""
from config.flags import FLAGS, PROCEDURE_ORDER, readers

EVERY = tuple(f.name for f in FLAGS if f.read_by == ("every",))
READS = {p: tuple(f.name for f in FLAGS if f.read_by != ("every",) and p in readers(f)) for p in PROCEDURE_ORDER}
REPRODUCE_SETS = tuple(f.name for f in FLAGS if f.reproduce == "sets")
NO_EFFECT = {f.name for f in FLAGS if not f.affects_result or f.read_by == ("every",)}
ADDED = {f.name: f.default for f in FLAGS if f.added}
ONLY_WITH = {f.name: f.only_with for f in FLAGS if f.only_with}
ARTIFACTS = {f.name for f in FLAGS if f.artifact}


def without_added_defaults(settings):
    return {name: value for name, value in settings.items() if not (name in ADDED and value == ADDED[name])}


def reads(procedure):
    return EVERY + READS[procedure]


def unread(procedure, given):
    """The flags in `given` that `procedure` does not read, in the order given."""
    return [name for name in given if name not in reads(procedure)]


def identity(procedure, cfg, by_content=False):
    """{flag: value} of every flag that decides what `procedure` produces from `cfg`. by_content: without the
    paths of the artifacts it reads, for a caller that records their fingerprints instead."""
    settings = {name: getattr(cfg, name) for name in READS[procedure]
                if name not in NO_EFFECT and not (by_content and name in ARTIFACTS)}
    return without_added_defaults({name: value for name, value in settings.items()
                                   if name not in ONLY_WITH or settings[ONLY_WITH[name]]})
