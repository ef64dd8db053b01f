"""`render=official`: the MIDI file the paper's official writer makes of a song, note for note.

The official writer (github shinandrew/LLM-MIDI, generate.py; ../shared/reference/README.md), with
mido as there: a type-1 file at 480 ticks per quarter, a first track holding only the tempo (120
BPM) and a 4/4 time signature, then one track per part in the song's track order. Melody and
chords get program 0 and bass program 33 (a program change on channel 0), all three play on
channel 0; the rhythm plays on channel 9 without a program change. A track's events are sorted
by start (ties keep their order) and written one after another: each note-on comes
max(0, start - end of the previous note as asked) ticks after the previous note-off, and its
note-off `duration` ticks later. So notes of a track never overlap: a 3-note chord at tick 0
lasting 960 each comes out at 0, 960 and 1920, and every later note of the track drifts by the
time the chord took. A note of velocity 0 is a note-on of velocity 0, which MIDI reads as a
note-off: the note is lost, as in the official files.

Two things are the song's rather than fixed numbers, so a song under another constraint set is
written at its own ticks per quarter, tempo, meter and programs (constraints=paper: the official
ones). And one thing is added: each part's track is named by its role (a track-name event, no
note changes), so `read_midi` and `assign_roles` map an official-mode file back exactly; the
official files have unnamed tracks (see llmusic/midi/roles.py for how those map).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import mido
import numpy as np

from llmusic.song import DRUM_TRACK, START, Song

DRUM_CHANNEL = 9  # the official writer's rhythm channel (channel 10 counted from 1)
PITCHED_CHANNEL = 0  # melody, chords and bass all play on it


@dataclass(frozen=True)
class OfficialRenderer:
    """Writes the official writer's file of a song (see the module docstring)."""

    name: str = "official"
    official: ClassVar[bool] = True

    def write(self, song: Song, path: str | Path) -> None:
        mido.MidiFile(type=1, ticks_per_beat=song.ticks_per_quarter, tracks=self.tracks(song)).save(str(path))

    @staticmethod
    def tracks(song: Song) -> list[mido.MidiTrack]:
        numerator, denominator = song.time_signature
        meta = mido.MidiTrack([
            mido.MetaMessage("set_tempo", tempo=int(60_000_000 / song.tempo_bpm)),
            mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator),
            mido.MetaMessage("end_of_track", time=0),
        ])
        tracks = [meta]
        for role, events in song.tracks.items():
            track = mido.MidiTrack([mido.MetaMessage("track_name", name=role)])
            if role != DRUM_TRACK:
                track.append(mido.Message("program_change", program=song.programs.get(role, 0), time=0))
            channel = DRUM_CHANNEL if role == DRUM_TRACK else PITCHED_CHANNEL
            asked_end = 0  # where the previous note was asked to end, not where it was written
            for pitch, duration, velocity, start in events[np.argsort(events[:, START], kind="stable")].tolist():
                track.append(mido.Message("note_on", note=pitch, velocity=velocity, time=max(0, start - asked_end),
                                          channel=channel))
                track.append(mido.Message("note_off", note=pitch, velocity=0, time=duration, channel=channel))
                asked_end = start + duration
            track.append(mido.MetaMessage("end_of_track", time=0))
            tracks.append(track)
        return tracks
