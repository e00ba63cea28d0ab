"""dfkd: data-free knowledge distillation (Lopes, Fenu & Starner 2017).

    python main.py --procedure=train|compute_stats|optimize_dataset|distill|reproduce --run_name=NAME ...
    python main.py --flagfile=FILE ...     # flags one per line in FILE; later flags on the command line win

This file holds the flags and the dispatch, nothing else. docs/flags.md is generated from the
definitions below (python -m utils.flag_docs).
"""
import os
import sys
import traceback
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's start-up chatter off the console

from absl import app, flags  # noqa: E402

from procedures import choices, flag_use  # noqa: E402  (plain data, no TensorFlow)

FLAGS = flags.FLAGS
_ABSL_FLAGS = set(FLAGS)  # absl's own (--logtostderr, ...), not passed to procedures
# The original tool's flags, same names and meaning.
flags.DEFINE_string("run_name", "", "Name of the experiment; artifacts go to <summary_folder>/<run_name>/")
flags.DEFINE_string("summary_folder", "summaries/", "Folder for every run's artifacts")
flags.DEFINE_string("dataset", "", "mnist, mnist_conv (32x32, for lenet models), fashion_mnist, fashion_mnist_conv, "
                    "cifar10, cifar100 (fine labels), cifar100_coarse (its 20 superclasses), "
                    "a folder (the four IDX files, or train/<class>/*.png and test/<class>/*.png), a Keras-layout "
                    ".npz, any of these + @HxW to resize; a reconstructed .npy, noise, or dafl or dfad "
                    "(distill: samples of a generator trained alongside the student, by DAFL's or DFAD's losses)")
flags.DEFINE_string("model", "", "Model to train, or the teacher: hinton1200, hinton800, lenet, lenet_half, or a "
                    "path to a .py file that declares SPEC (examples/models/; the file is code and runs)")
flags.DEFINE_integer("rng_seed", 42, "Seed for every random choice; the same seed repeats a run")
flags.DEFINE_enum("procedure", None, choices.PROCEDURES, "What to run: train a model, record the teacher's "
                  "metadata (compute_stats), reconstruct inputs (optimize_dataset), distill a student, the whole "
                  "table (reproduce), or measure a checkpoint's test accuracy (evaluate)")
flags.DEFINE_float("lr", None, "Adam learning rate; default 0.001 for train and distill, 0.07 for optimize_dataset; "
                   "distill --dataset=dafl: default 0.002 (DAFL's); --dataset=dfad: the student's SGD rate, default "
                   "0.01 (DFAD's); reproduce gives it to its train and distill stages")
flags.DEFINE_integer("epochs", 10, "Passes over the data. train: over the training set; distill: over --dataset "
                     "(a reconstruction, real data or noise); reproduce: the data-free and noise rows' distillation "
                     "(overrides the preset)")
flags.DEFINE_integer("train_batch_size", None, "Examples per training step; default 64, and for distill "
                     "--dataset=dafl or dfad the method's own 512")
flags.DEFINE_integer("test_batch_size", 1000, "Examples per evaluation batch")
flags.DEFINE_integer("eval_interval", 1000, "Training steps between test-set evaluations")
flags.DEFINE_integer("checkpoint_interval", 1000, "train, distill: steps between checkpoints; a run started again "
                     "resumes from the newest")
flags.DEFINE_string("model_meta", "", "Teacher graph, checked against --model; default --model_checkpoint + .meta "
                    "where that file exists")
flags.DEFINE_string("model_checkpoint", "", "Teacher weights: summaries/<run>/train/checkpoint/<model>-<step>, "
                    "or an imported checkpoint; reproduce: a given teacher, used as it is instead of trained; "
                    "evaluate: any checkpoint of --model")
flags.DEFINE_float("temperature", 8.0, "Distillation temperature; the top layer statistics describe logits / T")
flags.DEFINE_enum("optimization_objective", None, choices.OBJECTIVES, "optimize_dataset: what a reconstructed "
                  "sample matches (docs/method.md)")
flags.DEFINE_string("student_model", "", "distill: the student to train from scratch (hinton800, lenet_half, ... "
                    "or a model file)")
flags.DEFINE_string("eval_dataset", "", "distill: dataset whose test split measures the student (the real "
                    "dataset the teacher learned, e.g. mnist)")
flags.DEFINE_boolean("compute_graphwise_stats", False,
                     "compute_stats: also record the spectral metadata the spectral_* objectives need")
# Added by dfkd.
flags.DEFINE_enum("preset", "paper", choices.PRESETS, "reproduce: paper (the paper's scale), quick (minutes), "
                  "best (reference rows and the beyond-the-paper recipe only) or peers (the later methods beside the "
                  "paper's best and dfkd best); --epochs, --samples_per_class and "
                  "--optimization_steps override it")
