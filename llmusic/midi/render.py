"""Song <-> MIDI file, keeping every note at its own start and duration (`render=polyphonic`).

The paper's official writer pushes overlapping notes of a track later (a 3-note chord at tick 0
comes out at ticks 0, 960 and 1920; `render=official`, llmusic/midi/official.py, does that). Here
every note keeps its start and duration: a song becomes a type-1 file with one track per role,
named by the role so `read_midi` can invert it. symusic gives each pitched track its own channel
(track index, skipping 9) and the drum track channel 10.

MIDI cannot tell apart two overlapping notes of the same pitch on one track (which note-off ends
which note is up to the reader), so such notes go to extra "layer" tracks of the same role and
name; `read_midi` merges the layers back. Velocity 0 is written as 1: a note-on of velocity 0
means note-off in MIDI and the note would vanish.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np
import symusic

from llmusic.song import DRUM_TRACK, DURATION, PITCH, START, TRACKS, VELOCITY, Song, empty_events

# Per column (pitch, duration, velocity, start): what a MIDI file can hold.
LOWEST = np.array([0, 0, 0, 0])
HIGHEST = np.array([127, np.iinfo(np.int32).max, 127, np.iinfo(np.int32).max])
COLUMNS = ("pitch", "duration", "velocity", "start")
# Read as uint32, a negative int32 exceeds every bound, so one comparison checks both ends.
HIGHEST_UNSIGNED = HIGHEST.astype(np.uint32)[:, None]  # (4, 1), against (4, N) columns


def _check_columns(columns: np.ndarray, tracks: dict[str, np.ndarray]) -> np.ndarray:
    """(4, N) columns of all the tracks' events as int32; ValueError naming a role and column MIDI cannot hold.

    The parser clamps before this, so the one comparison almost always passes; the per-role search
    only runs to word the error.
    """
    if columns.dtype == np.int32 and not np.count_nonzero(columns.view(np.uint32) > HIGHEST_UNSIGNED):
        return columns
    for role, ev in tracks.items():
        for column, name in enumerate(COLUMNS):
            values = ev[:, column]
            if len(values) and (values.min() < LOWEST[column] or values.max() > HIGHEST[column]):
                raise ValueError(f"{role}: {name} out of range [{LOWEST[column]}, {HIGHEST[column]}]: "
                                 f"{values.min()}..{values.max()}")
    return columns.astype(np.int32)


def _same_pitch_clash(columns: np.ndarray, counts: list[int]) -> bool:
    """Whether two notes of one pitch in one track overlap or share a start (MIDI cannot tell them apart).

    columns: (4, N) int32, the tracks' events one after another, counts[i] of track i. Notes of a
    pitch never clash iff, their starts and their ends each sorted, the i-th end comes no later than
    the (i+1)-th start: at most one note then sounds at any tick. So two sorts of an int64 key
    (track and pitch above bit 32, a tick below) replace a three-key sort and its gathers; a
    zero-length note counts as one tick long, so a shared start always clashes.
    """
    group = np.repeat(np.arange(0, 128 * len(counts), 128, dtype=np.int32), counts) + columns[PITCH]
    # start and start + duration stay below 2**32: no carry into the pitch bits.
    on = np.left_shift(group, 32, dtype=np.int64) | columns[START]
    off = on + np.maximum(columns[DURATION], 1)
    on.sort()
    off.sort()
    return np.count_nonzero(off[:-1] > on[1:]) > 0  # count_nonzero: a third of .any()'s cost


def _layer_order(events: np.ndarray, track: np.ndarray, n_roles: int) -> tuple[np.ndarray, list[int], list[int]]:
    """Layer tracks for a song whose notes of one pitch overlap: each such note on the first free layer.

    events: (N, 4) of all roles, track: (N,) role index of each. Returns (order of the events grouped
    by MIDI track, role index of each MIDI track, end offset of each MIDI track's events).
    """
    order = np.lexsort((events[:, START], events[:, PITCH], track))
    events, track = events[order], track[order]
    start, end = events[:, START], events[:, START] + events[:, DURATION]
    same_note = (track[1:] == track[:-1]) & (events[1:, PITCH] == events[:-1, PITCH])
    # Sorted by (track, pitch, start), a note clashes with the previous one of its pitch if it starts
    # before that one ends or together with it. Neighbours suffice: without a clash the ends of one
    # pitch never decrease.
    clash = same_note & ((start[1:] < end[:-1]) | (start[1:] == start[:-1]))
    group = np.concatenate([[0], np.cumsum(~same_note)])  # one group per (track, pitch)
    clashing_group = np.zeros(group[-1] + 1, dtype=bool)
    clashing_group[group[1:][clash]] = True
    clashing = np.flatnonzero(clashing_group[group])
    layer = np.zeros(len(events), dtype=np.int64)
    # First fit in start order (optimal for intervals): the first layer whose last note of this
    # pitch is over. A plain loop: only clashing pitches get here, a few dozen notes at most.
    last: list[tuple[int, int]] = []  # per layer: (start, end) of its last note of the current group
    previous = -1
    for i, g, s, e in zip(clashing.tolist(), group[clashing].tolist(), start[clashing].tolist(),
                          end[clashing].tolist()):
        if g != previous:
            last, previous = [], g
        k = next((k for k, (ls, le) in enumerate(last) if s >= le and s > ls), len(last))
        last[k:k + 1] = [(s, e)]
        layer[i] = k
    # Split by (track, layer); layers of a role are 0..its deepest, and an empty role keeps layer 0.
    width = int(layer.max()) + 1
    key = track * width + layer
    ends = np.cumsum(np.bincount(key, minlength=n_roles * width)).tolist()
    kept = [j for j in range(len(ends)) if j % width == 0 or ends[j] > (ends[j - 1] if j else 0)]
    return order[np.argsort(key, kind="stable")], [j // width for j in kept], [ends[j] for j in kept]


def _midi_tracks(tracks: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray, list[int]]:
    """MIDI tracks of the song: one per role, plus layers where notes of one pitch overlap.

    Returns (role of each MIDI track, (4, N) int32 C-contiguous columns of the events grouped by
    MIDI track, end offset of each MIDI track's events), so that each MIDI track's notes are a
    contiguous slice of every column. Checks first that MIDI can hold the values (see _check_columns).
    """
    roles = list(tracks)
    counts = [len(ev) for ev in tracks.values()]
    columns = _check_columns(np.concatenate(list(tracks.values())).T.copy(), tracks)  # (4, N)
    if not _same_pitch_clash(columns, counts):
        return roles, columns, list(accumulate(counts))
    track = np.repeat(np.arange(len(roles)), counts)
    order, track_roles, ends = _layer_order(columns.T, track, len(roles))
    return [roles[r] for r in track_roles], columns[:, order], ends


def song_to_score(song: Song) -> symusic.Score:
    """A symusic Score of the song: tempo, time signature, one named track per role (plus layers).

    Raises ValueError for a pitch or velocity outside 0-127 or a negative start or duration.
    """
    # symusic.core classes directly: the factories cost 3 µs a call, a sixth of a whole song.
    score = symusic.core.ScoreTick(song.ticks_per_quarter)
    score.tempos.append(symusic.core.TempoTick(0, float(song.tempo_bpm), None))
    numerator, denominator = song.time_signature
    score.time_signatures.append(symusic.core.TimeSignatureTick(0, numerator, denominator))
    roles, columns, ends = _midi_tracks(song.tracks)
    small = columns.astype(np.int8)  # symusic's pitch and velocity type; only those two rows are used
    np.maximum(small[VELOCITY], 1, out=small[VELOCITY])
    # One NoteTickList for the song, cut per track: a from_numpy call per track costs twice as much.
    notes = symusic.core.NoteTickList.from_numpy(columns[START], columns[DURATION], small[PITCH], small[VELOCITY])
    tracks = []
    for role, a, b in zip(roles, [0, *ends], ends):
        is_drum = role == DRUM_TRACK
        track = symusic.core.TrackTick(role, 0 if is_drum else song.programs.get(role, 0), is_drum)
        track.notes = notes[a:b]
        tracks.append(track)
    score.tracks = tracks
    return score


def write_midi(song: Song, path: str | Path) -> None:
    """Write the song as a type-1 MIDI file (see the module docstring for what is kept)."""
    song_to_score(song).dump_midi(str(path))


class Renderer(Protocol):
    """A song -> MIDI file writer, chosen by the `render` config group (conf/render/)."""

    name: str
    official: ClassVar[bool]  # whether it writes what the paper's official writer wrote

    def write(self, song: Song, path: str | Path) -> None: ...


@dataclass(frozen=True)
class PolyphonicRenderer:
    """`render=polyphonic` (the default): `write_midi`, every note at its own start and duration."""

    name: str = "polyphonic"
    official: ClassVar[bool] = False

    def write(self, song: Song, path: str | Path) -> None:
        write_midi(song, path)


def score_to_song(score: symusic.Score) -> Song:
    """Inverse of `song_to_score`: tracks are found by their role names; layers are merged."""
    by_role: dict[str, list[np.ndarray]] = {role: [] for role in TRACKS}
    programs: dict[str, int] = {}
    for track in score.tracks:
        if track.name not in by_role:
            raise ValueError(f"track {track.name!r} is not a role {TRACKS}: not written by write_midi "
                             "(use llmusic.midi.roles.assign_roles for other files)")
        notes = track.notes.numpy()
        by_role[track.name].append(np.stack(
            [notes["pitch"], notes["duration"], notes["velocity"], notes["time"]], axis=1).astype(np.int32))
        if not track.is_drum:
            programs.setdefault(track.name, int(track.program))
    tracks = {role: np.concatenate(parts) if parts else empty_events() for role, parts in by_role.items()}
    song = Song(tracks, ticks_per_quarter=score.ticks_per_quarter)
    if len(score.tempos):
        song.tempo_bpm = round(score.tempos[0].qpm, 3)  # undo the rounding to µs per quarter
    if len(score.time_signatures):
        song.time_signature = (score.time_signatures[0].numerator, score.time_signatures[0].denominator)
    song.programs = {**song.programs, **programs}
    return song


def read_midi(path: str | Path) -> Song:
    """Read a file written by `write_midi` back into a Song (all four roles, empty ones included)."""
    return score_to_song(symusic.Score(str(path)))
