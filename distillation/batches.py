"""The batch a student sees: a dataset's batch transformed on the fly (the teacher labels it in the graph)."""
from reconstruction import image_ops


def augmented_inputs(cfg, spec, inputs, step):
    """The batch the student sees: shifted, mirrored and/or mixed per --augment_shift, --augment_flip and
    --mixup_alpha."""
    x = inputs
    if cfg.augment_shift:
        x = image_ops.random_shift(x, image_ops.image_hw(spec), cfg.augment_shift, cfg.rng_seed, step)
    if cfg.augment_flip:
        x = image_ops.random_flip(x, image_ops.image_shape(spec), cfg.rng_seed, step)
    if cfg.mixup_alpha:
        x = image_ops.mixup(x, cfg.mixup_alpha, cfg.rng_seed, step)
    return x


# The flags that transform a dataset's batches on the fly (the teacher then labels them in the graph).
BATCH_TRANSFORMS = ("augment_shift", "augment_flip", "mixup_alpha", "boundary_steps")
