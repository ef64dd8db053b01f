"""Note-statistics features: exact values on hand-made songs, one definition for songs and real
windows (a rendered song read back as a real file gives the same row), real files from the LMD subset."""

from __future__ import annotations

import numpy as np
import pytest

from llmusic.midi import MidiSkip, load_score, midi_windows, song_to_score
from llmusic.midi.features import (COLUMN, DURATION_BINS, FEATURE_GROUPS, FEATURE_NAMES, files_features,
                                   song_features, window_features)
from llmusic.midi.synthetic import random_song
from llmusic.song import Song
from tests.helpers import constraint_set

SPAN, TPQ = 7680, 480  # the paper constraint set: 4 bars of 4/4
C_MAJOR_SCALE = [60, 62, 64, 65, 67, 69, 71, 72]


def scale_song(tonic: int = 0, duration: int = TPQ) -> Song:
    """A major scale from middle C + tonic, one note per quarter (or per `duration`)."""
    return Song({"melody": [(p + tonic, duration, 80, i * duration) for i, p in enumerate(C_MAJOR_SCALE)]})


def values(row: np.ndarray, prefix: str) -> np.ndarray:
    return row[[i for i, name in enumerate(FEATURE_NAMES) if name.startswith(prefix)]]


def test_names_are_unique_and_grouped():
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES) == len(FEATURE_GROUPS) == 86
    assert FEATURE_GROUPS.count("pitch_class") == 14 and FEATURE_GROUPS.count("onset_drums") == 16


def test_c_major_scale_in_quarter_notes():
    row = song_features(scale_song(), SPAN, TPQ)
    assert row.dtype == np.float32 and row.shape == (len(FEATURE_NAMES),)
    # C twice, the other six degrees once; nothing off the scale.
    np.testing.assert_array_equal(values(row, "pitch_class_"), np.array([2, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1]) / 8)
    assert row[COLUMN["distinct_pitch_classes"]] == 7
    np.testing.assert_array_equal(values(row, "duration_"), [0, 0, 0, 1, 0, 0, 0, 0, 0])
    # Two half steps (E-F, B-C) and five whole steps.
    np.testing.assert_allclose(values(row, "melody_interval_"), [0, 2 / 7, 5 / 7] + [0] * 8, rtol=1e-6)
    onsets = np.zeros(16)
    onsets[[0, 4, 8, 12]] = 0.25  # every beat of the two bars
    np.testing.assert_array_equal(values(row, "onset_pitched_"), onsets)
    assert not values(row, "onset_drums_").any() and not values(row, "drum_").any()
    assert row[COLUMN["melody_pitch_mean"]] == np.mean(C_MAJOR_SCALE) and row[COLUMN["melody_pitch_range"]] == 12
    assert np.isnan(row[COLUMN["chords_pitch_mean"]]) and np.isnan(row[COLUMN["bass_pitch_range"]])
    assert row[COLUMN["melody_notes_per_bar"]] == 2 and row[COLUMN["rhythm_notes_per_bar"]] == 0
    assert row[COLUMN["polyphony"]] == 1
    assert (row[COLUMN["velocity_mean"]], row[COLUMN["velocity_sd"]]) == (80, 0)


@pytest.mark.parametrize("tonic", range(-5, 7))
def test_the_key_is_normalised_the_register_is_not(tonic):
    base, moved = song_features(scale_song(), SPAN, TPQ), song_features(scale_song(tonic), SPAN, TPQ)
    pitch_class = [i for i, g in enumerate(FEATURE_GROUPS) if g == "pitch_class"]
    np.testing.assert_array_equal(moved[pitch_class], base[pitch_class])
    assert moved[COLUMN["melody_pitch_mean"]] == base[COLUMN["melody_pitch_mean"]] + tonic


@pytest.mark.parametrize("beats, name", [(0.25, "16th"), (0.5, "8th"), (0.75, "dotted_8th"), (1, "quarter"),
                                         (1.5, "dotted_quarter"), (2, "half"), (3, "dotted_half"), (4, "whole"),
                                         (6, "longer")])
