"""Collect finished train runs into markdown tables beside their baselines and the paper's numbers.

    python -m llmusic.report runs/train [more run or multirun dirs ...] [--out report.md]
    python -m llmusic.report runs/pipeline/prompt_ablation [--out report.md] [--png chart.png]
    python -m llmusic.report --compare RUN_A RUN_B      # a paired test on the same test items
    python -m llmusic.report --leaderboard GENERATE_RUN [...] [--search runs] [--out leaderboard.md]

A run is any directory holding the metrics.json and config.yaml that `llmusic.train` writes
(llmusic.runs reads them). Every row names the run dir that produced it. Classification scores
stand beside both label-blind baselines (majority and permutation chance) with a 95% bootstrap
interval over songs, the headline (macro-F1 on a skewed test set) in bold, a model below the
majority baseline marked, closed and open scores with the songs and classes each covers. Runs that
differ only by seed get mean and sd. Published numbers (llmusic.eval.paper_numbers) stand only
beside runs of their protocol. A pipeline cell is a directory holding the cell.json that
`llmusic.pipeline` writes: cells get one table (a row per cell: valid rate, cost, each headline
test metric with chance beside it) and a bar chart, above the tables of their student runs.
`--leaderboard`: the roots are generate runs, one row each with their probe and their students
(`llmusic.leaderboard`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from llmusic.eval.paper_numbers import PAPER_NUMBERS, numbers_for
from llmusic.eval.uncertainty import mean_sd
from llmusic.leaderboard import write_leaderboard
from llmusic.runs import FOLDED, Run, collect_runs, compare_runs, group_runs
from llmusic.sweep_report import CELL_FILE, cells_markdown, load_cells, plot_sweep

F1_KEYS = ("accuracy", "f1_micro", "f1_macro", "f1_weighted")
SCORINGS = (("song", "closed"), ("song_open", "open"))  # metrics.json levels and what the report calls them
COMPLETION_METRICS = ("map", "hits@1", "hits@5", "hits@10", "hits@25")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def variant_label(variant: dict) -> str:
    """A run's variant in words: its model, and what differs from the experiment as configured."""
    words = [variant.get("model", "CNN")]
    words += [f"control={variant['control']}"] if variant.get("control", "none") != "none" else []
    words += ["balanced"] if variant.get("balance") else []
    words += [f"protocol={variant['protocol']}"] if variant.get("protocol", "paper") != "paper" else []
    return ", ".join(words)


def _paper(run: Run, short: bool = False) -> str:
    numbers = numbers_for(run.experiment, run.variant["protocol"])
    return "; ".join(f"{p.value:g}" + ("" if short else f" ({p.row})") for p in numbers) or "-"


def _f1_cell(r: dict, key: str) -> str:
    """A score, its interval, whether it is the headline (bold) and below the majority baseline."""
    bold = "**" if r.get("headline") == key else ""
    lo, hi = r.get("interval", {}).get(key, (None, None))
    interval = f" [{_pct(lo)}, {_pct(hi)}]" if lo is not None else ""
    below = " below majority" if key in r.get("below_majority", ()) else ""
    return (f"{bold}{_pct(r['model'][key])}{bold}{interval}{below} "
            f"<sub>majority {_pct(r['majority'][key])}, chance {_pct(r['chance'][key])}</sub>")


def _headline_note(r: dict) -> str:
    if r.get("skewed"):
        return f"macro-F1 (skewed: {_pct(r['majority_share'])}% {r['majority_class']})"
    return "micro-F1" if "skewed" in r else "-"


