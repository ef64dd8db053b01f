"""Note-statistics features of the combined Lakh set (lmd_subset + lmd_extra): vectorised vs a loop.

    python -m benchmarks.features_benchmark [--rounds 3] [--files N]

Times, on the same files (../shared/data), taking turns round by round so a load change hits all
alike, on one process unless named:
  features      : `llmusic.midi.features.files_features` (every window of a file in one pass)
  features_2_processes : the same on 2 worker processes (`workers=2`)
  per_window    : the loop one writes first: the same row function called once per window
                  (`_window_rows` on the notes whose onsets the window holds); same rows, checked
  piano_rolls   : `midi_windows` of the same files (what the CNN's data set pays per file), for scale
Each reads and role-maps every file itself. Table features.md/.csv: median and spread of the rounds
(wall seconds), CPU seconds of this process, files and windows per second; the goal is the whole
set under 10 s on 2 cores.
Results: benchmarks/README-features.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.tables import add_table_dir, machine, write_table
from llmusic.config import REPO_ROOT
from llmusic.midi import MidiSkip, load_score, midi_windows
from llmusic.midi.features import _window_rows, files_features, window_features
from llmusic.midi.pianoroll import score_notes

SPAN, TPQ = 7680, 480  # the paper constraint set


def per_window(paths: list[Path]) -> np.ndarray:
    rows = []
    for path in paths:
        try:
            score = load_score(path)
            _, starts = window_features(score, SPAN, TPQ)  # the same windows, to compare like with like
        except MidiSkip:
            continue
        role, pitch, start, end, velocity = score_notes(score)
        window = SPAN * score.ticks_per_quarter / TPQ
        for s in starts:
            inside = (start >= s) & (start < s + window)
            rows.append(_window_rows(np.zeros(np.count_nonzero(inside), np.int64), role[inside], pitch[inside],
                                     start[inside] - s, end[inside] - start[inside], velocity[inside], 1, window,
                                     score.ticks_per_quarter))
    return np.concatenate(rows)


def piano_rolls(paths: list[Path]) -> int:
    windows = 0
    for path in paths:
        try:
            windows += len(midi_windows(load_score(path), SPAN, TPQ)[1])
        except MidiSkip:
            continue
    return windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", type=int, default=None, help="the first N files only (default: all)")
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    add_table_dir(parser)
    args = parser.parse_args()
    paths = sorted(p for group in ("lmd_subset", "lmd_extra") for p in (args.data / group / "midi").glob("*.mid"))
    paths = paths[:args.files]
    jobs = {"features": lambda: files_features(paths, SPAN, TPQ).features,
            "features_2_processes": lambda: files_features(paths, SPAN, TPQ, workers=2).features,
            "per_window": lambda: per_window(paths), "piano_rolls": lambda: piano_rolls(paths)}
    wall: dict[str, list[float]] = {name: [] for name in jobs}
    cpu: dict[str, list[float]] = {name: [] for name in jobs}  # this process's: 0 for work done in the pool
    results = {}
    for _ in range(args.rounds):
        for name, job in jobs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            results[name] = job()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    features = results["features"]
    for name in ("features_2_processes", "per_window"):
        assert np.array_equal(features, results[name], equal_nan=True), f"{name} gives other rows"
    windows = len(features)
    rows = [[name, statistics.median(t), min(t), max(t), "-" if "processes" in name else statistics.median(cpu[name]),
             len(paths) / statistics.median(t), windows / statistics.median(t)] for name, t in wall.items()]
    note = (f"{len(paths):,} Lakh files, {windows:,} windows of 4 bars, {features.shape[1]} features; "
            f"{args.rounds} rounds taking turns; {machine()} at the end")
    write_table(args.table_dir, "features", ["job", "median wall s", "min wall s", "max wall s", "median CPU s",
                                             "files/s", "windows/s"], rows, note)


if __name__ == "__main__":
    main()
