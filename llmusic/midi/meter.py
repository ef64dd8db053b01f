"""The bar grid of a real MIDI file: its meters, where each holds, and the bar lines windows start on.

A time-signature event starts bars of its meter at its own tick (MIDI puts them on bar lines; where
a file does not, the new meter's bars count from the event). No event before the first means 4/4,
as MIDI defines, and an event that repeats the meter in force continues its grid.

Windows of a constraint set's span start on bar lines of whatever meter the file has and span the
same number of quarter notes in every meter: the `paper` span (16 quarters) is 4 bars of 4/4,
5 1/3 bars of 3/4 or 6/8, 2 2/3 bars of 12/8. The next window starts on the first bar line at or
after the previous start plus the hop (default: the span), so windows never overlap and each starts
on a bar line; in 3/4 the next starts 6 bars (18 quarters) later, and the 2 quarters between are
not rolled. See docs/pianoroll.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import symusic

ANY = "any"  # the `meters` setting that keeps every meter


@dataclass(frozen=True)
class MeterSection:
    """[start, stop) ticks in one meter; its bars count from `start`."""

    start: int
    stop: int
    numerator: int
    denominator: int

    @property
    def name(self) -> str:
        return f"{self.numerator}/{self.denominator}"

    def bar_ticks(self, ticks_per_quarter: int) -> float:
        return ticks_per_quarter * 4 * self.numerator / self.denominator if self.denominator > 0 else 0.0

    def bar_lines(self, ticks_per_quarter: int) -> np.ndarray:
        """(B,) int64 ticks of the bar lines inside the section (none for a malformed meter)."""
        bar = self.bar_ticks(ticks_per_quarter)
        if bar <= 0:
            return np.zeros(0, np.int64)
        return np.round(self.start + bar * np.arange(int(np.ceil((self.stop - self.start) / bar)))).astype(np.int64)


def meter_sections(score: symusic.Score, end: int) -> list[MeterSection]:
    """The file's meters over [0, end), in order; neighbours always differ in meter."""
    meter_at = {0: (4, 4)}
    for ts in sorted(score.time_signatures, key=lambda ts: ts.time):  # stable: the last at a tick wins
        meter_at[ts.time] = (ts.numerator, ts.denominator)
    times = [t for t in sorted(meter_at) if t < end] + [end]
    sections: list[MeterSection] = []
    for a, b in zip(times[:-1], times[1:]):
        if sections and (sections[-1].numerator, sections[-1].denominator) == meter_at[a]:
            a = sections.pop().start  # a repeated meter continues the same grid
        sections.append(MeterSection(a, b, *meter_at[a]))
    return sections


def allowed_meters(meters: str | Iterable[str]) -> frozenset[str] | None:
    """`meters` as set in a config: "any" -> None (every meter), else the set of "n/d" names."""
    if isinstance(meters, str):
        if meters != ANY:
            raise ValueError(f"meters must be {ANY!r} or a list like ['4/4', '3/4'], got {meters!r}")
        return None
    names = frozenset(str(m).replace(" ", "") for m in meters)
    bad = [m for m in names if len(m.split("/")) != 2 or not all(p.isdigit() for p in m.split("/"))]
    if not names or bad:
        raise ValueError(f"meters must be {ANY!r} or a non-empty list of 'n/d' names, got {sorted(names) or meters}")
    return names


def bar_window_starts(score: symusic.Score, end: int, window: float, hop: float,
                      meters: frozenset[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Start ticks of windows of `window` ticks every `hop` ticks or more, on bar lines, and the meter
    at each start.

    Windows lie in runs of neighbouring sections whose meters are allowed (`meters`; None: all with a
    well-formed bar). A run that ends before `end` must hold a whole window; the run that reaches
    `end` may end in a window padded with silence.
    """
    tpq = score.ticks_per_quarter
    sections = meter_sections(score, end)
    runs: list[list[MeterSection]] = []
    previous_ok = False
    for section in sections:
        ok = section.bar_ticks(tpq) > 0 and (meters is None or section.name in meters)
        if ok and previous_ok:
            runs[-1].append(section)
        elif ok:
            runs.append([section])
        previous_ok = ok
    starts: list[int] = []
    names: list[str] = []
    for run in runs:
        bars = np.concatenate([s.bar_lines(tpq) for s in run])
        meter_of_bar = np.concatenate([np.full(len(s.bar_lines(tpq)), i) for i, s in enumerate(run)])
        stop = run[-1].stop
        last = stop - 1 if stop == end else stop - window  # the last tick a window may start on
        k = 0
        while k < len(bars) and bars[k] <= last:
            starts.append(int(bars[k]))
            names.append(run[meter_of_bar[k]].name)
            k = int(np.searchsorted(bars, bars[k] + hop, side="left"))
    return np.asarray(starts, dtype=np.int64), names
