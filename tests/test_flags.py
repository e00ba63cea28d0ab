"""The flag table (procedures/flag_use.py) is complete and the docs follow the definitions."""
import os
import types

import datasets
from procedures import choices, flag_use
from tests.conftest import make_cfg, toy_for
from utils import flag_docs


def test_docs_flags_md_is_what_the_definitions_generate():
    with open(flag_docs.PATH) as f:
        assert f.read() == flag_docs.render(), "docs/flags.md is out of date: run python -m utils.flag_docs"


def test_every_choice_list_is_its_registry():
    import procedures
    from procedures import objectives, reproduce
    assert tuple(procedures.NAMES) == choices.PROCEDURES
    assert tuple(objectives.OBJECTIVES) == choices.OBJECTIVES
    assert tuple(reproduce.PRESETS) == choices.PRESETS


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
        assert not missing, f"{procedure} reads {sorted(missing)}, which procedures/flag_use.py does not list"
        assert names >= set(flag_use.READS[procedure]) - {"data_dir"}   # and the table lists nothing extra


def test_flags_added_later_stay_out_of_an_identity_at_the_value_that_does_what_runs_did_before():
    """A stage recorded before --flip, --bn_weight and --generator_lr existed still matches at their
    defaults; a value that changes the run enters the identity."""
    from procedures import flag_use
    from tests.conftest import make_cfg
    before = flag_use.identity("optimize_dataset", make_cfg(procedure="optimize_dataset"))
    assert not set(flag_use.ADDED) & set(before)
    flipped = flag_use.identity("optimize_dataset", make_cfg(procedure="optimize_dataset", flip=True, bn_weight=1.0))
    assert flipped == {**before, "flip": True, "bn_weight": 1.0}
    assert flag_use.identity("distill", make_cfg(procedure="distill", generator_lr=0.01))["generator_lr"] == 0.01


def test_a_flag_that_needs_another_enters_an_identity_only_with_it():
    from procedures import flag_use
    from tests.conftest import make_cfg
    plain = flag_use.identity("distill", make_cfg(procedure="distill"))
    assert flag_use.identity("distill", make_cfg(procedure="distill", boundary_step_size=0.1)) == plain
    pushed = flag_use.identity("distill", make_cfg(procedure="distill", boundary_steps=2, boundary_step_size=0.1))
    assert pushed == {**plain, "boundary_steps": 2, "boundary_step_size": 0.1}
