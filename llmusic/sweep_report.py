"""The pipeline's sweep table: one row per finished cell (the cell.json `llmusic.pipeline` writes):
its label, valid rate, songs, requests, cost, then each student's headline metrics, each followed by
its chance value and (classification) its majority baseline; as markdown, CSV and a bar chart
(sweep_report.md / .csv / .png in the sweep folder).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

from llmusic.files import read_json

CELL_FILE = "cell.json"  # what llmusic.pipeline writes for a finished cell


def fmt_cell(value: float | str | None) -> str:
    """A table cell: counts as they are, scores to 3 decimals, "-" for none."""
    if value is None:
        return "-"
    return value if isinstance(value, str) else str(value) if isinstance(value, int) else f"{value:.3f}"


def load_cells(root: str | os.PathLike) -> list[dict]:
    """Every finished cell under a sweep folder, in path order."""
    return [read_json(p, "rerun its pipeline cell") for p in sorted(Path(root).rglob(CELL_FILE))]


def cell_labels(cells: Sequence[dict]) -> list[str]:
    """Each cell's overrides that not every cell shares (a sweep's swept values), else its choices."""
    shared = set.intersection(*(set(c["overrides"]) for c in cells)) if cells else set()
    return [",".join(o for o in c["overrides"] if o not in shared)
            or " ".join(f"{k}={v}" for k, v in c["choices"].items()) for c in cells]


def sweep_table(cells: Sequence[dict]) -> tuple[list[str], list[list]]:
    """One row per cell: its label, valid rate, songs, requests, cost, then each student's headline
    metrics, each followed by its chance value and its majority baseline (none for rankings)."""
    metrics = list(dict.fromkeys((name, m) for c in cells for name, s in c["students"].items() for m in s["headline"]))
    columns = ["cell", "valid_rate", "songs", "requests", "cost_usd"]
    for name, metric in metrics:
        columns += [f"{name} {metric}", f"{name} {metric} chance", f"{name} {metric} majority"]
    rows = []
    for label, c in zip(cell_labels(cells), cells):
        gen = c["generate"]
        row = [label, gen["valid_rate"], gen["songs"], gen["requests"], gen["cost_usd"]]
        for name, metric in metrics:
            result = c["students"].get(name, {}).get("test", {}).get(metric, {})
            row += [result.get("value"), result.get("chance"), result.get("majority")]
        rows.append(row)
    return columns, rows


def plot_sweep(cells: Sequence[dict], path: Path) -> None:
    """Bar chart per headline metric (and the valid rate): a bar per cell, chance as a black tick,
    the majority baseline (classification) as a red one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns, rows = sweep_table(cells)
    labels = [r[0] for r in rows]
    panels = [("valid rate", [r[1] for r in rows], None, None)]
    panels += [(columns[i], [r[i] for r in rows], [r[i + 1] for r in rows], [r[i + 2] for r in rows])
               for i in range(5, len(columns), 3)]
    n_cols = min(3, len(panels))
    n_rows = -(-len(panels) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.5 * n_cols, 3.2 * n_rows + 1), squeeze=False,
                             layout="constrained")
    x = range(len(rows))
    for ax, (title, values, chance, majority) in zip(axes.flat, panels):
        ax.bar(x, [v if v is not None else 0 for v in values], color="tab:blue")
        for baseline, colour, name in ((chance, "black", "chance"), (majority, "tab:red", "majority")):
            if baseline is not None and any(b is not None for b in baseline):
                ax.scatter(x, [b if b is not None else float("nan") for b in baseline], marker="_", s=400,
                           color=colour, label=name, zorder=3)
        if chance is not None:
            ax.legend(fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_xticks(list(x), labels, rotation=30, ha="right", fontsize=7)
        ax.set_ylim(0, max([1.0, *(v for v in values if v is not None)]))
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cells_markdown(cells: Sequence[dict]) -> str:
    """The cells' table (sweep_table) as markdown."""
    columns, rows = sweep_table(cells)
    text = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    text += ["| " + " | ".join(fmt_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(text) + "\n"


def write_sweep_report(root: str | os.PathLike) -> dict[str, Path]:
    """sweep_report.md (the table), .csv and .png over every cell.json under `root`."""
    root = Path(root)
    cells = load_cells(root)
    if not cells:
        raise FileNotFoundError(f"no {CELL_FILE} under {root}")
    columns, rows = sweep_table(cells)
    paths = {kind: root / f"sweep_report.{kind}" for kind in ("md", "csv", "png")}
    paths["md"].write_text(cells_markdown(cells))
    with open(paths["csv"], "w", newline="") as f:
        csv.writer(f).writerows([columns, *rows])
    plot_sweep(cells, paths["png"])
    return paths
