"""render=official: the official writer's MIDI file, read back note for note against its rules,
its layout read with mido, its tracks mapped to roles, and an official-mode run read as data."""

from __future__ import annotations

import json

import mido
import numpy as np
import pytest
import symusic

from llmusic.data.phrases import LlmMidiPhrases
from llmusic.midi import assign_roles, load_score, read_midi, song_pianoroll
from llmusic.midi.official import OfficialRenderer
from llmusic.midi.render import PolyphonicRenderer
from llmusic.midi.synthetic import random_song
from llmusic.parse import parse_reply
from llmusic.song import DURATION, START, Song
from tests.helpers import build_dataset, constraint_set, official_file_notes, run_generate

PAPER = constraint_set("paper")
WRITE = OfficialRenderer().write


def file_notes(path) -> dict[str, list[tuple[int, int, int, int]]]:
    """(time, duration, pitch, velocity) per named track, as symusic reads the file."""
    return {track.name: sorted((n.time, n.duration, n.pitch, n.velocity) for n in track.notes)
            for track in symusic.Score(str(path)).tracks}


def test_a_chord_comes_out_as_a_sequence_and_later_notes_drift(tmp_path):
    chord = [(60, 960, 80, 0), (64, 960, 80, 0), (67, 960, 80, 0), (72, 480, 80, 960)]
    song = Song({"melody": [(72, 480, 90, 0), (74, 480, 90, 1920)], "chords": chord, "bass": [(36, 960, 90, 0)],
                 "rhythm": [(35, 240, 100, 0), (38, 240, 100, 0)]})
    WRITE(song, tmp_path / "chord.mid")
    notes = file_notes(tmp_path / "chord.mid")
    # The chord's notes one after another; the note asked at 960 starts where the chord ended.
    assert notes["chords"] == [(0, 960, 60, 80), (960, 960, 64, 80), (1920, 960, 67, 80), (2880, 480, 72, 80)]
    assert notes["melody"] == [(0, 480, 72, 90), (1920, 480, 74, 90)]  # a line with a gap keeps its times
    assert notes["rhythm"] == [(0, 240, 35, 100), (240, 240, 38, 100)]


def unsorted_ties_and_silence() -> Song:
    """Events out of order, ties on a start (kept in reply order), a velocity-0 note (lost)."""
    return Song({"melody": [(74, 480, 80, 960), (72, 480, 80, 0), (76, 240, 0, 1440), (77, 960, 70, 1440)],
                 "chords": [(55, 960, 60, 3840), (48, 960, 60, 0), (52, 240, 60, 0), (60, 480, 60, 7680)],
                 "bass": [], "rhythm": [(42, 240, 90, 480 * i) for i in range(16)] + [(35, 240, 127, 0)]})


SONGS = {**{f"paper_seed{seed}": (lambda seed=seed: random_song(seed, PAPER)) for seed in range(6)},
         "unsorted_ties_and_silence": unsorted_ties_and_silence}


@pytest.mark.parametrize("name", SONGS)
def test_file_holds_the_official_writers_notes(name, tmp_path):
    song = SONGS[name]()
    WRITE(song, tmp_path / "song.mid")
    notes = file_notes(tmp_path / "song.mid")
    expected = {role: official_file_notes(events.tolist()) for role, events in song.tracks.items()}
    assert notes == {role: n for role, n in expected.items() if n}  # symusic drops a track without notes
    back = read_midi(tmp_path / "song.mid")  # the song the file holds: drifted, never overlapping
    for role, events in back.tracks.items():
        order = np.argsort(events[:, START], kind="stable")
        got = [(s, d, p, v) for p, d, v, s in events[order].tolist()]
        assert got == expected[role]
        ends = events[order, START] + events[order, DURATION]
        assert (events[order, START][1:] >= ends[:-1]).all()  # a part's notes never overlap


def test_layout_read_with_mido(tmp_path):
    song = random_song(0, PAPER)
    WRITE(song, tmp_path / "song.mid")
    mid = mido.MidiFile(tmp_path / "song.mid")
    assert (mid.type, mid.ticks_per_beat, len(mid.tracks)) == (1, 480, 5)
    meta = [m for m in mid.tracks[0] if m.type != "end_of_track"]
    assert [(m.type, getattr(m, "tempo", None)) for m in meta] == [("set_tempo", 500000), ("time_signature", None)]
    assert (meta[1].numerator, meta[1].denominator) == (4, 4)
    for track, role in zip(mid.tracks[1:], song.tracks):
        assert track[0].type == "track_name" and track[0].name == role
        programs = [(m.program, m.channel) for m in track if m.type == "program_change"]
        channels = {m.channel for m in track if m.type in ("note_on", "note_off")}
        if role == "rhythm":
            assert programs == [] and channels == {9}
        else:
            assert programs == [({"melody": 0, "chords": 0, "bass": 33}[role], 0)] and channels == {0}
        kinds = [m.type for m in track if m.type in ("note_on", "note_off")]
        assert kinds == ["note_on", "note_off"] * len(song.tracks[role])  # strictly one note at a time


