"""Bad input through the real CLI, kill -9 in the middle of a reconstruction, NaN
batches, and random bytes thrown at every artifact loader."""
import functools
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import datasets
from datasets import idx, optimized, safe_npy
from metadata import stats_file
from procedures import compute_stats, optimize_dataset
from tests.conftest import ROOT, main_in_process, make_cfg, toy_for
from utils import atomic
from utils.errors import UserError


@pytest.fixture(scope="module")
def pipeline(teachers):
    """Stats (with graphwise for lenet's absence test) for the tiny teachers; file paths."""
    paths = {}
    for model, (train_cfg, result) in teachers.items():
        cfg = make_cfg(summary_folder=train_cfg.summary_folder, run_name=train_cfg.run_name, model=model,
                       procedure="compute_stats", model_meta=result["model_meta"],
                       model_checkpoint=result["model_checkpoint"])
        with mock.patch.object(datasets, "get", lambda *a, w=784 if model == "hinton1200" else 1024, **k: toy_for(w)):
            stats = compute_stats.run(cfg)["stats_file"]
        paths[model] = dict(meta=result["model_meta"], ckpt=result["model_checkpoint"], stats=stats,
                            summary=train_cfg.summary_folder, run=train_cfg.run_name)
    return paths


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def digest_tree(folder):
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            with open(os.path.join(root, name), "rb") as f:
                h.update(name.encode() + f.read())
    return h.hexdigest()


def make_bad_npy(folder, kind):
    path = os.path.join(folder, f"bad_{kind}.npy")
    labels = np.arange(10) % 10
    if kind == "width":
        np.save(path, np.zeros((10, 100), np.float32))
    elif kind == "dtype":
        np.save(path, np.zeros((10, 784), np.float64))
    elif kind == "nan":
        x = np.zeros((10, 784), np.float32)
        x[3, 5] = np.nan
        np.save(path, x)
    elif kind == "ndim":
        np.save(path, np.zeros((10, 28, 28), np.float32))
    elif kind == "empty":
        np.save(path, np.zeros((0, 784), np.float32))
        labels = labels[:0]
    elif kind == "truncated":
        np.save(path, np.zeros((10, 784), np.float32))
        with open(path, "r+b") as f:
            f.truncate(200)
    elif kind == "pickle":
        np.save(path, np.array([{"evil": 1}] * 10, dtype=object), allow_pickle=True)
    elif kind == "lenet_width":
        np.save(path, np.zeros((10, 784), np.float32))
    np.save(path.replace(".npy", ".labels.npy"), labels)
    return path


