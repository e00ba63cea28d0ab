"""The README stays short, its links and the docs' links resolve, and its test command is CI's."""
import glob
import os
import re

import pytest

from tests.conftest import ROOT

DOCS = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))) + \
    sorted(glob.glob(os.path.join(ROOT, "docs", "notes", "*.md")))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def anchors(path):
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", read(path), flags=re.S)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower().replace("`", "")).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def test_the_readme_and_the_results_stay_short():
    assert len(read(DOCS[0]).splitlines()) <= 200
    assert len(read(os.path.join(ROOT, "docs", "results.md")).splitlines()) <= 500


def sentences(markdown):
    """The prose sentences of a markdown text: code blocks and tables left out, each bullet on its own."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    out = []
    for block in re.split(r"\n\s*\n|\n(?=\s*- )", text):
        if block.lstrip().startswith(("|", "#")):
            continue
        flat = " ".join(block.split())
        out += [s for s in re.split(r"(?<=[.!?:;])\s+(?=[A-Z`(\[*])", flat) if s]
    return out


def test_no_readme_sentence_is_over_50_words():
    long = [s for s in sentences(read(DOCS[0])) if len(s.split()) > 50]
    assert long == []


def test_a_long_sentence_is_caught():
    text = "Short one. " + " ".join(["Long"] + ["word"] * 50) + ".\n\n- a bullet.\n- another bullet."
    assert [len(s.split()) for s in sentences(text)] == [2, 51, 3, 3]


@pytest.mark.parametrize("path", DOCS, ids=os.path.basename)
def test_every_relative_link_resolves(path):
    for target in LINK.findall(read(path)):
        if re.match(r"[a-z]+:", target):
            continue   # https:, mailto:
        file, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
        assert os.path.exists(resolved), f"{os.path.relpath(path, ROOT)}: {target} does not exist"
        if anchor:
            assert anchor in anchors(resolved), f"{os.path.relpath(path, ROOT)}: no heading #{anchor} in {file}"


@pytest.mark.parametrize("path", DOCS, ids=os.path.basename)
def test_no_lab_notebook_words(path):
    text = read(path).lower()
    for phrase in ("this machine", "this session", "available to this work", "sigstop", "measured here",
                   "used before", "not tested here"):
        assert phrase not in text, f"{os.path.relpath(path, ROOT)} says {phrase!r}"
    assert not re.search(r"commit `?[0-9a-f]{7,}", text), f"{os.path.relpath(path, ROOT)} cites a commit hash"


def test_the_readme_test_command_is_the_one_ci_runs():
    block = re.search(r"## Tests\s+```bash\n(.+?)\n```", read(DOCS[0]), flags=re.S).group(1).strip()
    ci = [line.strip() for line in read(os.path.join(ROOT, ".ci", "run")).splitlines()]
    assert block in ci
