"""`python -m llmusic.pipeline`: one cell end to end on the real configs and the shared real data
(tiny: 24 baseline songs, one epoch of two batches, a few test batches), resuming, the held-out
fallback, and the table over a 2-cell multirun."""

from __future__ import annotations

import csv
import gc
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from rich.console import Console

import llmusic.pipeline as pl
from llmusic.config import REPO_ROOT
from llmusic.eval.paper_numbers import numbers_for
from llmusic.eval.ranking import chance_hits, chance_map
from tests.helpers import PIPELINE_TINY, compose_entry, run_multirun


def compose_pipeline(overrides: list[str]):
    """The tiny pipeline (tests.helpers.PIPELINE_TINY: 24 songs, students of a few batches)."""
    return compose_entry("pipeline", *PIPELINE_TINY, *overrides)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """The cwd of every pipeline call here: generate runs land in <workdir>/runs/generate."""
    return tmp_path_factory.mktemp("pipeline")


@pytest.fixture()
def in_workdir(workdir, monkeypatch) -> Path:
    monkeypatch.chdir(workdir)
    return workdir


@pytest.fixture(scope="module")
def cell(workdir, shared_data) -> tuple[dict, object]:
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        cfg = compose_pipeline([f"out_dir={workdir / 'cell'}"])
        return pl.pipeline(cfg), cfg


def test_cell_generates_trains_and_tests_on_real_data(cell, workdir, shared_data):
    record, cfg = cell
    assert json.loads((workdir / "cell" / "cell.json").read_text()) == record
    gen = record["generate"]
    assert gen["songs"] == 24 and gen["requests"] >= gen["songs"] and 0 < gen["valid_rate"] <= 1
    assert gen["cost_usd"] is None and not gen["reused"]  # the baseline is free, and nothing was there before
    assert Path(gen["out_dir"]) == workdir / "runs/generate/baseline/paper-paper-paper-clamp-polyphonic-n2-seed0"
    assert len((Path(gen["out_dir"]) / "manifest.jsonl").read_text().splitlines()) == 24
    assert record["choices"] == {"taxonomy": "paper", "prompt": "paper", "constraints": "paper",
                                 "render": "polyphonic", "llm": "baseline", "parse.policy": "clamp"}
    assert gen["setting"]["official"] == {"prompt": True, "parse": False, "render": False}
    assert record["config"] == pl.cell_identity(cfg)

    assert set(record["students"]) == {"genre", "style", "melody"}
    for name, student in record["students"].items():
        assert student["test_data"] == "real"
        assert set(student["headline"]) <= set(student["test"])
        for metric, result in student["test"].items():
            assert math.isfinite(result["value"]) and math.isfinite(result["chance"]), (name, metric)
        (monitor, best), = student["validation"].items()
        assert monitor == "val/loss" and math.isfinite(best)
        # The sub-run is conf/train.yaml with the student's experiment, on this cell's songs.
        run = OmegaConf.load(Path(student["run_dir"]) / "config.yaml")
        assert run.llm_run == gen["out_dir"] and run.name == name
        assert run.constraints == OmegaConf.to_container(cfg.constraints, resolve=True)
        assert run.trainer.max_epochs == 1 and run.seed == cfg.seed
        assert json.loads((Path(student["run_dir"]) / "metrics.json").read_text())["name"] == name

    melody = record["students"]["melody"]["test"]
    assert melody["cosine/map"]["chance"] == pytest.approx(chance_map(50))
    assert melody["likelihood/hits@10"]["chance"] == pytest.approx(chance_hits(10, 50))
    paper = numbers_for("style_llm_to_masd")[0]  # the paper's own style F1, listed in percent
    assert record["students"]["style"]["paper"]["song/f1_micro"]["value"] == pytest.approx(paper.value / 100)
    genre = record["students"]["genre"]
    assert {"song/f1_micro", "song/f1_macro", "window/accuracy"} <= set(genre["test"])
    assert 0 < genre["test"]["song/f1_micro"]["chance"] < 1
    assert genre["data"]["train"]["songs"] + genre["data"]["val"]["songs"] == 24  # every prompt genre maps
    lmd = OmegaConf.load(Path(genre["run_dir"]) / "config.yaml").data.test
    assert [Path(root).resolve() for root in lmd.root] == [shared_data / "lmd_subset" / "midi",
                                                          shared_data / "lmd_extra" / "midi"]
    # Every classification score stands beside both baselines, with its interval; the open score too.
    for metric in ("song/f1_micro", "song/f1_macro", "song_open/f1_micro", "song_open/f1_macro"):
        result = genre["test"][metric]
        assert 0 <= result["majority"] <= 1 and 0 <= result["chance"] <= 1
        assert result["interval"][0] <= result["value"] <= result["interval"][1]
    assert genre["test"]["song/f1_macro"]["headline"] and genre["test"]["song/f1_macro"]["skew"].endswith("Pop_Rock")


