"""Every flag of dfkd, defined once. The absl flags, `--help`, docs/flags.md, which flags each procedure
reads (flag_use), a run's identity, range checks and the configs that tests build are all derived from
FLAGS below; adding a flag is one entry here, its use, and its test."""
import dataclasses
import textwrap
from typing import Any, Optional, Tuple

import models
from config import choices
from utils.errors import UserError

PROCEDURE_ORDER = choices.PROCEDURES   # the order --help and docs/flags.md list them in


@dataclasses.dataclass(frozen=True)
class Flag:
    name: str
    type: type                      # str, int, float or bool
    default: Any
    read_by: Tuple[str, ...]        # the procedures that read it; ("every",) for all of them
    help: str
    choices: Optional[Tuple[str, ...]] = None
    minimum: Optional[str] = None   # ">0" or ">=0": checked before a procedure runs
    affects_result: bool = True     # False: where a run happens or how often it reports, not what it makes
    # Added after runs were first recorded: at its default it stays out of a run's identity, so a finished
    # or half-done stage made before it existed still matches.
    added: bool = False
    only_with: Optional[str] = None   # without effect while this other flag is off; out of an identity then
    # reproduce: "own" (reproduce reads it itself), "sets" (reproduce sets it per stage), None (passed through)
    reproduce: Optional[str] = None
    # A path to an artifact a run reads: a resumable run's identity holds the artifact's fingerprint instead.
    artifact: bool = False


