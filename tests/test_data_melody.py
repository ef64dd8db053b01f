"""Melody completion: POP909 and Lakh phrases (adjacent, key-normalised), pairs, candidate lists and chance values."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import symusic
import torch

from llmusic.data.melody import CompletionQueries, MelodyPairs, build_queries
from llmusic.data.phrases import LakhPhrases
from llmusic.data.pop909 import Pop909Phrases, melodic_boundaries, parse_phrase_labels
from llmusic.eval.ranking import HITS_AT, chance_hits, chance_map
from llmusic.midi import assign_roles, load_score, midi_windows
from llmusic.midi.phrase import HOLD, PAD, REST, VOCAB_SIZE, decode_phrase, encode_phrase
from tests.helpers import build_dataset


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("melody_cache")


@pytest.fixture(scope="module")
def pop909_args(shared_data, cache_dir) -> list[str]:
    return [f"dataset.source.root={shared_data / 'pop909'}", f"dataset.cache_dir={cache_dir}"]


@pytest.fixture(scope="module")
def pop909_test(pop909_args) -> MelodyPairs:
    return build_dataset("melody_pop909_pairs", "dataset.split=test", *pop909_args)


@pytest.fixture(scope="module")
def pop909_test_as_is(pop909_args) -> MelodyPairs:
    """The test split without key normalisation: the pitches of melody.txt."""
    return build_dataset("melody_pop909_pairs", "dataset.split=test", "dataset.source.key_normalization=none",
                         *pop909_args)


@pytest.fixture(scope="module")
def queries_args(pop909_args) -> list[str]:
    """The test queries config wraps the pairs config under `pairs`."""
    return [arg.replace("dataset.", "dataset.pairs.", 1) for arg in pop909_args]


# --- tokens -------------------------------------------------------------------------------------

def test_vocabulary():
    assert (HOLD, REST, PAD, VOCAB_SIZE) == (128, 129, 130, 131)


@pytest.mark.parametrize("n_tokens", [64, 128])
def test_encode_phrase_cases(n_tokens):
    rest, pad = [REST], [PAD]
    # A note, a rest, a long note cut by the next onset, a chord (highest kept), the phrase end.
    tokens = encode_phrase(np.array([0, 6, 8, 8, 12]), np.array([2, 9, 4, 4, 40]), np.array([60, 62, 50, 67, 65]),
                           length=16, n_tokens=n_tokens)
    expected = [60, HOLD] + rest * 4 + [62, HOLD] + [67, HOLD, HOLD, HOLD] + [65, HOLD, HOLD, HOLD]
    assert tokens.tolist() == expected + pad * (n_tokens - 16)
    # A note that started before the phrase is not part of it; a longer phrase is cut.
    tokens = encode_phrase(np.array([-2, n_tokens - 1, n_tokens + 3]), np.array([6, 5, 1]), np.array([70, 71, 72]),
                           length=n_tokens + 10, n_tokens=n_tokens)
    assert tokens.tolist() == rest * (n_tokens - 1) + [71]
    assert encode_phrase(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), 4, n_tokens).tolist() \
        == rest * 4 + pad * (n_tokens - 4)


def test_decode_inverts_encode_on_every_pop909_test_phrase(pop909_test):
    for tokens in pop909_test.phrases:
        length = int(np.sum(tokens != PAD))
        np.testing.assert_array_equal(encode_phrase(*decode_phrase(tokens), length), tokens)


# --- POP909 ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("i4A4B8A4A4b4B8A4A4b4b4A4A4b4A4o3",
     "i4 A4 B8 A4 A4 b4 B8 A4 A4 b4 b4 A4 A4 b4 A4 o3"),
    ("i4A4A4B9b4A4B9b4B9X5o2", "i4 A4 A4 B9 b4 A4 B9 b4 B9 X5 o2"),
    ("i8A8B9x7A8B8B9X3o6\n", "i8 A8 B9 x7 A8 B8 B9 X3 o6"),
    ("A12B4", "A12 B4"),
])
def test_parse_phrase_labels(text, expected):
    parsed = parse_phrase_labels(text)
    assert [f"{letter}{bars}" for letter, bars in parsed] == expected.split()
    assert all(isinstance(bars, int) for _, bars in parsed)


@pytest.mark.parametrize("text", ["", "i4A", "4A4", "i4 A4", "i4A4?"])
def test_parse_phrase_labels_rejects_malformed(text):
    with pytest.raises(ValueError):
        parse_phrase_labels(text)


def test_every_pop909_label_file_parses(shared_data):
    for song in sorted((shared_data / "pop909").iterdir()):
        for name in ("human_label1.txt", "human_label2.txt"):
            assert parse_phrase_labels((song / name).read_text()), song.name


def melody_line(song_dir: Path) -> list[int]:
    """The whole melody of a POP909 song as tokens, straight from melody.txt: a sequence of
    (pitch, 16ths), so on a 32nd grid each line is 2 x length steps."""
    line = []
    rows = [map(int, row.split()) for row in (song_dir / "melody.txt").read_text().split("\n") if row]
    for pitch, sixteenths in rows:
        line += [REST] * 2 * sixteenths if pitch == 0 else [pitch] + [HOLD] * (2 * sixteenths - 1)
    return line


def window(line: list[int], start: int, stop: int) -> np.ndarray:
    """line[start:stop], silence outside the song; a note carried in from before the window is not part of it."""
    body = [line[t] if 0 <= t < len(line) else REST for t in range(start, stop)]
    carried = next((i for i, t in enumerate(body) if t != HOLD), len(body))
    return np.array([REST] * carried + body[carried:])


def independent_pairs(song_dir: Path, n: int = 128) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(boundary step, context, target) of every pair of a song, from its files: at each boundary
    between two consecutive capital-letter phrases, the n steps before it and the n steps after."""
    line = melody_line(song_dir)
    labels = re.findall(r"([A-Za-z])(\d+)", (song_dir / "human_label1.txt").read_text())
    ends = np.cumsum([32 * int(bars) for _, bars in labels])
    pairs = []
    for k in range(len(labels) - 1):
        if labels[k][0].isupper() and labels[k + 1][0].isupper():
            b = int(ends[k])
            context, target = window(line, b - n, b), window(line, b, b + n)
            if (context < HOLD).any() and (target < HOLD).any():
                pairs.append((b, context, target))
    return pairs


