"""A table's numbers, read off its cells' records (the cell.json `llmusic.pipeline` writes), and
their layout: table.csv (one line per cell, seed, student and metric) and table.md (one row per
cell, student and metric: mean and sd over seeds, each seed's 95% interval, both label-blind
baselines, the test-set size, the cell's valid rate and the published numbers beside it).

A number is a dict: cell, seed, student, experiment, test_data (real, or generated_holdout where the
real test data was missing), metric, value, lo, hi (its 95% interval over test items, where the
score has one), majority, chance, test_items, valid_rate. `--rerun` compares
the numbers of a new run with these, key by key (NUMBER_KEY, COMPARED).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from llmusic.eval.paper_numbers import numbers_for
from llmusic.eval.uncertainty import mean_sd

NUMBER_KEY = ("cell", "seed", "student", "metric")  # what names one number of a table
COMPARED = ("value", "lo", "hi", "majority", "chance", "test_items", "valid_rate")  # what a rerun must repeat
CSV_COLUMNS = (*NUMBER_KEY, "experiment", "test_data", *COMPARED)


def test_items(student: Mapping) -> int | None:
    """The test set's size: songs (classification) or queries (melody completion)."""
    test = student.get("data", {}).get("test", {})
    if "phrases" in test:  # melody completion: one query per test pair, several per song
        return test.get("samples")
    return test.get("songs", test.get("samples"))


def cell_numbers(cell: str, seed: int, record: Mapping, rows: Mapping[str, Sequence[str]]) -> list[dict]:
    """The numbers of one cell record (cell.json) the table's `rows` ask for, in row order. A metric the
    student's test record lacks (an open score where no class is unscored) is left out, not invented;
    `markdown` names it below the table."""
    numbers = []
    for student, metrics in rows.items():
        result = record["students"].get(student)
        if result is None:
            raise KeyError(f"cell {cell} (seed {seed}) trained no student {student!r}: "
                           f"it has {sorted(record['students'])}; fix the table's cells or rows")
        for metric in metrics:
            score = result["test"].get(metric)
            if score is None:
                continue
            lo, hi = score.get("interval") or (None, None)
            numbers.append({"cell": cell, "seed": seed, "student": student, "experiment": result["experiment"],
                            "test_data": result["test_data"], "metric": metric, "value": score["value"],
                            "lo": lo, "hi": hi,
                            "majority": score.get("majority"), "chance": score.get("chance"),
                            "test_items": test_items(result), "valid_rate": record["generate"]["valid_rate"]})
    return numbers


def published(experiment: str, metric: str) -> list[tuple[float, str]]:
    """The paper's numbers (llmusic.eval.paper_numbers, protocol=paper) for a metric of an experiment,
    as fractions like ours (F1 is listed in percent), each with the row it is published for."""
    short = metric.rsplit("/", 1)[-1]
    return [(p.value / 100 if short.startswith("f1") else p.value, p.row) for p in numbers_for(experiment)
            if p.metric == short]


def _fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _same(values: Sequence) -> str:
    """A baseline or size over seeds: one value when the seeds agree, else each."""
    distinct = list(dict.fromkeys(values))
    fmt = (lambda v: str(v) if isinstance(v, int) else _fmt(v))
    return fmt(distinct[0]) if len(distinct) == 1 else " / ".join(fmt(v) for v in values)


def table_rows(numbers: Sequence[Mapping], paper: Mapping[str, Sequence[str]]) -> tuple[list[str], list[list[str]]]:
    """One row per cell, student and metric: its numbers over seeds, in first-seen order; the published
    numbers beside the `paper` metrics of each student (the table config's `paper`)."""
    groups: dict[tuple, list[Mapping]] = {}
    for n in numbers:
        groups.setdefault((n["cell"], n["student"], n["metric"]), []).append(n)
    columns = ["cell", "student", "metric", "seeds", "mean", "sd", "95% CI per seed", "majority", "chance",
               "test items", "valid rate", "paper"]
    rows = []
    for (cell, student, metric), group in groups.items():
        mean, sd = mean_sd([n["value"] for n in group])
        intervals = "; ".join(f"[{n['lo']:.3f}, {n['hi']:.3f}]" for n in group if n["lo"] is not None) or "-"
        beside = published(group[0]["experiment"], metric) if metric in paper.get(student, ()) else []
        held_out = " (tested on held-out generated songs: real data missing)" * (group[0]["test_data"] != "real")
        rows.append([cell, student + held_out, metric, ",".join(str(n["seed"]) for n in group), _fmt(mean),
                     _fmt(sd), intervals, _same([n["majority"] for n in group]), _same([n["chance"] for n in group]),
                     _same([n["test_items"] for n in group]), _same([n["valid_rate"] for n in group]),
                     "; ".join(f"{value:.3f} ({row})" for value, row in beside) or "-"])
    return columns, rows


def markdown(title: str, numbers: Sequence[Mapping], paper: Mapping[str, Sequence[str]],
             asked: Mapping[str, Sequence[str]]) -> str:
    """The table, and below it every metric the table `asked` for (its rows) that no cell measured."""
    columns, rows = table_rows(numbers, paper)
    text = [f"# {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    text += ["| " + " | ".join(row) + " |" for row in rows]
    found = {(n["student"], n["metric"]) for n in numbers}
    missing = [f"{student} {metric}" for student, metrics in asked.items() for metric in metrics
               if (student, metric) not in found]
    text += ["", f"Not in any cell's test record: {', '.join(missing)}."] if missing else []
    return "\n".join(text) + "\n"


def write_csv(numbers: Sequence[Mapping], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, CSV_COLUMNS)
        writer.writeheader()
        writer.writerows({k: n[k] for k in CSV_COLUMNS} for n in numbers)


def differences(old: Sequence[Mapping], new: Sequence[Mapping], tolerance: float) -> list[dict]:
    """Every compared value of every number, old beside new, with `flagged` where they differ by more
    than `tolerance` (or one side lacks the number or the value)."""
    key = (lambda n: tuple(n[k] for k in NUMBER_KEY))
    new_by_key = {key(n): n for n in new}
    out = []
    for n in old:
        m = new_by_key.pop(key(n), {})
        for field in COMPARED:
            a, b = n.get(field), m.get(field)
            diff = None if a is None or b is None else abs(a - b)
            flagged = (a is None) != (b is None) or (diff is not None and diff > tolerance)
            out.append({**{k: n[k] for k in NUMBER_KEY}, "field": field, "old": a, "new": b, "diff": diff,
                        "flagged": flagged})
    out += [{**{k: m[k] for k in NUMBER_KEY}, "field": "value", "old": None, "new": m["value"], "diff": None,
             "flagged": True} for m in new_by_key.values()]  # a number only the rerun has
    return out
