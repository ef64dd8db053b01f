"""The paper end to end, one cell at a time: `python -m llmusic.pipeline [group=option ...]`.

A cell is one generation config (taxonomy, prompt, constraints, render, llm and their keys, the
parse policy) and the students trained on its songs. `pipeline(cfg)`:
  1. composes conf/generate.yaml with the cell's generation groups and calls `generate(cfg)`, or
     reuses a finished run with the same config (paid replies come from the reply cache anyway);
  2. for every student in `cfg.students`, composes conf/train.yaml with its experiment, the
     run's out_dir as `llm_run` and the cell's constraint set, and calls `train(cfg)`: tested on
     the real data when it is there, else on held-out generated songs (and says how to get it);
  3. writes `<out_dir>/cell.json`: the overrides, the generate run's setting (official or not),
     valid rate, requests, cost, every test metric beside its chance value, the best validation
     score and the sub-runs' paths.
A cell whose cell.json holds the same config is skipped, so a stopped sweep (-m) resumes where
it stopped; after a sweep `SweepReport` writes one table row per cell (sweep_report.md/.csv/.png).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from llmusic.config import compose_config, finished_with, resolve_path, user_errors_exit
from llmusic.eval.melody_baselines import BASELINES
from llmusic.eval.paper_numbers import numbers_for
from llmusic.files import DamagedFile, read_json, write_json_atomic
from llmusic.generate import generate
from llmusic.sweep_report import CELL_FILE, fmt_cell, write_sweep_report
from llmusic.run_dir import GenerateRun
from llmusic.train import train

GENERATION_GROUPS = ("taxonomy", "prompt", "constraints", "render", "llm")
GENERATION_KEYS = (*GENERATION_GROUPS, "parse")  # what a cell hands its generate run
MAX_DIRNAME = 120  # characters of a cell folder's name; longer override lists are cut and hashed


def cell_dirname(overrides: str) -> str:
    """A sweep cell's folder name: its override_dirname, slashes replaced, cut and hashed when long."""
    name = overrides.replace(os.sep, "_") or "default"
    if len(name) <= MAX_DIRNAME:
        return name
    return f"{name[:MAX_DIRNAME - 13]}-{hashlib.sha1(name.encode()).hexdigest()[:12]}"


OmegaConf.register_new_resolver("llmusic.cell_dir", cell_dirname, replace=True)


# --- composing the sub-configs ---------------------------------------------------------------------

def generate_config(cfg: DictConfig) -> DictConfig:
    """conf/generate.yaml with the cell's generation groups (already composed, with their keys) and
    its parse policy."""
    gen = compose_config("generate", [f"n_per_combo={cfg.n_per_combo}", f"seed={cfg.seed}",
                                      f"progress={cfg.progress}", *cfg.generate_overrides,
                                      "wait_for_lock=true"])  # cells sharing a run or a cache take turns
    for key in GENERATION_KEYS:
        gen[key] = cfg[key]
    gen.out_dir = str(Path(gen.out_dir).resolve())  # the data sets resolve relative paths from the repo
    return gen


def train_config(cfg: DictConfig, name: str, overrides: Sequence[str], llm_run: Path, out_dir: Path) -> DictConfig:
    """conf/train.yaml for one student of the cell; its rolls span the cell's constraint set."""
    run = compose_config("train", [f"scale={cfg.scale.name}", f"seed={cfg.seed}", *overrides])
    run.constraints = cfg.constraints
    run.llm_run, run.name, run.paths.output_dir, run.threads = str(llm_run), name, str(out_dir), cfg.threads
    return run


# --- the two stages -------------------------------------------------------------------------------

def run_generation(cfg: DictConfig) -> dict:
    """Generate the cell's songs, or reuse a finished run of the same config. Returns the record
    cell.json keeps: out_dir, whether it was reused, and the summary's rates, requests and cost."""
    gen = generate_config(cfg)
    run = GenerateRun(gen.out_dir)
    start = time.perf_counter()
    with run.locked():  # parallel cells sharing the run make it once
        reused = run.finished_with(gen, ignore=("progress", "wait_for_lock"))
        summary = run.summary() if reused else generate(gen)
    keys = ("setting", "songs", "valid", "valid_rate", "requests", "attempts", "tokens", "cost_usd", "is_llm", "backend")
    return {"out_dir": str(run.dir), "reused": reused, "elapsed_s": round(time.perf_counter() - start, 2),
            **{k: summary[k] for k in keys}}


