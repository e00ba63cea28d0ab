"""--procedure=evaluate: the test accuracy of a checkpoint of --model (a teacher, a student, trained
here or imported) on --dataset's test split, recorded as test_accuracy in log.json, with each class's
accuracy (class_accuracy: the share of that class's test examples given their class)."""
import time

import numpy as np

import datasets
from config import checks
from config import flags as config_flags
from models import checkpoint
from models.graph import frozen_logits
from utils import runlog
from utils.errors import UserError

DEFAULT_RUN = "evaluate"   # where the result is recorded when --run_name is not given


def run(cfg):
    cfg.run_name = cfg.run_name or DEFAULT_RUN
    checks.run_name(cfg)
    checks.require(cfg, "model", "dataset")
    config_flags.validate(cfg, "evaluate")
    spec = checkpoint.spec_for(cfg.model, cfg.model_checkpoint)
    values = checkpoint.load_teacher_values(spec, cfg.model_meta, cfg.model_checkpoint)
    data = datasets.get(cfg.dataset, cfg.data_dir)
    checks.dataset_fits(spec, data)
    if not data.has_test:
        raise UserError(f"--dataset={cfg.dataset} has no test split; evaluate needs labelled test data")
    t0 = time.time()
    predicted = np.argmax(frozen_logits(spec, values, data.test_x, cfg.test_batch_size, cfg.num_threads), axis=1)
    accuracy = float(np.mean(predicted == data.test_y))
    per_class = class_accuracy(predicted, data.test_y, spec.num_classes)
    results = {"test_accuracy": accuracy, "class_accuracy": per_class, "examples": int(len(data.test_y)),
               "model_checkpoint": cfg.model_checkpoint, "wall_seconds": round(time.time() - t0, 1)}
    runlog.update_log(cfg.summary_folder, cfg.run_name, f"evaluate/{spec.name}", vars(cfg), results)
    print(f"[evaluate] {spec.name} ({cfg.model_checkpoint}) on {cfg.dataset}: test accuracy {100 * accuracy:.2f}% "
          f"over {len(data.test_y)} examples; recorded in {runlog.run_dir(cfg.summary_folder, cfg.run_name)}/log.json")
    shown = [(c, a) for c, a in enumerate(per_class) if a is not None]
    many = len(shown) > 20   # CIFAR-100: the five weakest classes, every one in log.json
    if many:
        shown = sorted(sorted(shown, key=lambda ca: ca[1])[:5])
    print(f"[evaluate] {'five weakest classes' if many else 'per class'} (%): " +
          ", ".join(f"{c}: {100 * a:.1f}" for c, a in shown))
    return results


def class_accuracy(predicted, labels, num_classes):
    """For each class, the share of its test examples predicted as it; None for a class with none."""
    return [float(np.mean(predicted[labels == c] == c)) if np.any(labels == c) else None for c in range(num_classes)]