F = Flag
FLAGS = (
    Flag('run_name', str, '', read_by=('every',),
         help='Name of the experiment; artifacts go to <summary_folder>/<run_name>/'),
    Flag('summary_folder', str, 'summaries/', read_by=('every',),
         help="Folder for every run's artifacts"),
    Flag('dataset', str, '', read_by=('train', 'compute_stats', 'distill', 'evaluate'), reproduce="own",
         help=('mnist, mnist_conv (32x32, for lenet models), fashion_mnist, fashion_mnist_conv, cifar10, cifar100 '
              '(fine labels), cifar100_coarse (its 20 superclasses), a folder (the four IDX files, or '
              'train/<class>/*.png and test/<class>/*.png), a Keras-layout .npz, any of these + @HxW to resize; a '
              'reconstructed .npy (distill), or noise (distill)')),
    Flag('model', str, '', read_by=('train', 'compute_stats', 'optimize_dataset', 'distill', 'evaluate'), reproduce="own",
         help=f"Model to train, or the teacher: {', '.join(models.NAMES)}, or a path to a .py file that "
              "declares SPEC (examples/models/; the file is code and runs)"),
    Flag('rng_seed', int, 42, read_by=('train', 'optimize_dataset', 'distill'),
         help='Seed for every random choice; the same seed repeats a run'),
    Flag('procedure', str, None, choices=choices.PROCEDURES, read_by=('every',),
         help=("What to run: train a model, record the teacher's metadata (compute_stats), reconstruct inputs "
              "(optimize_dataset), distill a student, the whole table (reproduce), or measure a checkpoint's test "
              'accuracy (evaluate)')),
    Flag('lr', float, None, read_by=('train', 'optimize_dataset', 'distill'), minimum=">0",
         help=("Adam learning rate; default 0.001 for train and distill, the objective's for optimize_dataset "
              "(deep_inversion: 0.01, else 0.07); distill "
              "--method=dafl: default 0.002 (DAFL's); --method=dfad: the student's SGD rate, default 0.01 "
              "(DFAD's); reproduce gives it to its train and distill stages")),
    Flag('epochs', int, 10, read_by=('train', 'distill'), minimum=">0", reproduce="own",
         help=('Passes over the data. train: over the training set; distill: over --dataset (a reconstruction, real '
              "data or noise); reproduce: the data-free and noise rows' distillation (overrides the preset)")),
    Flag('train_batch_size', int, None, read_by=('train', 'distill'), minimum=">0",
         help="Examples per training step; default 64, and for distill --method=dafl or dfad the method's own 512"),
    Flag('test_batch_size', int, 1000, read_by=('train', 'compute_stats', 'distill', 'evaluate'), minimum=">0",
         help='Examples per evaluation batch'),
    Flag('eval_interval', int, 1000, read_by=('train', 'distill'), minimum=">0", affects_result=False,
         help='Training steps between test-set evaluations'),
    Flag('checkpoint_interval', int, 1000, read_by=('train', 'distill'), minimum=">0", affects_result=False,
         help='train, distill: steps between checkpoints; a run started again resumes from the newest'),
    Flag('model_meta', str, '', read_by=('compute_stats', 'optimize_dataset', 'distill', 'evaluate'), reproduce="own", artifact=True,
         help='Teacher graph, checked against --model; default --model_checkpoint + .meta where that file exists'),
    Flag('model_checkpoint', str, '', read_by=('compute_stats', 'optimize_dataset', 'distill', 'evaluate'), reproduce="own", artifact=True,
         help=('Teacher weights: summaries/<run>/train/checkpoint/<model>-<step>, or an imported checkpoint; '
              'reproduce: a given teacher, used as it is instead of trained; evaluate: any checkpoint of --model')),
    Flag('temperature', float, 8.0, read_by=('compute_stats', 'optimize_dataset', 'distill'), minimum=">0",
         help='Distillation temperature; the top layer statistics describe logits / T'),
    Flag('optimization_objective', str, None, choices=choices.OBJECTIVES, read_by=('optimize_dataset',), reproduce="sets",
         help='optimize_dataset: what a reconstructed sample matches (docs/method.md)'),
    Flag('student_model', str, '', read_by=('distill',), reproduce="own",
         help='distill: the student to train from scratch (hinton800, lenet_half, ... or a model file)'),
    Flag('eval_dataset', str, '', read_by=('distill',), reproduce="sets",
         help=('distill: dataset whose test split measures the student (the real dataset the teacher learned, e.g. '
              'mnist)')),
    Flag('compute_graphwise_stats', bool, False, read_by=('compute_stats',), reproduce="sets",
         help='compute_stats: also record the spectral metadata the spectral_* objectives need'),
    Flag('preset', str, 'paper', choices=choices.PRESETS, read_by=(), reproduce="own",
         help=("reproduce: paper (the paper's scale), quick (minutes), best (reference rows and the beyond-the-paper"
              " recipe only) or peers (the later methods beside the paper's best and dfkd best); --epochs, "
              '--samples_per_class and --optimization_steps override it')),
    Flag('rows', str, '', read_by=(), reproduce="own",
         help=("reproduce: only these data-free rows, comma-separated (objective names, 'dfkd best', DeepInversion, "
              'ZSKD, DAFL, DFAD); the reference rows always run. Default: every row of the preset')),
    Flag('spectral_fraction', float, 0.1, read_by=('compute_stats',),
         help='compute_stats: share of graph Fourier coefficients kept per class'),
    Flag('spectral_reading', str, 'sampled_full', choices=choices.SPECTRAL_READINGS, read_by=('optimize_dataset',),
         help=("optimize_dataset, spectral objectives: what a sample matches. sampled_full: its class's kept "
              'coefficients, drawn with their recorded full covariance; sampled_diag: drawn with a diagonal spread;'
              ' kept_mean: the class mean of the kept coefficients; vertex: the class mean rebuilt from them '
              '(F^-1), matched layer by layer')),
    Flag('loss_form', str, 'dfkd', choices=choices.LOSS_FORMS, read_by=('optimize_dataset',),
         help=('optimize_dataset: dfkd (top layer compared as is, layers weighted equally) or authors (ReLU on the '
              "top layer too, each layer's error weighted by 1/size, as the authors' code)")),
    Flag('noise_samples', int, 60000, read_by=('distill',), minimum=">0", reproduce="sets",
         help='distill --dataset=noise: how many noise inputs make one epoch'),
    Flag('stats_file', str, '', read_by=('optimize_dataset', 'distill'), reproduce="sets", artifact=True,
         help=('Activation statistics (optimize_dataset; distill --method=metadata); default '
               'summaries/<run>/stats/activation_stats_<run>.npz')),
    Flag('samples_per_class', int, 6400, read_by=('optimize_dataset',), minimum=">0", reproduce="own",
         help='optimize_dataset: reconstructed samples per class'),
    Flag('class_weights', str, '', read_by=('optimize_dataset',), added=True,
         help=("optimize_dataset: each class's share of the reconstructed samples, comma-separated, one number per "
              'class (e.g. 1,1,2,1,1,1,2,1,1,1 gives classes 2 and 6 twice the others); the total stays '
              '--samples_per_class x classes. Default: equal shares')),
    Flag('optimization_steps', int, 1000, read_by=('optimize_dataset',), minimum=">0", reproduce="own",
         help="optimize_dataset: Adam steps per batch. Default: the objective's (deep_inversion: 2000, else 1000)"),
    Flag('optimize_batch_size', int, 640, read_by=('optimize_dataset',), minimum=">0",
         help="optimize_dataset: samples optimized together. Default: the objective's (deep_inversion: 256, else 640)"),
    Flag('optimize_batch_order', str, 'spread', choices=choices.BATCH_ORDERS, read_by=('optimize_dataset',), added=True,
         help=('optimize_dataset: which samples share a batch. spread: every class (every mode, with --stats_modes) '
              "spread evenly over every batch; grouped: each class's (or mode's) samples in a row, so "
              "--batch_stats_weight measures each group's mean and spread on many samples at once (16 modes of "
              '6,400 samples a class: a few whole modes a batch, against about 4 samples of each of 160 modes '
              "spread). The spectral objectives always group, and reproduce's dfkd best at 16 modes; deep_inversion"
              " on a BatchNorm teacher cannot (BatchNorm's statistics mix the classes)")),
    Flag('optimize_workers', int, 0, read_by=('optimize_dataset',), minimum=">=0", affects_result=False,
         help=('optimize_dataset: batches optimized at once, each in its own process with its share of the cores; 0 '
              '= one per core without a GPU, one with a GPU')),
    Flag('num_shards', int, 1, read_by=('optimize_dataset',), reproduce="sets",
         help=('optimize_dataset: split the reconstruction into this many independent pieces (e.g. a SLURM array); '
              'load them together with a glob in --dataset')),
    Flag('shard_index', int, 0, read_by=('optimize_dataset',), reproduce="sets",
         help='optimize_dataset: which piece this run makes, 0..num_shards-1'),
    Flag('noise_mean', float, 0.15, read_by=('optimize_dataset', 'distill'),
         help='Mean of the Gaussian noise that reconstruction starts from'),
    Flag('noise_std', float, 0.1, read_by=('optimize_dataset', 'distill'), minimum=">=0",
         help='Std of the Gaussian noise that reconstruction starts from'),
    Flag('stats_modes', int, 1, read_by=('compute_stats', 'optimize_dataset'), minimum=">0", added=True, reproduce="sets",
         help=("compute_stats: record each class as this many modes (k-means on the teacher's next-to-top layer), "
              'statistics per mode, in activation_stats_<run>_modes<K>.npz; optimize_dataset: read that file (its '
              "default --stats_file), each class's samples spread over its modes in proportion to their examples. "
              '1: one set per class, as the paper')),
    Flag('max_full_cov_dim', int, 2048, read_by=('compute_stats',), minimum=">0",
         help=('compute_stats: layers at most this wide get a full covariance, wider ones a diagonal (with '
              "--stats_modes, also layers at least as wide as the smallest mode's example count)")),
    Flag('optimizer', str, 'adam', choices=choices.OPTIMIZERS, read_by=('train',),
         help="train: adam (the original tool's), or sgd with momentum 0.9 (how ResNets are trained)"),
    Flag('weight_decay', float, 0.0, read_by=('train',), minimum=">=0",
         help='train: weight of an L2 penalty on every Dense/Conv weight (ResNets: 1e-4 with --optimizer=sgd)'),
    Flag('augment', str, 'none', choices=choices.AUGMENTS, read_by=('train',),
         help=('train: crop shifts each training image by up to 4 pixels (a random crop of the zero-padded image); '
              'crop_flip also mirrors half of them left-right')),
    Flag('lr_schedule', str, 'cosine', choices=choices.LR_SCHEDULES, read_by=('train',),
         help='train: learning rate over training, constant (original tool) or cosine decay to 1% at the end'),
    Flag('data_dir', str, None, read_by=('train', 'compute_stats', 'distill', 'evaluate'), affects_result=False,
         help=('Folder with the MNIST files (Fashion-MNIST in its fashion-mnist/ sub-folder or beside it); default '
              '$DFKD_DATA_DIR, else ~/.keras/datasets')),
    Flag('num_threads', int, 0, read_by=('every',), minimum=">=0",
         help='TensorFlow intra-op threads; 0 = every available core'),
    Flag('clip_inputs', bool, False, read_by=('optimize_dataset',), reproduce="sets",
         help="optimize_dataset: keep reconstructed pixels in [0, 1]. Default: the objective's (deep_inversion: true)"),
    Flag('jitter', int, 0, read_by=('optimize_dataset',), minimum=">=0", reproduce="sets",
         help=("optimize_dataset: shift the batch by a random (dy, dx) in [-N, N] each step. Default: the objective's "
              '(deep_inversion: 2, else 0)')),
    Flag('tv_weight', float, 0.0, read_by=('optimize_dataset',), minimum=">=0", reproduce="sets",
         help='optimize_dataset: weight of a total-variation penalty on each sample'),
    Flag('l2_weight', float, 0.0, read_by=('optimize_dataset',), minimum=">=0", reproduce="sets",
         help="optimize_dataset: weight of an L2 penalty on each sample's pixels (deep_inversion: 0, its authors')"),
    Flag('batch_stats_weight', float, 0.0, read_by=('optimize_dataset',), minimum=">=0", reproduce="sets",
         help=("optimize_dataset: weight of matching each class's batch mean and std, in every recorded layer, to "
              'the recorded statistics')),
    Flag('flip', bool, False, read_by=('optimize_dataset',), added=True, reproduce="sets",
         help=('optimize_dataset: the teacher sees each sample mirrored left-right with probability 1/2 each step '
              "(DeepInversion's augmentation)")),
    Flag('generator_lr', float, None, read_by=('distill',), minimum=">0", added=True,
         help=("distill --method=dafl, dfad, fast, cmi or metadata: Adam learning rate of the generator. Default: "
              "the method's published setting, 0.2 for DAFL, 0.001 for DFAD (MNIST), 0.003 for Fast (its Fast-5) "
              "and the metadata generator, 0.001 for CMI")),
    Flag('generator_steps', int, 5, read_by=('distill',), minimum=">0", added=True, only_with='method',
         help=("distill --method=fast, cmi or metadata: the generator's steps on each round's batch (--g_steps; "
              "default: the method's own, Fast's 5 (its Fast-5), CMI's 200)")),
    Flag('generator_width', int, None, read_by=('distill',), minimum=">0", added=True, only_with='method',
         help=("distill --method=fast, cmi or metadata: the generator's channels (--ngf: its two convolutions take "
               "twice and once this many). Default: Fast's 64; a small teacher may want fewer, as the generator "
               "then costs more than the teacher")),
    Flag('student_steps_per_round', int, 400, read_by=('distill',), minimum=">0", added=True, only_with='method',
         reproduce="sets",
         help=("distill --method=fast, cmi or metadata: the student's steps on the memory after each round's "
              "batch (--kd_steps); --epochs counts the rounds")),
    Flag('pixel_mean', str, '', read_by=('distill',), added=True, reproduce="sets",
         help=("distill --method=dafl or dfad: the teacher's training pixels' mean, per channel (comma-separated) "
              "or one for all; with --pixel_std, what the generator's standardized image is mapped to (DAFL's "
              "normalization constants; MNIST: 0.1307). Default: the teacher's own input normalization")),
    Flag('pixel_std', str, '', read_by=('distill',), added=True, reproduce="sets",
         help=("distill --method=dafl or dfad: the teacher's training pixels' std, per channel or one for all "
              '(MNIST: 0.3081); see --pixel_mean')),
    Flag('bn_weight', float, 10.0, read_by=('optimize_dataset',), added=True,
         help=("optimize_dataset, --optimization_objective=deep_inversion: weight of matching each BatchNorm layer's"
              " batch mean and variance to its moving statistics (deep_inversion: 10, its authors')")),
    Flag('first_bn_weight', float, 10.0, read_by=('optimize_dataset',), added=True,
         help=('optimize_dataset, --optimization_objective=deep_inversion: extra multiplier of the first BatchNorm '
              "layer's term (deep_inversion: 10, its authors')")),
    Flag('tv_norm_weight', float, 0.0, read_by=('optimize_dataset',), minimum=">=0", added=True, reproduce="sets",
         help=("optimize_dataset: weight of DeepInversion's total variation, the L2 norm over the batch of the "
              'differences between neighbouring pixels in four directions, times the batch size. Default: the '
              "objective's (deep_inversion: 0.000125, else 0)")),
    Flag('optimize_beta1', float, 0.9, read_by=('optimize_dataset',), added=True,
         help="optimize_dataset: Adam's beta1 on the inputs. Default: the objective's (deep_inversion: 0.5, else 0.9)"),
    Flag('optimize_beta2', float, 0.999, read_by=('optimize_dataset',), added=True,
         help=("optimize_dataset: Adam's beta2 on the inputs. Default: the objective's (deep_inversion: 0.9, else "
              '0.999)')),
    Flag('augment_shift', int, 0, read_by=('distill',), minimum=">=0", reproduce="sets",
         help='distill: shift each example by up to N pixels; the teacher labels the shifted batch'),
    Flag('mixup_alpha', float, 0.0, read_by=('distill',), minimum=">=0", reproduce="sets",
         help='distill: blend example pairs with Beta(alpha, alpha) weights; the teacher labels the blend'),
    Flag('augment_flip', bool, False, read_by=('distill',), added=True, reproduce="sets",
         help='distill: mirror each example left-right with probability 1/2; the teacher labels the mirrored batch'),
    Flag('boundary_steps', int, 0, read_by=('distill',), minimum=">=0", added=True, reproduce="sets",
         help=("distill: add to each batch a copy pushed this many signed-gradient steps towards the student's "
              'disagreement with the teacher (KL at --temperature); the student learns on both. 0: off')),
    Flag('distill_lr_schedule', str, 'constant', choices=choices.LR_SCHEDULES, read_by=('distill',), added=True,
         help=("distill: the student's learning rate over distillation, constant (original tool) or cosine decay to "
              '1% at the last step')),
    Flag('student_average', float, 0.0, read_by=('distill',), added=True, reproduce="sets",
         help=("distill: keep an exponential moving average of the student's variables with this decay per step "
              "(e.g. 0.999) and evaluate and save the average in place of the last step's weights. 0: off, as the "
              'original tool')),
    Flag('attention_weight', float, 0.0, read_by=('distill',), minimum=">=0", added=True, reproduce="sets",
         help=("distill: add attention transfer to the KD loss with this weight (zero-shot KT's: 250): at each "
              "feature-map size both nets have, the mean squared difference of the student's and teacher's "
              "attention maps (channel mean of squared ReLU outputs, unit norm). 0: off")),
    Flag('hint_weight', float, 0.0, read_by=('distill',), minimum=">=0", added=True, reproduce="sets",
         help=("distill: add to the KD loss this weight x the mean squared difference of the student's and teacher's "
              "stage outputs (after ReLU) at each feature-map size both nets have, where their channels agree. 0: off")),
    Flag('boundary_step_size', float, 0.03, read_by=('distill',), minimum=">0", added=True, only_with='boundary_steps', reproduce="sets",
         help="distill, with --boundary_steps: each push's size per pixel (pixels stay in [0, 1])"),
    Flag('verbose', bool, False, read_by=('every',),
         help='Show full tracebacks on errors'),
    Flag('method', str, None, choices=choices.METHODS, read_by=('distill',), added=True, reproduce="sets",
         help=("distill: the student learns on the samples of a generator trained alongside it, in place of "
               "--dataset: DAFL's, DFAD's, Fast's (a meta-learned generator and a memory of its batches; a "
               "teacher with BatchNorm), CMI's (Fast's loop from a fresh generator each round, with a "
               "contrastive term; a teacher with BatchNorm), or metadata: Fast's loop matching compute_stats' "
               "per-class statistics (--stats_file). --dataset=dafl or dfad still works, with a warning")),
)
BY_NAME = {flag.name: flag for flag in FLAGS}
DEFAULT_BATCH_SIZE = 64   # --train_batch_size unset, for every source but a generator method that brings its own


