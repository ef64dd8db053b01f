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

import numpy as np
import symusic

from llmusic.midi.io import MidiSkip, load_score
from llmusic.midi.roles import assign_roles
from llmusic.song import DRUM_TRACK, DURATION, PITCH, START, TRACKS, VELOCITY, Song, empty_events

__all__ = ["MidiSkip", "load_score", "midi_windows", "score_notes", "song_pianoroll", "window_starts"]

BEATS_PER_BAR = 4  # windows of real files lie on a 4/4 grid
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


def _four_four_sections(score: symusic.Score, end: int) -> list[tuple[int, int]]:
    """[start, stop) tick ranges in 4/4; no time signature before the first event means 4/4 (MIDI)."""
    meter_at = {0: (4, 4)}
    for ts in sorted(score.time_signatures, key=lambda ts: ts.time):  # stable: the last at a tick wins
        meter_at[ts.time] = (ts.numerator, ts.denominator)
    times = [t for t in sorted(meter_at) if t < end] + [end]
    sections: list[tuple[int, int]] = []
    for a, b in zip(times[:-1], times[1:]):
        if meter_at[a] != (4, 4):
            continue
        if sections and sections[-1][1] == a:  # a repeated 4/4 event continues the same grid
            a = sections.pop()[0]
        sections.append((a, b))
    return sections


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


def window_starts(score: symusic.Score, music_end: int, time_span_ticks: int, ticks_per_quarter: int,
                  hop_quarters: float | None = None) -> tuple[list[int], float]:
    """Where `midi_windows` may start a window of this file (its ticks), and the window's length in them.

    Bar lines of 4/4 sections, every `hop_quarters` (default: the span); a window lies inside one
    section, except that the last section, running to `music_end`, may end in silence.
    """
    hop_quarters = time_span_ticks / ticks_per_quarter if hop_quarters is None else hop_quarters
    if time_span_ticks <= 0 or hop_quarters <= 0 or hop_quarters % BEATS_PER_BAR:
        raise ValueError(f"need time_span_ticks > 0 and a hop of whole 4/4 bars, got time_span_ticks="
                         f"{time_span_ticks} at {ticks_per_quarter} per quarter, hop={hop_quarters} quarters")
    tpq = score.ticks_per_quarter
    window, hop = time_span_ticks * tpq / ticks_per_quarter, hop_quarters * tpq  # in this file's ticks
    starts: list[int] = []
    for a, b in _four_four_sections(score, music_end):
        # Only the final section may end in silence; the others must hold the whole window.
        starts += range(a, b if b == music_end else b - int(window) + 1, int(hop))
    return starts, window


def midi_windows(score: symusic.Score, time_span_ticks: int, ticks_per_quarter: int, steps: int = 128,
                 hop_quarters: float | None = None, velocity: bool = False, max_windows: int | None = None,
                 packed: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Rolls of a real file cut into windows of a constraint set's span on the file's own beat grid.

    A window spans `time_span_ticks` ticks at `ticks_per_quarter` (the constraint set's units: 7680
    at 480 is 16 quarter notes), i.e. as many quarter notes of the file, whatever its own ticks per
    quarter. Windows start on bar lines of 4/4 sections (so tempo does not matter), every
    `hop_quarters` (default: the span, i.e. no overlap; must be whole bars). A window lies inside
    one 4/4 section; the last section runs to the end of the music, and its final window may be
    padded with silence. Windows without pitched notes are dropped.
    Returns (W, 4, 128, steps) float32 rolls and (W,) int64 start ticks; `packed=True`: binary rolls
    bit-packed along time as each is made, (W, 4, 128, steps // 8) uint8, 32x less memory.
    Raises MidiSkip("no_notes") without pitched notes, MidiSkip("no_4_4_grid") when no window has any,
    MidiSkip("too_many_windows") before rolling a file cut into more than `max_windows`.
    """
    channel, pitch, start, end, vel = score_notes(score)
    if not np.isin(channel, PITCHED).any():
        raise MidiSkip("no_notes")
    starts, window = window_starts(score, int(end.max()), time_span_ticks, ticks_per_quarter, hop_quarters)
    if max_windows is not None and len(starts) > max_windows:
        raise MidiSkip("too_many_windows", f"{len(starts)} windows > {max_windows}")
    rolls, kept = [], []
    for w in starts:
        inside = (start < w + window) & (end > w)
        roll = _rasterise(channel[inside], pitch[inside], start[inside] - w, end[inside] - w,
                          vel[inside] if velocity else None, window, steps)
        if roll[PITCHED].any():
            rolls.append(np.packbits(roll > 0, axis=-1) if packed else roll)
            kept.append(w)
    if not rolls:
        raise MidiSkip("no_4_4_grid")
    return np.stack(rolls), np.asarray(kept, dtype=np.int64)
