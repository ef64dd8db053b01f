"""The leaderboard: one row per generate run, what the LLM wrote and what it knows, by every measure.

    python -m llmusic.report --leaderboard RUN [RUN ...] [--search DIR ...] [--out leaderboard.md]

A row: the run's backend, model, prompt, constraint set and songs (`GenerateRun`), its valid rate;
its genre probe (`python -m llmusic.probe`: genre retrieval with the permutation chance, mean
realism AUC, mean energy distance to the mapped real class, each with its 95% song-bootstrap
interval); and, where students were trained on it (train runs whose `llm_run` is this run), the
genre CNN's song-level macro-F1 beside its label-permutation chance and majority baseline, and the
melody transformer's cosine MAP beside its chance. A probe is found under `<run>/probe/` or under
the search folders (its `llm_run` names the run); train runs under the search folders. Several
train runs of one student (folds, seeds) are averaged and counted.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Sequence
from pathlib import Path

from llmusic.config import resolve_path
from llmusic.probe import PROBE_FILE
from llmusic.run_dir import GenerateRun

COLUMNS = ["run", "backend", "model", "prompt", "constraints", "songs", "valid rate",
           "genre retrieval [95% CI] (chance)", "realism AUC [95% CI]", "distance to mapped class [95% CI]",
           "CNN macro-F1 (chance, majority)", "melody MAP (chance)", "probed against"]
MELODY_SCORING = "cosine"  # the paper's scoring of melody completion


def _same(a: str | Path, b: Path) -> bool:
    return resolve_path(a) == b.resolve()


def find_probes(run: Path, search: Sequence[Path]) -> list[dict]:
    """The genre probes of a run: probe.json files in its own probe folder or under `search`."""
    found = {p.resolve(): p for root in [run / "probe", *search] for p in Path(root).rglob(PROBE_FILE)}
    probes = [json.loads(p.read_text()) for p in sorted(found.values())]
    return [p for p in probes if _same(p["llm_run"], run) and p["label"] == "genre"]


def _interval(value: float | None, pair: list | None, fmt: str) -> str:
    if value is None:
        return "-"
    text = format(value, fmt)
    return text if not pair or None in pair else f"{text} [{format(pair[0], fmt)}, {format(pair[1], fmt)}]"


def _probe_cells(probe: dict | None) -> list[str]:
    if probe is None:
        return ["-", "-", "-"]
    retrieval, realism, mapped = probe["retrieval"], probe["realism"], probe["distance_to_mapped"]
    chance = "-" if retrieval["chance"] is None else format(retrieval["chance"], ".0%")
    return [f"{_interval(retrieval['accuracy'], retrieval['interval'], '.0%')} ({chance}; "
            f"{retrieval['scored_genres']} genres)",
            _interval(realism["mean_auc"], realism["interval"], ".2f"),
            _interval(mapped["mean"], mapped["interval"], ".2f")]


def _real_side(probe: dict) -> str:
    songs = probe["songs"]["real"]
    return (f"{probe['taxonomy']} via {probe['label_map']}: {sum(songs.values())} real songs in "
            f"{len(songs)} classes")


def _student_cells(trained: Sequence) -> list[str]:
    """CNN macro-F1 and melody MAP of the train runs of one generate run (objects with .experiment,
    .is_classification and .metrics, as `llmusic.report.collect_runs` gives)."""
    genre = [r for r in trained if r.is_classification and r.experiment.startswith("genre")]
    melody = [r for r in trained if not r.is_classification and MELODY_SCORING in r.metrics["test"]]
    cells = ["-", "-"]
    if genre:
        song = [r.metrics["test"]["song"] for r in genre]
        cells[0] = (f"{statistics.mean([s['model']['f1_macro'] for s in song]):.3f} ("
                    f"{statistics.mean([s['chance']['f1_macro'] for s in song]):.3f}, "
                    f"{statistics.mean([s['majority']['f1_macro'] for s in song]):.3f}; {len(genre)} run(s), "
                    f"{song[0]['n']} test songs)")
    if melody:
        scored = [r.metrics["test"][MELODY_SCORING] for r in melody]
        value, chance = (statistics.mean([m["map"][k] for m in scored]) for k in ("value", "chance"))
        cells[1] = (f"{value:.4f} ({chance:.4f}; "
                    f"{len(melody)} run(s), {scored[0]['n_queries']} queries)")
    return cells


def _recorded_models(run: GenerateRun) -> str:
    """The models the replies name (a replayed recording's backend names only its file)."""
    models = {a["model"] for r in run.records() for a in r.get("attempts", []) if a.get("model")}
    return ", ".join(sorted(models))


def leaderboard_rows(runs: Sequence[Path], train_runs: Sequence, search: Sequence[Path]) -> list[list[str]]:
    rows = []
    for run_dir in runs:
        run = GenerateRun(resolve_path(run_dir))
        summary, config = run.summary(), run.config
        backend = summary.get("backend", {})
        probes = find_probes(run.dir, search)
        trained = [r for r in train_runs if r.config.get("llm_run") and _same(r.config["llm_run"], run.dir)]
        rows.append([f"`{run_dir}`", str(backend.get("name", config.llm.get("name", "?"))),
                     str(backend.get("model") or _recorded_models(run) or "-"),
                     str(config.prompt.get("name", "?")), str(config.constraints.get("name", "?")),
                     str(summary["songs"]), f"{summary['valid_rate']:.1%}",
                     *_probe_cells(probes[0] if probes else None), *_student_cells(trained),
                     _real_side(probes[0]) if probes else "-"])
    return rows


def leaderboard_markdown(runs: Sequence[Path], train_runs: Sequence, search: Sequence[Path]) -> str:
    rows = leaderboard_rows(runs, train_runs, search)
    return "\n".join(["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS),
                      *("| " + " | ".join(row) + " |" for row in rows)]) + "\n"


def write_leaderboard(runs: Sequence[Path], train_runs: Sequence, search: Sequence[Path], out: Path | None) -> None:
    """The table as markdown, to `out` (and its rows as CSV beside it) or printed."""
    text = leaderboard_markdown(runs, train_runs, search)
    if out is None:
        print(text)
        return
    out.write_text(text)
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        csv.writer(f).writerows([COLUMNS, *leaderboard_rows(runs, train_runs, search)])