def test_each_named_duration_has_its_bin(beats, name):
    row = song_features(scale_song(duration=int(beats * TPQ)), 16 * SPAN, TPQ)
    assert row[COLUMN[f"duration_{name}"]] == 1 and values(row, "duration_").sum() == 1
    assert name in DURATION_BINS


def test_chords_drums_polyphony_and_velocity():
    song = Song({
        "chords": [(p, 4 * TPQ, 60, 0) for p in (48, 52, 55)] + [(p, 2 * TPQ, 60, 4 * TPQ) for p in (53, 57, 60)],
        "melody": [(72, TPQ, 100, 0)],
        "rhythm": [(36, 120, 90, 0), (38, 120, 90, TPQ), (42, 120, 90, TPQ // 2), (46, 120, 90, 3 * TPQ // 2),
                   (49, 120, 90, 0), (45, 120, 90, 3 * TPQ), (76, 120, 90, 3 * TPQ), (100, 120, 90, 2 * TPQ)],
    })
    row = song_features(song, SPAN, TPQ)
    # Sounding time: 3 x 4 beats + 3 x 2 beats + 1 beat = 19 beats over the 6 beats something sounds.
    assert row[COLUMN["polyphony"]] == pytest.approx(19 / 6)
    assert row[COLUMN["chords_pitch_range"]] == 12 and row[COLUMN["chords_pitch_mean"]] == pytest.approx(325 / 6)
    assert row[COLUMN["rhythm_notes_per_bar"]] == 2 and row[COLUMN["chords_notes_per_bar"]] == 1.5
    # kick, snare, closed and open hi-hat, crash, tom, a woodblock (76) and pitch 100 (outside the kit)
    np.testing.assert_allclose(values(row, "drum_"), np.array([1, 1, 1, 1, 1, 1, 2]) / 8)
    onsets = np.zeros(16)
    np.add.at(onsets, [0, 4, 2, 6, 0, 12, 12, 8], 1 / 8)
    np.testing.assert_allclose(values(row, "onset_drums_"), onsets)
    velocities = np.array([60] * 6 + [100] + [90] * 8)
    assert row[COLUMN["velocity_mean"]] == pytest.approx(velocities.mean())
    assert row[COLUMN["velocity_sd"]] == pytest.approx(velocities.std(), rel=1e-5)


def test_notes_past_the_span_are_left_out_and_a_song_without_pitched_notes_is_skipped():
    inside = song_features(scale_song(), SPAN, TPQ)
    late = scale_song()
    late.tracks["melody"] = np.concatenate([late.tracks["melody"], [[30, 480, 80, SPAN]]]).astype(np.int32)
    np.testing.assert_array_equal(song_features(late, SPAN, TPQ), inside)
    # The span is the constraint set's: a song written at another resolution covers the same quarters.
    fine = Song({"melody": scale_song().tracks["melody"] * [1, 2, 1, 2]}, ticks_per_quarter=2 * TPQ)
    np.testing.assert_array_equal(song_features(fine, SPAN, TPQ), inside)
    with pytest.raises(MidiSkip, match="no_notes"):
        song_features(Song({"rhythm": [(36, 120, 90, 0)]}), SPAN, TPQ)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("constraints", ["paper", "paper_consistent"])
def test_a_song_read_back_as_a_real_file_gives_the_same_row(seed, constraints):
    """One definition: song_features of a song == window_features of its MIDI file (roles by assign_roles)."""
    cs = constraint_set(constraints)
    song = random_song(seed, cs)
    keep = {role: ev[ev[:, 3] < cs.time_span_ticks] for role, ev in song.tracks.items()}  # one window only
    song = Song(keep, ticks_per_quarter=song.ticks_per_quarter, programs=song.programs)
    rows, starts = window_features(song_to_score(song), cs.time_span_ticks, cs.ticks_per_quarter)
    assert starts.tolist() == [0]
    np.testing.assert_array_equal(rows[0], song_features(song, cs.time_span_ticks, cs.ticks_per_quarter))


def test_windows_of_a_longer_file_and_overlapping_windows():
    """Three windows of a song repeated three times (each a transposed copy); a hop of a bar gives
    every window that starts on a bar line, each with the notes whose onsets it holds."""
    first = random_song(7, constraint_set("paper"))
    first.tracks = {r: ev[ev[:, 3] < SPAN] for r, ev in first.tracks.items()}
    copies = {r: np.concatenate([ev + [0 if r == "rhythm" else k, 0, 0, k * SPAN] for k in range(3)])
              for r, ev in first.tracks.items()}
    long_song = Song(copies, programs=first.programs)
    rows, starts = window_features(song_to_score(long_song), SPAN, TPQ)
    assert starts.tolist() == [0, SPAN, 2 * SPAN]
    for k in range(3):
        copy = Song({r: ev + [0 if r == "rhythm" else k, 0, 0, 0] for r, ev in first.tracks.items()})
        np.testing.assert_array_equal(rows[k], song_features(copy, SPAN, TPQ))
    overlapping, bar_starts = window_features(song_to_score(long_song), SPAN, TPQ, hop_quarters=4)
    assert set(range(0, 2 * SPAN + 1, 4 * TPQ)) <= set(bar_starts.tolist()) <= set(range(0, 3 * SPAN, 4 * TPQ))
    np.testing.assert_array_equal(overlapping[np.isin(bar_starts, starts)], rows)


@pytest.fixture(scope="module")
def lmd_paths(shared_data):
    return sorted((shared_data / "lmd_subset" / "midi").glob("*.mid"))[:40]


def test_real_files(lmd_paths):
    found = files_features(lmd_paths, SPAN, TPQ)
    assert found.features.shape == (len(found.owner), len(FEATURE_NAMES)) and len(found.owner) > 40 * 5
    assert len(found.reasons) == len(lmd_paths)
    assert sum(found.skipped().values()) == np.count_nonzero(found.reasons != "")
    x = found.features
    assert not np.isinf(x).any()
    nan_columns = {FEATURE_NAMES[i] for i in np.flatnonzero(np.isnan(x).any(0))}
    register = {f"{r}_pitch_{s}" for r in ("melody", "chords", "bass") for s in ("mean", "range")}
    assert nan_columns <= register | {"key_clarity"}
    for group in ("pitch_class", "melody_interval", "duration", "onset_pitched", "onset_drums", "drums"):
        shares = x[:, [i for i, g in enumerate(FEATURE_GROUPS) if g == group]]
        shares = shares[:, :12] if group == "pitch_class" else shares
        assert np.all(np.isclose(shares.sum(1), 1, atol=1e-5) | (shares.sum(1) == 0)), group
    assert (x[:, COLUMN["pitch_class_C"]] + x[:, COLUMN["pitch_class_A"]]).mean() > 2 / 12  # tonics moved there
    assert (x[:, COLUMN["polyphony"]] >= 1).all()
    # The same windows as the rolls, less any whose pitched notes all started before it.
    for i in np.unique(found.owner)[:10]:
        _, roll_starts = midi_windows(load_score(lmd_paths[i]), SPAN, TPQ)
        starts = found.starts[found.owner == i]
        assert set(starts) <= set(roll_starts) and len(starts) >= 0.9 * len(roll_starts)


def test_unreadable_and_empty_files_are_counted(tmp_path):
    (tmp_path / "broken.mid").write_bytes(b"MThd not really")
    song_to_score(Song({"rhythm": [(36, 120, 90, 0)]})).dump_midi(str(tmp_path / "drums.mid"))
    song_to_score(scale_song()).dump_midi(str(tmp_path / "scale.mid"))
    found = files_features([tmp_path / "broken.mid", tmp_path / "drums.mid", tmp_path / "scale.mid"], SPAN, TPQ)
    assert found.reasons.tolist() == ["unreadable", "no_notes", ""] and found.owner.tolist() == [2]
    assert found.skipped() == {"no_notes": 1, "unreadable": 1}