BAD_INPUTS = [
    # (name, procedure-specific args built from the fixture, expected words in the message)
    ("no checkpoint flag", lambda p, t: ["--procedure=compute_stats", "--model=hinton1200", "--dataset=mnist"],
     "--model_checkpoint is required"),
    ("nonexistent checkpoint", lambda p, t: ["--procedure=compute_stats", "--model=hinton1200", "--dataset=mnist",
                                             f"--model_checkpoint={t}/nothing-5"], "--model_checkpoint: no checkpoint"),
    ("nonexistent meta", lambda p, t: ["--procedure=compute_stats", "--model=hinton1200", "--dataset=mnist",
                                       f"--model_checkpoint={p['hinton1200']['ckpt']}", f"--model_meta={t}/x.meta"],
     "--model_meta: file not found"),
    ("checkpoint of another model", lambda p, t: ["--procedure=compute_stats", "--model=hinton800", "--dataset=mnist",
                                                  f"--model_checkpoint={p['hinton1200']['ckpt']}"],
     "holds hinton1200, not --model=hinton800"),
    ("meta of another model", lambda p, t: ["--procedure=compute_stats", "--model=hinton1200", "--dataset=mnist",
                                            f"--model_checkpoint={p['hinton1200']['ckpt']}",
                                            f"--model_meta={p['lenet']['meta']}"], "is a lenet graph"),
    ("stats of another model", lambda p, t: ["--procedure=optimize_dataset", "--model=hinton1200",
                                             "--optimization_objective=top_layer",
                                             f"--model_checkpoint={p['hinton1200']['ckpt']}",
                                             f"--stats_file={p['lenet']['stats']}"], "computed for --model=lenet"),
    ("stats of another temperature", lambda p, t: ["--procedure=optimize_dataset", "--model=hinton1200",
                                                   "--optimization_objective=top_layer", "--temperature=4",
                                                   f"--model_checkpoint={p['hinton1200']['ckpt']}",
                                                   f"--stats_file={p['hinton1200']['stats']}"], "--temperature=8"),
    ("stats without graphwise", lambda p, t: ["--procedure=optimize_dataset", "--model=hinton1200",
                                              "--optimization_objective=spectral_all_layers",
                                              f"--model_checkpoint={p['hinton1200']['ckpt']}",
                                              f"--stats_file={p['hinton1200']['stats']}"],
     "--compute_graphwise_stats"),
    ("corrupt stats", lambda p, t: ["--procedure=optimize_dataset", "--model=hinton1200",
                                    "--optimization_objective=top_layer", f"--model_checkpoint={p['hinton1200']['ckpt']}",
                                    f"--stats_file={make_corrupt(t, 'stats.npz')}"], "not a valid .npz"),
    ("unknown objective", lambda p, t: ["--procedure=optimize_dataset", "--model=hinton1200",
                                        "--optimization_objective=best_layer"],
     "--optimization_objective=best_layer: value should be one of <top_layer|"),
    ("unknown model", lambda p, t: ["--procedure=train", "--model=vgg", "--dataset=mnist"], "unknown model 'vgg'"),
    ("unknown dataset", lambda p, t: ["--procedure=train", "--model=lenet", "--dataset=svhn"], "unknown dataset"),
    ("negative epochs", lambda p, t: ["--procedure=train", "--model=lenet", "--dataset=mnist_conv", "--epochs=-2"],
     "--epochs must be > 0"),
    ("zero batch size", lambda p, t: ["--procedure=train", "--model=lenet", "--dataset=mnist_conv",
                                      "--train_batch_size=0"], "--train_batch_size must be > 0"),
    ("zero temperature", lambda p, t: ["--procedure=compute_stats", "--model=hinton1200", "--dataset=mnist",
                                       "--temperature=0"], "--temperature must be > 0"),
    ("negative lr", lambda p, t: ["--procedure=optimize_dataset", "--model=hinton1200",
                                  "--optimization_objective=top_layer", "--lr=-1"], "--lr must be > 0"),
] + [
    (f"npy {kind}", (lambda kind: lambda p, t: [
        "--procedure=distill", f"--model={'lenet' if kind == 'lenet_width' else 'hinton1200'}",
        f"--student_model={'lenet_half' if kind == 'lenet_width' else 'hinton800'}",
        f"--model_checkpoint={p['lenet' if kind == 'lenet_width' else 'hinton1200']['ckpt']}",
        f"--dataset={make_bad_npy(t, kind)}", "--eval_dataset=mnist"])(kind), expected)
    for kind, expected in [("width", "inputs 100 wide, but --model=hinton1200 expects 784"), ("dtype", "dtype float64, expected float32"),
                           ("nan", "NaN or Inf"), ("ndim", "expected 2-d"), ("empty", "zero rows"),
                           ("truncated", "not a valid .npy"), ("pickle", "pickle"),
                           ("lenet_width", "inputs 784 wide, but --model=lenet expects 1024")]
]


def make_corrupt(folder, name):
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write(os.urandom(300))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name, build_args, expected", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gets_one_line_and_touches_nothing(name, build_args, expected, pipeline, tmp_path, capsys):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    args = build_args(pipeline, str(inputs))
    summary = tmp_path / "summaries"
    before = digest_tree(pipeline["hinton1200"]["summary"]), digest_tree(inputs)
    result = main_in_process(capsys, *args, "--run_name=bad", f"--summary_folder={summary}")
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (summary / "bad").exists()  # nothing created
    assert (digest_tree(pipeline["hinton1200"]["summary"]), digest_tree(inputs)) == before  # nothing damaged


@pytest.mark.slow
def test_verbose_shows_the_traceback(tmp_path):
    result = cli("--run_name=x", "--procedure=train", "--model=vgg", "--dataset=mnist", "--verbose",
                 f"--summary_folder={tmp_path}")
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_full_disk_is_one_line(monkeypatch, capsys, tmp_path):
    import errno

    from tests.conftest import main_with

    class FullDisk:
        @staticmethod
        def run(cfg):
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.npy"))

    assert main_with(monkeypatch, FullDisk, "--procedure=train", "--run_name=x") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: No space left on device") and "disk space" in err and len(err.splitlines()) == 1


def optimize_args(p, summary, **extra):
    # top_layer: all_layers would spend most of each process's start factoring 1,200-unit covariances.
    args = ["--procedure=optimize_dataset", "--model=hinton1200", "--optimization_objective=top_layer",
            f"--model_checkpoint={p['hinton1200']['ckpt']}", f"--stats_file={p['hinton1200']['stats']}",
            "--run_name=kill", f"--summary_folder={summary}", "--samples_per_class=6", "--optimize_batch_size=6",
            "--optimization_steps=400"]
    return args + [f"--{k}={v}" for k, v in extra.items()]


