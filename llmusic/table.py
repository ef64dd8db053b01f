"""One command per table: `python -m llmusic.table <name> [pipeline overrides ...]`.

    python -m llmusic.table paper_style scale=small            # build (or finish) tables/paper_style
    python -m llmusic.table paper_style llm=openai launcher=slurm
    python -m llmusic.table paper_style scale=small --seeds 0   # one seed instead of the table's
    python -m llmusic.table --rerun tables/paper_style         # re-run every cell from its saved configs

A table is a config, conf/table/<name>.yaml: its cells (each a list of `llmusic.pipeline` overrides),
the seeds every cell runs with, the rows (student -> metrics) and the published numbers beside them.
Building runs the cells a previous build did not finish through the pipeline itself
(`python -m llmusic.pipeline -m ... seed=...` with the given launcher: local, joblib, slurm), into
<out>/cells/<cell>/seed<k>/; a cell whose cell.json holds today's config is reused without a launch.
It then writes <out>/table.md, table.csv (llmusic.table_numbers), table.png (llmusic.table_plot) and
manifest.json: the table's
config, the overrides, the code version (git commit and a dirty flag) now and when each cell was
launched, the package versions and, per cell and seed, its cell.json, the generate run (its saved
config, embedded) and every row student's saved config.yaml and metrics.json. `--rerun`
(llmusic.table_rerun) needs nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from llmusic.config import REPO_ROOT, compose_config
from llmusic.pipeline import cell_identity
from llmusic.run_dir import GenerateRun
from llmusic.sweep_report import CELL_FILE
from llmusic.table_numbers import cell_numbers, markdown, write_csv
from llmusic.table_plot import plot_table
from llmusic.table_rerun import rerun_table

MANIFEST = "manifest.json"
CODE_FILE = "code.json"  # in a cell's folder: the code version it was launched with
PACKAGES = ("torch", "lightning", "torchmetrics", "hydra-core", "omegaconf", "numpy", "scikit-learn", "symusic",
            "pretty_midi", "miditoolkit", "openai", "transformers")
# Overrides that set only Hydra's own node (where and how cells are launched): a cell's saved
# config never holds them, so they are left out when checking whether a cell is finished.
LAUNCH_ONLY = ("launcher=", "hydra.")


def table_config(name: str) -> DictConfig:
    """conf/table/<name>.yaml."""
    return compose_config(f"table/{name}").table


def cell_dir(out: Path, cell: str, seed: int) -> Path:
    return out / "cells" / cell / f"seed{seed}"


def finished(out: Path, cell: str, seed: int, overrides: Sequence[str]) -> bool:
    """Whether the cell's cell.json holds the config the pipeline would run now (so it would skip it)."""
    path = cell_dir(out, cell, seed) / CELL_FILE
    if not path.is_file():
        return False
    kept = [o for o in overrides if not o.startswith(LAUNCH_ONLY)]
    return json.loads(path.read_text())["config"] == cell_identity(compose_config("pipeline", [*kept, f"seed={seed}"]))


def run_cells(out: Path, cell: str, overrides: Sequence[str], seeds: Sequence[int]) -> None:
    """The pipeline's own sweep over the seeds, with its launcher: one job per seed."""
    command = [sys.executable, "-m", "llmusic.pipeline", "-m", *overrides, f"seed={','.join(map(str, seeds))}",
               f"hydra.sweep.dir={out / 'cells' / cell}", "hydra.sweep.subdir=seed${seed}"]
    print(f"[table] cell {cell}, seeds {list(seeds)}: {' '.join(command[1:])}", flush=True)
    version = json.dumps(code_version())
    for seed in seeds:  # the code the cell runs with (the manifest keeps it when the cell is reused later)
        cell_dir(out, cell, seed).mkdir(parents=True, exist_ok=True)
        (cell_dir(out, cell, seed) / CODE_FILE).write_text(version)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO_ROOT), os.environ.get("PYTHONPATH"))))}
    subprocess.run(command, check=True, env=env)