def test_pop909_song_001_pairs_are_adjacent(shared_data):
    source = Pop909Phrases(shared_data / "pop909", key_normalization="none")
    song = source.song(shared_data / "pop909" / "001")
    labels = parse_phrase_labels((shared_data / "pop909" / "001" / "human_label1.txt").read_text())
    # i4 A4 B8 A4 A4 b4 B8 A4 A4 b4 b4 A4 A4 b4 A4 o3: six boundaries between consecutive capitals.
    assert melodic_boundaries(labels) == [8, 16, 20, 36, 40, 56]
    expected = independent_pairs(shared_data / "pop909" / "001")
    assert [b for b, _, _ in expected] == [32 * bar for bar in (8, 16, 20, 36, 40, 56)]
    assert len(song.pairs) == 6
    line = melody_line(shared_data / "pop909" / "001")
    for (context, target), (b, context_read, target_read) in zip(song.pairs, expected):
        np.testing.assert_array_equal(song.phrases[context], context_read)
        np.testing.assert_array_equal(song.phrases[target], target_read)
        # The context is the song's melody up to the boundary step, the target from it on: together
        # the 256 steps around the boundary (only a note crossing it is cut, at the target's start).
        joined = np.r_[song.phrases[context], song.phrases[target]]
        around = window(line, b - 128, b + 128)
        crossing = joined != around
        assert not crossing[:128].any()
        assert (around[128:][crossing[128:]] == HOLD).all() and (joined[128:][crossing[128:]] == REST).all()
    # Windows of two boundaries 4 bars apart share a phrase: B8 | A4 | A4 at bars 16 and 20.
    assert song.pairs[1, 1] == song.pairs[2, 0]


def test_pop909_test_split_matches_an_independent_reading(shared_data, pop909_test_as_is):
    songs = sorted(p.name for p in (shared_data / "pop909").iterdir())
    expected = {name: independent_pairs(shared_data / "pop909" / name) for name in songs[::10]}
    assert pop909_test_as_is.song_names == [name for name in songs[::10] if expected[name]]
    assert set(pop909_test_as_is.skipped) == {"no_pairs"}
    assert pop909_test_as_is.skipped["no_pairs"] >= sum(not pairs for pairs in expected.values()) > 0
    context = [c for name in pop909_test_as_is.song_names for _, c, _ in expected[name]]
    target = [t for name in pop909_test_as_is.song_names for _, _, t in expected[name]]
    np.testing.assert_array_equal(pop909_test_as_is.context, np.stack(context))
    np.testing.assert_array_equal(pop909_test_as_is.target, np.stack(target))
    c, t = pop909_test_as_is[0]
    assert c.dtype == t.dtype == torch.int64 and c.shape == t.shape == (128,)
    assert (pop909_test_as_is.phrases != PAD).all()  # every phrase fills its 4 bars: nothing padded


