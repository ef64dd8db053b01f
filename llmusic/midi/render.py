"""Song <-> MIDI file, keeping every note at its own start and duration.

The paper's official writer pushes overlapping notes of a track later (a 3-note chord at tick 0
comes out at ticks 0, 960 and 1920). Here every note keeps its start and duration: a song becomes
a type-1 file with one track per role, named by the role so `read_midi` can invert it. symusic
gives each pitched track its own channel (track index, skipping 9) and the drum track channel 10.

MIDI cannot tell apart two overlapping notes of the same pitch on one track (which note-off ends
which note is up to the reader), so such notes go to extra "layer" tracks of the same role and
name; `read_midi` merges the layers back. Velocity 0 is written as 1: a note-on of velocity 0
means note-off in MIDI and the note would vanish.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import symusic

from llmusic.song import DRUM_TRACK, DURATION, PITCH, START, TRACKS, VELOCITY, Song, empty_events

# Per column (pitch, duration, velocity, start): what a MIDI file can hold.
LOWEST = np.array([0, 0, 0, 0])
HIGHEST = np.array([127, np.iinfo(np.int32).max, 127, np.iinfo(np.int32).max])
COLUMNS = ("pitch", "duration", "velocity", "start")


def _check_events(events: np.ndarray, tracks: dict[str, np.ndarray]) -> None:
    """Raise ValueError naming the role and column that MIDI cannot hold (the parser clamps before this).

    events: all of the tracks' events, concatenated.
    """
    if not ((events < LOWEST) | (events > HIGHEST)).any():
        return
    for role, ev in tracks.items():
        for column, name in enumerate(COLUMNS):
            values = ev[:, column]
            if len(values) and (values.min() < LOWEST[column] or values.max() > HIGHEST[column]):
                raise ValueError(f"{role}: {name} out of range [{LOWEST[column]}, {HIGHEST[column]}]: "
                                 f"{values.min()}..{values.max()}")


def _midi_tracks(tracks: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """(role, events) per MIDI track: one per role, plus layers where notes of one pitch overlap.

    Checks first that MIDI can hold the values (see _check_events).
    """
    roles = list(tracks)
    track = np.repeat(np.arange(len(roles)), [len(ev) for ev in tracks.values()])
    events = np.concatenate(list(tracks.values()))
    _check_events(events, tracks)
    order = np.lexsort((events[:, START], events[:, PITCH], track))
    events, track = events[order], track[order]
    start, end = events[:, START], events[:, START] + events[:, DURATION]
    same_note = (track[1:] == track[:-1]) & (events[1:, PITCH] == events[:-1, PITCH])
    # Sorted by (track, pitch, start), a note clashes with the previous one of its pitch if it starts
    # before that one ends or together with it. Neighbours suffice: without a clash the ends of one
    # pitch never decrease.
    clash = same_note & ((start[1:] < end[:-1]) | (start[1:] == start[:-1]))
    if not clash.any():
        return list(tracks.items())
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
    events = events[np.argsort(key, kind="stable")]
    ends = np.cumsum(np.bincount(key, minlength=len(roles) * width)).tolist()
    return [(roles[j // width], events[a:b]) for j, (a, b) in enumerate(zip([0] + ends[:-1], ends))
            if b > a or j % width == 0]


def song_to_score(song: Song) -> symusic.Score:
    """A symusic Score of the song: tempo, time signature, one named track per role (plus layers).

    Raises ValueError for a pitch or velocity outside 0-127 or a negative start or duration.
    """
    # symusic.core classes directly: the factories cost 3 µs a call, a tenth of a whole song.
    score = symusic.core.ScoreTick(song.ticks_per_quarter)
    score.tempos.append(symusic.core.TempoTick(0, float(song.tempo_bpm), None))
    numerator, denominator = song.time_signature
    score.time_signatures.append(symusic.core.TimeSignatureTick(0, numerator, denominator))
    for role, events in _midi_tracks(song.tracks):
        is_drum = role == DRUM_TRACK
        track = symusic.core.TrackTick(role, 0 if is_drum else song.programs.get(role, 0), is_drum)
        columns = events.T  # (4, N)
        track.notes = symusic.core.NoteTickList.from_numpy(
            np.ascontiguousarray(columns[START]), np.ascontiguousarray(columns[DURATION]),
            columns[PITCH].astype(np.int8), np.maximum(columns[VELOCITY], 1).astype(np.int8))
        score.tracks.append(track)
    return score


def write_midi(song: Song, path: str | Path) -> None:
    """Write the song as a type-1 MIDI file (see the module docstring for what is kept)."""
    song_to_score(song).dump_midi(str(path))


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