def test_values_midi_cannot_hold_are_refused(tmp_path):
    with pytest.raises(ValueError):
        WRITE(Song({"melody": [(128, 480, 80, 0)], "chords": [], "bass": [], "rhythm": []}), tmp_path / "x.mid")


def strip_track_names(src, dst) -> None:
    """The file as the official program wrote it: the same, without track names."""
    mid = mido.MidiFile(src)
    for track in mid.tracks:
        track[:] = [m for m in track if m.type != "track_name"]
    mid.save(dst)


def test_roles_of_official_files(tmp_path):
    """Named by role, an official-mode file maps back exactly, whatever the pitches. Without names
    (the official program's own files), rhythm is found by its channel, bass by program 33, and the
    higher of the two piano parts is taken for the melody: right when the melody lies above the
    chords, swapped when the LLM put the chords above it."""
    low_chords = Song({"melody": [(76, 480, 80, 480 * i) for i in range(8)],
                       "chords": [(p, 960, 70, 0) for p in (48, 52, 55)], "bass": [(36, 960, 90, 0)],
                       "rhythm": [(35, 240, 100, 0)]})
    high_chords = Song({**low_chords.tracks, "chords": [(p, 960, 70, 0) for p in (84, 88, 91)]})
    for name, song in (("low", low_chords), ("high", high_chords)):
        WRITE(song, tmp_path / f"{name}.mid")
        named = load_score(tmp_path / f"{name}.mid")
        assert {role: [named.tracks[i].name for i in idx] for role, idx in assign_roles(named).items()} == \
            {"melody": ["melody"], "chords": ["chords"], "bass": ["bass"], "rhythm": ["rhythm"]}
        strip_track_names(tmp_path / f"{name}.mid", tmp_path / f"{name}_unnamed.mid")
        unnamed = load_score(tmp_path / f"{name}_unnamed.mid")
        assert [t.name for t in unnamed.tracks] == ["", "", "", ""]
        # tracks in the song's order: 0 melody, 1 chords, 2 bass, 3 rhythm
        expected = {"melody": [0], "chords": [1]} if name == "low" else {"melody": [1], "chords": [0]}
        assert assign_roles(unnamed) == {**expected, "bass": [2], "rhythm": [3]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """The same baseline songs generated in the default mode and in the official mode."""
    grid = ["taxonomy.genres=[Pop,Jazz,Metal]", "taxonomy.styles=[Swing,Waltz]", "n_per_combo=2"]
    out = {}
    for mode, overrides in (("default", []), ("official", ["preset=official"])):
        out[mode] = tmp_path_factory.mktemp(mode)
        run_generate(out[mode], *grid, *overrides)
    return out


def test_an_official_mode_run_is_read_as_data_as_its_files_hold_it(runs):
    official = build_dataset("llm_midi", f"dataset.out_dir={runs['official']}",
                             f"dataset.cache_dir={runs['official'] / 'cache'}")
    from_song = build_dataset("llm_midi", f"dataset.out_dir={runs['official']}", "dataset.from_song=true",
                              f"dataset.cache_dir={runs['official'] / 'cache'}")
    default = build_dataset("llm_midi", f"dataset.out_dir={runs['default']}",
                            f"dataset.cache_dir={runs['default'] / 'cache'}")
    assert len(official) == len(from_song) == len(default) == 12 and official.skipped == {}
    assert official.classes == ["Pop", "Jazz", "Metal"]
    for i, path in enumerate(official.song_paths):
        x = official[i][0]
        song_roll = song_pianoroll(read_midi(path), PAPER.time_span_ticks)  # the file's own (drifted) notes
        assert np.array_equal(x.numpy(), song_roll) and np.array_equal(x.numpy(), from_song[i][0].numpy())
        # Official files play one note at a time per part (channels: TRACKS order): chords are gone.
        assert x[1].sum(0).max() <= 1 and x[0].sum(0).max() <= 1
    assert max(float(default[i][0][1].sum(0).max()) for i in range(len(default))) >= 3  # stacked chords
    phrases = LlmMidiPhrases(runs["official"]).songs()  # the melody student's source reads them too
    assert len(phrases) == 12 and all(p.phrases.shape[0] == 2 for p in phrases)


def test_both_modes_keep_the_same_replies_and_differ_as_the_writers_do(runs):
    """Only the reading and the writing differ: the baseline's replies are strict JSON, so both modes
    keep every song; the default file holds the reply's notes, the official one the writer's."""
    replies = [json.loads(line) for line in (runs["official"] / "replies.jsonl").read_text().splitlines()]
    assert len(replies) == 12
    for reply in replies:
        rel = f"midi/{reply['genre']}__{reply['style']}/{reply['index']}.mid"
        song = parse_reply(reply["text"], PAPER, "official").song
        assert read_midi(runs["default"] / rel).equals(song)
        notes = file_notes(runs["official"] / rel)
        assert notes == {role: official_file_notes(events.tolist()) for role, events in song.tracks.items()
                         if len(events)}


def test_renderers_are_named_and_marked():
    assert (PolyphonicRenderer().name, PolyphonicRenderer.official) == ("polyphonic", False)
    assert (OfficialRenderer().name, OfficialRenderer.official) == ("official", True)
