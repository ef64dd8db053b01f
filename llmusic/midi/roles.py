"""Which tracks of a real multi-track MIDI file play melody, chords, bass and rhythm.

The rule, in order (tracks without notes are ignored throughout):
1. Drum tracks (channel 10) -> rhythm.
2. A pitched track named exactly like a role ("melody", "chords", "bass") takes it, so files
   written by `llmusic.midi.render.write_midi` map back whatever programs they use.
3. Melody by name: a pitched track whose name contains melody, vocal, vox, voice, lead, sing or
   solo (as a word start, case-insensitive).
4. Bass: pitched tracks with a GM bass program (32-39) or the word "bass" in the name (not
   "bassoon"). If none and there are at least two pitched tracks, the one with the lowest median
   pitch, provided that median is below BASS_MAX_MEDIAN_PITCH (a bass line, not a low piano part).
5. Melody, if step 2/3 found none: of the remaining pitched tracks, the mostly monophonic ones (at
   least MONOPHONIC_MIN_FRACTION of their notes start alone) and of those the highest by median pitch.
6. Every other pitched track -> chords.

Files of the official writer (`render=official`, llmusic/midi/official.py) put melody, chords and
bass on channel 0, each in its own track; symusic keeps tracks apart, so the channel does not
merge them. Ours name their tracks by role (step 2: exact). The official program's own files are
unnamed: rhythm comes from the drum channel, bass from program 33, and since that writer plays
every part one note at a time, step 5 takes the higher of the two piano tracks for the melody,
which swaps melody and chords when the chords lie above the melody (tests/test_midi_official.py).
"""

from __future__ import annotations

import re

import numpy as np
import symusic

from llmusic.song import TRACKS

BASS_PROGRAMS = range(32, 40)
BASS_MAX_MEDIAN_PITCH = 55  # G3: a bass line's median sits well below this
MONOPHONIC_MIN_FRACTION = 0.8
MELODY_NAME = re.compile(r"\b(melod|vocal|vox|voice|lead|sing|solo)", re.IGNORECASE)
BASS_NAME = re.compile(r"\bbass\b", re.IGNORECASE)


def _monophonic_fraction(times: np.ndarray) -> float:
    """Fraction of notes whose onset no other note of the track shares (chords share onsets)."""
    _, inverse, counts = np.unique(times, return_inverse=True, return_counts=True)
    return float(np.mean(counts[inverse] == 1))


def assign_roles(score: symusic.Score) -> dict[str, list[int]]:
    """Role -> indices into score.tracks, by the rule in the module docstring (every role is a key)."""
    roles: dict[str, list[int]] = {role: [] for role in TRACKS}
    pitched: dict[int, dict[str, np.ndarray]] = {}
    for i, track in enumerate(score.tracks):
        if len(track.notes) == 0:
            continue
        if track.is_drum:
            roles["rhythm"].append(i)
        elif track.name.strip().lower() in ("melody", "chords", "bass"):
            roles[track.name.strip().lower()].append(i)
        else:
            pitched[i] = track.notes.numpy()
    n_pitched = len(pitched) + sum(len(roles[r]) for r in ("melody", "chords", "bass"))

    if not roles["melody"]:
        roles["melody"] = [i for i in pitched if MELODY_NAME.search(score.tracks[i].name)]
    free = {i: notes for i, notes in pitched.items() if i not in roles["melody"]}

    if not roles["bass"]:
        roles["bass"] = [i for i in free if score.tracks[i].program in BASS_PROGRAMS
                         or BASS_NAME.search(score.tracks[i].name)]
        if not roles["bass"] and n_pitched >= 2 and free:
            lowest = min(free, key=lambda i: np.median(free[i]["pitch"]))
            if np.median(free[lowest]["pitch"]) < BASS_MAX_MEDIAN_PITCH:
                roles["bass"] = [lowest]
    free = {i: notes for i, notes in free.items() if i not in roles["bass"]}

    if not roles["melody"]:
        mono = [i for i, notes in free.items()
                if _monophonic_fraction(notes["time"]) >= MONOPHONIC_MIN_FRACTION]
        if mono:
            roles["melody"] = [max(mono, key=lambda i: np.median(free[i]["pitch"]))]
    roles["chords"] += [i for i in free if i not in roles["melody"]]
    return roles
