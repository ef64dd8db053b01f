"""Note statistics: one row of named features per LLM song or per window of a real file.

The genre probe (`python -m llmusic.probe`) compares LLM songs with real music in these features,
and a feature baseline of the genre classifier learns from them, so both sides are computed by one
function, `_window_rows`, from notes tagged with a window:
- an LLM song (`song_features`) is one window: its notes that start in [0, span) of its constraint
  set, the span its piano roll covers;
- a real file (`window_features`) is cut on the grid of `midi_windows` (windows of the same span
  starting on 4/4 bar lines, `window_starts`), tracks mapped to roles by `assign_roles`; a note
  belongs to the window its onset lies in (its duration is its own, not cut), and windows without a
  pitched onset are dropped.

The features (`FEATURE_NAMES`, grouped by `FEATURE_GROUPS`); "pitched" is melody, chords and bass:
- pitch_class (14): `pitch_class_<C..B>`, the pitch-class histogram of the pitched notes weighted by
  the time each sounds inside the window, after moving the window's Krumhansl-Schmuckler key
  (llmusic.midi.key, the same weights) to C major or A minor,
  as fractions; `distinct_pitch_classes` (0-12); `key_clarity`, the Pearson r of the chosen key's
  profile (1: a textbook diatonic distribution);
- melody_interval (11): the melody's skyline (the highest note of each onset) read in onset order,
  the share of its steps of 0, 1, ... 7, 8-11, 12 and 13 or more semitones (up or down);
- register (6): `<role>_pitch_mean` and `<role>_pitch_range` (highest minus lowest) per pitched role;
- density (4): `<role>_notes_per_bar` for every role, drums included;
- polyphony (1): pitched notes sounding at once, averaged over the time anything pitched sounds;
- duration (9): the share of pitched notes per duration class in beats (quarter notes): bins
  around a 16th or shorter, an 8th, a dotted 8th, a quarter, a dotted quarter, a half, a dotted
  half, a whole note, longer (edges `DURATION_EDGES`);
- onset_pitched, onset_drums (16 each): the share of onsets on each 16th of a 4/4 bar (rounded to
  the nearest 16th; 00 is the bar line), pitched notes and drum hits apart;
- velocity (2): mean and standard deviation of every note's velocity;
- drums (7): the share of drum hits per General MIDI drum class (`DRUM_CLASSES`; other: percussion
  and pitches outside the GM kit).
Histograms of a window without such notes are all 0. Undefined values are NaN: the register of a
role without notes, `key_clarity` with fewer than two pitch classes. Register is absolute pitch
(not key-normalised): a transposed set differs in it, a key-normalised one would not.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import symusic

from llmusic.midi.io import MidiSkip, load_score
from llmusic.midi.key import PITCH_CLASSES, REFERENCE_TONIC, key_correlations
from llmusic.midi.pianoroll import BEATS_PER_BAR, score_notes, window_starts
from llmusic.song import DRUM_TRACK, DURATION, PITCH, START, TRACKS, VELOCITY, Song

PITCHED_ROLES = tuple(role for role in TRACKS if role != DRUM_TRACK)
DRUMS = TRACKS.index(DRUM_TRACK)
INTERVAL_BINS = ("0", "1", "2", "3", "4", "5", "6", "7", "8-11", "12", "13+")
INTERVAL_BIN = np.array([*range(8), 8, 8, 8, 8, 9] + [10] * 115)  # semitones 0..127 -> bin
DURATION_BINS = ("16th", "8th", "dotted_8th", "quarter", "dotted_quarter", "half", "dotted_half", "whole", "longer")
DURATION_EDGES = np.array([0.375, 0.625, 0.875, 1.25, 1.75, 2.5, 3.5, 4.5])  # beats, between the named values
SIXTEENTHS = 4 * BEATS_PER_BAR
DRUM_CLASSES = {"kick": (35, 36), "snare": (37, 38, 39, 40), "hihat_closed": (42, 44), "hihat_open": (46,),
                "tom": (41, 43, 45, 47, 48, 50), "cymbal": (49, 51, 52, 53, 55, 57, 59), "other": ()}
DRUM_CLASS = np.full(128, len(DRUM_CLASSES) - 1)  # GM drum pitch -> index into DRUM_CLASSES
for _k, _pitches in enumerate(DRUM_CLASSES.values()):
    DRUM_CLASS[list(_pitches)] = _k

_GROUPS: dict[str, list[str]] = {
    "pitch_class": [f"pitch_class_{pc}" for pc in PITCH_CLASSES] + ["distinct_pitch_classes", "key_clarity"],
    "melody_interval": [f"melody_interval_{b}" for b in INTERVAL_BINS],
    "register": [f"{role}_pitch_{stat}" for role in PITCHED_ROLES for stat in ("mean", "range")],
    "density": [f"{role}_notes_per_bar" for role in TRACKS],
    "polyphony": ["polyphony"],
    "duration": [f"duration_{b}" for b in DURATION_BINS],
    "onset_pitched": [f"onset_pitched_{i:02d}" for i in range(SIXTEENTHS)],
    "onset_drums": [f"onset_drums_{i:02d}" for i in range(SIXTEENTHS)],
    "velocity": ["velocity_mean", "velocity_sd"],
    "drums": [f"drum_{name}" for name in DRUM_CLASSES],
}
FEATURE_NAMES: tuple[str, ...] = tuple(name for names in _GROUPS.values() for name in names)
FEATURE_GROUPS: tuple[str, ...] = tuple(group for group, names in _GROUPS.items() for _ in names)
COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}


def _shares(key: np.ndarray, n_windows: int, n_bins: int, weight: np.ndarray | None = None) -> np.ndarray:
    """(n_windows, n_bins) histogram of flat keys window * n_bins + bin, each row as fractions (0 if empty)."""
    counts = np.bincount(key, weights=weight, minlength=n_windows * n_bins).reshape(n_windows, n_bins)
    total = counts.sum(1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts, dtype=np.float64), where=total > 0)


def _pitch_classes(window, pitch, weight, n_windows) -> np.ndarray:
    """(W, 14): key-normalised pitch-class shares, distinct pitch classes, key clarity."""
    hist = np.bincount(window * 12 + pitch % 12, weights=weight, minlength=n_windows * 12).reshape(n_windows, 12)
    r = key_correlations(hist).reshape(n_windows, 24)  # (W, mode * 12 + tonic); NaN for a flat histogram
    defined = np.count_nonzero(hist, axis=1) >= 2
    best = np.nanargmax(np.where(defined[:, None], r, 0.0), axis=1)
    reference = np.array([REFERENCE_TONIC["major"], REFERENCE_TONIC["minor"]])
    shift = np.where(defined, (reference[best // 12] - best % 12) % 12, 0)  # (W,) semitones up to the reference key
    moved = hist[np.arange(n_windows)[:, None], (np.arange(12)[None, :] - shift[:, None]) % 12]
    total = moved.sum(1, keepdims=True)
    shares = np.divide(moved, total, out=np.zeros_like(moved), where=total > 0)
    clarity = np.where(defined, r[np.arange(n_windows), best], np.nan)
    return np.column_stack([shares, np.count_nonzero(hist, axis=1), clarity])


def _melody_intervals(window, onset, pitch, n_windows) -> np.ndarray:
    """(W, 11) shares of the skyline's steps by size."""
    order = np.lexsort((-pitch, onset, window))  # per window, in onset order, the highest note first
    window, onset, pitch = window[order], onset[order], pitch[order]
    top = np.ones(len(order), bool)
    top[1:] = (window[1:] != window[:-1]) | (onset[1:] != onset[:-1])
    window, pitch = window[top], pitch[top]
    same = window[1:] == window[:-1]
    step = INTERVAL_BIN[np.abs(np.diff(pitch))[same]]
    return _shares(window[1:][same] * len(INTERVAL_BINS) + step, n_windows, len(INTERVAL_BINS))


