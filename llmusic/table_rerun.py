"""Re-run a built table from its saved configs alone: `python -m llmusic.table --rerun tables/<name>`.

For every cell and seed of the table's manifest.json (llmusic.table): the generate run again from the
config it saved (embedded in the manifest) into <table>/rerun/<cell>/seed<k>/generate, then every row
student again from the config.yaml its run saved (resolved when it ran, so no default of today's
conf/ enters), its paths moved to the new generate run and to <table>/rerun/<cell>/seed<k>/train/
<student>. Then every number of the table, old beside new, flagged where the two differ by more than
the tolerance (the table config's, or --tolerance): on CPU, with the saved seeds and threads, a
rerun repeats every number exactly. Writes <table>/rerun/rerun.md and rerun.json.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from llmusic.generate import generate
from llmusic.pipeline import flat_test_metrics
from llmusic.table_numbers import cell_numbers, differences
from llmusic.train import train


def moved(tree, paths: Mapping[str, str]):
    """A config tree (plain containers) with every path at or under an old location (a key of `paths`)
    moved to the new one."""
    if isinstance(tree, dict):
        return {key: moved(value, paths) for key, value in tree.items()}
    if isinstance(tree, list):
        return [moved(value, paths) for value in tree]
    for old, new in paths.items() if isinstance(tree, str) else ():
        if tree == old or tree.startswith(old + os.sep):
            return new + tree[len(old):]
    return tree


def rerun_cell(entry: Mapping, table_dir: Path, where: Path) -> dict:
    """One cell and seed of the manifest again, from its saved configs; its record in cell.json's form
    (what llmusic.table_numbers reads)."""
    gen = entry["generate"]
    summary = generate(OmegaConf.create(moved(gen["config"], {gen["out_dir"]: str(where / "generate")})))
    students = {}
    for name, student in entry["students"].items():
        saved = OmegaConf.to_container(OmegaConf.load(table_dir / student["config"]))
        paths = {gen["out_dir"]: str(where / "generate"), saved["paths"]["output_dir"]: str(where / "train" / name)}
        metrics = train(OmegaConf.create(moved(saved, paths)))
        students[name] = {"experiment": student["experiment"], "test_data": student["test_data"],
                          "data": metrics["data"], "test": flat_test_metrics(metrics["test"])}
    return {"generate": {"valid_rate": summary["valid_rate"]}, "students": students}


def print_differences(found: list[dict], tolerance: float, console: Console) -> None:
    """Every number's value old beside new, and any other compared field that moved."""
    table = Table(title=f"rerun: old vs new (tolerance {tolerance:g})")
    for column in ("cell", "seed", "student", "metric", "field", "old", "new", "|diff|", ""):
        table.add_column(column)
    for d in found:
        if d["field"] == "value" or d["flagged"]:
            table.add_row(d["cell"], str(d["seed"]), d["student"], d["metric"], d["field"], str(d["old"]),
                          str(d["new"]), _diff(d), "DIFFERS" if d["flagged"] else "same")
    console.print(table)
    flagged = sum(d["flagged"] for d in found)
    console.print(f"{flagged} of {len(found)} compared values differ beyond {tolerance:g}" if flagged
                  else f"all {len(found)} compared values within {tolerance:g}")


def _diff(d: Mapping) -> str:
    return "-" if d["diff"] is None else f"{d['diff']:.2g}"


def markdown(found: list[dict], tolerance: float) -> str:
    lines = [f"# Rerun: old vs new (tolerance {tolerance:g})", "",
             "| cell | seed | student | metric | field | old | new | abs diff | differs |", "|" + "---|" * 9]
    lines += [f"| {d['cell']} | {d['seed']} | {d['student']} | {d['metric']} | {d['field']} | {d['old']} | {d['new']} "
              f"| {_diff(d)} | {'yes' if d['flagged'] else 'no'} |" for d in found]
    return "\n".join(lines) + "\n"


def rerun_table(manifest: Mapping, table_dir: Path, tolerance: float | None = None,
                console: Console | None = None) -> list[dict]:
    """Re-run every cell of a built table (its manifest.json, in `table_dir`) and compare; the
    differences (llmusic.table_numbers.differences), also written to <table_dir>/rerun/."""
    table_dir = Path(table_dir).resolve()
    tolerance = manifest["config"]["tolerance"] if tolerance is None else tolerance
    rows = manifest["config"]["rows"]
    new = []
    for entry in manifest["cells"]:
        where = table_dir / "rerun" / entry["cell"] / f"seed{entry['seed']}"
        new += cell_numbers(entry["cell"], entry["seed"], rerun_cell(entry, table_dir, where), rows)
    found = differences(manifest["numbers"], new, tolerance)
    out = table_dir / "rerun"
    (out / "rerun.json").write_text(json.dumps({"tolerance": tolerance, "differences": found}, indent=2))
    (out / "rerun.md").write_text(markdown(found, tolerance))
    print_differences(found, tolerance, console or Console(width=None if sys.stdout.isatty() else 150))  # logs: no wrap
    return found