def test_pop909_keys_are_normalised_song_by_song(pop909_test, pop909_test_as_is):
    """The normalised pairs are the plain ones with every note moved by its song's shift."""
    keys = pop909_test.song_keys()
    assert [k["song"] for k in keys] == pop909_test_as_is.song_names
    assert {k["method"] for k in keys} == {"profile"} and len({k["shift"] for k in keys}) > 6
    shift = np.array([k["shift"] for k in keys])[pop909_test.song_ids][:, None]  # (Q, 1)
    for moved, plain in ((pop909_test.context, pop909_test_as_is.context), (pop909_test.target, pop909_test_as_is.target)):
        notes = plain < HOLD
        np.testing.assert_array_equal(moved[notes], (plain.astype(np.int64) + shift)[notes])
        np.testing.assert_array_equal(moved[~notes], plain[~notes])
    summary = pop909_test.summary()
    assert summary["key_normalization"] == "profile" and summary["keys_found_by"] == {"profile": len(keys)}
    assert (summary["phrase_bars"], summary["n_tokens"]) == (4, 128)


@pytest.mark.parametrize("song", ["001", "003", "250"])
def test_melody_txt_is_the_midi_melody_track(shared_data, song):
    """melody.txt (what the phrase labels count bars on) holds the notes of NNN.mid's MELODY track,
    at one tick offset on songs with one tempo (a rare note sits a 16th off after quantisation)."""
    score = symusic.Score(str(shared_data / "pop909" / song / f"{song}.mid"))
    notes = next(t for t in score.tracks if t.name == "MELODY").notes.numpy()
    onset, pitch = [], []
    position = 0
    for row in (shared_data / "pop909" / song / "melody.txt").read_text().split("\n"):
        if row:
            p, sixteenths = map(int, row.split())
            if p:
                onset.append(position)
                pitch.append(p)
            position += sixteenths
    assert pitch == notes["pitch"].tolist()
    ticks = notes["time"] - np.array(onset) * score.ticks_per_quarter // 4
    offsets, counts = np.unique(ticks, return_counts=True)
    assert counts.max() >= 0.98 * len(ticks)  # the grid of melody.txt is the file's beat grid


def test_train_and_test_songs_are_disjoint(pop909_args, pop909_test):
    train = build_dataset("melody_pop909_pairs", *pop909_args)
    assert train.cache_hit
    assert not set(train.song_names) & set(pop909_test.song_names)
    assert len(train.song_names) + len(pop909_test.song_names) + train.skipped["no_pairs"] == 909
    assert len(train) > 8 * len(pop909_test)


# --- queries ----------------------------------------------------------------------------------------

def test_queries_are_deterministic_and_well_formed(queries_args, pop909_test, tmp_path):
    queries = build_dataset("melody_pop909", *queries_args)
    assert isinstance(queries, CompletionQueries) and queries.pairs.song_names == pop909_test.song_names
    Q = len(pop909_test)
    assert queries.candidates.shape == (Q, 50, 128) and queries.context.shape == (Q, 128)
    assert queries.true_index.shape == (Q,) and 0 <= queries.true_index.min() and queries.true_index.max() < 50
    np.testing.assert_array_equal(queries.context, pop909_test.context)
    rows = np.arange(Q)
    np.testing.assert_array_equal(queries.candidates[rows, queries.true_index], pop909_test.target)
    # Negatives are continuations (targets) of other test songs' pairs, never of the query's own
    # song (not even a phrase that song shares with another), and never equal to the true one.
    songs_of = {}
    for tokens, song in zip(pop909_test.target, pop909_test.song_ids):
        songs_of.setdefault(tokens.tobytes(), set()).add(int(song))
    for q in range(Q):
        for n in np.flatnonzero(np.arange(50) != queries.true_index[q]):
            negative = queries.candidates[q, n]
            assert not np.array_equal(negative, pop909_test.target[q])
            assert negative.tobytes() in songs_of  # a target of some pair
            assert songs_of[negative.tobytes()] - {int(queries.song_ids[q])}  # of another song
    assert len(set(queries.true_index.tolist())) > 40  # the true phrase's place is random
    # Rebuilt from the same seed, the lists are the same; a saved list loads back identical.
    again = build_queries(pop909_test.context, pop909_test.target, pop909_test.song_ids, 50, seed=0)
    for field in ("context", "candidates", "true_index", "song_ids"):
        np.testing.assert_array_equal(getattr(again, field), getattr(queries, field))
    saved = queries.pairs.queries_path.stat().st_mtime_ns
    loaded = build_dataset("melody_pop909", *queries_args)  # from the saved lists this time
    assert loaded.pairs.queries_path.stat().st_mtime_ns == saved
    np.testing.assert_array_equal(loaded.candidates, queries.candidates)
    assert np.array_equal(pop909_test.queries().candidates, queries.candidates)  # same pairs, same lists
    other = build_dataset("melody_pop909", "dataset.pairs.seed=1", *queries_args)
    assert not np.array_equal(other.candidates, queries.candidates)
    path = tmp_path / "q.npz"
    queries.save(path)
    np.testing.assert_array_equal(CompletionQueries.load(path).candidates, queries.candidates)


