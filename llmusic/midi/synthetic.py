"""Seeded random songs that satisfy a constraint set: test inputs, benchmark load, figures.

Not music, but shaped like an LLM reply to the paper's prompt: notes on an 8th-note grid inside
the tick span; melody and bass are lines (a note lasts at most until the next one starts), chords
are block triads (three notes sharing a start and duration; a chord event = one triad), drums are
hits of the shortest allowed length on the constraint set's drum pitches. So, as in replies, notes
of one pitch rarely overlap; tests build overlapping songs explicitly.
"""

from __future__ import annotations

import numpy as np

from llmusic.constraints import ConstraintSet
from llmusic.song import Song

TRIAD = np.array([0, 4, 7])
REGISTERS = {"melody": (60, 84), "chords": (48, 65), "bass": (28, 52)}  # lowest/highest pitch (chord root)


def _line(rng: np.random.Generator, constraints: ConstraintSet, n: int, low: int, high: int) -> np.ndarray:
    """n notes at distinct grid starts, each cut where the next begins (monophonic)."""
    grid = constraints.ticks_per_quarter // 2
    start = np.sort(rng.choice(constraints.time_span_ticks // grid + 1, n, replace=False)) * grid
    d_lo, d_hi = constraints.duration_range
    named = [d for d in (grid, 2 * grid, 4 * grid) if d_lo <= d <= d_hi]  # the lengths the prompt names
    wanted = rng.choice(named, n) if named else rng.integers(d_lo, d_hi + 1, n)
    room = np.append(np.diff(start), wanted[-1])
    duration = np.clip(np.minimum(wanted, room), d_lo, d_hi)
    return np.stack([rng.integers(low, high + 1, n), duration, rng.integers(1, 128, n), start], axis=1)


def random_song(seed: int | np.random.Generator, constraints: ConstraintSet) -> Song:
    """A valid song with constraints.event_counts events per track (chords: that many triads)."""
    rng = np.random.default_rng(seed)
    counts = constraints.event_counts
    meter = constraints.time_signatures[rng.integers(len(constraints.time_signatures))]
    melody = _line(rng, constraints, counts["melody"], *REGISTERS["melody"])
    bass = _line(rng, constraints, counts["bass"], *REGISTERS["bass"])
    chords = np.repeat(_line(rng, constraints, counts["chords"], *REGISTERS["chords"]), len(TRIAD), axis=0)
    chords[:, 0] += np.tile(TRIAD, counts["chords"])
    # Drum hits: distinct (grid slot, drum) pairs, so a drum never overlaps itself.
    grid = constraints.ticks_per_quarter // 2
    drums = np.array(sorted(constraints.drum_pitches))
    n = counts["rhythm"]
    slots = rng.choice((constraints.time_span_ticks // grid + 1) * len(drums), n, replace=False)
    rhythm = np.stack([drums[slots % len(drums)], np.full(n, max(grid, constraints.duration_range[0])),
                       rng.integers(1, 128, n), slots // len(drums) * grid], axis=1)
    programs = dict(constraints.programs)
    if constraints.free_programs:
        programs = {role: int(rng.integers(0, 128)) for role in programs}
    return Song({"melody": melody, "chords": chords, "bass": bass, "rhythm": rhythm},
                ticks_per_quarter=constraints.ticks_per_quarter, tempo_bpm=constraints.tempo_bpm,
                time_signature=tuple(int(x) for x in meter.split("/")), programs=programs)
