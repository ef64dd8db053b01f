"""Caches verify what they return (issue 12, item 4): a damaged entry of the reply cache or a damaged
roll cache is reported with its file, dropped and rebuilt; results files read with errors naming
them."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from llmusic.config import finished_with
from llmusic.data.cache import CHECKSUM
from llmusic.files import DamagedFile
from llmusic.generate import generate
from llmusic.report import collect_runs, load_cells
from llmusic.run_dir import GenerateRun
from tests.fake_openai import FakeOpenAI
from tests.helpers import build_dataset, compose_entry

KEY = "sk-test-" + os.urandom(12).hex()
SONGS = 4


# --- the reply cache -----------------------------------------------------------------------------------

def run(server: FakeOpenAI, out: Path, *extra: str) -> dict:
    return generate(compose_entry("generate", "llm=openai", f"llm.base_url={server.base_url}", f"out_dir={out}",
                                  f"cache_dir={out / 'cache'}", "progress=false", "n_per_combo=2",
                                  "taxonomy.genres=[Pop]", "taxonomy.styles=[Swing,Ballad]", *extra))


def flip_a_digit(cache: Path) -> str:
    """One digit of one entry's reply changed on disk: the line is still valid JSON. Its shard:line."""
    [shard] = cache.glob("*.jsonl")
    lines = shard.read_bytes().split(b"\n")
    match = re.search(rb"\[(\d)", lines[1])  # the first digit of an event, inside the reply text
    lines[1] = lines[1][:match.start(1)] + (b"7" if match.group(1) != b"7" else b"8") + lines[1][match.end(1):]
    shard.write_bytes(b"\n".join(lines))
    json.loads(lines[1].split(b"\t", 2)[2])  # still JSON
    return f"{shard}:2"


def test_a_reply_cache_entry_with_one_flipped_digit_is_dropped_and_asked_again(tmp_path, monkeypatch, caplog):
    """Such an entry used to be used silently."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeOpenAI() as server:
        first = run(server, tmp_path)
        where = flip_a_digit(tmp_path / "cache")
        with caplog.at_level(logging.WARNING, logger="llmusic.engine.cache"):
            again = run(server, tmp_path)
        assert server.paid == SONGS + 1, (first, again)  # the damaged reply, once
        assert f"reply cache entry {where} is damaged (its bytes do not match their checksum)" in caplog.text
        assert again["cache_hits"] == SONGS - 1 and again["cache_repairs"] == 1
        assert list(again["cache_damaged"].values()) == [f"{where}: its bytes do not match their checksum"]
        # Shards written in the same second sort by a random suffix: put the whole copy first, so the
        # damaged line is read after it (it used to drop the whole copy, and the reply was paid again).
        damaged_shard = Path(where.rsplit(":", 1)[0])
        [newer] = [p for p in (tmp_path / "cache").glob("*.jsonl") if p != damaged_shard]
        newer.rename(newer.with_name("00000000-" + newer.name))
        third = run(server, tmp_path)  # the repaired entry is whole, in a newer shard
        assert server.paid == SONGS + 1 and third["cache_hits"] == SONGS and third["cache_repairs"] == 0
        assert third["valid"] == first["valid"] == SONGS


def test_a_damaged_reply_is_not_asked_again_in_a_cache_only_run(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeOpenAI() as server:
        run(server, tmp_path)
        flip_a_digit(tmp_path / "cache")
        summary = run(server, tmp_path, "cache_only=true")
        assert server.paid == SONGS
    assert summary["cache_repairs"] == 0 and len(summary["cache_damaged"]) == 1
    assert summary["failure_reasons"] == {"not_cached": 1}


# --- the roll cache ------------------------------------------------------------------------------------

@pytest.fixture()
def tree(shared_data, tmp_path) -> Path:
    for genre in ("jazz", "rock"):
        (tmp_path / "tree" / genre).mkdir(parents=True)
        for src in sorted((shared_data / "genre_corpus" / genre).glob("*.mid"))[:2]:
            shutil.copy(src, tmp_path / "tree" / genre)
    return tmp_path / "tree"


def cut_short(path: Path) -> str:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return "it does not load: BadZipFile"


def other_arrays(path: Path) -> str:
    """A whole zip whose rolls changed, under the checksum of the old ones."""
    with np.load(path) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["value"][0] ^= 1
    np.savez_compressed(path.with_suffix(".tmp.npz"), **arrays)
    os.replace(path.with_suffix(".tmp.npz"), path)
    assert CHECKSUM in arrays
    return "its arrays do not match their checksum"


@pytest.mark.parametrize("damage", [cut_short, other_arrays])
def test_a_damaged_roll_cache_is_named_deleted_and_built_again(tree, tmp_path, caplog, damage):
    """A damaged roll cache used to raise BadZipFile and never be rebuilt."""
    args = [f"dataset.root={tree}", f"dataset.cache_dir={tmp_path / 'cache'}"]
    first = build_dataset("midi_folder", *args)
    why = damage(first.cache_path)
    with caplog.at_level(logging.WARNING, logger="llmusic.data.cache"):
        again = build_dataset("midi_folder", *args)
    assert f"cache file {first.cache_path} is damaged ({why}" in caplog.text
    assert not again.cache_hit and again.summary()["cache_dropped"][0].startswith(f"{first.cache_path}: {why}")
    assert np.array_equal(again.packed.dense(), first.packed.dense()) and again.song_names == first.song_names
    assert build_dataset("midi_folder", *args).cache_hit  # the rebuilt file reads


# --- results files -------------------------------------------------------------------------------------

def test_results_files_cut_short_are_named_when_read(tmp_path):
    (tmp_path / "cell").mkdir()
    (tmp_path / "cell" / "cell.json").write_text('{"overrides": [')
    with pytest.raises(DamagedFile, match=f"{tmp_path / 'cell' / 'cell.json'} is damaged or cut short"):
        load_cells(tmp_path)
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "metrics.json").write_text('{"test": ')
    with pytest.raises(DamagedFile, match=f"{tmp_path / 'train' / 'metrics.json'} is damaged"):
        collect_runs(tmp_path / "train")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "summary.json").write_text('{"songs": 1')
    with pytest.raises(DamagedFile, match=f"{tmp_path / 'run' / 'summary.json'} is damaged"):
        GenerateRun(tmp_path / "run").summary()
    (tmp_path / "run" / "config.yaml").write_text("n_per_combo: [1,")  # a saved config cut short: not finished
    assert not finished_with(tmp_path / "run" / "config.yaml", tmp_path / "run" / "summary.json",
                             compose_entry("generate"))