def _register(window, role, pitch, n_windows) -> np.ndarray:
    """(W, 6) mean and range of pitch per pitched role (NaN where the role is silent)."""
    group = window * len(PITCHED_ROLES) + role  # pitched roles are TRACKS' first three
    size = n_windows * len(PITCHED_ROLES)
    count = np.bincount(group, minlength=size)
    high, low = np.full(size, -1), np.full(size, 128)
    np.maximum.at(high, group, pitch)
    np.minimum.at(low, group, pitch)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(group, weights=pitch, minlength=size) / count
    pitch_range = np.where(count > 0, high - low, np.nan)
    return np.stack([mean, pitch_range], axis=1).reshape(n_windows, 2 * len(PITCHED_ROLES))


def _polyphony(window, onset, end, n_windows, window_ticks) -> np.ndarray:
    """(W,) sounding note time / time anything sounds, notes cut at the window's end."""
    # Windows laid end to end on one axis, so one running maximum of note ends measures every union.
    offset = window * (2.0 * window_ticks)
    on, off = onset + offset, np.minimum(end, window_ticks) + offset
    order = np.argsort(on, kind="stable")
    on, off, window = on[order], off[order], window[order]
    covered_until = np.concatenate([[-np.inf], np.maximum.accumulate(off)[:-1]])
    covered = np.maximum(off - np.maximum(on, covered_until), 0.0)
    union = np.bincount(window, weights=covered, minlength=n_windows)
    sounding = np.bincount(window, weights=off - on, minlength=n_windows)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sounding / union


