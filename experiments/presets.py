"""reproduce's presets, rows and the papers' numbers: plain data and the pure functions that read it."""
import generators
from config.flags import BY_NAME
from distillation import features
from reconstruction import objectives as objectives_registry
from reconstruction.priors import Priors
from utils.errors import UserError

PRESETS = {
    # The paper's scale: 10-epoch teachers, 64,000 samples x 1,000 steps, 30-epoch distillation.
    "paper": dict(train_epochs=10, samples_per_class=6400, optimization_steps=1000, distill_epochs=30,
                  kd_epochs=10),
    # Minutes on 2 CPU cores; small reconstructions, same ordering of the methods.
    "quick": dict(train_epochs=10, samples_per_class=300, optimization_steps=300, distill_epochs=10,
                  kd_epochs=2),
    # Beyond the paper: only the reference rows and the best recipe (BEST), at full size.
    "best": dict(train_epochs=10, samples_per_class=6400, optimization_steps=200, distill_epochs=30,
                 kd_epochs=10, paper_rows=False),
    # The later methods beside the paper's best objective and dfkd best, one sample budget for all.
    "peers": dict(train_epochs=10, samples_per_class=6400, optimization_steps=200, distill_epochs=30,
                  kd_epochs=10, paper_rows=("spectral_layer_pairs", "all_layers"), peer_rows=True),
}
# The later data-free methods, as rows: objective, optimize_dataset options beyond the objective's own
# defaults (its authors' settings, reconstruction/objectives.py), and options on natural images alone
# (datasets.MIRRORED). DeepInversion mirrors its batch left-right there only. ZSKD's pixels are kept in [0, 1].
PEERS = {"DeepInversion": ("deep_inversion", {}, dict(flip=True)),
         "ZSKD": ("zskd", dict(clip_inputs=True), {})}
# DAFL and DFAD train their generators inside distillation (generators/dafl.py, dfad.py); their students
# see as many generated samples as the other rows' students see reconstructed ones over their epochs.
GENERATOR_ROWS = {method.title: name for name, method in generators.METHODS.items()}   # row -> distill's --method
# Beyond the paper: the best combination bench/ablation.py measured (docs/beyond_the_paper.md); every
# preset adds it as an extra row. It runs its own, shorter optimization (200 steps reach the accuracy of
# 1,000 on per-class metadata; 400 at 16 modes), unless --optimization_steps is given.
BEST_ROW = "dfkd best"
# The flags beyond the paper, at their defaults (off): the paper's rows run without them.
BEYOND_PAPER_OFF = {name: BY_NAME[name].default for name in Priors._fields + (
    "augment_shift", "augment_flip", "mixup_alpha", "boundary_steps", "boundary_step_size", "student_average",
    *features.TERMS)}
BEST = dict(objective="top_layer", optimization_steps=200,
            optimize=dict(batch_stats_weight=1.0, clip_inputs=True),
            # Twice distill's default rate, and the average of the student's steps: better on Fashion-MNIST
            # lenet and the ResNet pair, no worse on MNIST (notes/2026-12-07-results-notebook.md, "The
            # student's rate and its average").
            distill=dict(augment_shift=2, lr=0.002, student_average=0.999),
            # Where the student has BatchNorm, mixup of the reconstructions too: on resnet20 -> resnet8
            # fashion_mnist_conv the student confused T-shirts and pullovers with shirts, and mixup lifted it
            # by 7.0 points over two seeds. Students without BatchNorm do not gain: lenet_half +0.1, and an MLP
            # under a BatchNorm ResNet teacher -1.3 over two seeds (notes/2026-12-07-resnet-gap.md).
            batchnorm_distill=dict(mixup_alpha=1.0),
            # And a term on the teacher's feature maps (notes/2026-12-07-resnet-gap.md, "Attention transfer"
            # and "Feature maps matched directly"): on the same pair's reconstructions, the stage outputs
            # matched directly gave 86.59 on two seeds' mean; attention maps, which any channel counts allow, at
            # zero-shot KT's weight 85.66; mixup alone 84.16.
            batchnorm_hint=dict(hint_weight=10.0),
            batchnorm_attention=dict(attention_weight=250.0),
            # Metadata per mode of each class (--stats_modes): 16 modes where a class has thousands of
            # examples and 6,400 samples; fewer where a mode would hold under 300 examples or under 400
            # reconstructed samples, which the notebook's "Modes" measured as a loss.
            stats_modes=16, examples_per_mode=300, samples_per_mode=400,
            # At the full 16 modes a class, where a spread batch of 640 holds about 4 samples of each of 160
            # modes: batches of whole modes, so the batch-statistics term matches each mode on hundreds of
            # samples, and twice the steps to close that match (notebook: "Reconstruction steps and grouped
            # batches"). Only at 16 modes, where it was measured.
            modes_optimize=dict(optimize_batch_order="grouped", optimization_steps=400), modes_optimize_from=16)
