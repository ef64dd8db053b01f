"""song_to_score's same-pitch clash test and its int32 check, against brute-force definitions.

The renderer decides from two sorted int64 keys whether any two notes of one pitch in one track
overlap or share a start (then it splits the role into layer tracks). Here random dense songs, with
zero-length, touching and repeated notes, are checked pair by pair.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from llmusic.midi import score_to_song, song_to_score
from llmusic.song import TRACKS, Song


def clashes(events: np.ndarray) -> bool:
    """Brute force: two notes of one pitch share a start, or their [start, start + duration) overlap."""
    for (p1, d1, _, s1), (p2, d2, _, s2) in itertools.combinations(events.tolist(), 2):
        if p1 == p2 and (s1 == s2 or (s1 < s2 + d2 and s2 < s1 + d1)):
            return True
    return False


def dense_song(rng: np.random.Generator, roles: int, notes: int, span: int, longest: int) -> Song:
    """Few pitches and ticks, so same-pitch clashes, touching notes and zero lengths all occur."""
    tracks = {}
    for name in TRACKS[:roles]:
        n = int(rng.integers(0, notes + 1))
        tracks[name] = np.stack([rng.integers(60, 64, n), rng.integers(0, longest + 1, n),
                                 rng.integers(0, 128, n), rng.integers(0, span + 1, n)], axis=1)
    return Song(tracks)


GRID = [(roles, notes, span, longest) for roles in (1, 4) for notes in (3, 8) for span, longest in
        ((8, 0), (8, 3), (24, 6))]


@pytest.mark.parametrize("roles, notes, span, longest", GRID)
def test_layers_exactly_when_notes_of_one_pitch_clash(roles, notes, span, longest):
    rng = np.random.default_rng([roles, notes, span, longest])
    seen = set()
    for _ in range(60):
        song = dense_song(rng, roles, notes, span, longest)
        score = song_to_score(song)
        clash = any(clashes(ev) for ev in song.tracks.values())
        seen.add(clash)
        assert (len(score.tracks) > len(song.tracks)) == clash
        for track in score.tracks:  # every written track is one MIDI can read back unambiguously
            n = track.notes.numpy()
            assert not clashes(np.stack([n["pitch"], n["duration"], n["velocity"], n["time"]], axis=1))
        back = score_to_song(score)
        velocity_written = {name: np.maximum(ev, [0, 0, 1, 0]) for name, ev in song.tracks.items()}
        assert Song({name: back.tracks[name] for name in song.tracks}).equals(Song(velocity_written))
    assert seen == {True, False}  # each grid point tests both branches


def test_events_of_another_integer_type_render_the_same():
    """Song converts to int32, but tracks replaced afterwards take the checked, slower path."""
    song = Song({"melody": [(60, 480, 90, 0), (64, 480, 90, 0)], "bass": [(36, 960, 80, 0), (36, 480, 80, 960)]})
    wide = Song(dict(song.tracks))
    wide.tracks = {name: ev.astype(np.int64) for name, ev in song.tracks.items()}
    assert song_to_score(wide).dumps_midi() == song_to_score(song).dumps_midi()
    wide.tracks["bass"][0, 3] = 2**31  # past what a MIDI tick (int32 here) can hold
    with pytest.raises(ValueError, match="bass: start out of range"):
        song_to_score(wide)


@pytest.mark.parametrize("column, value", [(0, 128), (0, -1), (1, -1), (2, 128), (2, -1), (3, -1)])
def test_out_of_range_names_the_role_and_column(column, value):
    names = ("pitch", "duration", "velocity", "start")
    events = np.array([[60, 480, 90, 0], [62, 480, 90, 480]])
    events[1, column] = value
    with pytest.raises(ValueError, match=f"bass: {names[column]} out of range"):
        song_to_score(Song({"melody": [(72, 240, 100, 0)], "bass": events}))
