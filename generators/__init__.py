"""The methods that distill on a generator's samples instead of a dataset (`--method=dafl | dfad`):
what each trains its generator towards, how often, and on which batch. distill reads these facts;
the generator's layers are DAFL's for both (generators/dafl.py), with the differences of DFAD's script.

  DAFL (generators/dafl.py): the generator learns from the frozen teacher alone, one step on every
       student batch; the student learns by the KD loss at --temperature.
  DFAD (generators/dfad.py): the generator plays against the student on DFAD's discrepancy, one step
       on fresh codes after every few student steps; the student lowers the same discrepancy, with
       DFAD's own optimizer (SGD with momentum), which holds the student far steadier than dfkd's Adam.
  Fast (generators/fast.py): rounds of a few steps from a meta-learned generator against the teacher's
       BatchNorm statistics, its classes and the student; every round's batch joins a memory, and the
       student learns from the memory with Fast's SGD. Its own loop (memory=True).
  metadata generator (generators/fast.py): Fast's loop with dfkd's recorded per-class statistics in the
       generator's loss (needs_stats=True); a teacher without BatchNorm works too.
  CMI (generators/cmi.py): Fast's loop without the meta generator, each round's fresh generator taking many
       steps, with a contrastive term that keeps each batch apart from a bank of earlier ones.
"""
import sys
from typing import Callable, NamedTuple, Optional

from config.flags import DEFAULT_BATCH_SIZE, batch_size

from generators import cmi, dafl, dfad, fast


class StudentOptimizer(NamedTuple):
    """How a method's published script trains its student: Adam, or SGD with momentum and PyTorch's weight
    decay (its gradient plus weight_decay x the weight); --lr overrides the rate."""
    kind: str      # "adam" | "sgd"
    lr: float
    version: int   # part of a run's identity: a run made with another student optimizer is not resumed
    momentum: float = 0.0       # sgd
    weight_decay: float = 0.0   # sgd
    schedule: str = ""          # --distill_lr_schedule's default for it; "": the flag's own
    average: float = 0.0        # --student_average's default for it


class GeneratorMethod(NamedTuple):
    title: str                             # as its authors write it: DAFL, DFAD, Fast
    layers: dafl.GeneratorLayers           # the generator's definition, and its version
    generator_lr: float                    # the method's published MNIST Adam rate; --generator_lr overrides it
    student_steps_per_generator_step: int
    generator_shares_student_batch: bool   # True: the generator's step is on the student's batch, in its step
    against_student: bool                  # the generator's loss reads the student, through the student's input
    # (frozen teacher Model, student logits) -> (the loss the generator lowers, {term name: tensor})
    generator_loss: Callable
    # the method's published batch, its generator's and its student's: what --train_batch_size defaults to
    batch_size: Optional[int] = None
    # (student logits, teacher logits) -> the student's loss; None: the KD loss at --temperature
    student_loss: Optional[Callable] = None
    # the student's optimizer; None: dfkd's distillation optimizer (Adam at --lr), as every other row
    student_optimizer: Optional[StudentOptimizer] = None
    # True: rounds of synthesis into a memory the student draws its batches from (generators/fast.py), in
    # place of one generator step per student step or steps
    memory: bool = False
    recipe: Optional[fast.Recipe] = None   # a memory method's rounds: its loss weights, generator and layout
    contrastive: bool = False              # CMI's contrastive term and its bank of features
    needs_batchnorm: bool = False   # its loss reads the teacher's BatchNorm statistics
    needs_stats: bool = False       # its loss reads compute_stats' per-class statistics (--stats_file)
    in_peers: bool = True           # a row of --preset=peers (the field's methods); else only where --rows names it
    # whose student settings it takes, where not its authors' script's
    student_settings_of: str = ""

    def generator_steps(self, student_steps):
        return student_steps // self.student_steps_per_generator_step

    def generated_samples(self, student_steps, batch_size):
        """The synthesis cost: every generator pass that drew a batch (DFAD's own steps draw theirs)."""
        own = 0 if self.generator_shares_student_batch else self.generator_steps(student_steps)
        return (student_steps + own) * batch_size


FAST_STUDENT = StudentOptimizer(kind="sgd", lr=fast.STUDENT_LR, version=1, momentum=fast.STUDENT_MOMENTUM,
                                weight_decay=fast.STUDENT_WEIGHT_DECAY, schedule="cosine")
