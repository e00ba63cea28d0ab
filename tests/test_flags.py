"""Each flag is defined once (config/flags.py); what each procedure reads is complete; the docs follow."""
import os
import types

import pytest

import datasets
from config import choices, flag_docs, flag_use
from tests.conftest import make_cfg, toy_for
from utils.errors import UserError


def test_docs_flags_md_is_what_the_definitions_generate():
    with open(flag_docs.PATH) as f:
        assert f.read() == flag_docs.render(), "docs/flags.md is out of date: run python -m config.flag_docs"


def test_every_choice_list_is_its_registry():
    import procedures
    from experiments import presets
    from reconstruction import objectives
    assert tuple(procedures.NAMES) == choices.PROCEDURES
    assert tuple(objectives.OBJECTIVES) == choices.OBJECTIVES
    assert tuple(presets.PRESETS) == choices.PRESETS


def test_the_table_names_only_defined_flags_and_every_flag_has_a_reader():
    import main
    named = set(flag_use.EVERY) | {f for names in flag_use.READS.values() for f in names} | set(
        flag_use.REPRODUCE_SETS)
    assert named <= set(main.OURS)
    assert set(main.OURS) <= named
    assert "temperature" in flag_use.identity("distill", make_cfg())   # what decides a result is in its identity
    assert "num_threads" not in flag_use.identity("distill", make_cfg())


class Recording(types.SimpleNamespace):
    """A config that notes every attribute a procedure reads."""
    seen = set()

    def __getattribute__(self, name):
        if not name.startswith("_"):
            type(self).seen.add(name)
        return super().__getattribute__(name)


def run_recorded(procedure, cfg):
    import procedures
    Recording.seen = set()
    procedures.get(procedure).run(Recording(**vars(cfg)))
    return Recording.seen - {"explicit_flags"}


@pytest.mark.slow
def test_each_procedure_reads_only_flags_in_its_table(tmp_path, monkeypatch):
    """The warning, the docs and reproduce's stage identities all come from the table: a flag a procedure
    reads and the table misses would change a result that reproduce then reuses."""
    monkeypatch.setattr(datasets, "get", lambda name, data_dir, flag="--dataset": toy_for(784))
    common = dict(summary_folder=str(tmp_path), run_name="flags", model="hinton1200", train_batch_size=32)
    seen = {"train": run_recorded("train", make_cfg(procedure="train", **common))}
    teacher = os.path.join(str(tmp_path), "flags", "train", "checkpoint", "hinton1200-5")
    with_teacher = dict(common, model_checkpoint=teacher)
    seen["compute_stats"] = run_recorded("compute_stats", make_cfg(
        procedure="compute_stats", compute_graphwise_stats=True, **with_teacher))
    seen["optimize_dataset"] = run_recorded("optimize_dataset", make_cfg(
        procedure="optimize_dataset", optimization_objective="spectral_all_layers", samples_per_class=1,
        optimization_steps=2, optimize_batch_size=10, jitter=1, batch_stats_weight=1.0, **with_teacher))
    seen["evaluate"] = run_recorded("evaluate", make_cfg(procedure="evaluate", **with_teacher))
    seen["distill"] = run_recorded("distill", make_cfg(procedure="distill", dataset="noise", eval_dataset="mnist",
                                                      augment_shift=1, **with_teacher))
    for procedure, names in seen.items():
        missing = names - set(flag_use.reads(procedure))
        assert not missing, f"{procedure} reads {sorted(missing)}, which config/flag_use.py does not list"
        assert names >= set(flag_use.READS[procedure]) - {"data_dir"}   # and the table lists nothing extra


def test_flags_added_later_stay_out_of_an_identity_at_the_value_that_does_what_runs_did_before():
    """A stage recorded before --flip, --bn_weight and --generator_lr existed still matches at their
    defaults; a value that changes the run enters the identity."""
    from config import flag_use
    from tests.conftest import make_cfg
    before = flag_use.identity("optimize_dataset", make_cfg(procedure="optimize_dataset"))
    assert not set(flag_use.ADDED) & set(before)
    flipped = flag_use.identity("optimize_dataset", make_cfg(procedure="optimize_dataset", flip=True, bn_weight=1.0))
    assert flipped == {**before, "flip": True, "bn_weight": 1.0}
    assert flag_use.identity("distill", make_cfg(procedure="distill", generator_lr=0.01))["generator_lr"] == 0.01


