"""The names a choice flag accepts, kept free of TensorFlow so main.py can check them at parse time.
The registries that act on them (procedures.NAMES, objectives.OBJECTIVES, reproduce.PRESETS) use
these lists; tests/test_flags.py checks that each registry holds exactly these names."""

PROCEDURES = ("train", "compute_stats", "optimize_dataset", "distill", "evaluate", "reproduce")
OBJECTIVES = ("top_layer", "all_layers", "all_layers_dropout", "spectral_all_layers", "spectral_layer_pairs",
              "deep_inversion", "zskd")
PRESETS = ("paper", "quick", "best", "peers")
SPECTRAL_READINGS = ("sampled_full", "sampled_diag", "kept_mean", "vertex")
LOSS_FORMS = ("dfkd", "authors")
LR_SCHEDULES = ("constant", "cosine")
OPTIMIZERS = ("adam", "sgd")
AUGMENTS = ("none", "crop", "crop_flip")
BATCH_ORDERS = ("spread", "grouped")
METHODS = ("dafl", "dfad", "fast", "cmi", "metadata")   # distill's generator methods (generators/)