def run_student(cfg: DictConfig, name: str, spec: DictConfig, llm_run: Path, cell_dir: Path) -> dict:
    """Train and test one student on the cell's songs (or reuse its finished run of the same config)."""
    out_dir = cell_dir / "train" / name
    overrides = [*cfg.train_overrides, *spec.overrides]
    run = train_config(cfg, name, [f"experiment={spec.experiment}", *overrides], llm_run, out_dir)
    named = [OmegaConf.select(run, key) for key in spec.real_data]  # a path or a list of paths each
    real_data = [resolve_path(p) for value in named for p in (value if OmegaConf.is_list(value) else [value])]
    missing = [str(path) for path in real_data if not path.exists()]
    if missing:
        print(f"[{name}] {spec.real_data_hint}\n[{name}] missing: {', '.join(missing)}: "
              f"testing on held-out generated songs instead (experiment={spec.holdout})")
        run = train_config(cfg, name, [f"experiment={spec.holdout}", *overrides], llm_run, out_dir)
    start = time.perf_counter()
    reused = finished_with(out_dir / "config.yaml", out_dir / "metrics.json", run)
    metrics = read_json(out_dir / "metrics.json", "delete it to train this student again") if reused else train(run)
    if not metrics:  # a DDP worker: rank 0 tests and reports
        return {}
    return {
        "experiment": spec.experiment,
        "run_dir": str(out_dir),
        "reused": reused,
        "elapsed_s": round(time.perf_counter() - start, 2),
        "test_data": "generated_holdout" if missing else "real",
        "data": metrics["data"],
        "headline": list(spec.headline),
        "paper": published_numbers(spec.experiment, spec.headline),
        "test": flat_test_metrics(metrics["test"]),
        "validation": best_validation(out_dir, metrics),
    }


def flat_test_metrics(test: dict) -> dict[str, dict]:
    """metrics.json's `test` section -> {"<level>/<metric>": {"value", "chance"[, "majority", ...]}}.

    Classification reports keep parallel model / chance / majority score dicts per level (window,
    song, song_open), a bootstrap interval per score (song levels), which score is the headline and
    which fall below the majority baseline; ranking reports keep a value, a chance and an interval
    per metric and method (cosine, likelihood, ..., and the non-learned baselines); a scoring's
    `versus` verdict stays in metrics.json.
    """
    flat = {}
    for level, report in test.items():
        if "model" in report:
            for key, value in report["model"].items():
                flat[f"{level}/{key}"] = {
                    "value": value, "chance": report["chance"][key], "majority": report["majority"][key],
                    "interval": report.get("interval", {}).get(key), "headline": report.get("headline") == key,
                    "below_majority": key in report.get("below_majority", ()),
                    "skew": f"{100 * report['majority_share']:.0f}% {report['majority_class']}"
                    if report.get("skewed") else None}
        else:
            flat.update({f"{level}/{key}": dict(v) for key, v in report.items() if isinstance(v, dict) and "value" in v})
    return flat


def published_numbers(experiment: str, headline: Sequence[str]) -> dict[str, dict]:
    """The published number each headline metric stands beside (llmusic.eval.paper_numbers: the
    first listed for the experiment and metric), as a fraction like ours, with its row and source."""
    found = {}
    for metric in headline:
        for number in numbers_for(experiment):
            if metric.rsplit("/", 1)[-1] == number.metric:
                scale = 100 if number.metric.startswith("f1") else 1  # F1 is listed in percent
                found[metric] = {"value": number.value / scale, "row": number.row, "source": number.source}
                break
    return found


def best_validation(run_dir: Path, metrics: dict) -> dict[str, float]:
    """The best monitored validation score of a train run ({"val/loss": ...}), read from its
    checkpoint's ModelCheckpoint state: what a hyperparameter search may optimise."""
    if not metrics.get("checkpoint"):
        return {}
    state = torch.load(run_dir / metrics["checkpoint"], map_location="cpu", weights_only=True)["callbacks"]
    for key, callback in state.items():
        if key.startswith("ModelCheckpoint") and callback.get("best_model_score") is not None:
            return {callback["monitor"]: float(callback["best_model_score"])}
    return {}


# --- the cell -------------------------------------------------------------------------------------

def cell_identity(cfg: DictConfig) -> dict:
    """The cell's config as cell.json keeps it and a rerun compares it: unresolved (out_dir
    names where, not what), in its JSON form (JSON turns integer keys into strings)."""
    config = OmegaConf.to_container(cfg, resolve=False)
    config.pop("out_dir")
    return json.loads(json.dumps(config))