def batch_size(given, default=DEFAULT_BATCH_SIZE):
    """--train_batch_size if given (0 included: validate refuses it), else the default."""
    return default if given is None else given


def readers(flag):
    """The procedures that read `flag`, reproduce included where it passes the flag to its stages."""
    if flag.read_by == ("every",):
        return PROCEDURE_ORDER
    passed = flag.reproduce == "own" or (flag.reproduce is None and flag.read_by)
    return tuple(p for p in PROCEDURE_ORDER if p in flag.read_by or (p == "reproduce" and passed))


def defaults():
    """{flag: default}: what main.py passes when no flag is given."""
    return {flag.name: flag.default for flag in FLAGS}


def define_absl(flags_module):
    """Defines every flag with absl, each once."""
    define = {str: flags_module.DEFINE_string, int: flags_module.DEFINE_integer,
              float: flags_module.DEFINE_float, bool: flags_module.DEFINE_boolean}
    for flag in FLAGS:
        if flag.choices:
            flags_module.DEFINE_enum(flag.name, flag.default, flag.choices, flag.help)
        else:
            define[flag.type](flag.name, flag.default, flag.help)


def validate(cfg, procedure):
    """One line naming the flag when a value the procedure reads is out of its range (None: not given)."""
    for flag in FLAGS:
        if flag.minimum is None or procedure not in readers(flag):
            continue
        value = getattr(cfg, flag.name, None)   # read only what the procedure reads: tests record reads
        if value is None:
            continue
        if flag.minimum == ">0" and value <= 0:
            raise UserError(f"--{flag.name} must be > 0, got {value}")
        if flag.minimum == ">=0" and value < 0:
            raise UserError(f"--{flag.name} must be >= 0, got {value}")


