"""Classification data sets on the real shared data, built from the real configs."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from llmusic.data.labels import CLASS_ORDERS
from llmusic.midi import MidiSkip, load_score, midi_windows
from tests.helpers import build_dataset

ROLL_SKIPS = {"unreadable", "no_notes", "no_grid", "meter_excluded"}
LAKH = ("lmd_subset", "lmd_extra")  # the shared Lakh folders, read together by default


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rolls_cache")


@pytest.fixture(scope="module")
def lmd_args(shared_data) -> list[str]:
    """The configs' defaults: both Lakh folders, the JSON label map, the repository's roll cache
    (which the train and pipeline tests' test sets share, so the suite rolls these files once)."""
    return []


@pytest.fixture(scope="module")
def subset_labels(shared_data) -> dict[str, dict[str, set[str]]]:
    """taxonomy -> md5 -> distinct labels, read straight from the two folders' labels.csv."""
    rows = []
    for folder in LAKH:
        with open(shared_data / folder / "labels.csv") as f:
            rows += list(csv.DictReader(f))
    return {t: {r["md5"]: set(r[t].split("|")) for r in rows if r[t]} for t in ("topmagd", "masd")}


def midi_files(shared_data) -> dict[str, object]:
    return {p.stem: p for folder in LAKH for p in (shared_data / folder / "midi").glob("*.mid")}


@pytest.fixture(scope="module")
def topmagd(lmd_args):
    return build_dataset("lmd_topmagd", *lmd_args)


def test_topmagd_single_label_counts_match_labels_csv(topmagd, subset_labels, shared_data):
    single = {m: next(iter(s)) for m, s in subset_labels["topmagd"].items() if len(s) == 1}
    assert topmagd.classes == list(CLASS_ORDERS["topmagd"]) and not topmagd.multilabel
    assert set(topmagd.song_names) <= set(single)
    assert topmagd.class_counts() == {c: sum(single[m] == c for m in topmagd.song_names) for c in topmagd.classes}
    for md5, label in zip(topmagd.song_names, topmagd.song_labels):
        assert topmagd.classes[label] == single[md5]
    skipped = topmagd.skipped
    files = midi_files(shared_data)
    assert len(files) == 550 + 1351  # both folders, read as one set
    assert skipped["unlabelled"] == len(files) - len(subset_labels["topmagd"]) == 1901 - 1699  # no genre
    assert skipped["multiple_labels"] == len(subset_labels["topmagd"]) - len(single) == 1699 - 1404
    dropped = set(single) - set(topmagd.song_names)
    assert len(dropped) == sum(n for r, n in skipped.items() if r in ROLL_SKIPS) > 0
    assert set(skipped) <= {"unlabelled", "multiple_labels", "unreadable", "no_notes"}  # no file lost to its meter
    # Every file a reason was counted for really is unusable.
    counted = Counter()
    for md5 in sorted(dropped):
        with pytest.raises(MidiSkip) as err:
            midi_windows(load_score(files[md5]), 7680, 480)
        counted[err.value.reason] += 1
    assert counted == {r: n for r, n in skipped.items() if r in ROLL_SKIPS}
    meters = topmagd.meter_counts()
    assert sum(meters["windows"].values()) == len(topmagd) and sum(meters["songs"].values()) == len(topmagd.song_names)
    assert {"3/4", "6/8", "12/8"} <= set(meters["songs"])


def test_masd_multilabel_targets_match_labels_csv(lmd_args, subset_labels):
    masd = build_dataset("lmd_masd", "dataset.multilabel=true", *lmd_args)
    assert masd.cache_hit, "the genre and style tasks share one roll cache"
    assert masd.classes == list(CLASS_ORDERS["masd"]) and masd.multilabel
    labels = subset_labels["masd"]
    assert "multiple_labels" not in masd.skipped
    assert len(masd.song_names) + sum(n for r, n in masd.skipped.items() if r in ROLL_SKIPS) == len(labels)
    for md5, target in zip(masd.song_names, masd.song_labels):
        assert target.dtype == np.float32
        assert {masd.classes[k] for k in np.flatnonzero(target)} == labels[md5]
    x, y, song = masd[0]
    assert y.shape == (25,) and y.dtype == torch.float32


def test_windows_are_the_files_own_windows(topmagd):
    x, y, song = topmagd[0]
    assert x.shape == (4, 128, 128) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert set(torch.unique(x).tolist()) <= {0.0, 1.0}
    assert topmagd.song_ids.dtype == np.int64 and len(topmagd.song_ids) == len(topmagd)
    waltz = next(s for s in range(len(topmagd.song_names)) if "3/4" in topmagd.meters[topmagd.song_ids == s])
    for song in (0, len(topmagd.song_names) // 2, len(topmagd.song_names) - 1, waltz):
        rolls, starts, meters = midi_windows(load_score(topmagd.song_paths[song]), 7680, 480)
        mine = np.flatnonzero(topmagd.song_ids == song)
        np.testing.assert_array_equal(topmagd.starts[mine], starts)
        assert topmagd.meters[mine].tolist() == meters
        got = np.stack([topmagd[int(i)][0].numpy() for i in mine])
        np.testing.assert_array_equal(got, rolls)


def test_folds_are_disjoint_stratified_and_cover_the_songs(lmd_args, topmagd):
    tests = []
    for fold in range(5):
        train = build_dataset("lmd_topmagd", "dataset.split=train", f"dataset.fold={fold}", *lmd_args)
        test = build_dataset("lmd_topmagd", "dataset.split=test", f"dataset.fold={fold}", *lmd_args)
        assert train.classes == test.classes == topmagd.classes
        assert not set(train.song_names) & set(test.song_names)
        assert sorted(train.song_names + test.song_names) == sorted(topmagd.song_names)
        tests.append(test)
    assert sorted(n for t in tests for n in t.song_names) == sorted(topmagd.song_names)
    for c in topmagd.classes:
        per_fold = [t.class_counts()[c] for t in tests]
        assert max(per_fold) - min(per_fold) <= 1, (c, per_fold)
    # Windows follow their songs into the split.
    assert sum(len(t) for t in tests) == len(topmagd)


def test_label_map_restricts_the_test_classes(lmd_args):
    lmd = build_dataset("lmd_topmagd", "label_map@dataset.label_map=paper_to_topmagd", *lmd_args)
    assert lmd.classes == ["Pop_Rock", "Electronic", "Country", "Jazz", "Rap", "Folk", "Reggae", "Blues"]
    assert lmd.skipped["unscored_label"] > 0  # e.g. the Latin files: nothing the LLM made maps there
    assert set(lmd.class_counts()) == set(lmd.classes)


def test_max_windows_per_song(lmd_args, topmagd):
    thin = build_dataset("lmd_topmagd", "dataset.max_windows_per_song=3", *lmd_args)
    assert thin.cache_hit and thin.song_names == topmagd.song_names
    per_song = np.bincount(thin.song_ids)
    full = np.bincount(topmagd.song_ids)
    np.testing.assert_array_equal(per_song, np.minimum(full, 3))


def test_genre_corpus_reports_broken_files(shared_data, cache_dir):
    corpus = build_dataset("midi_folder", f"dataset.root={shared_data / 'genre_corpus'}", f"dataset.cache_dir={cache_dir}")
    assert corpus.classes == list(CLASS_ORDERS["genre_corpus"])
    files = [p for p in (shared_data / "genre_corpus").rglob("*") if p.suffix.lower() in (".mid", ".midi")]
    assert len(corpus.song_names) + sum(corpus.skipped.values()) == len(files) == 320
    assert corpus.skipped["unreadable"] >= 1 and set(corpus.skipped) <= ROLL_SKIPS
    assert "rock/david_lee_roth-skyscraper.midi" not in corpus.song_names  # not a MIDI file at all
    for c, n in corpus.class_counts().items():
        assert n == sum(name.startswith(f"{c}/") for name in corpus.song_names) and 0 < n <= 40


def test_cache_hit_and_rebuild_on_changed_input(shared_data, tmp_path):
    """A small tree: a second build loads the cache, a changed parameter or file rebuilds."""
    for genre in ("jazz", "rock"):
        (tmp_path / "tree" / genre).mkdir(parents=True)
        for src in sorted((shared_data / "genre_corpus" / genre).iterdir())[:3]:
            shutil.copy(src, tmp_path / "tree" / genre / src.name)
    shutil.copy(shared_data / "genre_corpus" / "rock" / "david_lee_roth-skyscraper.midi", tmp_path / "tree" / "rock")
    args = [f"dataset.root={tmp_path / 'tree'}", f"dataset.cache_dir={tmp_path / 'cache'}"]
    first = build_dataset("midi_folder", *args)
    assert not first.cache_hit and first.skipped["unreadable"] == 1
    second = build_dataset("midi_folder", *args)
    assert second.cache_hit and second.cache_path == first.cache_path
    assert second.skipped == first.skipped and second.song_names == first.song_names
    np.testing.assert_array_equal(second.packed.dense(), first.packed.dense())
    changed = build_dataset("midi_folder", "dataset.hop_quarters=8", *args)
    assert not changed.cache_hit and len(changed) > len(first)  # half-span hop: about twice the windows
    (tmp_path / "tree" / "jazz" / sorted((tmp_path / "tree" / "jazz").iterdir())[0].name).unlink()
    fewer = build_dataset("midi_folder", *args)
    assert not fewer.cache_hit and len(fewer.song_names) == len(first.song_names) - 1


def test_multilabel_folds_stratify_on_the_label_set(lmd_args, subset_labels):
    """MusicBERT's protocol: StratifiedKFold over each file's '+'-joined label set."""
    folds = [build_dataset("lmd_masd", "dataset.multilabel=true", "dataset.split=test", f"dataset.fold={k}", *lmd_args)
             for k in range(5)]
    per_set: dict[str, list[int]] = {}
    for k, fold in enumerate(folds):
        for md5 in fold.song_names:
            key = "+".join(sorted(subset_labels["masd"][md5]))
            per_set.setdefault(key, [0] * 5)[k] += 1
    assert sum(map(sum, per_set.values())) == sum(len(f.song_names) for f in folds)
    assert len(set().union(*(f.song_names for f in folds))) == sum(len(f.song_names) for f in folds)
    for key, counts in per_set.items():
        assert max(counts) - min(counts) <= 1, (key, counts)


# Real shared files in one meter each: two in 3/4, two in 6/8, one in 12/8 (read from their time signatures).
OTHER_METERS = {"three_four": ["b61184d6c6f85b422c4c62ec9b291ca5", "84be727c1d662aea735776f2c1ca883a"],
                "six_eight": ["60fc61c202ca9b0c3217246be7be8368", "ab82677fd75ba6215754dcec24e99865"],
                "twelve_eight": ["b837f8f70db72022db494de6f90fa50b"]}


def test_a_folder_in_other_meters_loses_no_file_to_its_meter(shared_data, tmp_path):
    for folder, md5s in OTHER_METERS.items():
        (tmp_path / "tree" / folder).mkdir(parents=True)
        for md5 in md5s:
            shutil.copy(shared_data / "lmd_subset" / "midi" / f"{md5}.mid", tmp_path / "tree" / folder)
    args = [f"dataset.root={tmp_path / 'tree'}", f"dataset.cache_dir={tmp_path / 'cache'}"]
    every = build_dataset("midi_folder", *args)
    assert every.skipped == {} and len(every.song_names) == 5  # no no_4_4_grid, nor any other meter skip
    songs = every.meter_counts()["songs"]
    assert songs == {"3/4": 2, "6/8": 2, "12/8": 1}
    for song, name in enumerate(every.song_names):  # each file's windows start on its own bar lines
        score = load_score(every.song_paths[song])
        (meter,) = {f"{ts.numerator}/{ts.denominator}" for ts in score.time_signatures}
        numerator, denominator = map(int, meter.split("/"))
        bar = score.ticks_per_quarter * 4 * numerator // denominator
        starts = every.starts[every.song_ids == song]
        assert (starts % bar == 0).all() and set(every.meters[every.song_ids == song]) == {meter}, name
    four_four = build_dataset("midi_folder", "dataset.meters=[4/4]", *args)  # today's behaviour, on request
    assert four_four.skipped == {"meter_excluded": 5} and not four_four.song_names


def test_open_scoring_keeps_the_unscored_files(lmd_args, topmagd):
    closed = build_dataset("lmd_topmagd", "label_map@dataset.label_map=paper_to_topmagd", *lmd_args)
    both = build_dataset("lmd_topmagd", "label_map@dataset.label_map=paper_to_topmagd", "dataset.keep_unscored=true",
                         *lmd_args)
    assert both.classes == closed.classes and both.unscored_classes == ["RnB", "Latin", "International", "Vocal",
                                                                       "New Age"]
    assert "unscored_label" not in both.skipped and both.song_names == topmagd.song_names
    assert [n for n, s in zip(both.song_names, both.scored) if s] == closed.song_names
    counts = both.class_counts()
    assert counts == {c: topmagd.class_counts()[c] for c in both.classes + both.unscored_classes}
    coverage = both.coverage()
    assert coverage["closed"]["songs"] == len(closed.song_names)
    assert coverage["open"]["unscored_songs"] == sum(counts[c] for c in both.unscored_classes) > 0
    # The closed view counts every file of the unscored classes as unscored_label; the open one keeps
    # them, but for those it skips for another reason (unreadable, several unscored labels).
    moved = sum(both.skipped.values()) - (sum(closed.skipped.values()) - closed.skipped["unscored_label"])
    assert closed.skipped["unscored_label"] == coverage["open"]["unscored_songs"] + moved
    assert both.song_labels.max() == len(both.classes) + len(both.unscored_classes) - 1


def test_shuffled_labels_keep_the_songs_and_the_class_counts(lmd_args, topmagd):
    shuffled = build_dataset("lmd_topmagd", "+dataset.shuffle_labels=3", *lmd_args)
    again = build_dataset("lmd_topmagd", "+dataset.shuffle_labels=3", *lmd_args)
    other = build_dataset("lmd_topmagd", "+dataset.shuffle_labels=4", *lmd_args)
    assert shuffled.song_names == topmagd.song_names and len(shuffled) == len(topmagd)
    assert shuffled.class_counts() == topmagd.class_counts()
    assert np.array_equal(shuffled.song_labels, again.song_labels)  # seeded
    moved = (shuffled.song_labels != topmagd.song_labels).mean()
    assert moved > 0.1 and (other.song_labels != shuffled.song_labels).any()
    assert shuffled.summary()["labels_shuffled"] and not topmagd.summary()["labels_shuffled"]