def pipeline(cfg: DictConfig) -> dict:
    """Run one cell (see the module docstring) and return its cell.json record."""
    cell_dir = Path(cfg.out_dir).resolve()
    cell_path = cell_dir / CELL_FILE
    identity = cell_identity(cfg)
    if cell_path.exists():
        try:
            done = read_json(cell_path)
        except DamagedFile as damaged:  # a cell.json that does not read is a cell that did not finish
            done = None
            print(f"warning: {damaged}; running the cell again")
        if isinstance(done, dict) and done.get("config") == identity:
            print(f"{cell_path}: finished with this config, skipped")
            print_cell(done)
            return done
        if done is not None:
            print(f"{cell_path}: finished with another config, running the cell again")
    start = time.perf_counter()
    generation = run_generation(cfg)
    students = {name: run_student(cfg, name, spec, Path(generation["out_dir"]), cell_dir)
                for name, spec in cfg.students.items() if spec is not None}
    if not all(students.values()):
        return {}
    hydra_job = HydraConfig.get() if HydraConfig.initialized() else None
    cell = {
        "overrides": list(hydra_job.overrides.task) if hydra_job else [],
        "choices": {**{group: cfg[group].name for group in GENERATION_GROUPS}, "parse.policy": cfg.parse.policy},
        "generate": generation,
        "students": students,
        "elapsed_s": round(time.perf_counter() - start, 2),
        "config": identity,
    }
    cell_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(cell_path, cell)  # cell.json exists, whole, only for a finished cell
    print_cell(cell)
    return cell


def objective_value(cell: dict, objective: DictConfig) -> float:
    """The number a sweeper optimises: a student's best validation score (never a test metric)."""
    return cell["students"][objective.student]["validation"][objective.metric]


def print_cell(cell: dict, console: Console | None = None) -> None:
    """The cell's results: every headline test metric beside its baselines and the paper's number."""
    console = console or Console(width=None if sys.stdout.isatty() else 150)  # logs: no 80-column wrap
    gen = cell["generate"]
    cost = "n/a" if gen["cost_usd"] is None else f"${gen['cost_usd']:.2f}"
    table = Table(title=f"{' '.join(f'{k}={v}' for k, v in cell['choices'].items())}: "
                        f"{gen['songs']} songs, valid {gen['valid_rate']:.1%}, {gen['requests']} requests, cost {cost}")
    numeric = ("majority", "chance", "best non-learned", "paper")
    for column in ("student", "test data", "metric", "this run [95% CI]", *numeric, "note"):
        table.add_column(column, justify="right" if column in numeric else "left")
    for name, student in cell["students"].items():
        for metric in student["headline"]:
            result = student["test"].get(metric)
            if result is None:  # e.g. an open score where the test set has no unscored class
                continue
            paper = student["paper"].get(metric, {})
            interval = result.get("interval")
            value = fmt_cell(result["value"]) + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")
            table.add_row(name, student["test_data"], metric, value, fmt_cell(result.get("majority")),
                          fmt_cell(result["chance"]), best_non_learned(student["test"], metric),
                          fmt_cell(paper.get("value")), result_note(result))
    console.print(table)
    rows = {p["row"] for s in cell["students"].values() for p in s["paper"].values()}
    if rows:
        console.print(f"paper: {'; '.join(sorted(rows))} (llmusic.eval.paper_numbers has the sources)")
    if any(s["test_data"] != "real" for s in cell["students"].values()):
        console.print("held-out generated songs stand in for missing real data: see the hints above and docs/data.md")


def best_non_learned(test: dict[str, dict], metric: str) -> str:
    """The best non-learned ranking baseline (llmusic.eval.melody_baselines) on the same queries as a
    ranking metric ("cosine/map" -> the highest "<baseline>/map"), with its name; "-" where none ran."""
    name = metric.rsplit("/", 1)[-1]
    scores = {test[f"{b}/{name}"]["value"]: b for b in BASELINES if f"{b}/{name}" in test and name != "mean_rank"}
    return f"{fmt_cell(max(scores))} ({scores[max(scores)]})" if scores else "-"


def result_note(result: dict) -> str:
    """What a reader must know about a score: headline on a skewed test set, below the majority baseline."""
    notes = []
    if result.get("headline"):
        notes.append(f"headline (skewed: {result['skew']})" if result.get("skew") else "headline")
    if result.get("below_majority"):
        notes.append("below majority")
    return "; ".join(notes)


class SweepReport(Callback):
    """Hydra callback: after a sweep, sweep_report.md / .csv / .png over every cell in its folder."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        root = Path(config.hydra.sweep.dir)
        if not any(root.rglob(CELL_FILE)):
            print(f"no finished cell under {root}: no sweep report")
            return
        paths = write_sweep_report(root)
        print(paths["md"].read_text())
        print(f"sweep report: {', '.join(str(p) for p in paths.values())}")


@hydra.main(version_base="1.3", config_path="../conf", config_name="pipeline")
def main(cfg: DictConfig) -> float | None:
    with user_errors_exit():
        cell = pipeline(cfg)
    return objective_value(cell, cfg.objective) if cfg.objective and cell else None


if __name__ == "__main__":
    main()
