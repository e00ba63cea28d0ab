"""The import contract (docs/architecture.md): commands never import each other, and a layer imports only
the layers below it. Read from the source with ast, so a lazy import inside a function counts too."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Lowest first. A package may import its own modules and any package before it in this list.
LAYERS = ("utils", "models", "datasets", "config", "runtime", "metadata", "reconstruction", "generators",
          "distillation", "viz", "experiments", "procedures")
COMMANDS_PACKAGE = "procedures"


def imported_modules(source):
    """Every module an import in `source` may load: `import a.b` names a.b, `from a import b` a.b."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def violations(root, layers=LAYERS, commands_package=COMMANDS_PACKAGE):
    """'file: imports X (why not)' for every import that breaks the contract under `root`."""
    rank = {name: i for i, name in enumerate(layers)}
    found = []
    for package in layers:
        folder = os.path.join(root, package)
        for dirpath, _, files in os.walk(folder):
            for file in sorted(f for f in files if f.endswith(".py")):
                path = os.path.join(dirpath, file)
                module = os.path.splitext(file)[0]
                with open(path) as f:
                    imports = imported_modules(f.read())
                where = os.path.relpath(path, root)
                for name in imports:
                    top = name.split(".")[0]
                    if top in rank and rank[top] > rank[package]:
                        found.append(f"{where}: imports {name} (layer {top} is above {package})")
                    elif package == commands_package and top == commands_package and "." in name:
                        other = name.split(".")[1]
                        if other != module and os.path.exists(os.path.join(folder, other + ".py")):
                            found.append(f"{where}: imports {name} (a command imports another command)")
    return sorted(set(found))


def test_the_tree_keeps_the_import_contract():
    assert violations(ROOT) == []


def test_every_package_is_in_a_layer():
    packages = {d for d in os.listdir(ROOT) if os.path.isfile(os.path.join(ROOT, d, "__init__.py"))}
    apps = {"bench", "tests", "examples"}   # entry points above every layer; nothing imports them
    assert packages - apps == set(LAYERS)


@pytest.mark.parametrize("package, source, why", [
    ("procedures", "from procedures import train\n", "a command imports another command"),
    ("procedures", "def f():\n    from procedures.train import run\n", "a command imports another command"),
    ("models", "import procedures\n", "layer procedures is above models"),
    ("metadata", "from reconstruction import priors\n", "layer reconstruction is above metadata"),
])
def test_a_deliberate_violation_is_caught(tmp_path, package, source, why):
    for name in ("procedures", "models", "metadata", "reconstruction"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / "procedures" / "train.py").write_text("")
    (tmp_path / package / "culprit.py").write_text(source)
    found = violations(str(tmp_path), layers=("models", "metadata", "reconstruction", "procedures"))
    assert len(found) == 1 and why in found[0] and "culprit.py" in found[0]


def test_a_clean_tree_passes(tmp_path):
    (tmp_path / "procedures").mkdir()
    (tmp_path / "procedures" / "train.py").write_text("import procedures\nfrom models import spec\n")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "spec.py").write_text("from models import builder\n")
    assert violations(str(tmp_path), layers=("models", "procedures")) == []


def test_no_module_edits_sys_path():
    """Entry points run from any directory because the project is installed (pip install -e .), not
    because a file puts the repository on sys.path."""
    offenders = []
    for dirpath, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        for file in (f for f in files if f.endswith(".py")):
            path = os.path.join(dirpath, file)
            for node in ast.walk(ast.parse(open(path).read())):
                if isinstance(node, ast.Attribute) and node.attr in ("insert", "append") and \
                        ast.unparse(node.value) == "sys.path":
                    offenders.append(os.path.relpath(path, ROOT))
    assert offenders == []


@pytest.mark.parametrize("module", ["models.keras_export", "models.keras_import", "models.onnx_import", "viz.view",
                                    "viz.compare_runs", "config.flag_docs"])
def test_an_entry_point_runs_from_any_directory(module, tmp_path):
    import subprocess
    import sys
    args = ["--check"] if module == "config.flag_docs" else ["--help"]
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=str(tmp_path), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-500:]
