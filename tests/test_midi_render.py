"""Song <-> MIDI: round trips over a grid of songs, and cross-checks with mido and pretty_midi."""

from __future__ import annotations

from dataclasses import replace

import mido
import pretty_midi
import pytest

from llmusic.midi import read_midi, song_to_score, write_midi
from llmusic.midi.synthetic import random_song
from llmusic.song import TRACKS, Song
from tests.helpers import constraint_set

PAPER = constraint_set("paper")
RELAXED = constraint_set("relaxed")


def dense_chords() -> Song:
    """Stacked chords, repeated and overlapping same-pitch notes: what one MIDI track cannot hold."""
    chords = [(p, 960, 90, s) for s in range(0, 7681, 480) for p in (48, 52, 55, 60, 64)]
    chords += [(60, 480, 70, 0), (60, 240, 50, 0), (60, 960, 40, 240)]  # same pitch, same/overlapping start
    return Song({"melody": [(72, 480, 100, 0)], "chords": chords, "bass": [(36, 1920, 80, 0)],
                 "rhythm": [(42, 240, 60, s) for s in range(0, 7681, 240)] + [(42, 480, 127, 0)]})


def drums_only_hits() -> Song:
    kicks = [(35, 240, 120, s) for s in range(0, 7681, 960)]
    snares = [(38, 240, 110, s) for s in range(480, 7681, 960)]
    return Song({"melody": [], "chords": [], "bass": [], "rhythm": kicks + snares})


def edge_ticks() -> Song:
    """Notes at tick 0 and at the last allowed start (time_span_ticks), shortest and longest lengths."""
    span = PAPER.time_span_ticks
    return Song({"melody": [(0, 1, 1, 0), (127, 960, 127, span)], "chords": [(60, 240, 64, span)],
                 "bass": [(28, 30720, 80, 0)], "rhythm": [(42, 240, 100, span), (35, 240, 100, 0)]})


def plain_song() -> Song:
    """No two notes of one pitch overlap in a track, so each role is one MIDI track."""
    return Song({"melody": [(72 + i % 5, 240, 90, 240 * i) for i in range(16)],
                 "chords": [(p, 960, 70, s) for s in range(0, 7680, 960) for p in (48, 52, 55)],
                 "bass": [(36, 480, 100, s) for s in range(0, 7680, 960)],
                 "rhythm": [(35 if i % 2 == 0 else 38, 240, 110, 480 * i) for i in range(16)]})


SONGS = {
    **{f"paper_seed{seed}": (lambda seed=seed: random_song(seed, PAPER)) for seed in range(4)},
    **{f"relaxed_{meter.replace('/', '_')}_seed{seed}":
       (lambda seed=seed, meter=meter: random_song(seed, replace(RELAXED, time_signatures=(meter,))))
       for meter in RELAXED.time_signatures for seed in range(2)},
    "dense_chords": dense_chords,
    "drums": drums_only_hits,
    "edge_ticks": edge_ticks,
    "plain": plain_song,
}


@pytest.mark.parametrize("make_song", SONGS.values(), ids=SONGS.keys())
def test_round_trip(make_song, tmp_path):
    song = make_song()
    path = tmp_path / "song.mid"
    write_midi(song, path)
    back = read_midi(path)
    assert back.equals(song)
    assert back.ticks_per_quarter == song.ticks_per_quarter
    assert back.tempo_bpm == song.tempo_bpm
    assert back.time_signature == song.time_signature
    pitched = [role for role in TRACKS if role != "rhythm" and len(song.tracks[role])]
    assert {role: back.programs[role] for role in pitched} == {role: song.programs[role] for role in pitched}


def test_relaxed_songs_choose_meters_and_programs():
    songs = [random_song(seed, RELAXED) for seed in range(30)]
    assert {s.time_signature for s in songs} == {(4, 4), (3, 4), (6, 8)}
    assert all(s.programs != RELAXED.programs for s in songs)


def test_chord_keeps_its_start_in_the_file(tmp_path):
    """The official writer plays a chord at ticks 0, 960, 1920; ours keeps all three at tick 0."""
    song = Song({"melody": [], "chords": [(60, 960, 80, 0), (64, 960, 80, 0), (67, 960, 80, 0)],
                 "bass": [], "rhythm": []})
    path = tmp_path / "chord.mid"
    write_midi(song, path)
    track = next(t for t in mido.MidiFile(path).tracks if t.name == "chords")
    tick, onsets, offsets = 0, [], []
    for msg in track:
        tick += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            onsets.append((msg.note, tick))
        elif msg.type == "note_off":
            offsets.append((msg.note, tick))
    assert sorted(onsets) == [(60, 0), (64, 0), (67, 0)]
    assert sorted(offsets) == [(60, 960), (64, 960), (67, 960)]


