"""The command line: bad input gives one line on stderr, exit code 2, no traceback. The table of bad flags
runs through main's own parsing in this process; the rest run the real command."""
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, main_in_process


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=300)


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("args, expected", [
    (["--run_name=x"], "--procedure is required; choose one of train, compute_stats"),
    (["--run_name=x", "--procedure=fly"], "--procedure=fly: value should be one of <train|compute_stats|"),
    (["--run_name=x", "--procedure=optimize_dataset", "--optimization_objective=top"],
     "--optimization_objective=top: value should be one of <top_layer|all_layers|"),
    (["--run_name=x", "--procedure=reproduce", "--preset=fast"], "--preset=fast: value should be one of <paper|"),
    (["--run_name=x", "--procedure=train", "--epochs=ten"], "--epochs=ten: "),
    (["--run_name=x", "--procedure=train", "--model=resnet", "--dataset=mnist"], "choose one of hinton1200"),
    (["--run_name=x", "--procedure=train", "--model=lenet", "--dataset=cifar"], "unknown dataset 'cifar'"),
    (["--run_name=x", "--procedure=train", "--model=lenet", "--dataset=mnist"], "expects 1024 (data (28, 28, 1), model (32, 32, 1)); use --dataset=mnist_conv"),
    (["--run_name=x", "--procedure=train", "--model=lenet", "--dataset=mnist_conv", "--epochs=-1"],
     "--epochs must be > 0"),
    (["--run_name=x", "--procedure=train", "--model=lenet", "--dataset=mnist_conv", "--lr=0"], "--lr must be > 0"),
    (["--procedure=train", "--model=lenet", "--dataset=mnist_conv"], "--run_name is required"),
])
@pytest.mark.slow
def test_bad_flags_give_one_line(args, expected, tmp_path, capsys):
    result = main_in_process(capsys, *args, f"--summary_folder={tmp_path}")
    assert result.returncode == 2, result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.slow
def test_unwritable_summary_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_cli("--run_name=x", "--procedure=train", "--model=hinton800", "--dataset=mnist",
                     f"--summary_folder={blocker}")
    assert result.returncode == 2
    assert "--summary_folder: cannot write" in error_lines(result.stderr)[0]


def test_every_logged_result_names_the_processor_and_the_code_commit(tmp_path):
    """log.json carries what a number depends on besides the flags: the CPU and the git commit."""
    import json

    from utils import runlog
    runlog.update_log(str(tmp_path), "run", "train/x", {"epochs": 1}, {"test_accuracy": 0.5})
    logged = json.loads((tmp_path / "run" / "log.json").read_text())["procedures"]["train/x"]["versions"]
    assert logged["cpu"] is None or isinstance(logged["cpu"], str) and logged["cpu"]
    if os.path.isfile("/proc/cpuinfo"):
        assert logged["cpu"]
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:   # not a git checkout
        assert logged["commit"] is None
        return
    changed = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                             capture_output=True, text=True).stdout.strip()
    assert logged["commit"] == head.stdout.strip() + ("+changes" if changed else "")


@pytest.mark.slow
def test_a_flag_the_procedure_does_not_read_gets_one_warning(tmp_path):
    result = run_cli("--run_name=x", "--procedure=train", "--model=nope", "--dataset=mnist", "--jitter=2",
                     "--temperature=4", f"--summary_folder={tmp_path}")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: --jitter is not read by --procedure=train; ignored",
                        "warning: --temperature is not read by --procedure=train; ignored"], result.stderr
    assert "--model: unknown model 'nope'" in error_lines(result.stderr)[0]   # still runs (here: to its error)


@pytest.mark.slow
def test_one_flagfile_serves_several_procedures(tmp_path):
    """A --flagfile's flags that this procedure does not read are named in warnings, not refused; flags after
    it on the command line win."""
    flagfile = tmp_path / "flags.txt"
    flagfile.write_text("# shared by train and optimize_dataset\n--model=nope\n--jitter=2\n--epochs=3\n")
    result = run_cli("--run_name=x", "--procedure=train", f"--flagfile={flagfile}", "--model=nope2",
                     "--dataset=mnist", f"--summary_folder={tmp_path}")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: --jitter is not read by --procedure=train; ignored"], result.stderr
    assert "--model: unknown model 'nope2'" in error_lines(result.stderr)[0]


def test_a_result_names_the_commit_its_run_started_from(monkeypatch):
    """A commit made while a long run works must not be the one its log.json names."""
    from tests.conftest import main_with
    from utils import runlog
    seen = {}

    class Procedure:
        @staticmethod
        def run(cfg):
            seen["already read"] = runlog.code_commit.cache_info().currsize == 1

    runlog.code_commit.cache_clear()
    assert main_with(monkeypatch, Procedure, "--procedure=train", "--run_name=x") == 0
    assert seen["already read"]


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_lists_the_flags_by_procedure_and_exits_0(flag, tmp_path):
    from config import flags
    done = run_cli(flag, cwd=str(tmp_path))
    assert done.returncode == 0 and done.stderr == ""
    sections = [line for line in done.stdout.splitlines() if line and not line.startswith(" ") and line.endswith(":")]
    assert sections == ["Every procedure:"] + [f"--procedure={p}:" for p in flags.PROCEDURE_ORDER]
    assert all(f"--{f.name}  (" in done.stdout for f in flags.FLAGS)
    assert "resnet20" in done.stdout and "holds the flags and the dispatch" not in done.stdout


@pytest.mark.slow
def test_a_quick_run_prints_no_tensorflow_start_up_lines_and_no_nan(tmp_path):
    done = run_cli("--procedure=train", "--model=hinton800", "--dataset=mnist", "--run_name=q", "--epochs=1",
                   "--train_batch_size=6000", "--eval_interval=5", f"--summary_folder={tmp_path}", cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "oneDNN" not in done.stderr and "absl::InitializeLog" not in done.stderr and "cpu_feature_guard" \
        not in done.stderr
    assert "nan" not in done.stdout and "test accuracy" in done.stdout
