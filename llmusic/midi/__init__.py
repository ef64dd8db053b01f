"""MIDI: Song <-> file rendering, track roles of real files, piano rolls and windows."""

from llmusic.midi.io import MidiSkip, load_score
from llmusic.midi.pianoroll import Windows, midi_windows, song_pianoroll, spread_per_owner
from llmusic.midi.render import read_midi, score_to_song, song_to_score, write_midi
from llmusic.midi.roles import assign_roles

__all__ = ["MidiSkip", "Windows", "assign_roles", "load_score", "midi_windows", "read_midi", "score_to_song",
           "song_pianoroll", "song_to_score", "spread_per_owner", "write_midi"]
