"""Which flags each procedure reads: the one place that the unread-flag warning, docs/flags.md,
the settings kept beside a resumable run and reproduce's stage identities are derived from.
tests/test_flags.py runs every procedure on a config that records what it reads and fails when
a procedure reads a flag missing here."""

# Read by every procedure; they say where files go and how much of the machine to use.
EVERY = ("procedure", "run_name", "summary_folder", "verbose", "num_threads")

READS = {
    "train": ("model", "dataset", "data_dir", "rng_seed", "lr", "lr_schedule", "epochs", "train_batch_size",
              "test_batch_size", "eval_interval", "checkpoint_interval", "optimizer", "weight_decay", "augment"),
    "compute_stats": ("model", "model_meta", "model_checkpoint", "dataset", "data_dir", "temperature",
                      "compute_graphwise_stats", "spectral_fraction", "max_full_cov_dim", "test_batch_size",
                      "stats_modes"),
    "optimize_dataset": ("model", "model_meta", "model_checkpoint", "stats_file", "optimization_objective",
                         "rng_seed", "lr", "optimization_steps", "samples_per_class", "optimize_batch_size",
                         "optimize_workers", "num_shards", "shard_index", "noise_mean", "noise_std", "temperature",
                         "spectral_reading", "loss_form", "clip_inputs", "jitter", "tv_weight", "l2_weight",
                         "batch_stats_weight", "flip", "bn_weight", "class_weights", "stats_modes",
                         "optimize_batch_order"),
    "distill": ("model", "model_meta", "model_checkpoint", "student_model", "dataset", "eval_dataset", "data_dir",
                "rng_seed", "lr", "epochs", "train_batch_size", "test_batch_size", "eval_interval",
                "checkpoint_interval", "temperature", "noise_samples", "noise_mean", "noise_std", "augment_shift",
                "mixup_alpha", "augment_flip", "generator_lr", "boundary_steps", "boundary_step_size", "pixel_mean",
                "pixel_std", "distill_lr_schedule", "student_average"),
    "evaluate": ("model", "model_meta", "model_checkpoint", "dataset", "data_dir", "test_batch_size"),
}
# reproduce reads its own flags, and passes the user's value of every flag its stages read except
# these, which it sets itself for each stage (the paper's settings, or a row's own options).
REPRODUCE_OWN = ("model", "student_model", "dataset", "preset", "rows", "epochs", "samples_per_class",
                 "optimization_steps", "model_checkpoint", "model_meta")
REPRODUCE_SETS = ("stats_file", "optimization_objective", "num_shards", "shard_index", "clip_inputs", "jitter",
                  "tv_weight", "l2_weight", "batch_stats_weight", "flip", "compute_graphwise_stats", "eval_dataset",
                  "noise_samples", "augment_shift", "mixup_alpha", "augment_flip", "boundary_steps",
                  "boundary_step_size", "pixel_mean", "pixel_std", "stats_modes", "student_average")
READS["reproduce"] = tuple(sorted(set(REPRODUCE_OWN) | {f for p in ("train", "compute_stats", "optimize_dataset",
                                                                    "distill") for f in READS[p]}
                                  - set(REPRODUCE_SETS)))

# Read, but without effect on what a run produces: where it runs and how often it reports.
NO_EFFECT = set(EVERY) | {"data_dir", "optimize_workers", "eval_interval", "checkpoint_interval"}
# Flags added after runs were first recorded, with the value that does what the runs before them did:
# at that value they stay out of an identity, so a finished or half-done stage still matches.
ADDED = {"flip": False, "bn_weight": 10.0, "generator_lr": None, "augment_flip": False, "boundary_steps": 0,
         "boundary_step_size": 0.03, "class_weights": "", "pixel_mean": "", "pixel_std": "",
         "stats_modes": 1, "distill_lr_schedule": "constant", "student_average": 0.0,
         "optimize_batch_order": "spread"}


# Flags without effect while another is off (0, False, empty): they stay out of an identity then, so
# setting one alone does not make a finished stage look different.
ONLY_WITH = {"boundary_step_size": "boundary_steps"}


def without_added_defaults(settings):
    return {name: value for name, value in settings.items() if not (name in ADDED and value == ADDED[name])}


def reads(procedure):
    return EVERY + READS[procedure]


def unread(procedure, given):
    """The flags in `given` that `procedure` does not read, in the order given."""
    return [name for name in given if name not in reads(procedure)]


def identity(procedure, cfg):
    """{flag: value} of every flag that decides what `procedure` produces from `cfg`."""
    settings = {name: getattr(cfg, name) for name in READS[procedure] if name not in NO_EFFECT}
    return without_added_defaults({name: value for name, value in settings.items()
                                   if name not in ONLY_WITH or settings[ONLY_WITH[name]]})