def test_queries_are_a_dataset_of_triples(queries_args):
    queries = build_dataset("melody_pop909", *queries_args)
    context, candidates, true_index = queries[3]
    assert context.shape == (128,) and candidates.shape == (50, 128) and true_index.shape == ()
    assert context.dtype == candidates.dtype == true_index.dtype == torch.int64
    assert torch.equal(candidates[true_index], torch.from_numpy(queries.pairs.target[3]))


def test_too_few_negatives_is_an_error(pop909_test):
    with pytest.raises(ValueError, match="negatives"):
        build_queries(pop909_test.context, pop909_test.target, pop909_test.song_ids, 5000, seed=0)


# --- chance ---------------------------------------------------------------------------------------------

def test_chance_values_are_exact():
    h50 = sum(Fraction(1, r) for r in range(1, 51))
    assert chance_map(50) == float(h50 / 50) and round(chance_map(50), 3) == 0.090
    assert chance_map(1) == 1.0 and chance_map(2) == 0.75
    assert [chance_hits(k, 50) for k in HITS_AT] == [k / 50 for k in HITS_AT]
    assert chance_hits(60, 50) == 1.0


def test_chance_values_match_random_rankings():
    rng = np.random.default_rng(0)
    scores = rng.random((40000, 50))
    rank = 1 + (scores[:, 1:] > scores[:, :1]).sum(1)  # candidate 0 is the true one
    assert abs(np.mean(1 / rank) - chance_map(50)) < 0.003
    for k in HITS_AT:
        assert abs(np.mean(rank <= k) - chance_hits(k, 50)) < 0.01


# --- Lakh MIDI ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bars", [2, 4])
def test_lmd_pairs_are_neighbouring_chunks_of_the_melody_track(shared_data, bars):
    """Each pair is a chunk of the melody track (assign_roles) and the chunk right after it on the
    file's 4/4 grid, as an independent reading of the file gives them; nothing padded."""
    root = shared_data / "lmd_subset" / "midi"
    source = LakhPhrases([root], phrase_bars=bars, key_normalization="none", max_files=12)
    n, checked = 32 * bars, 0
    for path in source.files():
        try:
            song = source.song(path)
        except Exception:  # noqa: BLE001 - the skips are counted by songs(), checked below
            continue
        score = load_score(path)
        starts = midi_windows(score, 4 * bars * 480, 480, meters=["4/4"]).starts  # chunks of 4 x bars quarters, 4/4 grid
        tracks = [score.tracks[i].notes.numpy() for i in assign_roles(score)["melody"]]
        melody = {k: np.concatenate([t[k] for t in tracks]) for k in ("time", "duration", "pitch")}
        tps = score.ticks_per_quarter / 8
        onset = np.round(melody["time"] / tps).astype(np.int64)
        length = np.maximum(np.round((melody["time"] + melody["duration"]) / tps).astype(np.int64) - onset, 1)
        chunk = {int(s): encode_phrase(onset - int(round(s / tps)), length, melody["pitch"].astype(np.int64), n, n)
                 for s in starts}
        expected = [(chunk[a], chunk[b]) for a, b in zip(starts[:-1].tolist(), starts[1:].tolist())
                    if round((b - a) / tps) == n and (chunk[a] < HOLD).any() and (chunk[b] < HOLD).any()]
        got = [(song.phrases[c], song.phrases[t]) for c, t in song.pairs]
        assert len(got) == len(expected)
        if not got:  # a song without a pair: songs() counts it as no_pairs
            continue
        for (c, t), (ce, te) in zip(got, expected):
            np.testing.assert_array_equal(c, ce)
            np.testing.assert_array_equal(t, te)
        assert (song.phrases != PAD).all() and song.phrases.shape[1] == n
        checked += 1
    assert checked >= 8
    songs = source.songs()
    assert len(songs) + sum(source.skipped.values()) == 12


