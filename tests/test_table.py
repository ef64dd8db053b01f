"""`python -m llmusic.table`: a table built from its config through the pipeline (tiny: 24 baseline
songs, one genre student of two batches, tested on the real TOP-MAGD files), reused on a second
build, and re-run from its saved configs alone: today's defaults changed in between, the rerun gets
the same numbers and the same logits."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

import llmusic.config
import llmusic.table as tb
from llmusic.table_numbers import cell_numbers, differences
from llmusic.table_numbers import test_items as size_of_test_set
from llmusic.table_plot import plot_table
from llmusic.table_rerun import moved, rerun_table
from tests.helpers import PIPELINE_TINY

TABLES = sorted(p.stem for p in (llmusic.config.CONF_DIR / "table").glob("*.yaml"))
METRICS = ["song/f1_micro", "song/f1_macro", "window/accuracy"]


def tiny_table():
    """conf/table/paper_genre.yaml cut to one seed, one cell training the genre student only."""
    table = tb.table_config("paper_genre")
    table.seeds = [0]
    table.cells = {"llm_midi": ["students.style=null", "students.melody=null"]}
    table.rows = {"genre": METRICS}
    return table


@pytest.fixture(scope="module")
def built(tmp_path_factory, shared_data) -> tuple[Path, dict]:
    workdir = tmp_path_factory.mktemp("table")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)  # the cells' generate runs land in <workdir>/runs/generate
        out = workdir / "tables" / "tiny"
        return out, tb.build_table("tiny", tiny_table(), PIPELINE_TINY, out)


@pytest.mark.parametrize("name", TABLES)
def test_every_table_composes_and_its_cells_train_its_rows(name, compose):
    table = tb.table_config(name)
    assert table.title and table.seeds and 0 <= table.tolerance
    for cell, overrides in table.cells.items():
        cfg = compose("pipeline", *overrides)
        instantiate(cfg.prompt).check(instantiate(cfg.constraints))  # generate would not refuse the cell
        students = cfg.students
        trained = {s for s, spec in students.items() if spec is not None}
        assert set(table.rows) <= trained, (cell, set(table.rows) - trained)
    assert set(table.paper) <= set(table.rows)
    assert {"paper_style", "paper_genre", "paper_melody_completion", "prompt_ablation", "constraint_ablation"} <= \
        set(TABLES)


def test_table_files_and_manifest(built):
    out, manifest = built
    cell = json.loads((out / "cells/llm_midi/seed0/cell.json").read_text())
    assert manifest["table"] == "tiny" and manifest["overrides"] == PIPELINE_TINY
    assert len(manifest["code"]["commit"]) == 40 and isinstance(manifest["code"]["dirty"], bool)
    assert manifest["packages"]["torch"] and manifest["packages"]["hydra-core"]
    (entry,) = manifest["cells"]
    assert (entry["cell"], entry["seed"]) == ("llm_midi", 0) and (out / entry["cell_record"]).is_file()
    assert entry["code"] == manifest["code"]  # launched by this build: the same commit and dirty flag
    assert entry["generate"]["config"]["n_per_combo"] == 2
    assert entry["generate"]["out_dir"] == cell["generate"]["out_dir"]
    assert Path(entry["generate"]["saved_config"]).is_file()
    genre = entry["students"]["genre"]
    saved = OmegaConf.load(out / genre["config"])
    assert saved.seed == 0 and saved.llm_run == cell["generate"]["out_dir"] and saved.trainer.max_epochs == 1
    assert json.loads((out / genre["metrics"]).read_text())["name"] == "genre"
    # Every number is the cell's own, beside its baselines and test-set size; table.csv holds the same.
    assert [n["metric"] for n in manifest["numbers"]] == METRICS
    for number in manifest["numbers"]:
        score = cell["students"]["genre"]["test"][number["metric"]]
        keys = ("value", "chance", "majority")
        assert [number[k] for k in keys] == [score[k] for k in keys]
        assert number["test_data"] == "real"
        assert number["test_items"] == cell["students"]["genre"]["data"]["test"]["songs"] > 0
        assert number["valid_rate"] == cell["generate"]["valid_rate"]
    with open(out / "table.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["metric"], float(r["value"])) for r in rows] == [(n["metric"], n["value"]) for n in manifest["numbers"]]
    md = (out / "table.md").read_text()
    assert md.startswith("# Genre:") and md.count("\n| llm_midi | genre |") == len(METRICS)
    assert "Not in any cell's test record" not in md  # every asked metric was measured
    assert (out / "table.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_second_build_reuses_every_cell(built, monkeypatch):
    out, manifest = built
    stamp = (out / "cells/llm_midi/seed0/cell.json").stat().st_mtime_ns

    def launch(*args):
        raise AssertionError("a finished cell was launched again")

    monkeypatch.setattr(tb, "run_cells", launch)
    monkeypatch.chdir(out.parents[1])
    again = tb.build_table("tiny", tiny_table(), PIPELINE_TINY, out)
    assert again["numbers"] == manifest["numbers"] and again["cells"] == manifest["cells"]
    assert (out / "cells/llm_midi/seed0/cell.json").stat().st_mtime_ns == stamp


def test_rerun_follows_the_saved_configs_not_todays_defaults(built, tmp_path, monkeypatch):
    out, manifest = built
    # Today's defaults change: another batch size at scale=small (conf/scale_train/small.yaml) and
    # another seed in conf/pipeline.yaml. A rerun composed from conf/ would train differently.
    conf = tmp_path / "conf"
    shutil.copytree(llmusic.config.CONF_DIR, conf)
    small = conf / "scale_train" / "small.yaml"
    assert small.read_text().endswith("  batch_size: 32\n")
    small.write_text(small.read_text().replace("  batch_size: 32\n", "  batch_size: 8\n"))
    (conf / "pipeline.yaml").write_text((conf / "pipeline.yaml").read_text().replace("\nseed: 0", "\nseed: 7"))
    monkeypatch.setattr(llmusic.config, "CONF_DIR", conf)
    assert llmusic.config.compose_config("train", ["scale=small"]).data.batch_size == 8  # the change took

    found = rerun_table(json.loads((out / tb.MANIFEST).read_text()), out)
    assert found and not any(d["flagged"] for d in found), [d for d in found if d["flagged"]]
    assert {d["field"] for d in found} >= {"value", "majority", "chance", "test_items", "valid_rate"}
    new_dir = out / "rerun/llm_midi/seed0"
    new = OmegaConf.load(new_dir / "train/genre/config.yaml")
    assert new.data.batch_size == 32 and new.seed == 0 and new.llm_run == str(new_dir / "generate")
    assert new.paths.output_dir == str(new_dir / "train/genre")
    old_run = Path(manifest["cells"][0]["students"]["genre"]["metrics"]).parent
    with np.load(out / old_run / "predictions.npz") as a, np.load(new_dir / "train/genre/predictions.npz") as b:
        assert np.array_equal(a["song_id"], b["song_id"]) and np.array_equal(a["logits"], b["logits"])
    assert json.loads((out / "rerun/rerun.json").read_text())["differences"] == found
    assert "| no |" in (out / "rerun/rerun.md").read_text()


def test_differences_flag_what_moved_beyond_the_tolerance():
    key = {"cell": "c", "seed": 0, "student": "s", "test_data": "real"}
    old = [{**key, "metric": "m", "value": 0.5, "lo": 0.4, "hi": 0.6, "majority": 0.3, "chance": 0.2,
            "test_items": 10, "valid_rate": 1.0},
           {**key, "metric": "gone", "value": 0.1, "lo": None, "hi": None, "majority": None, "chance": 0.1,
            "test_items": 10, "valid_rate": 1.0}]
    new = [{**old[0], "value": 0.5 + 1e-4}, {**old[0], "metric": "extra"}]
    for tolerance, value_flagged in ((0.0, True), (1e-3, False)):
        found = differences(old, new, tolerance)
        by = {(d["metric"], d["field"]): d for d in found}
        assert by[("m", "value")]["flagged"] is value_flagged and by[("m", "value")]["diff"] == pytest.approx(1e-4)
        assert not by[("m", "chance")]["flagged"] and not by[("gone", "lo")]["flagged"]  # None on both sides
        assert by[("gone", "value")]["flagged"] and by[("gone", "value")]["new"] is None  # the rerun lost it
        assert by[("extra", "value")]["flagged"] and by[("extra", "value")]["old"] is None  # only the rerun has it


@pytest.mark.parametrize("value, expected", [
    ("/a/run", "/b/new"), ("/a/run/midi/x.mid", "/b/new/midi/x.mid"), ("/a/runner", "/a/runner"),
    ("../shared/data", "../shared/data"), (3, 3), (None, None)])
def test_moved_moves_paths_at_or_under_an_old_location(value, expected):
    tree = {"data": {"train": {"out_dir": value}, "roots": [value]}}
    assert moved(tree, {"/a/run": "/b/new"}) == {"data": {"train": {"out_dir": expected}, "roots": [expected]}}


COMMITTED_DIR = llmusic.config.REPO_ROOT / "experiments/results/tables"
COMMITTED = sorted(p.parent.name for p in COMMITTED_DIR.glob("*/manifest.json"))


def test_every_shipped_table_is_committed():
    assert set(COMMITTED) == set(TABLES)


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_table_points_to_the_configs_and_metrics_behind_every_number(name):
    """experiments/results/tables/<name> (docs/tables.md): each number is its cell's, with every
    seed and cell the table asks for, and every file the manifest names is committed beside it (a
    rerun needs nothing else); a committed rerun repeated every number."""
    out = COMMITTED_DIR / name
    manifest = json.loads((out / tb.MANIFEST).read_text())
    table = manifest["config"]
    assert table == OmegaConf.to_container(tb.table_config(name))  # the table today's config describes
    launched = {(e["cell"], e["seed"]) for e in manifest["cells"]}
    assert launched == {(cell, seed) for cell in table["cells"] for seed in table["seeds"]}
    numbers = []
    for entry in manifest["cells"]:
        record = json.loads((out / entry["cell_record"]).read_text())
        numbers += cell_numbers(entry["cell"], entry["seed"], record, table["rows"])
        assert entry["code"]["commit"] and entry["generate"]["config"]["llm"]["name"] == "baseline"
        for student_name, student in entry["students"].items():
            metrics = json.loads((out / student["metrics"]).read_text())
            saved = OmegaConf.load(out / student["config"])
            assert metrics["name"] == saved.name == student_name and saved.seed == entry["seed"]
            assert saved.llm_run == entry["generate"]["out_dir"]
    assert numbers and numbers == manifest["numbers"]
    rerun = out / "rerun/rerun.json"
    if rerun.is_file():
        found = json.loads(rerun.read_text())
        assert found["tolerance"] == 0 and found["differences"] and not any(d["flagged"] for d in found["differences"])


def test_table_picture_of_seeds_that_agree_exactly(tmp_path):
    """A control that scores the same on every seed (the mean of three 0.1s is not 0.1 in floating
    point) still draws: its spread is zero, not a negative error bar matplotlib refuses."""
    numbers = [{"cell": "c", "student": "genre_shuffled_labels", "metric": "song/f1_micro", "value": 0.1,
                "majority": 0.1, "chance": 0.05, "experiment": "genre_llm_to_topmagd", "seed": k} for k in range(3)]
    plot_table("agreeing seeds", numbers, {}, tmp_path / "table.png")
    assert (tmp_path / "table.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_test_items_are_songs_for_classification_and_queries_for_melody_completion():
    classification = {"data": {"test": {"samples": 4336, "songs": 1084}}}
    melody = {"data": {"test": {"samples": 613, "songs": 90, "phrases": {"phrase_bars": 2}}}}
    assert (size_of_test_set(classification), size_of_test_set(melody)) == (1084, 613)