flags.DEFINE_string("rows", "", "reproduce: only these data-free rows, comma-separated (objective names, "
                    "'dfkd best', DeepInversion, ZSKD, DAFL, DFAD); the reference rows always run. "
                    "Default: every row of the preset")
flags.DEFINE_float("spectral_fraction", 0.1, "compute_stats: share of graph Fourier coefficients kept per class")
flags.DEFINE_enum("spectral_reading", "sampled_full", choices.SPECTRAL_READINGS,
                  "optimize_dataset, spectral objectives: what a sample matches. "
                  "sampled_full: its class's kept coefficients, drawn with their recorded full covariance; "
                  "sampled_diag: drawn with a diagonal spread; kept_mean: the class mean of the kept coefficients; "
                  "vertex: the class mean rebuilt from them (F^-1), matched layer by layer")
flags.DEFINE_enum("loss_form", "dfkd", choices.LOSS_FORMS,
                  "optimize_dataset: dfkd (top layer compared as is, layers weighted "
                  "equally) or authors (ReLU on the top layer too, each layer's error weighted by 1/size, as "
                  "the authors' code)")
flags.DEFINE_integer("noise_samples", 60000, "distill --dataset=noise: how many noise inputs make one epoch")
flags.DEFINE_string("stats_file", "", "Activation statistics; default summaries/<run>/stats/activation_stats_<run>.npz")
flags.DEFINE_integer("samples_per_class", 6400, "optimize_dataset: reconstructed samples per class")
flags.DEFINE_string("class_weights", "", "optimize_dataset: each class's share of the reconstructed samples, "
                    "comma-separated, one number per class (e.g. 1,1,2,1,1,1,2,1,1,1 gives classes 2 and 6 twice "
                    "the others); the total stays --samples_per_class x classes. Default: equal shares")
flags.DEFINE_integer("optimization_steps", 1000, "optimize_dataset: Adam steps per batch")
flags.DEFINE_integer("optimize_batch_size", 640, "optimize_dataset: samples optimized together")
flags.DEFINE_enum("optimize_batch_order", "spread", choices.BATCH_ORDERS,
                  "optimize_dataset: which samples share a batch. spread: every class (every mode, with "
                  "--stats_modes) spread evenly over every batch; grouped: each class's (or mode's) samples "
                  "in a row, so --batch_stats_weight measures each group's mean and spread on many samples "
                  "at once (16 modes of 6,400 samples a class: a few whole modes a batch, against about 4 "
                  "samples of each of 160 modes spread). The spectral objectives always group, and reproduce's dfkd "
                  "best at 16 modes; deep_inversion on a BatchNorm teacher cannot (BatchNorm's statistics mix "
                  "the classes)")
flags.DEFINE_integer("optimize_workers", 0, "optimize_dataset: batches optimized at once, each in its own process "
                     "with its share of the cores; 0 = one per core without a GPU, one with a GPU")
flags.DEFINE_integer("num_shards", 1, "optimize_dataset: split the reconstruction into this many independent "
                     "pieces (e.g. a SLURM array); load them together with a glob in --dataset")
flags.DEFINE_integer("shard_index", 0, "optimize_dataset: which piece this run makes, 0..num_shards-1")
flags.DEFINE_float("noise_mean", 0.15, "Mean of the Gaussian noise that reconstruction starts from")
flags.DEFINE_float("noise_std", 0.1, "Std of the Gaussian noise that reconstruction starts from")
flags.DEFINE_integer("stats_modes", 1, "compute_stats: record each class as this many modes (k-means on the "
                     "teacher's next-to-top layer), statistics per mode, in activation_stats_<run>_modes<K>.npz; "
                     "optimize_dataset: read that file (its default --stats_file), each class's samples spread over "
                     "its modes in proportion to their examples. 1: one set per class, as the paper")
flags.DEFINE_integer("max_full_cov_dim", 2048,
                     "compute_stats: layers at most this wide get a full covariance, wider ones a diagonal (with "
                     "--stats_modes, also layers at least as wide as the smallest mode's example count)")
flags.DEFINE_enum("optimizer", "adam", choices.OPTIMIZERS, "train: adam (the original tool's), or sgd with "
                  "momentum 0.9 (how ResNets are trained)")
flags.DEFINE_float("weight_decay", 0.0, "train: weight of an L2 penalty on every Dense/Conv weight (ResNets: 1e-4 "
                   "with --optimizer=sgd)")
flags.DEFINE_enum("augment", "none", choices.AUGMENTS, "train: crop shifts each training image by up to 4 "
                  "pixels (a random crop of the zero-padded image); crop_flip also mirrors half of them left-right")
