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

ROLL_SKIPS = {"unreadable", "no_notes", "no_4_4_grid"}




@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rolls_cache")


@pytest.fixture(scope="module")
def lmd_args(shared_data, cache_dir) -> list[str]:
    return [f"dataset.root={shared_data / 'lmd_subset' / 'midi'}",
            f"dataset.labels={shared_data / 'labels' / 'midi_genre_map.json'}", f"dataset.cache_dir={cache_dir}"]


@pytest.fixture(scope="module")
def subset_labels(shared_data) -> dict[str, dict[str, set[str]]]:
    """taxonomy -> md5 -> distinct labels, read straight from labels.csv."""
    with open(shared_data / "lmd_subset" / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    return {t: {r["md5"]: set(r[t].split("|")) for r in rows if r[t]} for t in ("topmagd", "masd")}


@pytest.fixture(scope="module")
def topmagd(lmd_args):
    return build_dataset("lmd_topmagd", *lmd_args)


def test_topmagd_single_label_counts_match_labels_csv(topmagd, subset_labels):
    single = {m: next(iter(s)) for m, s in subset_labels["topmagd"].items() if len(s) == 1}
    assert topmagd.classes == list(CLASS_ORDERS["topmagd"]) and not topmagd.multilabel
    assert set(topmagd.song_names) <= set(single)
    assert topmagd.class_counts() == {c: sum(single[m] == c for m in topmagd.song_names) for c in topmagd.classes}
    for md5, label in zip(topmagd.song_names, topmagd.song_labels):
        assert topmagd.classes[label] == single[md5]
    skipped = topmagd.skipped
    assert skipped["unlabelled"] == 550 - 363
    assert skipped["multiple_labels"] == 363 - len(single)
    dropped = set(single) - set(topmagd.song_names)
    assert len(dropped) == sum(n for r, n in skipped.items() if r in ROLL_SKIPS) > 0
    # Every file a reason was counted for really is unusable.
    counted = Counter()
    for md5 in sorted(dropped):
        with pytest.raises(MidiSkip) as err:
            midi_windows(load_score(topmagd.root / f"{md5}.mid"), 7680, 480)
        counted[err.value.reason] += 1
    assert counted == {r: n for r, n in skipped.items() if r in ROLL_SKIPS}


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
    for song in (0, len(topmagd.song_names) // 2, len(topmagd.song_names) - 1):
        rolls, starts = midi_windows(load_score(topmagd.song_paths[song]), 7680, 480)
        mine = np.flatnonzero(topmagd.song_ids == song)
        np.testing.assert_array_equal(topmagd.starts[mine], starts)
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
    np.testing.assert_array_equal(second.packed, first.packed)
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
