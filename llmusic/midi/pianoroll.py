"""Piano rolls: (4, 128, steps) float32 arrays, channels in llmusic.song.TRACKS order.

The time axis divides a span of ticks into `steps` equal steps; for the `paper` constraint set
7680 ticks / 128 steps = 60 ticks = a 32nd note at 480 ticks per quarter, i.e. 4 bars of 4/4 (the
grid of PiRhDy). A note sounds on steps [round(start / step), round(end / step)), at least one
step, so short notes never vanish; whatever lies past the span is cut. Values are binary (1.0
where a note sounds) unless `velocity=True` (velocity / 127, the loudest overlapping note wins):
LLM velocities are rarely meaningful and real-music velocities vary by transcriber, so the
classifier sees only what is played. See docs/pianoroll.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import symusic

from llmusic.midi.io import MidiSkip, load_score
from llmusic.midi.meter import ANY, allowed_meters, bar_window_starts
from llmusic.midi.roles import assign_roles
from llmusic.song import DRUM_TRACK, DURATION, PITCH, START, TRACKS, VELOCITY, Song, empty_events

__all__ = ["MidiSkip", "Windows", "load_score", "midi_windows", "score_notes", "song_pianoroll", "window_starts"]

PITCHED = [TRACKS.index(role) for role in TRACKS if role != DRUM_TRACK]


def _rasterise(channel: np.ndarray, pitch: np.ndarray, start: np.ndarray, end: np.ndarray,
               velocity: np.ndarray | None, time_span_ticks: float, steps: int) -> np.ndarray:
    """Notes (ticks from the roll's origin, possibly negative) -> (4, 128, steps) roll.

    Binary when velocity is None, else velocity / 127 with the loudest overlapping note winning.
    """
    scale = steps / time_span_ticks
    on = np.floor(start * scale + 0.5).astype(np.int64)  # round half up to the nearest grid line
    off = np.maximum(np.floor(end * scale + 0.5).astype(np.int64), on + 1)
    on, off = np.clip(on, 0, steps), np.clip(off, 0, steps)  # cut what lies outside the roll
    length = off - on
    # Every sounding cell, without an (N, steps) mask: note i covers steps on[i] .. off[i] - 1.
    note = np.repeat(np.arange(len(on)), length)
    step = np.arange(length.sum()) + np.repeat(on - (np.cumsum(length) - length), length)
    cell = (channel[note] * 128 + pitch[note]) * steps + step
    roll = np.zeros((len(TRACKS), 128, steps), dtype=np.float32)
    if velocity is None:
        roll.reshape(-1)[cell] = 1.0
    else:  # a flat index keeps ufunc.at on numpy's fast path
        np.maximum.at(roll.reshape(-1), cell, (velocity[note] / 127.0).astype(np.float32))
    return roll


def song_pianoroll(song: Song, time_span_ticks: int, steps: int = 128, velocity: bool = False) -> np.ndarray:
    """(4, 128, steps) float32 roll of the song's first `time_span_ticks` ticks."""
    events = [song.tracks.get(role, empty_events()) for role in TRACKS]
    channel = np.repeat(np.arange(len(TRACKS)), [len(ev) for ev in events])
    ev = np.concatenate(events)
    return _rasterise(channel, ev[:, PITCH], ev[:, START], ev[:, START] + ev[:, DURATION],
                      ev[:, VELOCITY] if velocity else None, time_span_ticks, steps)


def score_notes(score: symusic.Score) -> tuple[np.ndarray, ...]:
    """channel (the role's index in TRACKS), pitch, start, end, velocity of every note of an assigned
    role, int64 arrays in the file's ticks."""
    parts = []
    for role, indices in assign_roles(score).items():
        for i in indices:
            notes = score.tracks[i].notes.numpy()
            time = notes["time"].astype(np.int64)
            parts.append((np.full(len(time), TRACKS.index(role)), notes["pitch"].astype(np.int64), time,
                          time + notes["duration"], notes["velocity"].astype(np.int64)))
    if not parts:
        return tuple(np.zeros(0, np.int64) for _ in range(5))
    return tuple(np.concatenate(column) for column in zip(*parts))


def _window_and_hop(score: symusic.Score, time_span_ticks: int, ticks_per_quarter: int,
                    hop_quarters: float | None) -> tuple[float, float]:
    """A window and the hop between window starts, in this file's ticks."""
    hop_quarters = time_span_ticks / ticks_per_quarter if hop_quarters is None else hop_quarters
    if time_span_ticks <= 0 or hop_quarters <= 0:
        raise ValueError(f"need time_span_ticks > 0 and hop_quarters > 0, got time_span_ticks={time_span_ticks} "
                         f"at {ticks_per_quarter} per quarter, hop={hop_quarters} quarters")
    tpq = score.ticks_per_quarter
    return time_span_ticks * tpq / ticks_per_quarter, hop_quarters * tpq


def window_starts(score: symusic.Score, music_end: int, time_span_ticks: int, ticks_per_quarter: int,
                  hop_quarters: float | None = None, meters: str | Iterable[str] = ANY) -> tuple[list[int], float]:
    """Where `midi_windows` may start a window of this file (its ticks), and the window's length in
    them: bar lines of the allowed meters, as llmusic.midi.meter says."""
    window, hop = _window_and_hop(score, time_span_ticks, ticks_per_quarter, hop_quarters)
    starts, _ = bar_window_starts(score, music_end, window, hop, allowed_meters(meters))
    return starts.tolist(), window


class Windows(NamedTuple):
    """The windows of one file: (W, 4, 128, steps) float32 rolls (or, packed, (W, 4, 128, steps // 8)
    uint8), (W,) int64 start ticks, and the meter ("3/4") at each start."""

    rolls: np.ndarray
    starts: np.ndarray
    meters: list[str]


def midi_windows(score: symusic.Score, time_span_ticks: int, ticks_per_quarter: int, steps: int = 128,
                 hop_quarters: float | None = None, velocity: bool = False,
                 meters: str | Iterable[str] = ANY, max_windows: int | None = None, packed: bool = False) -> Windows:
    """Rolls of a real file cut into windows of a constraint set's span on the file's own bar lines.

    A window spans `time_span_ticks` ticks at `ticks_per_quarter` (the constraint set's units: 7680
    at 480 is 16 quarter notes), i.e. as many quarter notes of the file, whatever its own ticks per
    quarter and whatever its meter. Windows start on bar lines (so tempo does not matter) of every
    meter, or of the `meters` listed (e.g. ["4/4"]: 4/4 sections only), at least `hop_quarters`
    apart (default: the span, no overlap); the rules are in llmusic.midi.meter. Windows without
    pitched notes are dropped. `packed=True`: binary rolls bit-packed along time as each is made
    (32x less memory than float32).
    Raises MidiSkip("too_many_windows") before rolling a file cut into more than `max_windows`;
    MidiSkip("no_notes") without pitched notes; MidiSkip("meter_excluded") when no window of
    the allowed meters holds any, MidiSkip("no_grid") when, with every meter allowed, none does
    (only malformed time signatures, or notes between windows only).
    """
    window, hop = _window_and_hop(score, time_span_ticks, ticks_per_quarter, hop_quarters)
    allowed = allowed_meters(meters)
    channel, pitch, start, end, vel = score_notes(score)
    if not np.isin(channel, PITCHED).any():
        raise MidiSkip("no_notes")
    starts, names = bar_window_starts(score, int(end.max()), window, hop, allowed)
    if max_windows is not None and len(starts) > max_windows:
        raise MidiSkip("too_many_windows", f"{len(starts)} windows > {max_windows}")
    rolls, kept = [], []
    for k, w in enumerate(starts.tolist()):
        inside = (start < w + window) & (end > w)
        roll = _rasterise(channel[inside], pitch[inside], start[inside] - w, end[inside] - w,
                          vel[inside] if velocity else None, window, steps)
        if roll[PITCHED].any():
            rolls.append(np.packbits(roll > 0, axis=-1) if packed else roll)
            kept.append(k)
    if not rolls:
        raise MidiSkip("no_grid" if allowed is None else "meter_excluded")
    return Windows(np.stack(rolls), starts[kept], [names[k] for k in kept])


def spread_per_owner(owner: np.ndarray, limit: int | None) -> np.ndarray:
    """Indices of at most `limit` windows per owner (a song, a file), spread evenly from each
    owner's first window to its last, grouped by owner in ascending order (stable within one)."""
    order = np.argsort(owner, kind="stable")
    if limit is None or len(owner) == 0:
        return order
    runs = owner[order]
    starts = np.flatnonzero(np.r_[True, runs[1:] != runs[:-1]])
    lengths = np.diff(np.r_[starts, len(runs)])
    take = np.minimum(lengths, limit)
    step = np.repeat((lengths - 1) / np.maximum(take - 1, 1), take)
    k = np.arange(take.sum()) - np.repeat(np.cumsum(take) - take, take)  # 0, 1, ... within each owner
    return order[np.repeat(starts, take) + np.round(k * step).astype(np.int64)]
