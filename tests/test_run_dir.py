"""GenerateRun, the one reader and writer of a generate run's folder: a rerun replaces the old run
only once it is complete, and a kill at any step of the swap leaves one whole run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import llmusic.run_dir as run_dir
from llmusic.config import CONF_DIR
from llmusic.run_dir import ARTEFACTS, STAGING, GenerateRun, rates_by


class Killed(BaseException):
    """What kill -9 does to the writer: it stops between two steps, nothing runs after."""


def write(run: GenerateRun, songs: dict[tuple[str, int], str]) -> None:
    """A run of the given songs ((style, index) -> the MIDI file's content) under the paper's constraints."""
    run.save_config(OmegaConf.create({"constraints": OmegaConf.load(CONF_DIR / "constraints" / "paper.yaml")}))
    records = []
    with run.replies() as reply:
        for (style, index), content in songs.items():
            rel, path = run.midi_file("Pop", style, index)
            path.write_text(content)
            reply({"style": style, "index": index, "text": content})
            records.append({"genre": "Pop", "style": style, "index": index, "status": "ok", "midi": rel})
    run.write_manifest(records)
    run.write_summary({"songs": len(records)})


OLD = {("Ballad", 0): "old 0", ("Ballad", 1): "old 1", ("Swing", 0): "old 2"}
NEW = {("Waltz", 0): "new 0"}  # fewer songs, other files: a mixed folder would name missing files


def whole_run(out: Path) -> dict[tuple[str, int], str]:
    """The run a reader sees, checked to be whole: every record's file exists, the summary counts them."""
    run = GenerateRun(out)
    records = list(run.records())
    assert run.summary()["songs"] == len(records)
    return {(r["style"], r["index"]): run.midi_path(r).read_text() for r in records}


@pytest.fixture()
def old_run(tmp_path) -> Path:
    with GenerateRun(tmp_path).rerun() as run:
        write(run, OLD)
    assert whole_run(tmp_path) == OLD
    return tmp_path


def test_a_rerun_replaces_the_run_once_it_is_done(old_run):
    with GenerateRun(old_run).rerun() as run:
        write(run, NEW)
        assert whole_run(old_run) == OLD  # readers meanwhile see the old run, unchanged
    assert whole_run(old_run) == NEW
    assert not (old_run / "midi" / "Pop__Ballad").exists()  # the old files are gone with the old run
    assert not (old_run / STAGING).exists()


def test_a_rerun_that_fails_or_is_killed_before_it_is_done_leaves_the_old_run(old_run):
    with pytest.raises(RuntimeError), GenerateRun(old_run).rerun() as run:
        write(run, NEW)
        raise RuntimeError("the backend's key was refused")
    assert whole_run(old_run) == OLD
    (old_run / STAGING / "midi").mkdir(parents=True)  # what kill -9 in the middle of a rerun leaves
    assert whole_run(old_run) == OLD  # an unfinished rerun is never read
    with GenerateRun(old_run).rerun() as run:  # and the next rerun starts afresh
        write(run, NEW)
    assert whole_run(old_run) == NEW


@pytest.mark.parametrize("moves", range(2 * len(ARTEFACTS)))
def test_a_kill_at_any_step_of_the_swap_leaves_the_new_run_once_reopened(old_run, monkeypatch, moves):
    """The swap moves each old file aside and each new one in (two renames a file); kill after any
    number of them, and the next GenerateRun opened on the folder finishes the swap."""
    done, replace = [], run_dir.os.replace

    def dying_replace(src, dst):
        if Path(dst).parent in (old_run, old_run / STAGING / "retired"):  # a move of the swap, not a file's own write
            if len(done) == moves:
                raise Killed
            done.append(dst)
        replace(src, dst)

    monkeypatch.setattr(run_dir.os, "replace", dying_replace)
    with pytest.raises(Killed), GenerateRun(old_run).rerun() as run:
        write(run, NEW)
    monkeypatch.setattr(run_dir.os, "replace", replace)
    assert whole_run(old_run) == NEW
    assert not (old_run / STAGING).exists()


def test_records_are_streamed_and_a_damaged_line_is_skipped_with_a_warning(old_run, capsys):
    manifest = old_run / "manifest.jsonl"
    manifest.write_text(manifest.read_text() + '{"genre": "Pop", "sty')  # a line cut by a kill
    assert len(list(GenerateRun(old_run).records())) == len(OLD)
    assert "is not JSON" in capsys.readouterr().out


def test_usable_songs_and_valid_rates_share_one_definition_of_valid(tmp_path):
    records = [{"genre": "Pop", "status": s, "midi": f"midi/{i}.mid"} for i, s in
               enumerate(["ok", "repaired", "failed", "ok"])]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    run = GenerateRun(tmp_path)
    usable, excluded = run.usable()
    assert len(usable) == 3 and excluded == {"failed": 1}
    assert len(run.usable(include_repaired=False)[0]) == 2
    assert rates_by(records, "genre") == {"Pop": {"songs": 4, "valid": 3, "valid_rate": 0.75}}


def test_an_artefact_the_new_run_lacks_retires_the_old_one(old_run):
    """A rerun in which no song gave MIDI leaves no old MIDI file beside its manifest."""
    with GenerateRun(old_run).rerun() as run:
        run.save_config(OmegaConf.create({"constraints": OmegaConf.load(CONF_DIR / "constraints" / "paper.yaml")}))
        run.write_manifest([{"genre": "Pop", "style": "Ballad", "index": 0, "status": "failed", "midi": None}])
        run.write_summary({"songs": 1})
    assert not (old_run / "midi").exists() and not (old_run / "replies.jsonl").exists()
    assert [r["status"] for r in GenerateRun(old_run).records()] == ["failed"]
