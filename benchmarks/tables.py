"""The table a benchmark prints, also written as `<name>.md` and `<name>.csv` under `--table-dir`
(default runs/benchmarks/, outside version control: the READMEs keep the numbers worth keeping)."""

from __future__ import annotations

import argparse
import csv
import os
import statistics
from collections.abc import Sequence
from pathlib import Path

from llmusic.config import REPO_ROOT

TABLE_DIR = REPO_ROOT / "runs" / "benchmarks"


def add_table_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table-dir", type=Path, default=TABLE_DIR,
                        help="where <name>.md and <name>.csv go (default: runs/benchmarks/)")


def machine() -> str:
    """What the numbers were measured on, and how busy it was."""
    return f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"


def spread(values: Sequence[float]) -> tuple[float, float]:
    """(min, median) of repeated timings: docs quote the median; the min shows how far the load of
    a shared machine moved it (for rates, the min time is the best rate)."""
    return min(values), statistics.median(values)


def cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write_table(table_dir: Path, name: str, header: Sequence[str], rows: Sequence[Sequence],
                note: str = "") -> tuple[Path, Path]:
    """Print the table as markdown (under `note`), and write it as markdown and CSV (raw values)."""
    lines = [f"| {' | '.join(header)} |", "|" + " --- |" * len(header)]
    lines += [f"| {' | '.join(cell(v) for v in row)} |" for row in rows]
    markdown = "\n".join(([note, ""] if note else []) + lines) + "\n"
    table_dir.mkdir(parents=True, exist_ok=True)
    md, csv_path = table_dir / f"{name}.md", table_dir / f"{name}.csv"
    md.write_text(markdown)
    with open(csv_path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    print(markdown + f"written: {md}, {csv_path}")
    return md, csv_path