def test_lmd_files_are_split_by_their_place_in_name_order_across_roots(shared_data, cache_dir):
    roots = [shared_data / "lmd_subset" / "midi", shared_data / "lmd_extra" / "midi"]
    args = [f"dataset.source.roots=[{roots[0]},{roots[1]}]", "dataset.source.max_files=40", f"dataset.cache_dir={cache_dir}"]
    files = sorted((p for root in roots for p in root.glob("*.mid")), key=lambda p: p.name)[:40]
    assert {p.parent for p in files} == set(roots)  # both folders feed the first 40 names
    test = build_dataset("melody_lmd_pairs", "dataset.split=test", *args)
    train = build_dataset("melody_lmd_pairs", *args)
    read = set(test.song_names) | set(train.song_names)
    assert test.song_names == [p.stem for p in files[::10] if p.stem in read]
    assert train.song_names == [p.stem for i, p in enumerate(files) if i % 10 and p.stem in read]
    assert len(read) + sum(train.skipped.values()) == 40


# --- key normalisation -------------------------------------------------------------------------------------

# A tune that states its key (tonic triad, then the scale): scale degrees of four bars of quarter notes.
DEGREES = {"major": [0, 4, 7, 12, 11, 7, 5, 4, 2, 0, 2, 4, 5, 7, 9, 11],
           "minor": [0, 3, 7, 12, 11, 7, 5, 3, 2, 0, 2, 3, 5, 7, 8, 11]}


def write_tune(path: Path, tonic: int, mode: str, signature: tuple[int, int] | None) -> np.ndarray:
    """Four bars of a tune in one key on a track named melody (quarter notes, 480 ticks per
    quarter), with a key-signature event if given; returns its pitches."""
    pitch = np.array(DEGREES[mode]) + tonic
    score = symusic.Score(480)
    track = symusic.Track("melody", 0, False)
    for i, p in enumerate(pitch.tolist()):
        track.notes.append(symusic.Note(480 * i, 480, p, 90))
    score.tracks.append(track)
    score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    if signature is not None:
        score.key_signatures.append(symusic.KeySignature(0, *signature))
    score.dump_midi(str(path))
    return pitch


@pytest.mark.parametrize("method", ["profile", "key_signature"])
@pytest.mark.parametrize("tonic,mode,signature,name,shift", [
    (64, "major", (4, 0), "E major", -4),  # E major -> C major
    (66, "minor", (3, 1), "F# minor", 3),  # F# minor -> A minor
    (64, "major", (0, 0), "E major", -4),  # a C major signature on an E major tune: not trusted
])
def test_key_normalisation_moves_a_melody_to_c_major_or_a_minor(tmp_path, method, tonic, mode, signature, name, shift):
    pitch = write_tune(tmp_path / "tune.mid", tonic, mode, signature)
    song = LakhPhrases([tmp_path], phrase_bars=2, key_normalization=method).song(tmp_path / "tune.mid")
    trusted = method == "key_signature" and signature != (0, 0)
    assert (song.key.name, song.key.method, song.shift) == (name, "key_signature" if trusted else "profile", shift)
    [(context, target)] = song.pairs.tolist()
    onsets = np.r_[song.phrases[context], song.phrases[target]][::8]  # a quarter note every 8 steps
    reference = 60 if mode == "major" else 69  # C4 / A4: the tune's first note, moved
    assert onsets.tolist() == (pitch + shift).tolist() and onsets[0] == reference
    assert set(onsets % 12) <= {0, 2, 4, 5, 7, 9, 11, 8}  # C major / A harmonic minor: white keys and G#
    plain = LakhPhrases([tmp_path], phrase_bars=2, key_normalization="none").song(tmp_path / "tune.mid")
    assert plain.key is None and plain.shift == 0
    assert np.r_[plain.phrases[0], plain.phrases[1]][::8].tolist() == pitch.tolist()