flags.DEFINE_enum("lr_schedule", "cosine", choices.LR_SCHEDULES,
                  "train: learning rate over training, constant (original tool) or cosine decay to 1% at the end")
flags.DEFINE_string("data_dir", None, "Folder with the MNIST files (Fashion-MNIST in its fashion-mnist/ "
                    "sub-folder or beside it); default $DFKD_DATA_DIR, else ~/.keras/datasets")
flags.DEFINE_integer("num_threads", 0, "TensorFlow intra-op threads; 0 = every available core")
# Beyond the paper (off by default, so the paper's procedures are unchanged).
flags.DEFINE_boolean("clip_inputs", False, "optimize_dataset: keep reconstructed pixels in [0, 1]")
flags.DEFINE_integer("jitter", 0, "optimize_dataset: shift the batch by a random (dy, dx) in [-N, N] each step")
flags.DEFINE_float("tv_weight", 0.0, "optimize_dataset: weight of a total-variation penalty on each sample")
flags.DEFINE_float("l2_weight", 0.0, "optimize_dataset: weight of an L2 penalty on each sample's pixels")
flags.DEFINE_float("batch_stats_weight", 0.0, "optimize_dataset: weight of matching each class's batch mean "
                   "and std, in every recorded layer, to the recorded statistics")
flags.DEFINE_boolean("flip", False, "optimize_dataset: the teacher sees each sample mirrored left-right with "
                     "probability 1/2 each step (DeepInversion's augmentation)")
flags.DEFINE_float("generator_lr", None, "distill --dataset=dafl or dfad: Adam learning rate of the generator. "
                   "Default: the method's MNIST setting, 0.2 for DAFL, 0.001 for DFAD")
flags.DEFINE_string("pixel_mean", "", "distill --dataset=dafl or dfad: the teacher's training pixels' mean, per "
                    "channel (comma-separated) or one for all; with --pixel_std, what the generator's standardized "
                    "image is mapped to (DAFL's normalization constants; MNIST: 0.1307). Default: the teacher's own "
                    "input normalization")
flags.DEFINE_string("pixel_std", "", "distill --dataset=dafl or dfad: the teacher's training pixels' std, per "
                    "channel or one for all (MNIST: 0.3081); see --pixel_mean")
flags.DEFINE_float("bn_weight", 10.0, "optimize_dataset, --optimization_objective=deep_inversion: weight of "
                   "matching each BatchNorm layer's batch mean and variance to its moving statistics")
flags.DEFINE_integer("augment_shift", 0, "distill: shift each example by up to N pixels; the teacher labels "
                     "the shifted batch")
flags.DEFINE_float("mixup_alpha", 0.0, "distill: blend example pairs with Beta(alpha, alpha) weights; the "
                   "teacher labels the blend")
flags.DEFINE_boolean("augment_flip", False, "distill: mirror each example left-right with probability 1/2; the "
                     "teacher labels the mirrored batch")
flags.DEFINE_integer("boundary_steps", 0, "distill: add to each batch a copy pushed this many signed-gradient "
                     "steps towards the student's disagreement with the teacher (KL at --temperature); the "
                     "student learns on both. 0: off")
flags.DEFINE_enum("distill_lr_schedule", "constant", choices.LR_SCHEDULES,
                  "distill: the student's learning rate over distillation, constant (original tool) or cosine "
                  "decay to 1% at the last step")
flags.DEFINE_float("student_average", 0.0, "distill: keep an exponential moving average of the student's "
                   "variables with this decay per step (e.g. 0.999) and evaluate and save the average in place "
                   "of the last step's weights. 0: off, as the original tool")
flags.DEFINE_float("boundary_step_size", 0.03, "distill, with --boundary_steps: each push's size per pixel "
                   "(pixels stay in [0, 1])")
flags.DEFINE_boolean("verbose", False, "Show full tracebacks on errors")
OURS = sorted(set(FLAGS) - _ABSL_FLAGS)   # what procedures receive; docs/flags.md lists these


def config_from_flags():
    cfg = types.SimpleNamespace(**{name: FLAGS[name].value for name in OURS})
    cfg.explicit_flags = sorted(name for name in OURS if FLAGS[name].present)  # presets yield to these
    if not cfg.data_dir:
        from datasets.mnist import default_data_dir
        cfg.data_dir = default_data_dir()
    return cfg


def parse_flags(argv):
    """absl's parsing, with a bad flag (an unknown choice, a malformed number) reported as one error line."""
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
        check_model_files(cfg)
        import tensorflow as tf
        tf.get_logger().setLevel("ERROR")  # hide TF's deprecation notices about its own v1 API
        tf.compat.v1.disable_eager_execution()
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


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
