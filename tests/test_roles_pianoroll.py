"""Piano rolls of songs, track roles and windows of real MIDI files (the 550 LMD files)."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import symusic

from llmusic.midi import (MidiSkip, assign_roles, load_score, midi_windows, song_pianoroll, spread_per_owner,
                          write_midi)
from llmusic.midi.synthetic import random_song
from llmusic.song import TRACKS, Song
from tests.helpers import constraint_set

PAPER = constraint_set("paper")


def reference_roll(song: Song, span: int, steps: int) -> np.ndarray:
    """Note by note, the definition in llmusic.midi.pianoroll's docstring."""
    roll = np.zeros((4, 128, steps), np.float32)
    step = span / steps
    for c, role in enumerate(TRACKS):
        for p, d, _, s in song.tracks[role].tolist():
            on, off = int(np.floor(s / step + 0.5)), int(np.floor((s + d) / step + 0.5))
            roll[c, p, on:max(off, on + 1)] = 1.0
    return roll


# ---------------------------------------------------------------- song piano rolls
def test_paper_grid_is_a_32nd_note_over_4_bars():
    song = Song({"melody": [(60, 480, 100, 480)], "chords": [(64, 960, 80, 7200)],
                 "bass": [(40, 240, 90, 7680)], "rhythm": [(42, 60, 70, 0)]})
    roll = song_pianoroll(song, PAPER.time_span_ticks)
    assert roll.shape == (4, 128, 128) and roll.dtype == np.float32
    assert np.flatnonzero(roll[0, 60]).tolist() == list(range(8, 16))  # a quarter note = 8 steps of 60 ticks
    assert np.flatnonzero(roll[1, 64]).tolist() == list(range(120, 128))  # cut at the end of the span
    assert not roll[2].any()  # starts at time_span_ticks: outside the roll
    assert np.flatnonzero(roll[3, 42]).tolist() == [0]
    assert set(np.unique(roll)) == {0.0, 1.0}


@pytest.mark.parametrize("steps", [32, 128, 256])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("span", [7680, 15360, 1000])
def test_song_roll_matches_the_note_by_note_definition(seed, span, steps):
    song = random_song(seed, PAPER)
    assert np.array_equal(song_pianoroll(song, span, steps), reference_roll(song, span, steps))


def test_velocity_roll_keeps_the_loudest_overlapping_note():
    song = Song({"melody": [(60, 960, 127, 0), (60, 480, 20, 0), (62, 240, 64, 0)], "chords": [], "bass": [],
                 "rhythm": []})
    roll = song_pianoroll(song, 7680, velocity=True)
    assert roll[0, 60, :16].tolist() == [1.0] * 16
    assert roll[0, 62, :4] == pytest.approx(64 / 127)
    assert np.array_equal(roll > 0, song_pianoroll(song, 7680) > 0)


def test_short_and_off_grid_notes_still_sound():
    song = Song({"melody": [(60, 1, 80, 29), (61, 1, 80, 31), (62, 110, 80, 100)], "chords": [], "bass": [],
                 "rhythm": []})
    roll = song_pianoroll(song, 7680)
    assert [np.flatnonzero(roll[0, p]).tolist() for p in (60, 61, 62)] == [[0], [1], [2, 3]]


# ---------------------------------------------------------------- roles on constructed scores
def make_score(tracks: list[tuple[str, int, bool, list[tuple[int, int, int]]]]) -> symusic.Score:
    """(name, program, is_drum, [(start, duration, pitch)]) -> a Score at 480 ticks per quarter."""
    score = symusic.Score(480)
    for name, program, is_drum, notes in tracks:
        track = symusic.Track(name, program, is_drum)
        for start, duration, pitch in notes:
            track.notes.append(symusic.Note(start, duration, pitch, 90))
        score.tracks.append(track)
    return score


def line(low: int, n: int = 16) -> list[tuple[int, int, int]]:
    return [(480 * i, 480, low + i % 7) for i in range(n)]


def block_chords(low: int, n: int = 8) -> list[tuple[int, int, int]]:
    return [(960 * i, 960, low + k) for i in range(n) for k in (0, 4, 7)]