def _classification_rows(runs: list[Run]) -> list[str]:
    rows = ["| experiment | variant | seed | run | scoring | test songs | micro-F1 [95% CI] | macro-F1 [95% CI] "
            "| headline | paper |", "|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        for level, scoring in SCORINGS:
            r = run.metrics["test"].get(level)
            if r is None:
                continue
            paper = _paper(run) if level == "song" else "-"
            rows.append(f"| {run.experiment} | {variant_label(run.variant)} | {run.metrics.get('seed', '-')} | "
                        f"`{run.dir}` | {scoring} | {r['n']} | {_f1_cell(r, 'f1_micro')} | {_f1_cell(r, 'f1_macro')} | "
                        f"{_headline_note(r)} | {paper} |")
    return rows


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"


def _run_details(run: Run) -> list[str]:
    """Coverage of each score, the test set's meters, the window level and the per-class table."""
    test, data = run.metrics["test"], run.metrics.get("data", {}).get("test", {})
    out = [f"#### {run.experiment} ({variant_label(run.variant)}), `{run.dir}`", ""]
    coverage = data.get("coverage")
    if coverage:
        closed, open_ = coverage["closed"], coverage["open"]
        out.append(f"- closed score: {closed['songs']} test songs of {len(closed['classes'])} classes "
                   f"({', '.join(closed['classes'])})")
        out.append(f"- open score: {open_['songs']} test songs; {open_['unscored_songs']} of them in classes no "
                   f"training label maps to ({', '.join(open_['unscored_classes']) or 'none'}), counted as errors")
    if data.get("meters"):
        out.append(f"- test set meters (songs): {_counts(data['meters']['songs'])}; windows: "
                   f"{_counts(data['meters']['windows'])}")
    w = test["window"]
    out.append(f"- window level ({w['n']} windows): micro-F1 {_pct(w['model']['f1_micro'])} (majority "
               f"{_pct(w['majority']['f1_micro'])}, chance {_pct(w['chance']['f1_micro'])}), macro-F1 "
               f"{_pct(w['model']['f1_macro'])} (majority {_pct(w['majority']['f1_macro'])}, chance "
               f"{_pct(w['chance']['f1_macro'])})")
    out += ["", "| class | support | F1 | precision | recall | chance F1 |", "|---|---|---|---|---|---|"]
    out += [f"| {name} | {c['support']} | {_pct(c['f1'])} | {_pct(c.get('precision', 0))} | "
            f"{_pct(c.get('recall', 0))} | {_pct(c['chance_f1'])} |" for name, c in test["song"]["per_class"].items()]
    return out


def _with_interval(r: dict) -> str:
    """A ranking metric: value, then its 95% bootstrap interval over queries and chance in small print."""
    spread = f"[{r['interval'][0]:.3f}, {r['interval'][1]:.3f}]; " if r.get("interval") else ""
    return f"{r['value']:.3f} <sub>{spread}chance {r['chance']:.3f}</sub>"


def _test_set(run: Run) -> str:
    p = run.metrics.get("data", {}).get("test", {}).get("phrases")
    return f"{p['source'].removesuffix('Phrases')}, {p['phrase_bars']} bars, keys {p['key_normalization']}" if p else "-"


def _completion_rows(runs: list[Run]) -> list[str]:
    """A row per scoring of each run, then its non-learned baselines on the same queries; a model
    scoring's verdict says whether its MAP interval clears chance and the best baseline."""
    head = ("| experiment | run | test set | scoring | queries x candidates | "
            + " | ".join(m.upper() if m == "map" else m.capitalize() for m in COMPLETION_METRICS)
            + " | verdict | paper MAP |\n|" + "---|" * (len(COMPLETION_METRICS) + 7))
    rows = [head]
    for run in runs:
        paper = _paper(run)
        for method, r in run.metrics["test"].items():
            kind, versus = r.get("kind", "model"), r.get("versus")
            verdict = ("non-learned baseline" if kind == "baseline" else "-" if not versus else
                       f"{versus['verdict']} (best baseline {versus['best_baseline']}: {versus['best_baseline_map']:.3f})")
            name = method if kind == "model" else f"*{method}*"
            cells = " | ".join(_with_interval(r[m]) for m in COMPLETION_METRICS)
            rows.append(f"| {run.experiment} | `{run.dir}` | {_test_set(run)} | {name} | {r['n_queries']} x "
                        f"{r['n_candidates']} | {cells} | {verdict} | {paper if kind == 'model' else '-'} |")
    return rows


def _mean_sd(values: list[float]) -> str:
    mean, sd = mean_sd(values)
    return f"{_pct(mean)} ± {_pct(sd)}" if len(values) > 1 else _pct(mean)


def _group_rows(groups: list[list[Run]], over: str) -> list[str]:
    """Mean ± sd over the runs of each group (runs that differ only by `over`), with the mean baselines."""
    rows = [f"| experiment | variant | runs ({over}) | scoring | micro-F1 | macro-F1 | majority micro / macro "
            "| chance micro / macro | paper |", "|---|---|---|---|---|---|---|---|---|"]
    for group in groups:
        first = group[0]
        labels = ",".join(str(r.metrics.get(over, "-")) for r in group)
        if not first.is_classification:
            for method in first.metrics["test"]:
                mean, sd = mean_sd([r.metrics["test"][method]["map"]["value"] for r in group])
                rows.append(f"| {first.experiment} | {variant_label(first.variant)} | {len(group)} ({labels}) | "
                            f"{method} | MAP {mean:.4f} ± {sd:.4f} | - | - | "
                            f"{first.metrics['test'][method]['map']['chance']:.4f} | {_paper(first, short=True)} |")
            continue
        for level, scoring in SCORINGS:
            if level not in first.metrics["test"]:
                continue
            reports = [r.metrics["test"][level] for r in group]
            f1 = {k: _mean_sd([rep["model"][k] for rep in reports]) for k in ("f1_micro", "f1_macro")}
            base = {name: " / ".join(_pct(mean_sd([rep[name][k] for rep in reports])[0]) for k in ("f1_micro", "f1_macro"))
                    for name in ("majority", "chance")}
            paper = _paper(first, short=True) if level == "song" else "-"
            rows.append(f"| {first.experiment} | {variant_label(first.variant)} | {len(group)} ({labels}) | {scoring} | "
                        f"{f1['f1_micro']} | {f1['f1_macro']} | {base['majority']} | {base['chance']} | {paper} |")
    return rows


def compare_markdown(a: Run, b: Run) -> str:
    """`--compare`: the paired tests of llmusic.runs.compare_runs as a table."""
    result = compare_runs(a, b)
    out = [f"# Paired comparison on {result['items']} test items", "",
           f"- A: `{a.dir}` ({a.experiment}, {variant_label(a.variant)}, seed {a.metrics.get('seed')})",
           f"- B: `{b.dir}` ({b.experiment}, {variant_label(b.variant)}, seed {b.metrics.get('seed')})", ""]
    if result["kind"] == "classification":
        out += [f"Songs of the closed score, classes: {', '.join(result['classes'])}.", "",
                "| metric | A | B | paired test | p |", "|---|---|---|---|---|",
                f"| accuracy | {_pct(result['accuracy'][0])} | {_pct(result['accuracy'][1])} | McNemar (per-song "
                f"correctness) | {result['mcnemar_p']:.4g} |",
                f"| accuracy | {_pct(result['accuracy'][0])} | {_pct(result['accuracy'][1])} | permutation (per-song "
                f"correctness) | {result['permutation_p']:.4g} |"]
        out += [f"| {key} | {_pct(result[key][0])} | {_pct(result[key][1])} | swap (per-song predictions) | "
                f"{result[key + '_swap_p']:.4g} |" for key in ("f1_micro", "f1_macro")]
    else:
        out += ["| scoring | MAP A | MAP B | paired test | p |", "|---|---|---|---|---|"]
        out += [f"| {name} | {r['map'][0]:.4f} | {r['map'][1]:.4f} | permutation (per-query reciprocal rank) | "
                f"{r['permutation_p']:.4g} |" for name, r in result["scorings"].items()]
    return "\n".join(out) + "\n"


def _paper_table(runs: list[Run]) -> list[str]:
    """The published numbers that stand beside some run of the report (same experiment and protocol)."""
    shown = {(r.experiment, r.variant["protocol"]) for r in runs}
    rows = ["| compare with | protocol | metric | value | chance (their protocol) | what | source | note |",
            "|---|---|---|---|---|---|---|---|"]
    for p in PAPER_NUMBERS:
        if (p.experiment, p.protocol) in shown:
            chance = "not stated" if p.chance is None else f"{p.chance:g}"
            rows.append(f"| {p.experiment} | {p.protocol} | {p.metric} | {p.value:g} | {chance} | {p.row} | "
                        f"{p.source} | {p.note} |")
    return rows if len(rows) > 2 else []


def render_report(runs: list[Run], cells: Sequence[dict] = ()) -> str:
    """Markdown: the pipeline cells' table (if any), classification and completion tables (values
    beside their baselines), mean and sd over seeds (and over folds), each classification run's
    coverage, test-set meters and per-class table, and the published numbers beside these runs."""
    classification = [r for r in runs if r.is_classification]
    completion = [r for r in runs if not r.is_classification]
    out = ["# Results", "",
           ("F1 and accuracy in percent, with a 95% bootstrap interval over test songs; small print: the "
            "majority-class baseline and the label-permutation chance of the same test set. The headline is "
            "in bold: macro-F1 where the test set is skewed (its largest class holds at least twice the share "
            "it would in a balanced set), else micro-F1. `closed`: the songs of the classes the model predicts; "
            "`open`: every labelled test song, those of classes no training label maps to counted as errors. "
            "MAP and Hits@k: small print is the 95% bootstrap interval over queries and chance (H_N/N, k/N); "
            "*italic* scorings are non-learned baselines on the same queries (llmusic.eval.melody_baselines)."), ""]
    if cells:
        out += ["## Pipeline cells", "",
                ("A row per cell: valid rate of its generate run, songs, requests, cost (USD), then each "
                 "student's headline test metric (as a fraction) followed by its chance value."), "",
                cells_markdown(cells)]
    if classification:
        out += ["## Genre / style classification", "", *_classification_rows(classification), ""]
    if completion:
        out += ["## Melody completion", "", *_completion_rows(completion), ""]
    seeds = [g for g in group_runs(runs) if len(g) > 1]
    if seeds:
        out += ["## Over seeds", "", "Mean ± sd over runs that differ only by seed.", "",
                *_group_rows(seeds, "seed"), ""]
    folds = [g for g in group_runs(runs, ignore=FOLDED) if len({r.metrics.get("fold") for r in g}) > 1]
    if folds:
        out += ["## Over folds", "", "Mean ± sd over the folds (and seeds) of one cross-validated experiment.", "",
                *_group_rows(folds, "fold"), ""]
    if classification:
        out += ["## Per run", ""]
        for run in classification:
            out += [*_run_details(run), ""]
    paper = _paper_table(runs)
    if paper:
        out += ["## Published numbers beside these runs", "", *paper, ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="*", type=Path, help="run dirs, multirun dirs or any dir above them")
    parser.add_argument("--out", type=Path, help="write the markdown here (default: print it)")
    parser.add_argument("--png", type=Path, help="the pipeline cells' bar chart (default: the --out path "
                        "with .png, else sweep_report.png in the first root)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("RUN_A", "RUN_B"),
                        help="a paired test of two runs on the same test items (refused when their test data differ)")
    parser.add_argument("--leaderboard", action="store_true", help="the roots are generate runs: one row each "
                        "(llmusic.leaderboard), with the probes and train runs found under --search")
    parser.add_argument("--search", nargs="*", type=Path, default=[Path("runs")],
                        help="--leaderboard: where train runs and probes of the runs are (default: runs)")
    args = parser.parse_args(argv)
    if args.leaderboard:
        write_leaderboard(args.roots, collect_runs(*args.search), args.search, args.out)
        return
    if args.compare:
        pair = [collect_runs(d) for d in args.compare]
        if any(len(found) != 1 for found in pair):
            parser.error(f"--compare needs two run dirs holding one finished run each: {args.compare}")
        try:
            text = compare_markdown(pair[0][0], pair[1][0])
        except (ValueError, FileNotFoundError) as err:
            parser.error(str(err))
    else:
        if not args.roots:
            parser.error("name run dirs to report on, or --compare RUN_A RUN_B")
        runs = collect_runs(*args.roots)
        cells = [cell for root in args.roots for cell in load_cells(root)]
        if not runs and not cells:
            parser.error(f"no finished runs (metrics.json) or cells ({CELL_FILE}) under "
                         f"{', '.join(map(str, args.roots))}")
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
