"""Real MIDI read defensively (issue 12, item 3): no file stops a data-set build or sinks it in
memory; every skipped file is counted with its reason and named in the build log and the summary."""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import symusic

from llmusic.config import REPO_ROOT, ConfigError
from llmusic.data.rolls import RollDataset
from llmusic.midi import MidiSkip, load_score, midi_windows
from tests.helpers import build_dataset

ADDRESS_SPACE = 3_000_000 * 1024  # `ulimit -v 3000000`


def with_division(src: Path, dst: Path, division: int) -> Path:
    """A real file whose header's time division is replaced (bytes 12-13 of MThd)."""
    data = bytearray(src.read_bytes())
    data[12:14] = division.to_bytes(2, "big")
    dst.write_bytes(bytes(data))
    return dst


def million_notes(path: Path) -> Path:
    """1,000,000 notes spread over 62,500 bars of 4/4 (16 a bar), one piano track."""
    n = 1_000_000
    score = symusic.Score(480)
    track = symusic.Track("piano", program=0)
    track.notes = symusic.Note.from_numpy(time=np.arange(n, dtype=np.int32) * 120, duration=np.full(n, 100, np.int32),
                                          pitch=(48 + np.arange(n) % 36).astype(np.int8),
                                          velocity=np.full(n, 90, np.int8))
    score.tracks.append(track)
    score.dump_midi(str(path))
    return path


@pytest.fixture()
def real_file(shared_data) -> Path:
    return next(iter(sorted((shared_data / "genre_corpus" / "pop").glob("*.mid"))))


@pytest.mark.parametrize("division,reason", [(0, "bad_header"), (0xE728, "smpte_division")])
def test_a_header_without_a_beat_grid_is_a_skip_with_its_reason(real_file, tmp_path, division, reason):
    """Ticks per quarter 0 used to load, then raise ValueError while rolling and abort the build."""
    with pytest.raises(MidiSkip) as err:
        load_score(with_division(real_file, tmp_path / "bad.mid", division))
    assert err.value.reason == reason and str(tmp_path / "bad.mid") in err.value.detail


def test_the_guards_skip_a_pathological_file_before_it_is_rolled(tmp_path):
    big = million_notes(tmp_path / "big.mid")
    with pytest.raises(MidiSkip) as err:
        load_score(big)
    assert err.value.reason == "too_many_notes" and "1000000 notes > 200000" in err.value.detail
    with pytest.raises(MidiSkip) as err:
        midi_windows(load_score(big, max_notes=None), 7680, 480, max_windows=2000, packed=True)
    assert err.value.reason == "too_many_windows" and err.value.detail == "15625 windows > 2000"


def test_windows_are_bit_packed_as_they_are_made(real_file):
    score = load_score(real_file)
    rolls, starts = midi_windows(score, 7680, 480)
    packed, packed_starts = midi_windows(score, 7680, 480, packed=True)
    assert packed.dtype == np.uint8 and packed.shape == (*rolls.shape[:-1], rolls.shape[-1] // 8)
    assert np.array_equal(np.unpackbits(packed, axis=-1), rolls > 0) and np.array_equal(starts, packed_starts)


def hostile_tree(shared_data: Path, root: Path) -> Path:
    """A genre tree with a division-0 header and the million-note file beside real files."""
    for genre in ("jazz", "rock"):
        (root / genre).mkdir(parents=True)
        for src in sorted((shared_data / "genre_corpus" / genre).glob("*.mid"))[:2]:
            shutil.copy(src, root / genre)
    with_division(next(iter(sorted((root / "jazz").glob("*.mid")))), root / "jazz" / "division0.mid", 0)
    million_notes(root / "rock" / "million.mid")
    return root


def test_describe_counts_both_under_a_3_gb_address_space(shared_data, tmp_path):
    """`python -m llmusic.data.describe` used to abort on the division-0 header, and to take more
    than 6 GB on the million-note file (every window kept as unpacked float32)."""
    root = hostile_tree(shared_data, tmp_path / "tree")
    limit = lambda: resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))  # noqa: E731
    done = subprocess.run([sys.executable, "-m", "llmusic.data.describe", "dataset=midi_folder", f"dataset.root={root}",
                           f"dataset.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'out'}"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, preexec_fn=limit,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "describe.json").read_text())
    assert summary["skipped"] == {"bad_header": 1, "too_many_notes": 1} and summary["songs"] == 4
    assert {(f["file"], f["reason"]) for f in summary["skipped_files"]} == {
        ("jazz/division0.mid", "bad_header"), ("rock/million.mid", "too_many_notes")}
    log = (tmp_path / "out" / "describe.log").read_text()
    assert f"skipped {root / 'jazz' / 'division0.mid'}: bad_header" in log
    assert f"skipped {root / 'rock' / 'million.mid'}: too_many_notes" in log


def test_any_exception_while_rolling_one_file_is_a_counted_skip(shared_data, tmp_path, monkeypatch, caplog):
    root = hostile_tree(shared_data, tmp_path / "tree")
    rolled, victim = RollDataset.song_windows, min(p for p in (root / "rock").glob("*.mid") if p.name != "million.mid")

    def flaky(self, path):
        if path == victim:
            raise RuntimeError("a bug in a MIDI library")
        return rolled(self, path)

    monkeypatch.setattr(RollDataset, "song_windows", flaky)
    with caplog.at_level(logging.INFO, logger="llmusic.data.rolls"):
        dataset = build_dataset("midi_folder", f"dataset.root={root}", f"dataset.cache_dir={tmp_path / 'cache'}")
    assert dataset.skipped == {"bad_header": 1, "roll_error": 1, "too_many_notes": 1}
    [error] = [f for f in dataset.summary()["skipped_files"] if f["reason"] == "roll_error"]
    assert error["detail"] == "RuntimeError: a bug in a MIDI library" and error["file"] == f"rock/{victim.name}"
    assert f"skipped {root / error['file']}: roll_error: RuntimeError: a bug in a MIDI library" in caplog.text
    assert len(dataset.song_names) == 3


def test_a_missing_dataset_root_is_named_in_one_line(tmp_path):
    """A missing dataset.root used to end in FileNotFoundError(2, 'No such file or directory'), no path."""
    nowhere = tmp_path / "nowhere"
    done = subprocess.run([sys.executable, "-m", "llmusic.data.describe", "dataset=midi_folder",
                           f"dataset.root={nowhere}", f"hydra.run.dir={tmp_path / 'out'}"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == f"error: root={nowhere}: no such file or folder (building dataset)"
    with pytest.raises(Exception) as err:  # Hydra wraps what the data set raised
        build_dataset("lmd_topmagd", f"dataset.root={nowhere}")
    assert isinstance(err.value.__cause__, ConfigError) and str(err.value.__cause__) == \
        f"root={nowhere}: no such file or folder"