DRUMS = [(240 * i, 120, 36 + i % 3 * 2) for i in range(32)]
ROLE_CASES = {
    "drums_piano_bass_program": ([("Drums", 0, True, DRUMS), ("Piano", 0, False, block_chords(60)),
                                  ("Finger", 33, False, line(36)), ("Flute", 73, False, line(72))],
                                 {"rhythm": [0], "chords": [1], "bass": [2], "melody": [3]}),
    "melody_by_name_even_if_low": ([("Lead Vocal", 52, False, line(48)), ("Strings", 48, False, line(70)),
                                    ("Bass", 0, False, line(30))],
                                   {"melody": [0], "bass": [2], "chords": [1], "rhythm": []}),
    "bass_by_lowest_register": ([("Piano", 0, False, block_chords(60)), ("Synth", 81, False, line(31)),
                                 ("Guitar", 25, False, line(76))],
                                {"bass": [1], "melody": [2], "chords": [0], "rhythm": []}),
    "no_bass_when_the_lowest_is_high": ([("Piano", 0, False, block_chords(60)),
                                         ("Flute", 73, False, line(76))],
                                        {"bass": [], "melody": [1], "chords": [0], "rhythm": []}),
    "single_piano_is_melody_if_monophonic": ([("Piano", 0, False, line(40))],
                                             {"melody": [0], "bass": [], "chords": [], "rhythm": []}),
    "polyphonic_only_means_no_melody": ([("Piano", 0, False, block_chords(60)),
                                         ("Organ", 16, False, block_chords(48))],
                                        {"melody": [], "bass": [1], "chords": [0], "rhythm": []}),
    "empty_tracks_ignored": ([("Melody", 0, False, []), ("Drums", 0, True, []), ("Sax", 65, False, line(70)),
                              ("Piano", 0, False, block_chords(50))],
                             {"melody": [2], "bass": [3], "chords": [], "rhythm": []}),
    "bassoon_is_not_bass": ([("Bassoon", 70, False, line(50)), ("Violin", 40, False, line(80)),
                             ("Piano", 0, False, block_chords(40))],
                            {"bass": [2], "melody": [1], "chords": [0], "rhythm": []}),
    "own_role_names_win_over_programs": ([("melody", 0, False, line(60)),
                                          ("chords", 33, False, block_chords(50)),
                                          ("bass", 0, False, line(36)), ("rhythm", 0, True, DRUMS)],
                                         {"melody": [0], "chords": [1], "bass": [2], "rhythm": [3]}),
}


@pytest.mark.parametrize("tracks, expected", ROLE_CASES.values(), ids=ROLE_CASES.keys())
def test_assign_roles_on_constructed_scores(tracks, expected):
    roles = assign_roles(make_score(tracks))
    assert {role: sorted(i) for role, i in roles.items()} == expected


def test_own_files_map_back_to_their_roles(tmp_path):
    song = random_song(5, PAPER)
    write_midi(song, tmp_path / "song.mid")
    score = load_score(tmp_path / "song.mid")
    roles = assign_roles(score)
    assert all(score.tracks[i].name == role for role, indices in roles.items() for i in indices)
    assert sum(len(indices) for indices in roles.values()) == len(score.tracks)


def test_window_of_a_rendered_song_is_its_roll(tmp_path):
    song = random_song(11, PAPER)
    write_midi(song, tmp_path / "song.mid")
    windows, starts, _ = midi_windows(load_score(tmp_path / "song.mid"), PAPER.time_span_ticks, PAPER.ticks_per_quarter)
    assert starts[0] == 0
    assert np.array_equal(windows[0], song_pianoroll(song, PAPER.time_span_ticks))


# ---------------------------------------------------------------- windows on constructed scores
def with_meters(score: symusic.Score, meters: list[tuple[int, int, int]]) -> symusic.Score:
    for time, numerator, denominator in meters:
        score.time_signatures.append(symusic.TimeSignature(time, numerator, denominator))
    return score