def code_version() -> dict:
    """The repository's git commit and whether its working tree differed from it (dirty)."""
    def git(*args: str) -> str | None:
        done = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cell_entry(out: Path, cell: str, seed: int, overrides: Sequence[str], record: dict, rows: DictConfig) -> dict:
    """The manifest's record of one cell and seed: where its config and metrics files are (relative to
    the table folder), the generate run's saved config itself, and the row students' runs."""
    here = cell_dir(out, cell, seed)
    run = GenerateRun(record["generate"]["out_dir"])
    students = {}
    for name in rows:
        run_dir = Path(record["students"][name]["run_dir"])
        students[name] = {"experiment": record["students"][name]["experiment"],
                          "test_data": record["students"][name]["test_data"],
                          "config": os.path.relpath(run_dir / "config.yaml", out),
                          "metrics": os.path.relpath(run_dir / "metrics.json", out)}
    code = here / CODE_FILE
    return {"cell": cell, "seed": seed, "overrides": list(overrides),
            "cell_record": os.path.relpath(here / CELL_FILE, out),
            "code": json.loads(code.read_text()) if code.is_file() else None,  # None: not launched by llmusic.table
            "generate": {"out_dir": str(run.dir), "saved_config": str(run.dir / "config.yaml"),
                         "config": OmegaConf.to_container(run.config),
                         "valid_rate": record["generate"]["valid_rate"]},
            "students": students}


def build_table(name: str, table: DictConfig, overrides: Sequence[str], out: Path) -> dict:
    """Run the table's unfinished cells, then write table.md, table.csv and manifest.json into `out`."""
    out = out.resolve()
    for cell, cell_overrides in table.cells.items():
        cell_overrides = [*cell_overrides, *overrides]
        missing = [seed for seed in table.seeds if not finished(out, cell, seed, cell_overrides)]
        if missing:
            run_cells(out, cell, cell_overrides, missing)
        else:
            print(f"[table] cell {cell}: every seed finished with this config, reused")
    entries, numbers = [], []
    for cell, cell_overrides in table.cells.items():
        for seed in table.seeds:
            record = json.loads((cell_dir(out, cell, seed) / CELL_FILE).read_text())
            numbers += cell_numbers(cell, seed, record, table.rows)
            entries.append(cell_entry(out, cell, seed, [*cell_overrides, *overrides], record, table.rows))
    manifest = {"table": name, "config": OmegaConf.to_container(table), "overrides": list(overrides),
                "code": code_version(), "packages": package_versions(), "cells": entries, "numbers": numbers}
    (out / "table.md").write_text(markdown(table.title, numbers, table.paper, table.rows))
    write_csv(numbers, out / "table.csv")
    plot_table(table.title, numbers, table.paper, out / "table.png")
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmusic.table", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", help="a table of conf/table/ (with --rerun: none)")
    parser.add_argument("overrides", nargs="*", help="pipeline overrides for every cell, e.g. scale=small llm=openai")
    parser.add_argument("--out", type=Path, help="the table's folder (default: tables/<name>)")
    parser.add_argument("--seeds", type=int, nargs="+", help="instead of the table's seeds (a quicker, smaller table)")
    parser.add_argument("--rerun", type=Path, metavar="TABLE_DIR", help="re-run a built table from its saved configs")
    parser.add_argument("--tolerance", type=float, help="with --rerun: the table's own tolerance unless given")
    args = parser.parse_args(argv)
    if args.rerun:
        manifest = json.loads((args.rerun / MANIFEST).read_text())
        return 1 if any(d["flagged"] for d in rerun_table(manifest, args.rerun, args.tolerance)) else 0
    if not args.name:
        parser.error("name a table of conf/table/ or give --rerun TABLE_DIR")
    out = args.out or Path("tables") / args.name
    table = table_config(args.name)
    table.seeds = args.seeds or table.seeds
    build_table(args.name, table, args.overrides, out)
    print((out / "table.md").read_text())
    print(f"[table] {out / 'table.md'}, {out / 'table.csv'}, {out / 'table.png'}, {out / MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
