"""Melody completion: POP909 phrases, Lakh phrases, pairs, candidate lists and chance values."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import symusic
import torch

from llmusic.data.melody import CompletionQueries, MelodyPairs, build_queries
from llmusic.data.phrases import Pop909Phrases, parse_phrase_labels
from llmusic.eval.ranking import HITS_AT, chance_hits, chance_map
from llmusic.midi import load_score, midi_windows
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


def independent_phrases(song_dir: Path) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """Phrase tokens and pairs of one POP909 song, straight from its files: melody.txt is a
    sequence of (pitch, 16ths), so on a 32nd grid each line is 2 x length steps."""
    line = []
    rows = [map(int, row.split()) for row in (song_dir / "melody.txt").read_text().split("\n") if row]
    for pitch, sixteenths in rows:
        line += [REST] * 2 * sixteenths if pitch == 0 else [pitch] + [HOLD] * (2 * sixteenths - 1)
    labels = re.findall(r"([A-Za-z])(\d+)", (song_dir / "human_label1.txt").read_text())
    start, phrases, pairs, previous = 0, [], [], None
    for k, (letter, bars) in enumerate(labels):
        stop = start + 32 * int(bars)
        if letter.isupper():
            body = (line + [REST] * stop)[start:min(stop, start + 128)]
            carried = next((i for i, t in enumerate(body) if t != HOLD), len(body))
            body = [REST] * carried + body[carried:]  # a note from the previous phrase is not part of this one
            tokens = np.array(body + [PAD] * (128 - len(body)))
            if (tokens < HOLD).any():
                if previous == k - 1:
                    pairs.append((len(phrases) - 1, len(phrases)))
                phrases.append(tokens)
                previous = k
        start = stop
    return phrases, pairs


def test_pop909_song_001_phrases(shared_data, pop909_test):
    song = Pop909Phrases(shared_data / "pop909").song(shared_data / "pop909" / "001")
    # i4 A4 B8 A4 A4 b4 B8 A4 A4 b4 b4 A4 A4 b4 A4 o3: ten melodic phrases; consecutive capitals pair up.
    assert len(song.phrases) == 10
    assert song.pairs.tolist() == [[0, 1], [1, 2], [2, 3], [4, 5], [5, 6], [7, 8]]
    assert song.phrases[0][0] == 70  # the first A starts on bar 4's downbeat, after a 4-note pickup
    phrases, pairs = independent_phrases(shared_data / "pop909" / "001")
    np.testing.assert_array_equal(song.phrases, np.stack(phrases))
    assert song.pairs.tolist() == [list(p) for p in pairs]


def test_pop909_test_split_matches_an_independent_reading(shared_data, pop909_test):
    songs = sorted(p.name for p in (shared_data / "pop909").iterdir())
    assert pop909_test.song_names == songs[::10] and len(pop909_test.song_names) == 91
    context, target = [], []
    for name in pop909_test.song_names:
        phrases, pairs = independent_phrases(shared_data / "pop909" / name)
        context += [phrases[a] for a, _ in pairs]
        target += [phrases[b] for _, b in pairs]
    np.testing.assert_array_equal(pop909_test.context, np.stack(context))
    np.testing.assert_array_equal(pop909_test.target, np.stack(target))
    c, t = pop909_test[0]
    assert c.dtype == t.dtype == torch.int64 and c.shape == t.shape == (128,)


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
    assert len(train.song_names) + len(pop909_test.song_names) == 909
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
    # Negatives come from other songs and never equal the true phrase.
    song_of = {}
    for tokens, song in zip(pop909_test.phrases, pop909_test.phrase_song):
        song_of.setdefault(tokens.tobytes(), set()).add(int(song))
    for q in range(Q):
        for n in np.flatnonzero(np.arange(50) != queries.true_index[q]):
            negative = queries.candidates[q, n]
            assert not np.array_equal(negative, pop909_test.target[q])
            assert song_of[negative.tobytes()] - {int(queries.song_ids[q])}
    assert len(set(queries.true_index.tolist())) > 40  # the true phrase's place is random
    # Rebuilt from the same seed, the lists are the same; a saved list loads back identical.
    again = build_queries(pop909_test.context, pop909_test.target, pop909_test.song_ids, pop909_test.phrases,
                          pop909_test.phrase_song, 50, seed=0)
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
        build_queries(pop909_test.context, pop909_test.target, pop909_test.song_ids, pop909_test.phrases,
                      pop909_test.phrase_song, 5000, seed=0)


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
def test_lmd_phrases_are_spans_of_the_melody_track(shared_data, cache_dir, bars):
    data = build_dataset("melody_lmd_pairs", f"dataset.source.root={shared_data / 'lmd_subset' / 'midi'}", "dataset.split=all",
                 f"dataset.source.phrase_bars={bars}", "dataset.source.max_files=12", f"dataset.cache_dir={cache_dir}")
    assert len(data) > 0 and len(data.song_names) + sum(data.skipped.values()) == 12
    width = 32 * bars
    assert (data.phrases[:, width:] == PAD).all() and (data.phrases[:, :width] != PAD).all()
    assert ((data.phrases < HOLD).any(1)).all()
    # Phrases never outnumber the file's windows of that span.
    for song, name in enumerate(data.song_names):
        starts = midi_windows(load_score(shared_data / "lmd_subset" / "midi" / f"{name}.mid"), 4 * bars * 480, 480,
                              meters=["4/4"]).starts
        assert (data.phrase_song == song).sum() <= len(starts)