def test_file_layout_read_with_mido(tmp_path):
    song = plain_song()
    path = tmp_path / "song.mid"
    write_midi(song, path)
    midi = mido.MidiFile(path)
    assert midi.type == 1 and midi.ticks_per_beat == 480
    meta = [msg for track in midi.tracks for msg in track if msg.is_meta]
    assert [m.tempo for m in meta if m.type == "set_tempo"] == [500_000]  # 120 BPM
    assert [(m.numerator, m.denominator) for m in meta if m.type == "time_signature"] == [(4, 4)]
    channels, programs = {}, {}
    for track in midi.tracks:
        for msg in track:
            if msg.type in ("note_on", "note_off"):
                channels.setdefault(track.name, set()).add(msg.channel)
            elif msg.type == "program_change":
                programs[track.name] = msg.program
    assert set(channels) == set(TRACKS)  # track names are role names
    assert all(len(c) == 1 for c in channels.values())
    assert channels["rhythm"] == {9}  # GM drum channel
    pitched = [next(iter(channels[role])) for role in ("melody", "chords", "bass")]
    assert len(set(pitched)) == 3 and 9 not in pitched  # each pitched track on its own channel
    assert {role: programs[role] for role in ("melody", "chords", "bass")} == song.programs


def test_pretty_midi_reads_the_same_notes_in_seconds(tmp_path):
    song = random_song(3, PAPER)
    path = tmp_path / "song.mid"
    write_midi(song, path)
    pm = pretty_midi.PrettyMIDI(str(path))
    seconds_per_tick = 60 / 120 / 480
    by_name: dict[str, list] = {}
    for inst in pm.instruments:
        by_name.setdefault(inst.name, []).extend(inst.notes)
        assert inst.is_drum == (inst.name == "rhythm")
        assert inst.is_drum or inst.program == song.programs[inst.name]
    for role, events in song.tracks.items():
        got = sorted((n.pitch, round(n.start, 6), round(n.end, 6), n.velocity) for n in by_name[role])
        want = sorted((int(p), round(s * seconds_per_tick, 6), round((s + d) * seconds_per_tick, 6), int(v))
                      for p, d, v, s in events)
        assert got == want


def test_velocity_zero_is_written_as_one(tmp_path):
    song = Song({"melody": [(60, 480, 0, 0)], "chords": [], "bass": [], "rhythm": []})
    write_midi(song, tmp_path / "v0.mid")
    assert read_midi(tmp_path / "v0.mid").tracks["melody"].tolist() == [[60, 480, 1, 0]]


@pytest.mark.parametrize("event", [(128, 480, 80, 0), (-1, 480, 80, 0), (60, 480, 200, 0), (60, -5, 80, 0),
                                   (60, 480, 80, -240)])
def test_out_of_range_values_are_refused(event):
    with pytest.raises(ValueError, match="out of range"):
        song_to_score(Song({"melody": [event], "chords": [], "bass": [], "rhythm": []}))


def test_read_midi_refuses_foreign_files(shared_data):
    path = next((shared_data / "lmd_subset" / "midi").glob("*.mid"))
    with pytest.raises(ValueError, match="not a role"):
        read_midi(path)


def test_overlapping_same_pitch_notes_go_to_layers_on_their_own_channels(tmp_path):
    song = dense_chords()
    score = song_to_score(song)
    names = [t.name for t in score.tracks]
    assert names.count("chords") >= 2 and names.count("rhythm") >= 2
    write_midi(song, tmp_path / "dense.mid")
    chords = [t for t in mido.MidiFile(tmp_path / "dense.mid").tracks if t.name == "chords"]
    channels = [{m.channel for m in track if m.type == "note_on"} for track in chords]
    assert all(len(c) == 1 for c in channels) and len(set.union(*channels)) == len(chords)
    pm = pretty_midi.PrettyMIDI(str(tmp_path / "dense.mid"))
    assert sum(len(i.notes) for i in pm.instruments if i.name == "chords") == len(song.tracks["chords"])