def _window_rows(window: np.ndarray, role: np.ndarray, pitch: np.ndarray, onset: np.ndarray, duration: np.ndarray,
                 velocity: np.ndarray, n_windows: int, window_ticks: float, tpq: int) -> np.ndarray:
    """(n_windows, F) float32 features of notes tagged with their window (onset: ticks from its start)."""
    W = n_windows
    duration = np.maximum(duration, 0)
    p = role != DRUMS
    d = ~p
    end = onset + np.maximum(duration, 1)  # a zero-length note still sounds for a tick
    weight = np.minimum(end, window_ticks) - onset  # the part of the note inside the window
    melody = role == TRACKS.index("melody")
    position = np.floor(onset * (4.0 / tpq) + 0.5).astype(np.int64) % SIXTEENTHS
    beats = duration / tpq
    n = np.bincount(window, minlength=W)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_velocity = np.bincount(window, weights=velocity, minlength=W) / n
        sd_velocity = np.sqrt(np.maximum(np.bincount(window, weights=velocity.astype(np.float64) ** 2,
                                                     minlength=W) / n - mean_velocity ** 2, 0.0))
    parts = {
        "pitch_class": _pitch_classes(window[p], pitch[p], weight[p], W),
        "melody_interval": _melody_intervals(window[melody], onset[melody], pitch[melody], W),
        "register": _register(window[p], role[p], pitch[p], W),
        "density": np.bincount(window * len(TRACKS) + role, minlength=W * len(TRACKS)).reshape(W, len(TRACKS))
        / (window_ticks / (tpq * BEATS_PER_BAR)),
        "polyphony": _polyphony(window[p], onset[p], end[p], W, window_ticks)[:, None],
        "duration": _shares(window[p] * len(DURATION_BINS) + np.searchsorted(DURATION_EDGES, beats[p], "right"),
                            W, len(DURATION_BINS)),
        "onset_pitched": _shares(window[p] * SIXTEENTHS + position[p], W, SIXTEENTHS),
        "onset_drums": _shares(window[d] * SIXTEENTHS + position[d], W, SIXTEENTHS),
        "velocity": np.column_stack([mean_velocity, sd_velocity]),
        "drums": _shares(window[d] * len(DRUM_CLASSES) + DRUM_CLASS[pitch[d]], W, len(DRUM_CLASSES)),
    }
    assert list(parts) == list(_GROUPS)
    return np.column_stack(list(parts.values())).astype(np.float32)


def song_features(song: Song, time_span_ticks: int, ticks_per_quarter: int) -> np.ndarray:
    """(F,) float32 features of a song's notes that start inside its constraint set's span
    (`time_span_ticks` at `ticks_per_quarter`, converted to the song's own ticks).
    Raises MidiSkip("no_notes") when no pitched note starts there."""
    span = time_span_ticks * song.ticks_per_quarter / ticks_per_quarter
    events = [song.tracks.get(role, np.zeros((0, 4), np.int32)) for role in TRACKS]
    role = np.repeat(np.arange(len(TRACKS)), [len(ev) for ev in events])
    ev = np.concatenate(events).astype(np.int64)
    inside = (ev[:, START] >= 0) & (ev[:, START] < span)
    if not np.any(inside & (role != DRUMS)):
        raise MidiSkip("no_notes")
    ev, role = ev[inside], role[inside]
    return _window_rows(np.zeros(len(ev), np.int64), role, ev[:, PITCH], ev[:, START], ev[:, DURATION],
                        ev[:, VELOCITY], 1, span, song.ticks_per_quarter)[0]


