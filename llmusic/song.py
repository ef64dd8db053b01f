"""The song: the one in-memory form every stage agrees on.

A song is four tracks of note events. Each track is an int32 array of shape (N, 4) whose columns
are (pitch, duration, velocity, start) in ticks, the order the paper's prompt asks the LLM for.
Arrays rather than lists of tuples because 16,250 songs are rendered and rolled in benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TRACKS: tuple[str, ...] = ("melody", "chords", "bass", "rhythm")
PITCH, DURATION, VELOCITY, START = range(4)
DRUM_TRACK = "rhythm"


def empty_events() -> np.ndarray:
    return np.zeros((0, 4), dtype=np.int32)


def as_events(events) -> np.ndarray:
    """Any sequence of (pitch, duration, velocity, start) -> an (N, 4) int32 array."""
    arr = np.asarray(events, dtype=np.int32)
    if arr.size == 0:
        return empty_events()
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"events must have shape (N, 4), got {arr.shape}")
    return arr


@dataclass
class Song:
    tracks: dict[str, np.ndarray]  # role -> (N, 4) int32: pitch, duration, velocity, start
    ticks_per_quarter: int = 480
    tempo_bpm: float = 120.0
    time_signature: tuple[int, int] = (4, 4)
    # General MIDI program per pitched track; the drum track has none (it plays on channel 10).
    programs: dict[str, int] = field(default_factory=lambda: {"melody": 0, "chords": 0, "bass": 33})

    def __post_init__(self) -> None:
        self.tracks = {name: as_events(ev) for name, ev in self.tracks.items()}

    @property
    def n_notes(self) -> int:
        return sum(len(ev) for ev in self.tracks.values())

    @property
    def end_tick(self) -> int:
        ends = [int((ev[:, START] + ev[:, DURATION]).max()) for ev in self.tracks.values() if len(ev)]
        return max(ends, default=0)

    def equals(self, other: "Song") -> bool:
        """Same notes per track, ignoring event order within a track."""
        if set(self.tracks) != set(other.tracks):
            return False
        for name, ev in self.tracks.items():
            a = ev[np.lexsort(ev.T[::-1])]
            b = other.tracks[name][np.lexsort(other.tracks[name].T[::-1])]
            if a.shape != b.shape or not np.array_equal(a, b):
                return False
        return True


def pack_songs(songs: dict[str, Song]) -> dict[str, np.ndarray]:
    """Songs by name as flat arrays (for one .npz): every note with its role, each song's first
    note, ticks per quarter, tempo, meter and programs (-1: none). `unpack_songs` inverts it."""
    songs = {name: songs[name] for name in sorted(songs)}
    events = [[s.tracks.get(role, empty_events()) for role in TRACKS] for s in songs.values()]
    return {"midi": np.asarray(list(songs), dtype=str),
            "notes": np.concatenate([np.concatenate(t) for t in events]) if songs else empty_events(),
            "role": np.concatenate([np.repeat(np.arange(len(TRACKS), dtype=np.int8), [len(e) for e in t])
                                    for t in events]) if songs else np.zeros(0, np.int8),
            "first_note": np.r_[0, np.cumsum([sum(len(e) for e in t) for t in events])].astype(np.int64),
            "ticks_per_quarter": np.asarray([s.ticks_per_quarter for s in songs.values()], dtype=np.int64),
            "tempo_bpm": np.asarray([s.tempo_bpm for s in songs.values()], dtype=np.float64),
            "time_signature": np.asarray([s.time_signature for s in songs.values()], dtype=np.int64).reshape(-1, 2),
            "programs": np.asarray([[s.programs.get(r, -1) for r in TRACKS] for s in songs.values()],
                                   dtype=np.int64).reshape(-1, len(TRACKS))}


def unpack_songs(a: dict[str, np.ndarray]) -> dict[str, Song]:
    songs = {}
    for i, name in enumerate(a["midi"].tolist()):
        notes, role = (x[a["first_note"][i]:a["first_note"][i + 1]] for x in (a["notes"], a["role"]))
        songs[name] = Song({r: notes[role == k] for k, r in enumerate(TRACKS)}, int(a["ticks_per_quarter"][i]),
                           float(a["tempo_bpm"][i]), tuple(a["time_signature"][i].tolist()),
                           {r: int(p) for r, p in zip(TRACKS, a["programs"][i]) if p >= 0})
    return songs