def _kind(flag):
    if flag.choices:
        return "one of " + ", ".join(flag.choices)
    return {str: "string", int: "integer", float: "number", bool: "true/false"}[flag.type]


def _default(flag):
    return "none" if flag.default in (None, "") else str(flag.default)


def sections():
    """[(title, [flags])]: the flags every procedure reads, then each procedure's own."""
    every = [f for f in FLAGS if f.read_by == ("every",)]
    out = [("Every procedure", every)]
    for procedure in PROCEDURE_ORDER:
        out.append((f"--procedure={procedure}",
                    [f for f in FLAGS if f.read_by != ("every",) and procedure in readers(f)]))
    return out


def help_text():
    """What `python main.py --help` prints."""
    lines = ["dfkd: data-free knowledge distillation (Lopes, Fenu & Starner 2017)", "",
             "usage: python main.py --procedure=" + "|".join(PROCEDURE_ORDER) + " --run_name=NAME [--flag=value ...]",
             "       python main.py --flagfile=FILE   (one --flag=value per line)", "",
             "docs/usage.md walks through each procedure; docs/flags.md lists these flags as a table."]
    for title, flags in sections():
        lines += ["", title + ":"]
        for flag in flags:
            lines.append(f"  --{flag.name}  ({_kind(flag)}; default {_default(flag)})")
            lines += textwrap.wrap(flag.help, 100, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines) + "\n"