def test_windows_start_on_bar_lines_of_every_meter_after_a_pickup():
    # 2/4 pickup bar (960 ticks), 4/4 for 8 bars (1920 each), then 3/4 (1440 each) to the end.
    bar = 1920
    notes = [(960 * i, 480, 60 + i % 12) for i in range(40)]
    score = with_meters(make_score([("Piano", 0, False, notes)]), [(0, 2, 4), (960, 4, 4), (960 + 8 * bar, 3, 4)])
    windows, starts, meters = midi_windows(score, 7680, 480, steps=64)
    # The next window starts on the first bar line at or after start + 16 quarters.
    assert starts.tolist() == [0, 960 + 4 * bar, 960 + 8 * bar, 960 + 8 * bar + 6 * 1440, 960 + 8 * bar + 12 * 1440]
    assert meters == ["2/4", "4/4", "3/4", "3/4", "3/4"] and windows.shape == (5, 4, 128, 64)


def test_meters_4_4_keeps_only_the_4_4_sections():
    bar = 1920
    notes = [(960 * i, 480, 60 + i % 12) for i in range(40)]
    score = with_meters(make_score([("Piano", 0, False, notes)]), [(0, 2, 4), (960, 4, 4), (960 + 8 * bar, 3, 4)])
    windows, starts, meters = midi_windows(score, 7680, 480, steps=64, meters=["4/4"])
    assert starts.tolist() == [960, 960 + 4 * bar] and meters == ["4/4", "4/4"]  # a window lies inside 4/4
    assert windows.shape == (2, 4, 128, 64)
    overlapping = midi_windows(score, 7680, 480, hop_quarters=4, meters=["4/4"]).starts
    assert overlapping.tolist() == [960 + k * bar for k in range(5)]