# Which explicit flag overrides which preset value.
OVERRIDES = {"epochs": "distill_epochs", "samples_per_class": "samples_per_class",
             "optimization_steps": "optimization_steps"}
OBJECTIVES = objectives_registry.PAPER_OBJECTIVES   # the paper's rows
PAPER_DATASETS = ("mnist", "mnist_conv")   # the paper's numbers are MNIST's; other datasets get no paper column
PAPER = {  # test accuracy (%) from Lopes et al. 2017, Tables 1 and 2
    ("hinton1200", "hinton800"): {"teacher": 96.95, "student trained on data": 95.70, "vanilla KD": 95.74,
                                  "top_layer": 68.75, "all_layers": 76.38, "all_layers_dropout": 76.23,
                                  "spectral_all_layers": 89.41, "spectral_layer_pairs": 91.24},
    ("lenet", "lenet_half"): {"teacher": 98.91, "student trained on data": 98.65, "vanilla KD": 98.91,
                              "top_layer": 77.30, "all_layers": 85.61, "spectral_all_layers": 90.28,
                              "spectral_layer_pairs": 92.47},
}

# Each later method's own published number on a pair dfkd also has (keyed by the data without its
# layout suffix); their teachers differ from ours, so results.md names each source and its teacher.
PEERS_PUBLISHED = {
    ("mnist", "lenet", "lenet_half"): {"ZSKD": 98.77, "DAFL": 98.20, "DFAD": 98.3},
    ("mnist", "hinton1200", "hinton800"): {"DAFL": 97.91},
    ("fashion_mnist", "lenet", "lenet_half"): {"ZSKD": 79.62},
}
PUBLISHED_SOURCES = {
    "ZSKD": "ZSKD: Nayak et al. 2019 (teacher 99.34 on MNIST, 90.84 on Fashion-MNIST)",
    "DAFL": "DAFL: Chen et al. 2019 (teacher 98.91 lenet, 98.39 hinton1200)",
    "DFAD": "DFAD: Fang et al. 2019",
}


def published(dataset, teacher, student):
    """{row: test accuracy (%)} that papers report for this pair: Lopes et al.'s rows on MNIST, and
    the later methods' own numbers where their papers have the pair."""
    numbers = dict(PAPER.get((teacher, student), {})) if dataset in PAPER_DATASETS else {}
    family = dataset.removesuffix("_conv")
    numbers.update(PEERS_PUBLISHED.get((family, teacher, student), {}))
    return numbers


def published_sources(dataset, teacher, student, rows):
    """The line under a table that names where its later methods' published numbers come from, or None."""
    numbers = published(dataset, teacher, student)
    sources = [PUBLISHED_SOURCES[row] for row in rows if row in PUBLISHED_SOURCES and row in numbers]
    if not sources:
        return None
    lopes = ["Lopes et al. 2017 for the reference rows and the paper's objectives"] \
        if dataset in PAPER_DATASETS and (teacher, student) in PAPER else []
    return ("Paper: " + "; ".join(lopes + sources) +
            ". The later methods' released scripts keep the student of the best test epoch.")


def settings_for(cfg):
    preset = cfg.preset or "paper"
    if preset not in PRESETS:
        raise UserError(f"--preset: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    chosen = dict(PRESETS[preset], preset=preset)
    chosen.setdefault("paper_rows", True)
    chosen["best_optimization_steps"] = BEST["optimization_steps"]
    for flag, key in OVERRIDES.items():
        if flag in getattr(cfg, "explicit_flags", ()):
            chosen[key] = getattr(cfg, flag)
            if flag == "optimization_steps":
                chosen["best_optimization_steps"] = cfg.optimization_steps
    return chosen


def best_distill(teacher, student):
    """dfkd best's distillation options for this pair: BEST's; where the student has BatchNorm, mixup, and
    a term on the feature maps of the sizes both nets have: the maps themselves where their channels
    agree, else their attention maps."""
    options = dict(BEST["distill"])
    if student.has_batchnorm:
        options.update(BEST["batchnorm_distill"])
        if features.channels_agree(teacher, student):
            options.update(BEST["batchnorm_hint"])
        elif features.shared_sizes(teacher, student):
            options.update(BEST["batchnorm_attention"])
    return options


def best_on_modes(modes, explicit_flags):
    """dfkd best's reconstruction options beyond BEST["optimize"] at `modes` modes a class; a given
    --optimization_steps still rules."""
    if modes < BEST["modes_optimize_from"]:
        return {}
    return {k: v for k, v in BEST["modes_optimize"].items() if not (k == "optimization_steps" and k in explicit_flags)}


def best_modes(class_counts, samples_per_class):
    """How many modes a class dfkd best's metadata records: BEST's, fewer where the smallest class
    cannot give each mode examples_per_mode examples or the reconstruction samples_per_mode samples;
    1 (per class) below two modes' worth."""
    return max(1, min(BEST["stats_modes"], int(min(class_counts)) // BEST["examples_per_mode"],
                      samples_per_class // BEST["samples_per_mode"]))
