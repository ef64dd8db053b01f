"""Collect finished train runs into markdown tables beside the paper's numbers and chance.

    python -m llmusic.report runs/train [more run or multirun dirs ...] [--out report.md]
    python -m llmusic.report runs/pipeline/prompt_ablation [--out report.md] [--png chart.png]
    python -m llmusic.report --leaderboard GENERATE_RUN [...] [--search runs] [--out leaderboard.md]

A run is any directory holding the metrics.json and config.yaml that `llmusic.train` writes. Every
row names the run dir that produced it; paper numbers come from llmusic.eval.paper_numbers.
A pipeline cell is a directory holding the cell.json that `llmusic.pipeline` writes: cells get
one table (a row per cell: valid rate, cost, each headline test metric with chance beside it)
and a bar chart, above the tables of their student runs. `--leaderboard`: the roots are generate
runs, one row each with their probe and their students (`llmusic.leaderboard`).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from llmusic.eval.paper_numbers import PAPER_NUMBERS, numbers_for
from llmusic.files import read_json, read_yaml
from llmusic.leaderboard import write_leaderboard

F1_KEYS = ("accuracy", "f1_micro", "f1_macro", "f1_weighted")
CELL_FILE = "cell.json"  # what llmusic.pipeline writes for a finished cell


@dataclass
class Run:
    dir: Path
    config: dict
    metrics: dict

    @property
    def experiment(self) -> str:
        return self.metrics.get("name") or self.config.get("name", "?")

    @property
    def is_classification(self) -> bool:
        return "window" in self.metrics["test"]


def collect_runs(*roots: str | Path) -> list[Run]:
    """Every finished run (metrics.json beside config.yaml) under the given dirs, in path order."""
    runs = []
    for root in roots:
        for path in sorted(Path(root).rglob("metrics.json")):
            config_path = path.parent / "config.yaml"
            config = OmegaConf.to_container(read_yaml(config_path)) if config_path.exists() else {}
            runs.append(Run(path.parent, config, read_json(path, "delete it and train that run again")))
    return runs


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


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
    metrics, each followed by its chance value."""
    metrics = list(dict.fromkeys((name, m) for c in cells for name, s in c["students"].items() for m in s["headline"]))
    columns = ["cell", "valid_rate", "songs", "requests", "cost_usd"]
    for name, metric in metrics:
        columns += [f"{name} {metric}", f"{name} {metric} chance"]
    rows = []
    for label, c in zip(cell_labels(cells), cells):
        gen = c["generate"]
        row = [label, gen["valid_rate"], gen["songs"], gen["requests"], gen["cost_usd"]]
        for name, metric in metrics:
            result = c["students"].get(name, {}).get("test", {}).get(metric, {})
            row += [result.get("value"), result.get("chance")]
        rows.append(row)
    return columns, rows


def plot_sweep(cells: Sequence[dict], path: Path) -> None:
    """Bar chart per headline metric (and the valid rate): a bar per cell, chance as a black tick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns, rows = sweep_table(cells)
    labels = [r[0] for r in rows]
    panels = [("valid rate", [r[1] for r in rows], None)]
    panels += [(columns[i], [r[i] for r in rows], [r[i + 1] for r in rows]) for i in range(5, len(columns), 2)]
    n_cols = min(3, len(panels))
    n_rows = -(-len(panels) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.5 * n_cols, 3.2 * n_rows + 1), squeeze=False,
                             layout="constrained")
    x = range(len(rows))
    for ax, (title, values, chance) in zip(axes.flat, panels):
        ax.bar(x, [v if v is not None else 0 for v in values], color="tab:blue")
        if chance is not None:
            ax.scatter(x, [c if c is not None else float("nan") for c in chance], marker="_", s=400,
                       color="black", label="chance", zorder=3)
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


def _classification_rows(runs: list[Run]) -> list[str]:
    head = ("| experiment | run | level | test n | accuracy | micro-F1 | macro-F1 | weighted-F1 | paper |\n"
            "|---|---|---|---|---|---|---|---|---|")
    rows = [head]
    for run in runs:
        paper = "; ".join(f"{p.value:g} ({p.row})" for p in numbers_for(run.experiment)) or "-"
        for level in ("window", "song"):
            r = run.metrics["test"][level]
            cells = " | ".join(f"{_pct(r['model'][k])} <sub>chance {_pct(r['chance'][k])}, "
                               f"majority {_pct(r['majority'][k])}</sub>" for k in F1_KEYS)
            rows.append(f"| {run.experiment} | `{run.dir}` | {level} | {r['n']} | {cells} | {paper} |")
    return rows


def _per_class_rows(run: Run) -> list[str]:
    r = run.metrics["test"]["song"]
    rows = [f"Per class, song level, `{run.dir}`:", "", "| class | support | F1 | chance F1 |", "|---|---|---|---|"]
    rows += [f"| {name} | {c['support']} | {_pct(c['f1'])} | {_pct(c['chance_f1'])} |"
             for name, c in r["per_class"].items()]
    return rows


COMPLETION_METRICS = ("map", "hits@1", "hits@5", "hits@10", "hits@25")


def _with_interval(r: dict) -> str:
    """A ranking metric: value, then its 95% bootstrap interval over queries and chance in small print."""
    interval = r.get("interval")
    spread = f"[{interval[0]:.3f}, {interval[1]:.3f}]; " if interval else ""
    return f"{r['value']:.3f} <sub>{spread}chance {r['chance']:.3f}</sub>"


def _test_set(run: Run) -> str:
    phrases = run.metrics.get("data", {}).get("test", {}).get("phrases", {})
    if not phrases:
        return "-"
    return f"{phrases['source'].removesuffix('Phrases')}, {phrases['phrase_bars']} bars, keys {phrases['key_normalization']}"


def _completion_rows(runs: list[Run]) -> list[str]:
    """A row per scoring of each run, then its non-learned baselines on the same queries; a model
    scoring's verdict says whether its MAP interval clears chance and the best baseline."""
    head = ("| experiment | run | test set | scoring | queries x candidates | "
            + " | ".join(m.upper() if m == "map" else m.capitalize() for m in COMPLETION_METRICS)
            + " | verdict | paper MAP |\n|" + "---|" * (len(COMPLETION_METRICS) + 7))
    rows = [head]
    for run in runs:
        paper = "; ".join(f"{p.value:g} ({p.row})" for p in numbers_for(run.experiment)) or "-"
        for method, r in run.metrics["test"].items():
            kind, versus = r.get("kind", "model"), r.get("versus")
            verdict = ("non-learned baseline" if kind == "baseline" else "-" if not versus else
                       f"{versus['verdict']} (best baseline {versus['best_baseline']}: {versus['best_baseline_map']:.3f})")
            name = method if kind == "model" else f"*{method}*"
            cells = " | ".join(_with_interval(r[m]) for m in COMPLETION_METRICS)
            rows.append(f"| {run.experiment} | `{run.dir}` | {_test_set(run)} | {name} | {r['n_queries']} x "
                        f"{r['n_candidates']} | {cells} | {verdict} | {paper if kind == 'model' else '-'} |")
    return rows


