"""The package reads as the pipeline it is: imports point down the pipeline (docs/architecture.md),
and one module owns a generate run's folder."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from llmusic.config import REPO_ROOT

PACKAGE = REPO_ROOT / "llmusic"
CORE = {"config", "files", "lock", "secret_guard", "song", "constraints", "run_dir"}  # importable by everything; imports only itself
GENERATION = {"prompts", "llm", "parse", "midi"}
# What each part may import besides itself and the core (docs/architecture.md says why).
ALLOWED: dict[str, set[str]] = {
    **{core: set() for core in CORE},
    "prompts": set(),
    "llm": {"prompts"},
    "parse": set(),
    "midi": set(),
    "eval": set(),  # scores and their chance values: pure functions of predictions and labels
    "engine": GENERATION,
    "generate": GENERATION | {"engine"},
    "data": {"midi", "eval"},
    "models": {"midi", "eval"},
    "train": {"midi", "data", "models", "eval"},
    "report": {"eval", "leaderboard"},
    "leaderboard": {"probe"},  # reads the probes' results (their file name) and generate runs
    "analysis": {"midi", "parse"},
    "analyze": {"midi", "parse", "analysis"},
    "probe": {"midi", "data", "eval"},
    "pipeline": GENERATION | {"engine", "generate", "data", "models", "eval", "train", "report", "analysis"},
}


def part(module: str) -> str:
    """llmusic.data.melody -> data; llmusic.pipeline -> pipeline."""
    return module.split(".")[1]


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every llmusic import in a file, top-level or inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: relative import; name the module")
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
            [a.name for a in node.names] if isinstance(node, ast.Import) else []
        found += [(node.lineno, name) for name in names if name.startswith("llmusic.")]
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_pipeline(path):
    module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if module == "llmusic.__init__":
        return
    here = part(module)
    assert here in ALLOWED, f"{module}: a new part of the package; place it in docs/architecture.md and ALLOWED"
    may = ALLOWED[here] | CORE if here not in CORE else CORE
    upward = [f"{path.relative_to(REPO_ROOT)}:{line} imports {name}" for line, name in imports(path)
              if part(name) != here and part(name) not in may]
    assert not upward, f"{here} may import only {sorted(may)}: " + "; ".join(upward)


def test_the_done_when_rules_of_the_layering():
    """The rules issue 14 set, read off ALLOWED, so loosening the table cannot break them quietly."""
    for low in ("midi", "data", "models", "eval"):
        assert not ALLOWED[low] & {"llm", "engine", "pipeline", "generate", "analysis"}, low
    assert "data" not in ALLOWED["models"] | ALLOWED["eval"]
    assert "engine" not in ALLOWED["llm"]
    assert all(not ALLOWED[core] for core in CORE)


def test_only_run_dir_names_the_files_of_a_generate_run():
    """Every reader and writer of a generate run's folder goes through llmusic.run_dir.GenerateRun."""
    owner = PACKAGE / "run_dir.py"
    named = [f"{path.relative_to(REPO_ROOT)}:{n}" for path in MODULES if path != owner
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if "manifest.jsonl" in line or "summary.json" in line or "replies.jsonl" in line]
    assert not named, f"only llmusic/run_dir.py may name a generate run's files: {named}"


def test_no_module_is_over_300_lines():
    long = {str(p.relative_to(REPO_ROOT)): n for p in MODULES if (n := len(p.read_text().splitlines())) > 300}
    assert not long, f"split by job: {long}"
