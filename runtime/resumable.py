"""What a resumable run (train, distill) keeps beside its checkpoints: the settings it started
with, and the training seconds up to each checkpoint.

Resuming continues the same run; a later command in the same folder with other settings would
otherwise pick up a finished or half-done run of something else and report it as new."""
import glob
import json
import os
import time

from utils import atomic
from utils.errors import UserError


def settings_path(ckpt_dir, model_name):
    return os.path.join(ckpt_dir, f"{model_name}.settings.json")


def check_resume(ckpt_dir, model_name, settings, resuming):
    """Refuses to resume a run started with other settings; records the settings of a new one.
    A folder from before settings were kept is resumed as it is."""
    path = settings_path(ckpt_dir, model_name)
    settings = json.loads(json.dumps(settings))   # as it reads back: tuples become lists
    if resuming and os.path.exists(path):
        try:
            with open(path) as f:
                saved = json.load(f)
        except (OSError, ValueError):
            raise UserError(f"{path} is unreadable; delete {ckpt_dir} to start the run over")
        differ = [k for k in sorted(set(saved) | set(settings)) if saved.get(k) != settings.get(k)]
        if differ:   # a key ending in _version is a definition's version (a generator's layers.version), not a flag
            said = "; ".join(f"{'' if k.endswith('_version') else '--'}{k}={saved.get(k)} there, {settings.get(k)} now"
                             for k in differ[:3])
            raise UserError(f"{ckpt_dir} holds a {model_name} run with other settings ({said}); give another "
                            "--run_name, or delete that folder to start over")
    if not resuming or not os.path.exists(path):
        atomic.save_json(path, settings)


def seconds_path(ckpt_dir, model_name):
    return os.path.join(ckpt_dir, f"{model_name}.seconds.json")


def checkpoint_seconds(ckpt_dir, model_name):
    """{step: seconds up to that checkpoint, over every piece of the run}, or {}."""
    legacy = os.path.join(ckpt_dir, "train_seconds.json")   # older train runs: one file for the folder
    for path in (seconds_path(ckpt_dir, model_name), legacy):
        try:
            with open(path) as f:
                return {int(step): float(seconds) for step, seconds in json.load(f).items()}
        except (OSError, ValueError, AttributeError):
            continue
    return {}


def record_seconds(ckpt_dir, model_name, seconds_at):
    atomic.save_json(seconds_path(ckpt_dir, model_name), seconds_at)


class Run:
    """A checkpointed run of `model_name` in `ckpt_dir`: where it resumes, and its saves, each of which
    records the seconds so far over every piece of the run."""

    def __init__(self, ckpt_dir, model_name, settings):
        from models.checkpoint import checkpoint_steps
        self.prefix = os.path.join(ckpt_dir, model_name)
        self.ckpt_dir, self.model_name = ckpt_dir, model_name
        self.earlier_steps = checkpoint_steps(ckpt_dir, model_name)
        self.start_step = max(self.earlier_steps, default=0)
        check_resume(ckpt_dir, model_name, settings, resuming=bool(self.start_step))
        self.seconds_at = checkpoint_seconds(ckpt_dir, model_name)
        self.earlier = self.seconds_at.get(self.start_step, 0.0) if self.start_step else 0.0
        self.t0 = time.time()

    def restore_or_init(self, sess, saver, init_op, label):
        if self.start_step:
            saver.restore(sess, f"{self.prefix}-{self.start_step}")   # weights, optimizer slots and the step
            print(f"[{label}] resuming from {self.prefix}-{self.start_step}")
            # The saver deletes its oldest checkpoints beyond max_to_keep as it saves, but knows only its own:
            # told of the earlier pieces' too, it does not leave each piece's last ones behind.
            saver.recover_last_checkpoints([f"{self.prefix}-{s}" for s in self.earlier_steps])
        else:
            sess.run(init_op)

    def save(self, sess, saver, step):
        saver.save(sess, self.prefix, global_step=step)
        self.seconds_at[step] = self.earlier + time.time() - self.t0
        record_seconds(self.ckpt_dir, self.model_name, self.seconds_at)

    def save_last(self, sess, saver, step):
        if not os.path.exists(f"{self.prefix}-{step}.index"):
            self.save(sess, saver, step)


def discard_events(folder):
    """Removes a folder's TensorBoard event files. A run that starts at step 0 writes its curves afresh;
    those of a run it replaces (discarded on changed settings, or stopped before its first checkpoint)
    would otherwise show in the same TensorBoard run as one tangled curve."""
    for path in glob.glob(os.path.join(glob.escape(folder), "events.out.tfevents.*")):
        os.remove(path)


def discard(ckpt_dir, model_name):
    """Removes a run's checkpoints and records, so that it starts over (reproduce, on changed settings)."""
    for path in glob.glob(os.path.join(glob.escape(ckpt_dir), f"{glob.escape(model_name)}[-.]*")):
        os.remove(path)