def _fold_summary(runs: list[Run]) -> list[str]:
    """Mean and spread of song-level micro-F1 over the runs of one experiment (e.g. its 5 folds)."""
    by_experiment: dict[str, list[Run]] = {}
    for run in runs:
        by_experiment.setdefault(run.experiment, []).append(run)
    rows = ["| experiment | runs | song micro-F1 mean | sd | chance | paper |", "|---|---|---|---|---|---|"]
    for name, group in by_experiment.items():
        f1 = [r.metrics["test"]["song"]["model"]["f1_micro"] for r in group]
        chance = statistics.mean(r.metrics["test"]["song"]["chance"]["f1_micro"] for r in group)
        sd = _pct(statistics.stdev(f1)) if len(f1) > 1 else "-"
        paper = "; ".join(f"{p.value:g}" for p in numbers_for(name)) or "-"
        rows.append(f"| {name} | {len(group)} | {_pct(statistics.mean(f1))} | {sd} | {_pct(chance)} | {paper} |")
    return rows


def _paper_table() -> list[str]:
    rows = ["| compare with | metric | value | chance (their protocol) | what | source | note |",
            "|---|---|---|---|---|---|---|"]
    for p in PAPER_NUMBERS:
        chance = "not stated" if p.chance is None else f"{p.chance:g}"
        rows.append(f"| {p.experiment} | {p.metric} | {p.value:g} | {chance} | {p.row} | {p.source} | {p.note} |")
    return rows


def render_report(runs: list[Run], cells: Sequence[dict] = ()) -> str:
    """Markdown: the pipeline cells' table (if any), classification and completion tables (values
    with their chance), per-experiment summaries, per-class support, and the paper's numbers with
    their sources."""
    classification = [r for r in runs if r.is_classification]
    completion = [r for r in runs if not r.is_classification]
    out = ["# Results", "",
           ("F1 and accuracy in percent; small print: the label-permutation chance and the majority-class "
            "baseline of the same test set. MAP and Hits@k: small print is the 95% bootstrap interval over "
            "queries and chance (H_N/N, k/N); *italic* scorings are non-learned baselines on the same "
            "queries (llmusic.eval.melody_baselines)."), ""]
    if cells:
        out += ["## Pipeline cells", "",
                ("A row per cell: valid rate of its generate run, songs, requests, cost (USD), then each "
                 "student's headline test metric (as a fraction) followed by its chance value."), "",
                cells_markdown(cells)]
    if classification:
        out += ["## Genre / style classification", "", *_classification_rows(classification), "",
                "### Per experiment", "", *_fold_summary(classification), ""]
        for run in classification:
            out += [*_per_class_rows(run), ""]
    if completion:
        out += ["## Melody completion", "", *_completion_rows(completion), ""]
    out += ["## The paper's numbers", "", *_paper_table(), ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+", type=Path, help="run dirs, multirun dirs or any dir above them")
    parser.add_argument("--out", type=Path, help="write the markdown here (default: print it)")
    parser.add_argument("--png", type=Path, help="the pipeline cells' bar chart (default: the --out path "
                        "with .png, else sweep_report.png in the first root)")
    parser.add_argument("--leaderboard", action="store_true", help="the roots are generate runs: one row each "
                        "(llmusic.leaderboard), with the probes and train runs found under --search")
    parser.add_argument("--search", nargs="*", type=Path, default=[Path("runs")],
                        help="--leaderboard: where train runs and probes of the runs are (default: runs)")
    args = parser.parse_args(argv)
    if args.leaderboard:
        write_leaderboard(args.roots, collect_runs(*args.search), args.search, args.out)
        return
    runs = collect_runs(*args.roots)
    cells = [cell for root in args.roots for cell in load_cells(root)]
    if not runs and not cells:
        parser.error(f"no finished runs (metrics.json) or cells ({CELL_FILE}) under {', '.join(map(str, args.roots))}")
    text = render_report(runs, cells)
    if cells:
        png = args.png or (args.out.with_suffix(".png") if args.out else args.roots[0] / "sweep_report.png")
        plot_sweep(cells, png)
        print(f"chart of {len(cells)} cells: {png}", file=sys.stderr)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