def test_a_flag_that_needs_another_enters_an_identity_only_with_it():
    from config import flag_use
    from tests.conftest import make_cfg
    plain = flag_use.identity("distill", make_cfg(procedure="distill"))
    assert flag_use.identity("distill", make_cfg(procedure="distill", boundary_step_size=0.1)) == plain
    pushed = flag_use.identity("distill", make_cfg(procedure="distill", boundary_steps=2, boundary_step_size=0.1))
    assert pushed == {**plain, "boundary_steps": 2, "boundary_step_size": 0.1}


def definition_problems(definitions, root):
    """What breaks "each flag is defined once" (config/flags.py): a name twice, a default outside its own
    choices or range, a type it does not hold, or an absl DEFINE_ call anywhere but define_absl."""
    import ast
    problems = []
    seen = set()
    for flag in definitions:
        if flag.name in seen:
            problems.append(f"--{flag.name} is defined twice")
        seen.add(flag.name)
        if flag.default is not None and not isinstance(flag.default, flag.type):
            problems.append(f"--{flag.name}: default {flag.default!r} is not {flag.type.__name__}")
            continue
        if flag.choices and flag.default is not None and flag.default not in flag.choices:
            problems.append(f"--{flag.name}: default {flag.default!r} is not one of its choices")
        if flag.minimum and flag.default is not None and not (
                flag.default > 0 if flag.minimum == ">0" else flag.default >= 0):
            problems.append(f"--{flag.name}: default {flag.default!r} is outside {flag.minimum}")
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("tests", "__pycache__")]
        for file in (f for f in files if f.endswith(".py")):
            path = os.path.join(dirpath, file)
            for node in ast.walk(ast.parse(open(path).read())):
                if isinstance(node, ast.Attribute) and node.attr.startswith("DEFINE_") and \
                        not path.endswith(os.path.join("config", "flags.py")):
                    problems.append(f"{os.path.relpath(path, root)}: defines a flag outside config/flags.py")
    return problems


def test_every_flag_is_defined_once_and_everything_is_derived_from_it():
    from absl import flags as absl_flags

    import main
    from config import flags
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert definition_problems(flags.FLAGS, root) == []
    assert main.OURS == [f.name for f in flags.FLAGS]
    for flag in flags.FLAGS:   # absl holds each definition as written
        assert absl_flags.FLAGS[flag.name].default == flag.default and absl_flags.FLAGS[flag.name].help.endswith(flag.help)
    assert make_cfg().temperature == flags.BY_NAME["temperature"].default


def test_a_deliberate_definition_violation_is_caught(tmp_path):
    import dataclasses

    from config import flags
    good = flags.BY_NAME["epochs"]
    bad = [good, good, dataclasses.replace(good, name="x", default=0),
           dataclasses.replace(flags.BY_NAME["augment"], name="y", default="rotate"),
           dataclasses.replace(good, name="z", default="ten")]
    (tmp_path / "elsewhere.py").write_text("from absl import flags\nflags.DEFINE_integer('w', 1, 'help')\n")
    problems = definition_problems(bad, str(tmp_path))
    assert problems == ["--epochs is defined twice", "--x: default 0 is outside >0",
                        "--y: default 'rotate' is not one of its choices", "--z: default 'ten' is not int",
                        "elsewhere.py: defines a flag outside config/flags.py"]


def test_a_value_out_of_range_is_one_line_naming_the_flag():
    from config import flags
    with pytest.raises(UserError, match="^--optimize_batch_size must be > 0, got 0$"):
        flags.validate(make_cfg(optimize_batch_size=0), "optimize_dataset")
    flags.validate(make_cfg(optimize_batch_size=0), "train")   # not a flag train reads


def test_a_zero_batch_is_refused_not_taken_for_unset():
    from procedures import train
    with pytest.raises(UserError, match="^--train_batch_size must be > 0, got 0$"):
        train.run(make_cfg(procedure="train", train_batch_size=0))
