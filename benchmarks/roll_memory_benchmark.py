"""Peak memory of building the combined Lakh set's piano rolls, windows packed as made vs after.

    python -m benchmarks.roll_memory_benchmark [--rounds 3] [--root ../shared/data]

Builds the TOP-MAGD data set over every labelled Lakh file under `--root` (../shared/data: the
lmd_subset and lmd_extra folders together, 1,716 files labelled in TOP-MAGD or MASD) from an empty
roll cache, each build in a fresh process whose peak resident memory (ru_maxrss) the kernel reports
when it exits. Two ways, alternating in the same run: `this code` (each window bit-packed as it is
made into one buffer grown in place, files over the note and window guards skipped before rolling)
and `before` (the code this replaced: a file's windows made as float32 rolls, stacked and packed,
the files' arrays kept in a list and joined at the end). A third row, `imports only`, is a process
that imports the same modules and builds nothing: the floor both stand on. Table roll_memory.md/.csv:
median peak MB and median seconds over the rounds, songs, windows and files skipped while rolling.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks.tables import add_table_dir, machine, write_table
from llmusic.config import REPO_ROOT
from llmusic.data import rolls
from llmusic.data.lmd import LakhMidiDataset
from llmusic.midi import load_score, midi_windows

WAYS = ("imports only", "this code", "before")


class PackedAfter(LakhMidiDataset):
    """Before: a file's windows as float32 rolls, stacked, then packed."""

    def song_windows(self, path):
        rolls, starts = midi_windows(load_score(path, self.max_notes_per_file), self.time_span_ticks,
                                     self.ticks_per_quarter, self.steps, self.hop_quarters)
        return np.packbits(rolls.astype(bool), axis=-1), starts


class JoinedAtTheEnd:
    """Before: every file's packed windows kept in a list and joined once all are rolled."""

    def __init__(self, width: int) -> None:
        self.parts, self.width = [], width

    def add(self, rows: np.ndarray) -> None:
        self.parts.append(rows)

    def done(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros((0, 4, 128, self.width), np.uint8)


def build(way: str, root: str, cache_dir: str) -> None:
    """The child process: one build, its facts as a JSON line on stdout."""
    if way == "imports only":
        print(json.dumps({}))
        return
    if way == "before":
        rolls.PackedWindows = JoinedAtTheEnd
    cls = LakhMidiDataset if way == "this code" else PackedAfter
    dataset = cls(root=root, labels=os.path.join(root, "labels", "midi_genre_map.json"), taxonomy="topmagd",
                  time_span_ticks=7680, ticks_per_quarter=480, cache_dir=cache_dir)
    print(json.dumps({"windows": len(dataset), "songs": len(dataset.song_names),
                      "roll_skips": len(dataset.skipped_files)}))


def measure(way: str, root: str) -> dict:
    """Run one build in a child process: its peak resident MB, wall seconds and facts."""
    with tempfile.TemporaryDirectory() as cache_dir, open(os.path.join(cache_dir, "stderr"), "w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "benchmarks.roll_memory_benchmark", "--child", way,
                                  "--root", root, "--cache-dir", cache_dir], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                 stderr=err, text=True, env={**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"})
        out = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)  # the child's own peak, which Popen.wait() does not give
        seconds = time.perf_counter() - start
        if status:
            err.seek(0)
            raise RuntimeError(f"{way}: the build failed (status {status}): {err.read()[-2000:]}")
    return {"peak_mb": usage.ru_maxrss / 1024, "seconds": seconds, **json.loads(out.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--root", default=str(REPO_ROOT.parent / "shared" / "data"))
    parser.add_argument("--child", choices=WAYS, help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    add_table_dir(parser)
    args = parser.parse_args()
    if args.child:
        build(args.child, args.root, args.cache_dir)
        return
    runs: dict[str, list[dict]] = {way: [] for way in WAYS}
    for _ in range(args.rounds):  # alternate, so a change of load hits every way alike
        for way in WAYS:
            runs[way].append(measure(way, args.root))
    rows = []
    for way in WAYS:
        last = runs[way][-1]
        rows.append([way, statistics.median(r["peak_mb"] for r in runs[way]),
                     statistics.median(r["seconds"] for r in runs[way]), last.get("songs", "-"),
                     last.get("windows", "-"), last.get("roll_skips", "-")])
    note = (f"TOP-MAGD over every labelled Lakh file under {args.root}, from an empty cache; median of "
            f"{args.rounds} rounds, each build a fresh process; {machine()}")
    write_table(args.table_dir, "roll_memory", ["build", "peak MB", "seconds", "songs", "windows", "files skipped"],
                rows, note)


if __name__ == "__main__":
    main()