@pytest.mark.slow
def test_sigkill_mid_reconstruction_then_resume_gives_identical_output(pipeline, tmp_path):
    # Two worker processes: kill -9 of the parent must take them down too, and the resumed run gives
    # the same bits (every batch runs in a one-thread process either way).
    whole = cli(*optimize_args(pipeline, tmp_path / "whole", optimize_workers=2))
    assert whole.returncode == 0, whole.stderr[-2000:]
    expected = np.load(tmp_path / "whole" / "kill" / "data" / "data_optimized_top_layer_kill.npy")

    summary = tmp_path / "cut"
    data_dir = summary / "kill" / "data"
    partial = data_dir / ".data_optimized_top_layer_kill.partial"
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "main.py"),
                             *optimize_args(pipeline, summary, optimize_workers=2)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and len(list(partial.glob("batch_*.npz"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)   # the workers' own SIGKILL follows their parent's death within microseconds
    finished = len(list(partial.glob("batch_*.npz")))
    time.sleep(3)     # a worker that outlived its parent would write its next batch in well under this
    assert len(list(partial.glob("batch_*.npz"))) == finished
    assert 3 <= finished < 10, "the kill came too late to test anything"
    assert not (data_dir / "data_optimized_top_layer_kill.npy").exists()  # no partial output
    kept_seconds = 0.0
    for kept in partial.glob("batch_*.npz"):
        kept_seconds += float(np.load(kept)["seconds"])  # every kept batch is complete, with its time

    resumed = cli(*optimize_args(pipeline, summary, optimize_workers=2))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming: {finished} of 10 batches already done" in resumed.stdout
    # The reported time is both pieces': the kept batches' and the resumed run's.
    with open(summary / "kill" / "log.json") as f:
        result = json.load(f)["procedures"]["optimize_dataset/top_layer"]["results"]
    assert kept_seconds > 0 and result["earlier_pieces_seconds"] == pytest.approx(kept_seconds, abs=0.1)
    assert result["wall_seconds"] > result["earlier_pieces_seconds"]
    np.testing.assert_array_equal(np.load(data_dir / "data_optimized_top_layer_kill.npy"), expected)
    assert not partial.exists()
    assert not [p for p in os.listdir(data_dir) if ".tmp" in p]


def test_nan_batch_is_redrawn_not_saved(pipeline, tmp_path, capsys):
    p = pipeline["hinton1200"]
    cfg = make_cfg(procedure="optimize_dataset", model="hinton1200", optimization_objective="top_layer",
                   model_checkpoint=p["ckpt"], stats_file=p["stats"], summary_folder=str(tmp_path),
                   samples_per_class=1, optimize_batch_size=10, optimization_steps=5)
    real_run_batch = optimize_dataset.ReconstructionGraph.run_batch
    calls = []

    def first_batch_explodes(self, sess, x0, targets, masks, *args, **kwargs):
        x, history, predictions = real_run_batch(self, sess, x0, targets, masks, *args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            history = history.copy()
            history[-1] = np.nan
        return x, history, predictions

    with mock.patch.object(optimize_dataset.ReconstructionGraph, "run_batch", first_batch_explodes):
        result = optimize_dataset.run(cfg)
    assert len(calls) == 2
    assert "re-initializing" in capsys.readouterr().out
    assert np.isfinite(np.load(result["output"])).all()


def test_a_long_batch_reports_its_steps_before_it_ends(pipeline, tmp_path, capsys):
    p = pipeline["hinton1200"]
    cfg = make_cfg(procedure="optimize_dataset", model="hinton1200", optimization_objective="top_layer",
                   model_checkpoint=p["ckpt"], stats_file=p["stats"], summary_folder=str(tmp_path),
                   samples_per_class=1, optimize_batch_size=10, optimization_steps=4)
    every_line = functools.partial(optimize_dataset.Progress, every_seconds=0)
    with mock.patch.object(optimize_dataset, "Progress", lambda *a, every_seconds=None, **k: every_line(*a, **k)):
        optimize_dataset.run(cfg)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[optimize top_layer]")]
    assert [line.split(" samples")[0] for line in lines] == [
        "[optimize top_layer] 2/10", "[optimize top_layer] 5/10", "[optimize top_layer] 7/10",
        "[optimize top_layer] 10/10"]
    assert "step=3/4" in lines[2] and "agree=" in lines[-1] and "step=" not in lines[-1]


def test_diverging_everywhere_stops_with_advice(pipeline, tmp_path):
    p = pipeline["hinton1200"]
    cfg = make_cfg(procedure="optimize_dataset", model="hinton1200", optimization_objective="top_layer",
                   model_checkpoint=p["ckpt"], stats_file=p["stats"], summary_folder=str(tmp_path),
                   samples_per_class=1, optimize_batch_size=10, optimization_steps=3)
    nan = lambda self, sess, x0, targets, masks, *args, **kwargs: (x0, np.array([np.nan]), np.zeros(len(x0)))
    with mock.patch.object(optimize_dataset.ReconstructionGraph, "run_batch", nan):
        with pytest.raises(UserError, match="lower --lr"):
            optimize_dataset.run(cfg)
    assert not os.path.exists(optimize_dataset.output_path(cfg))


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.binary(max_size=600))
def test_fuzz_npy_loader_refuses_random_bytes_cleanly(tmp_path, data):
    path = tmp_path / "fuzz.npy"
    path.write_bytes(data)
    try:
        optimized.load(str(path))
    except UserError:
        pass


@FUZZ
@given(st.binary(max_size=600), st.sampled_from([b"", b"PK\x03\x04"]))
def test_fuzz_npz_and_stats_loader_refuse_random_bytes_cleanly(tmp_path, data, prefix):
    path = tmp_path / "fuzz.npz"
    path.write_bytes(prefix + data)
    with pytest.raises(UserError):
        stats_file.load(str(path))


@FUZZ
@given(shape=st.lists(st.integers(0, 5), min_size=0, max_size=4),
       dtype=st.sampled_from(["float32", "float64", "int8", "uint8", "complex64", "bool"]))
def test_fuzz_npy_of_random_shapes_and_dtypes(tmp_path, shape, dtype):
    path = str(tmp_path / "shaped.npy")
    atomic.save_npy(path, np.zeros(shape, dtype))
    atomic.save_npy(optimized.labels_path(path), np.zeros(shape[:1] or [1], np.int64))
    try:
        data = optimized.load(path)
    except UserError:
        return
    assert data.train_x.ndim == 2 and data.train_x.dtype == np.float32 and len(data.train_x) > 0


@FUZZ
@given(st.binary(max_size=300), st.integers(1, 4))
def test_fuzz_idx_parser(data, dims):
    try:
        idx.parse_idx(data, "fuzz", (dims,))
    except UserError:
        pass


@FUZZ
@given(st.dictionaries(st.sampled_from(["model", "counts", "layer_names", "mean__fc1", "format_version",
                                        "temperature", "cov_kind", "run_name", "fingerprint", "std__fc1",
                                        "shape__fc1"]),
                       st.sampled_from([np.zeros(3), np.array("x"), np.array(["fc1"]), np.int64(1),
                                        np.zeros((10, 4)), np.array([np.nan])]), min_size=1))
def test_fuzz_stats_files_with_random_members(tmp_path, members):
    path = str(tmp_path / "members.npz")
    atomic.save_npz(path, **members)
    try:
        stats_file.load(path)
    except UserError:
        pass


def test_safe_npy_never_unpickles(tmp_path):
    path = tmp_path / "evil.npy"
    np.save(path, np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match="pickle"):
        safe_npy.load_npy(str(path), "--dataset")


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path):
    path = str(tmp_path / "a.npy")
    atomic.save_npy(path, np.arange(3))
    assert oct(os.stat(path).st_mode & 0o777) != oct(0o600)  # usual permissions, not mkstemp's
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(path) as tmp:
            np.save(tmp, np.arange(100))
            raise RuntimeError("killed mid-write")
    np.testing.assert_array_equal(np.load(path), np.arange(3))
    assert os.listdir(tmp_path) == ["a.npy"]


def worker_pids(parent_pid):
    """The spawned worker processes of parent_pid (not multiprocessing's resource tracker), from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                ppid = next(int(line.split()[1]) for line in f if line.startswith("PPid:"))
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue   # gone meanwhile
        if ppid == parent_pid and b"spawn_main" in cmdline:
            pids.append(int(entry))
    return pids


@pytest.mark.slow
def test_a_worker_killed_for_memory_stops_the_run_with_one_line(pipeline, tmp_path):
    """The out-of-memory killer's SIGKILL on one worker: the run stops at once with one line saying what
    happened and what to do (a process pool would wait for the lost batches forever); finished batches stay."""
    summary = tmp_path / "oom"
    partial = summary / "kill" / "data" / ".data_optimized_top_layer_kill.partial"
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "main.py"),
                             *optimize_args(pipeline, summary, optimize_workers=2)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not list(partial.glob("batch_*.npz")):
        time.sleep(0.05)
    workers = worker_pids(proc.pid)
    assert len(workers) == 2, workers
    os.kill(workers[0], signal.SIGKILL)
    try:
        _, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the run waited on its killed worker")
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, stderr[-2000:]
    assert "died (SIGKILL" in errors[0] and "--optimize_workers=1" in errors[0] and "Traceback" not in stderr
    assert list(partial.glob("batch_*.npz"))   # kept for the next run