def test_results_table_shows_both_baselines_and_the_headline(cell):
    record, _ = cell
    console = Console(record=True, width=300)
    pl.print_cell(record, console)
    text = console.export_text()
    assert all(column in text for column in ("this run", "95% CI", "majority", "chance", "best non-learned", "paper",
                                             "note"))
    rows = [line for line in text.splitlines() if "/f1_" in line]
    assert len(rows) == 8  # genre and style: micro- and macro-F1, closed and open, each with both baselines
    assert "headline (skewed:" in text  # the 24-song run is tested on the real, skewed TOP-MAGD files


def test_ranking_rows_stand_beside_the_best_non_learned_baseline_of_their_metric():
    test = {"cosine/map": {"value": 0.1, "chance": 0.09}, "cosine/mean_rank": {"value": 20.0, "chance": 25.5},
            "rhythm_cosine/map": {"value": 0.5, "chance": 0.09}, "combined_z/map": {"value": 0.475, "chance": 0.09},
            "combined_z/hits@1": {"value": 0.34, "chance": 0.02},
            "combined_z/mean_rank": {"value": 5.0, "chance": 25.5}}
    assert pl.best_non_learned(test, "cosine/map") == "0.500 (rhythm_cosine)"
    assert pl.best_non_learned(test, "cosine/hits@1") == "0.340 (combined_z)"
    assert pl.best_non_learned(test, "cosine/mean_rank") == "-"  # lower is better: no "best" by max
    assert pl.best_non_learned(test, "song/f1_micro") == "-"  # classification: the feature student is its own row


def test_a_finished_students_data_and_model_are_freed(in_workdir):
    """Students run one after another in one process (and a sweep's cells too): what a student built
    must not outlive it, or a table's process grows by every student's data. With the garbage
    collector off, only what the pipeline frees itself is freed."""
    import lightning as L

    cfg = compose_pipeline([f"out_dir={in_workdir / 'freed'}", "students.style=null", "students.melody=null"])
    gc.collect()
    gc.disable()
    try:
        pl.pipeline(cfg)
        left = [type(o).__name__ for o in gc.get_objects() if isinstance(o, (L.LightningModule, L.LightningDataModule))]
    finally:
        gc.enable()
    assert not left


def test_rerun_of_a_finished_cell_does_no_work(cell, in_workdir, monkeypatch):
    record, cfg = cell
    path = in_workdir / "cell" / "cell.json"
    stamp = path.stat().st_mtime_ns

    def forbidden(_cfg):
        raise AssertionError("a finished cell was run again")

    monkeypatch.setattr(pl, "generate", forbidden)
    monkeypatch.setattr(pl, "train", forbidden)
    assert pl.pipeline(cfg) == record
    assert path.stat().st_mtime_ns == stamp


def test_a_cell_json_cut_short_is_a_cell_to_finish_again_from_its_sub_runs(cell, in_workdir, monkeypatch, capsys):
    """A cell.json cut short used to raise a JSONDecodeError that named no file."""
    record, cfg = cell
    path = in_workdir / "cell" / "cell.json"
    path.write_text(path.read_text()[:100])
    monkeypatch.setattr(pl, "generate", lambda _cfg: pytest.fail("the generate run was finished"))
    monkeypatch.setattr(pl, "train", lambda _cfg: pytest.fail("the students were finished"))
    again = pl.pipeline(cfg)
    assert f"warning: {path} is damaged or cut short (JSONDecodeError" in capsys.readouterr().out
    assert again["generate"]["reused"] and all(s["reused"] for s in again["students"].values())
    assert {k: s["test"] for k, s in again["students"].items()} == {k: s["test"] for k, s in record["students"].items()}
    assert json.loads(path.read_text()) == again