@pytest.mark.parametrize("numerator, denominator, tpq", [(3, 4, 480), (6, 8, 96), (12, 8, 384), (2, 4, 120)])
def test_a_file_in_one_meter_is_windowed_on_its_own_bar_lines(numerator, denominator, tpq):
    """16-quarter windows start on the file's bar lines, each on the first bar line at or after the
    previous start + 16 quarters, in the file's own ticks."""
    bar = tpq * 4 * numerator // denominator
    score = symusic.Score(tpq)
    track = symusic.Track("Piano", 0, False)
    for i in range(60):  # a quarter note on every beat of 60 quarters
        track.notes.append(symusic.Note(i * tpq, tpq, 60 + i % 12, 90))
    score.tracks.append(track)
    score.time_signatures.append(symusic.TimeSignature(0, numerator, denominator))
    _, starts, meters = midi_windows(score, 7680, 480)
    step = -(-16 * tpq // bar) * bar  # whole bars covering 16 quarters
    assert starts.tolist() == list(range(0, 60 * tpq, step))
    assert all(start % bar == 0 for start in starts.tolist())
    assert meters == [f"{numerator}/{denominator}"] * len(starts)
    with pytest.raises(MidiSkip) as err:
        midi_windows(score, 7680, 480, meters=["4/4"])
    assert err.value.reason == "meter_excluded"


def test_a_meter_change_is_windowed_on_both_sides():
    # 4/4 for 8 bars (15360 ticks), then 3/4 from 15360, a note on every beat up to 100 quarters.
    score = with_meters(make_score([("Piano", 0, False, line(60, n=100))]), [(0, 4, 4), (15360, 3, 4)])
    _, starts, meters = midi_windows(score, 7680, 480)
    assert starts.tolist() == [0, 7680, 15360, 15360 + 8640, 15360 + 2 * 8640, 15360 + 3 * 8640]
    assert meters == ["4/4", "4/4", "3/4", "3/4", "3/4", "3/4"]
    # A change off the old meter's bar line (4.5 bars in) restarts the bars there: the third window
    # starts 5 bars of 6/8 after the change, not on the 4/4 grid (15360).
    score = with_meters(make_score([("Piano", 0, False, line(60, n=40))]), [(0, 4, 4), (8640, 6, 8)])
    _, starts, meters = midi_windows(score, 7680, 480)
    assert starts.tolist() == [0, 7680, 8640 + 5 * 1440] and meters == ["4/4", "4/4", "6/8"]


def test_a_file_without_time_signature_is_4_4_and_its_last_window_may_be_padded():
    score = make_score([("Piano", 0, False, line(60, n=20))])  # 20 quarters: one full window + 4 quarters
    windows, starts, meters = midi_windows(score, 7680, 480, steps=128)
    assert starts.tolist() == [0, 7680] and meters == ["4/4", "4/4"]
    assert windows[1, 0, :, :32].any() and not windows[1, :, :, 32:].any()


@pytest.mark.parametrize("tracks, meters, allowed, reason", [
    ([("Drums", 0, True, DRUMS)], [], "any", "no_notes"),
    ([("Piano", 0, False, [])], [], "any", "no_notes"),
    ([("Piano", 0, False, line(60))], [(0, 6, 8)], ["4/4"], "meter_excluded"),
    ([("Piano", 0, False, line(60)), ("Drums", 0, True, DRUMS)], [(0, 4, 4), (960, 3, 4)], ["4/4"], "meter_excluded"),
    ([("Piano", 0, False, line(60))], [(0, 4, 4), (960, 3, 4)], ["4/4", "6/8"], "meter_excluded"),
])
def test_windows_skip_reasons(tracks, meters, allowed, reason):
    with pytest.raises(MidiSkip) as err:
        midi_windows(with_meters(make_score(tracks), meters), 7680, 480, meters=allowed)
    assert err.value.reason == reason


@pytest.mark.parametrize("hop", [0, -4])
def test_hop_must_be_positive(hop):
    with pytest.raises(ValueError, match="hop_quarters > 0"):
        midi_windows(make_score([("Piano", 0, False, line(60))]), 7680, 480, hop_quarters=hop)


def test_a_hop_between_bar_lines_snaps_to_the_next_bar_line():
    score = make_score([("Piano", 0, False, line(60, n=40))])
    assert midi_windows(score, 7680, 480, hop_quarters=2).starts.tolist() == list(range(0, 40 * 480, 1920))
    assert midi_windows(score, 7680, 480, hop_quarters=6).starts.tolist() == list(range(0, 40 * 480, 2 * 1920))


@pytest.mark.parametrize("meters", ["all", ["4/4", "x"], [], ["3-4"]])
def test_a_bad_meters_setting_is_an_error(meters):
    with pytest.raises(ValueError, match="meters must be"):
        midi_windows(make_score([("Piano", 0, False, line(60))]), 7680, 480, meters=meters)


def test_unreadable_file_is_skipped_with_the_library_message(tmp_path):
    path = tmp_path / "broken.mid"
    path.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x05\x01\xe0MTrk\x00\x00\xff\xff garbage")
    with pytest.raises(MidiSkip) as err:
        load_score(path)
    assert err.value.reason == "unreadable"
    assert err.value.detail.startswith(f"{path}: ") and len(err.value.detail) > len(f"{path}: ")


# ---------------------------------------------------------------- the 550 real LMD files
@pytest.fixture(scope="module")
def lmd_scores(shared_data) -> dict[str, symusic.Score]:
    paths = sorted((shared_data / "lmd_subset" / "midi").glob("*.mid"))
    assert len(paths) == 550
    scores, skipped = {}, collections.Counter()
    for path in paths:
        try:
            scores[path.stem] = load_score(path)
        except MidiSkip as err:
            skipped[err.reason] += 1
    assert len(scores) + sum(skipped.values()) == 550 and set(skipped) <= {"unreadable"}
    return scores


def test_real_files_roles_are_sane(lmd_scores):
    with_melody = 0
    for name, score in lmd_scores.items():
        roles = assign_roles(score)
        nonempty = {i for i, t in enumerate(score.tracks) if len(t.notes)}
        assigned = [i for indices in roles.values() for i in indices]
        assert sorted(assigned) == sorted(nonempty), name  # every non-empty track exactly once
        assert set(roles["rhythm"]) == {i for i in nonempty if score.tracks[i].is_drum}, name
        assert not any(score.tracks[i].is_drum for r in ("melody", "chords", "bass") for i in roles[r]), name
        with_melody += bool(roles["melody"])
    assert with_melody >= 0.9 * len(lmd_scores)


def bar_grid(score: symusic.Score) -> list[tuple[int, int, str]]:
    """(section start, bar ticks, meter) per time-signature section, read straight from the events:
    none before the first means 4/4; a repeated meter continues its grid; the last event at a tick wins."""
    events = {0: (4, 4)}
    for ts in sorted(score.time_signatures, key=lambda ts: ts.time):
        events[ts.time] = (ts.numerator, ts.denominator)
    grid = []
    for time in sorted(events):
        numerator, denominator = events[time]
        if grid and grid[-1][2] == f"{numerator}/{denominator}":
            continue
        grid.append((time, score.ticks_per_quarter * 4 * numerator / denominator, f"{numerator}/{denominator}"))
    return grid


def check_windows(score: symusic.Score, time_span_ticks: int, steps: int) -> tuple[int, str | None]:
    try:
        windows, starts, meters = midi_windows(score, time_span_ticks, 480, steps)
    except MidiSkip as err:
        return 0, err.reason
    assert windows.shape == (len(starts), 4, 128, steps) and windows.dtype == np.float32
    assert set(np.unique(windows)) <= {0.0, 1.0}
    assert windows[:, :3].reshape(len(starts), -1).any(axis=1).all()  # every window has pitched notes
    assert starts.dtype == np.int64 and np.all(np.diff(starts) >= time_span_ticks * score.ticks_per_quarter / 480)
    grid = bar_grid(score)
    for start, meter in zip(starts.tolist(), meters):
        origin, bar, name = [g for g in grid if g[0] <= start][-1]  # the section the window starts in
        assert name == meter
        assert abs((start - origin) / bar - round((start - origin) / bar)) * bar <= 0.5  # on a bar line
    return len(starts), None


def test_real_files_windows_default_grid(lmd_scores):
    counts, skipped = 0, collections.Counter()
    for score in lmd_scores.values():
        n, reason = check_windows(score, time_span_ticks=7680, steps=128)
        counts += n
        if reason:
            skipped[reason] += 1
    assert set(skipped) <= {"no_notes"}  # every meter gives windows
    assert sum(skipped.values()) < 0.01 * len(lmd_scores)
    assert counts > 10 * len(lmd_scores)  # about 24 windows of 4 bars per song


@pytest.mark.parametrize("time_span_ticks", [7680, 15360])
@pytest.mark.parametrize("steps", [64, 128])
def test_real_files_windows_grid(lmd_scores, time_span_ticks, steps):
    scores = list(lmd_scores.values())[::10]  # every 10th file keeps the grid quick
    windowed = [check_windows(score, time_span_ticks, steps)[0] for score in scores]
    assert sum(n > 0 for n in windowed) >= 0.8 * len(scores)


@pytest.mark.parametrize("limit", [None, 1, 2, 3, 7, 50])
@pytest.mark.parametrize("in_runs", [True, False])
def test_spread_per_owner_keeps_at_most_limit_windows_evenly_from_first_to_last(limit, in_runs):
    rng = np.random.default_rng(limit or 0)
    owner = np.repeat(rng.permutation(12), rng.integers(1, 40, size=12))  # songs of 1-39 windows, in runs
    if not in_runs:
        owner = rng.permutation(owner)
    expected = []  # per owner in ascending order: its windows in order, thinned by an even linspace
    for song in np.unique(owner):
        mine = np.flatnonzero(owner == song)
        if limit is not None and len(mine) > limit:
            mine = mine[np.linspace(0, len(mine) - 1, limit).round().astype(np.int64)]
        expected.append(mine)
    got = spread_per_owner(owner, limit)
    assert np.array_equal(got, np.concatenate(expected))
    if limit is not None:
        assert np.bincount(owner[got]).max() <= limit
        for song in np.unique(owner):  # each owner's first window is kept, and from 2 on its last
            mine = np.flatnonzero(owner == song)
            assert {mine[0], mine[-1] if limit > 1 else mine[0]} <= set(got.tolist())
    assert len(spread_per_owner(np.array([], dtype=np.int64), limit)) == 0