# dfkd best's student (experiments/presets.py BEST["distill"]), for dfkd's own generator: on lenet -> lenet_half
# Fashion-MNIST, Fast's SGD at 0.2 left this student at chance, and at 0.01 it reached 64.82 against this
# one's 68.08 (docs/notes/2026-12-07-resnet-gap.md).
DFKD_STUDENT = StudentOptimizer(kind="adam", lr=0.002, version=2, schedule="constant", average=0.999)
METHODS = {
    "dafl": GeneratorMethod(title="DAFL", layers=dafl.LAYERS, generator_lr=dafl.GENERATOR_LR,
                            student_steps_per_generator_step=1,
                            generator_shares_student_batch=True, against_student=False,
                            generator_loss=lambda teacher, student_logits: dafl.generator_loss(teacher),
                            batch_size=dafl.BATCH_SIZE,
                            student_optimizer=StudentOptimizer(kind="adam", lr=dafl.STUDENT_LR, version=1)),
    "dfad": GeneratorMethod(title="DFAD", layers=dfad.LAYERS, generator_lr=dfad.GENERATOR_LR,
                            student_steps_per_generator_step=dfad.STUDENT_STEPS_PER_GENERATOR_STEP,
                            generator_shares_student_batch=False, against_student=True,
                            generator_loss=lambda teacher, student_logits: (
                                -dfad.discrepancy(student_logits, teacher.logits), {}),
                            batch_size=dfad.BATCH_SIZE, student_loss=dfad.discrepancy,
                            student_optimizer=StudentOptimizer(kind="sgd", lr=dfad.STUDENT_LR, version=2,
                                                               momentum=dfad.STUDENT_MOMENTUM,
                                                               weight_decay=dfad.STUDENT_WEIGHT_DECAY)),
    "fast": GeneratorMethod(title="Fast", layers=fast.LAYERS, generator_lr=fast.GENERATOR_LR,
                            student_steps_per_generator_step=fast.STUDENT_STEPS_PER_ROUND,
                            generator_shares_student_batch=False, against_student=True, generator_loss=None,
                            batch_size=fast.BATCH_SIZE, memory=True, needs_batchnorm=True, recipe=fast.FAST,
                            student_optimizer=FAST_STUDENT),
    "cmi": GeneratorMethod(title="CMI", layers=fast.LAYERS, generator_lr=cmi.GENERATOR_LR,
                           student_steps_per_generator_step=fast.STUDENT_STEPS_PER_ROUND,
                           generator_shares_student_batch=False, against_student=True, generator_loss=None,
                           batch_size=fast.BATCH_SIZE, memory=True, needs_batchnorm=True, recipe=cmi.RECIPE,
                           contrastive=True,
                           student_optimizer=StudentOptimizer(kind="sgd", lr=cmi.STUDENT_LR, version=1,
                                                              momentum=fast.STUDENT_MOMENTUM,
                                                              weight_decay=fast.STUDENT_WEIGHT_DECAY,
                                                              schedule="cosine")),
    "metadata": GeneratorMethod(title="metadata generator", layers=fast.LAYERS, generator_lr=fast.GENERATOR_LR,
                                student_steps_per_generator_step=fast.STUDENT_STEPS_PER_ROUND,
                                generator_shares_student_batch=False, against_student=True, generator_loss=None,
                                batch_size=fast.BATCH_SIZE, memory=True, needs_stats=True, in_peers=False,
                                recipe=fast.FAST,
                                student_optimizer=DFKD_STUDENT, student_settings_of="dfkd best's student"),
}


def row_budget(name, samples, presented, batch):
    """distill's flags for a reproduce row of method `name` whose student sees `presented` samples in
    batches of `batch`, as a reconstruction row's does: DAFL's and DFAD's --epochs of 120 steps; Fast's
    --epochs (its rounds), as many as make `samples` samples (a reconstruction's count), and the
    --student_steps_per_round that spread `presented` over the rounds after warmup."""
    if not METHODS[name].memory:
        return dict(epochs=-(-presented // (dafl.STEPS_PER_EPOCH * batch)))
    rounds = max(-(-samples // batch), 2)
    learning = rounds - fast.warmup_rounds(rounds, METHODS[name].recipe)
    return dict(epochs=rounds, student_steps_per_round=-(-presented // (learning * batch)))


def own_student_optimizer(name):
    """The published student optimizer of the method --method names; None where the student trains with
    dfkd's Adam at its rate (a real or reconstructed dataset)."""
    method = METHODS.get(name)
    return method.student_optimizer if method is not None else None


def train_batch_size(name, given):
    """--train_batch_size if given, else the published batch of the method --method names (DAFL's and
    DFAD's 512), else 64."""
    method = METHODS.get(name)
    return batch_size(given, method.batch_size if method is not None and method.batch_size else DEFAULT_BATCH_SIZE)


def definition_versions(name):
    """What a run's settings hold beside its flags: the version of a generator's definition, so that a
    run (or a reproduce stage) made by another definition is never resumed or reused, and of a method's own
    student optimizer (2: DFAD's SGD; 1: Adam, dfkd's for DFAD before, DAFL's)."""
    method = METHODS.get(name)
    if method is None:
        return {}
    versions = {"generator_version": method.layers.version}
    if method.student_optimizer is not None:
        versions["student_optimizer_version"] = method.student_optimizer.version
    return versions


def take_deprecated_dataset_alias(cfg):
    """--dataset=dafl|dfad, the spelling before --method, still works: it becomes --method, with one line."""
    if cfg.dataset in METHODS and not cfg.method:
        print(f"warning: --dataset={cfg.dataset} is deprecated; use --method={cfg.dataset} (no --dataset needed)",
              file=sys.stderr)
        cfg.method, cfg.dataset = cfg.dataset, ""
