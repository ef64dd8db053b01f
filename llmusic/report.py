"""Collect finished train runs into markdown tables beside the paper's numbers and chance.

    python -m llmusic.report runs/train [more run or multirun dirs ...] [--out report.md]

A run is any directory holding the metrics.json and config.yaml that `llmusic.train` writes. Every
row names the run dir that produced it; paper numbers come from llmusic.eval.paper_numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from llmusic.eval.paper_numbers import PAPER_NUMBERS, numbers_for

F1_KEYS = ("accuracy", "f1_micro", "f1_macro", "f1_weighted")
HITS = ("hits@1", "hits@5", "hits@10", "hits@15", "hits@20", "hits@25")


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
            config = OmegaConf.to_container(OmegaConf.load(config_path)) if config_path.exists() else {}
            runs.append(Run(path.parent, config, json.loads(path.read_text())))
    return runs


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


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


def _completion_rows(runs: list[Run]) -> list[str]:
    head = ("| experiment | run | scoring | queries x candidates | MAP | " + " | ".join(HITS) + " | paper MAP |\n"
            "|---|---|---|---|---|" + "---|" * len(HITS) + "---|")
    rows = [head]
    for run in runs:
        paper = "; ".join(f"{p.value:g} ({p.row})" for p in numbers_for(run.experiment)) or "-"
        for method, r in run.metrics["test"].items():
            hits = " | ".join(f"{r[k]['value']:.3f} <sub>{r[k]['chance']:.3f}</sub>" for k in HITS)
            rows.append(f"| {run.experiment} | `{run.dir}` | {method} | {r['n_queries']} x {r['n_candidates']} | "
                        f"{r['map']['value']:.4f} <sub>chance {r['map']['chance']:.4f}</sub> | {hits} | {paper} |")
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


def render_report(runs: list[Run]) -> str:
    """Markdown: classification and completion tables (values with their chance), per-experiment
    summaries, per-class support, and the paper's numbers with their sources."""
    classification = [r for r in runs if r.is_classification]
    completion = [r for r in runs if not r.is_classification]
    out = ["# Results", "",
           "F1 and accuracy in percent; small print: the label-permutation chance and the majority-class "
           "baseline of the same test set. MAP and Hits@k: small print is chance (H_N/N, k/N).", ""]
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
    args = parser.parse_args(argv)
    runs = collect_runs(*args.roots)
    if not runs:
        parser.error(f"no finished runs (metrics.json) under {', '.join(map(str, args.roots))}")
    text = render_report(runs)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