def test_changed_student_reruns_only_that_student(cell, in_workdir, monkeypatch):
    """A changed config reruns the cell, but finished sub-runs with unchanged configs are reused."""
    trained, real_train = [], pl.train

    def counting_train(run_cfg):
        trained.append(run_cfg.name)
        return real_train(run_cfg)

    monkeypatch.setattr(pl, "train", counting_train)
    monkeypatch.setattr(pl, "generate", lambda _cfg: pytest.fail("the generate run was finished"))
    cfg = compose_pipeline([f"out_dir={in_workdir / 'cell'}", "students.genre.overrides=['model.net.dropout=0.1']"])
    record = pl.pipeline(cfg)
    assert trained == ["genre"]
    assert record["generate"]["reused"] and record["students"]["melody"]["reused"]
    assert not record["students"]["genre"]["reused"]
    assert OmegaConf.load(Path(record["students"]["genre"]["run_dir"]) / "config.yaml").model.net.dropout == 0.1


def test_missing_real_data_tests_on_held_out_generated_songs(cell, in_workdir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMUSIC_SHARED_DATA", str(tmp_path / "nowhere"))
    # 3 test songs of 24, a pair each, leave 2 negatives (the other songs' continuations) per melody
    # query: rank 3 candidates, not 50.
    cfg = compose_pipeline([f"out_dir={tmp_path / 'cell'}", "students.style=null",
                            "students.melody.overrides=['data.test.pairs.n_candidates=3']"])
    record = pl.pipeline(cfg)
    printed = capsys.readouterr().out
    assert "TOP-MAGD test files not found" in printed and "POP909 not found" in printed
    assert "testing on held-out generated songs" in printed
    genre, melody = record["students"]["genre"], record["students"]["melody"]
    assert genre["test_data"] == melody["test_data"] == "generated_holdout"
    run = OmegaConf.load(Path(genre["run_dir"]) / "config.yaml")
    assert run.data.test.out_dir == run.data.train.out_dir == record["generate"]["out_dir"]
    assert (run.data.train.split, run.data.test.split) == ("train", "test")
    assert genre["data"]["test"]["songs"] + genre["data"]["train"]["songs"] + genre["data"]["val"]["songs"] == 24
    assert melody["test"]["cosine/map"]["chance"] == pytest.approx(chance_map(3))
    assert record["generate"]["reused"]


def test_objective_is_the_validation_score(cell):
    record, _ = cell
    objective = OmegaConf.create({"student": "genre", "metric": "val/loss"})
    assert pl.objective_value(record, objective) == record["students"]["genre"]["validation"]["val/loss"]


@pytest.mark.parametrize("overrides", ["prompt=genre_only", "a" * 300, "llm.model_path=/models/x" + "y" * 200])
def test_cell_folder_names_are_short_distinct_and_flat(overrides):
    name = pl.cell_dirname(overrides)
    assert len(name) <= pl.MAX_DIRNAME and os.sep not in name
    assert name == overrides or pl.cell_dirname(overrides + "z") != name


@pytest.mark.parametrize("sweep,key,values", [
    ("prompt_ablation", "prompt", "genre_only,genre_style,paper_structured,paper"),
    ("constraint_ablation", "constraints", "paper,relaxed,paper_consistent"),
    ("backend_comparison", "llm", "baseline,openai,transformers"),
    ("openai_models", "llm.model", "gpt-4o,gpt-4o-mini"),
    ("official_vs_default", "parse.policy", "clamp,official"),
    ("official_vs_default", "render", "polyphonic,official"),
])
def test_saved_sweeps_compose(sweep, key, values, compose):
    cfg = compose("pipeline", f"sweep={sweep}", hydra=True)
    assert cfg.hydra.sweeper.params[key] == values
    assert cfg.sweep_name == sweep
    for value in values.split(","):  # every swept option is a real config that generate accepts
        cell = compose("pipeline", f"sweep={sweep}", f"{key}={value}")
        instantiate(cell.prompt).check(instantiate(cell.constraints))  # generate's start-up check


@pytest.mark.parametrize("preset, size, scale, mode", [
    ([], 4, "small", "clamp-polyphonic"),  # the demo
    (["preset=paper"], 50, "paper", "clamp-polyphonic"),
    (["preset=official"], 4, "small", "official-official"),
    (["preset=[paper,official]"], 50, "paper", "official-official"),
    (["+preset=official", "render=polyphonic"], 4, "small", "official-polyphonic"),  # a stage back to the default
])
def test_presets_combine_a_size_and_the_official_mode(preset, size, scale, mode, compose):
    cfg = compose("pipeline", *preset)
    assert (cfg.n_per_combo, cfg.scale.name, f"{cfg.parse.policy}-{cfg.render.name}") == (size, scale, mode)
    gen = pl.generate_config(cfg)
    assert (gen.parse.policy, gen.render.name, gen.n_per_combo) == (cfg.parse.policy, cfg.render.name, size)
    assert gen.out_dir.endswith(f"/paper-paper-paper-{mode}-n{size}-seed0")
    assert (cfg.prompt.name, cfg.constraints.name) == ("paper", "paper")


def test_an_official_cell_trains_on_the_official_writers_files(workdir, shared_data, monkeypatch):
    monkeypatch.chdir(workdir)
    cfg = compose_pipeline(["preset=official", f"out_dir={workdir / 'official_cell'}", "students.style=null",
                            "students.melody=null"])
    record = pl.pipeline(cfg)
    gen = record["generate"]
    assert gen["setting"]["official_mode"] and gen["valid"] == 24  # the baseline's replies are strict JSON
    assert Path(gen["out_dir"]).name == "paper-paper-paper-official-official-n2-seed0"
    assert record["choices"]["render"] == "official" and record["choices"]["parse.policy"] == "official"
    genre = record["students"]["genre"]
    assert genre["test_data"] == "real" and genre["data"]["train"]["songs"] + genre["data"]["val"]["songs"] == 24


def test_multirun_gives_a_table_row_per_cell_and_resumes(workdir, shared_data):
    sweep_dir = workdir / "sweep"
    run_multirun(workdir, sweep_dir, "prompt=genre_only,paper")
    cells = sorted(sweep_dir.glob("*/cell.json"))
    assert len(cells) == 2 and "prompt=genre_only" in cells[0].parent.name and "prompt=paper" in cells[1].parent.name
    stamps = [p.stat().st_mtime_ns for p in cells]

    with open(sweep_dir / "sweep_report.csv") as f:
        header, *rows = list(csv.reader(f))
    assert [r[0] for r in rows] == ["prompt=genre_only", "prompt=paper"]
    assert header[:5] == ["cell", "valid_rate", "songs", "requests", "cost_usd"]
    for metric in ("genre song/f1_micro", "genre song/f1_macro"):
        chance = header.index(f"{metric} chance")
        assert header[chance - 1] == metric and header[chance + 1] == f"{metric} majority"
        assert all(0 < float(r[chance]) < 1 and 0 < float(r[chance + 1]) < 1 for r in rows)
    assert (sweep_dir / "sweep_report.md").read_text().count("\n| prompt=") == 2
    assert (sweep_dir / "sweep_report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    out = workdir / "report.md"  # the same table through the report CLI, above the student runs' tables
    subprocess.run([sys.executable, "-m", "llmusic.report", str(sweep_dir), "--out", str(out)], cwd=REPO_ROOT, check=True)
    report = out.read_text()
    assert "## Pipeline cells" in report and (sweep_dir / "sweep_report.md").read_text() in report
    assert "## Genre / style classification" in report
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    again = run_multirun(workdir, sweep_dir, "prompt=genre_only,paper")  # a restart: nothing left to do
    assert again.stdout.count("finished with this config, skipped") == 2
    assert [p.stat().st_mtime_ns for p in cells] == stamps
