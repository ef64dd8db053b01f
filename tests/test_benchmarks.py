"""Benchmarks run as modules (`python -m benchmarks.<name>`), with no sys.path edits, and write
their table as markdown and CSV. Their numbers live in benchmarks/README-*.md, not here."""

from __future__ import annotations

import csv
import importlib
import subprocess
import sys

import pytest

from llmusic.config import REPO_ROOT

SCRIPTS = sorted(p.stem for p in (REPO_ROOT / "benchmarks").glob("*_benchmark.py"))


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_is_a_module_that_writes_its_table(name):
    source = (REPO_ROOT / "benchmarks" / f"{name}.py").read_text()
    assert "sys.path" not in source
    assert "write_table(" in source and "add_table_dir(parser)" in source
    assert "machine()" in source and "median" in source  # the load average, and the median of repeats
    assert callable(importlib.import_module(f"benchmarks.{name}").main)
    assert f"python -m benchmarks.{name}" in source  # its docstring says how to run it


def test_parse_benchmark_runs_and_writes_markdown_and_csv(tmp_path):
    subprocess.run([sys.executable, "-m", "benchmarks.parse_benchmark", "--n", "54", "--repeats", "3",
                    "--table-dir", str(tmp_path)], cwd=REPO_ROOT, check=True, capture_output=True)
    with open(tmp_path / "parse.csv", newline="") as f:
        header, *rows = list(csv.reader(f))
    assert header[:3] == ["replies", "parse_reply /s (median)", "parse_reply /s (best)"] and len(rows) == 3
    assert all(0 < float(r[1]) <= float(r[2]) for r in rows)
    markdown = (tmp_path / "parse.md").read_text()
    assert "load average" in markdown and markdown.count("\n| ") == 5  # header, rule, 3 rows
    assert (tmp_path / "parse_per_file.csv").is_file()