def window_features(score: symusic.Score, time_span_ticks: int, ticks_per_quarter: int,
                    hop_quarters: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(W, F) float32 features of a real file's windows (see the module docstring) and their (W,) start ticks.
    Raises MidiSkip("no_notes") without pitched notes, MidiSkip("no_4_4_grid") when no window has a pitched onset."""
    role, pitch, start, end, velocity = score_notes(score)
    if not np.any(role != DRUMS):
        raise MidiSkip("no_notes")
    starts, window_ticks = window_starts(score, int(end.max()), time_span_ticks, ticks_per_quarter, hop_quarters)
    starts = np.asarray(starts, dtype=np.int64)
    # The windows holding an onset are a run of the sorted starts: those in (onset - window, onset].
    first = np.searchsorted(starts, start - window_ticks, side="right")
    count = np.searchsorted(starts, start, side="right") - first
    note = np.repeat(np.arange(len(start)), count)
    window = np.repeat(first - np.cumsum(count) + count, count) + np.arange(count.sum())
    used = np.bincount(window[role[note] != DRUMS], minlength=len(starts)) > 0
    if not used.any():
        raise MidiSkip("no_4_4_grid")
    renumber = np.cumsum(used) - 1
    keep = used[window]
    note, window = note[keep], renumber[window[keep]]
    kept = starts[used]
    rows = _window_rows(window, role[note], pitch[note], start[note] - kept[window], end[note] - start[note],
                        velocity[note], len(kept), window_ticks, score.ticks_per_quarter)
    return rows, kept


@dataclass
class FileFeatures:
    """Features of many files' windows: `features` (W, F) float32, `owner` (W,) index of each window's
    file, `starts` (W,) its start tick, `reasons` (n_files,) why a file gave no window ("" if it did)."""

    features: np.ndarray
    owner: np.ndarray
    starts: np.ndarray
    reasons: np.ndarray

    def skipped(self) -> dict[str, int]:
        kinds, counts = np.unique(self.reasons[self.reasons != ""], return_counts=True)
        return {str(k): int(c) for k, c in zip(kinds, counts)}


def _chunk_features(paths: Sequence[str | os.PathLike], time_span_ticks: int, ticks_per_quarter: int,
                    hop_quarters: float | None) -> FileFeatures:
    none = np.zeros(0, np.int64)
    rows, owner, starts, reasons = [np.zeros((0, len(FEATURE_NAMES)), np.float32)], [none], [none], []
    for i, path in enumerate(paths):
        try:
            x, s = window_features(load_score(path), time_span_ticks, ticks_per_quarter, hop_quarters)
        except MidiSkip as skip:
            reasons.append(skip.reason)
            continue
        reasons.append("")
        rows.append(x)
        owner.append(np.full(len(x), i, dtype=np.int64))
        starts.append(s)
    return FileFeatures(np.concatenate(rows), np.concatenate(owner), np.concatenate(starts),
                        np.asarray(reasons, dtype=object))


def files_features(paths: Sequence[str | os.PathLike], time_span_ticks: int, ticks_per_quarter: int,
                   hop_quarters: float | None = None, workers: int = 1) -> FileFeatures:
    """`window_features` of every file, on `workers` processes; an unreadable or unusable file is
    counted in `reasons`."""
    paths = list(paths)
    job = partial(_chunk_features, time_span_ticks=time_span_ticks, ticks_per_quarter=ticks_per_quarter,
                  hop_quarters=hop_quarters)
    if workers <= 1 or len(paths) < 2 * workers:
        parts = [job(paths)]
        offsets = [0]
    else:
        offsets = list(range(0, len(paths), -(-len(paths) // (4 * workers))))  # a few chunks per worker
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(job, [paths[a:b] for a, b in zip(offsets, [*offsets[1:], len(paths)])])
    return FileFeatures(np.concatenate([p.features for p in parts]),
                        np.concatenate([p.owner + a for p, a in zip(parts, offsets)]),
                        np.concatenate([p.starts for p in parts]),
                        np.concatenate([p.reasons for p in parts]).astype(str))
