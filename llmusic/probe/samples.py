"""The two sides of the probe as feature sets: a generate run's songs and labelled real MIDI.

An LLM song is one window (`song_features`: its notes that start inside the run's span); a real
file gives the windows of that span on its own 4/4 bar lines (`files_features`), at most
`windows_per_song` of them spread evenly over the song. Real files count under a class when their
labels in the taxonomy name exactly one class (the single-label view of the data sets). Every
song that is left out is counted under a reason.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from llmusic.data.lmd import as_list, load_label_maps
from llmusic.data.lmd import find_midi_by_md5
from llmusic.midi import MidiSkip, load_score, score_to_song, spread_per_owner
from llmusic.midi.features import FEATURE_NAMES, files_features, song_features
from llmusic.run_dir import GenerateRun


@dataclass
class FeatureSet:
    """Windows of songs in groups: `features` (N, F) float32, `song` (N,) each window's song name,
    `group` (N,) index into `groups`; `skipped` counts the songs left out, by reason."""

    features: np.ndarray
    song: np.ndarray
    group: np.ndarray
    groups: list[str]
    skipped: dict[str, int] = field(default_factory=dict)

    def songs_per_group(self) -> dict[str, int]:
        first = np.unique(self.song, return_index=True)[1]
        counts = np.bincount(self.group[first], minlength=len(self.groups))
        return {g: int(n) for g, n in zip(self.groups, counts)}

    def subset(self, keep: np.ndarray) -> FeatureSet:
        """The windows where `keep` is true, groups without any left out (counted as `few_songs`)."""
        present = np.unique(self.group[keep])
        renumber = np.full(len(self.groups), -1)
        renumber[present] = np.arange(len(present))
        return FeatureSet(self.features[keep], self.song[keep], renumber[self.group[keep]],
                          [self.groups[g] for g in present], dict(self.skipped))

    def at_least(self, min_songs: int) -> FeatureSet:
        """Groups with at least `min_songs` songs; the songs of the others are counted as `few_songs`."""
        counts = self.songs_per_group()
        small = [i for i, g in enumerate(self.groups) if counts[g] < min_songs]
        kept = self.subset(~np.isin(self.group, small))
        dropped = sum(counts[self.groups[i]] for i in small)
        if dropped:
            kept.skipped["few_songs"] = kept.skipped.get("few_songs", 0) + dropped
        return kept


def _sample(names: list[str], labels: list[str], max_per_label: int | None, seed: int) -> list[int]:
    """Indices of at most `max_per_label` items of each label, a seeded draw, in their first order."""
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for label in sorted(set(labels)):
        members = [i for i, lab in enumerate(labels) if lab == label]
        if max_per_label is not None and len(members) > max_per_label:
            members = sorted(rng.choice(members, max_per_label, replace=False).tolist())
        keep += members
    return sorted(keep)


def llm_features(run: GenerateRun, label: str, include_repaired: bool = True, max_songs_per_group: int | None = None,
                 seed: int = 0) -> FeatureSet:
    """One row per valid song of the run, grouped by its manifest `label` (genre or style), in the
    run's order of that label's values."""
    usable, excluded = run.usable(include_repaired)
    skipped = Counter({f"status_{status}": n for status, n in excluded.items()})
    labels = [str(r[label]) for r in usable]
    chosen = _sample([r["midi"] for r in usable], labels, max_songs_per_group, seed)
    skipped["sampled_out"] = len(usable) - len(chosen)
    cs = run.constraints
    rows, songs, groups = [], [], []
    for i in chosen:
        try:
            score = load_score(run.midi_path(usable[i]))
            try:
                song = score_to_song(score)
            except ValueError as err:  # tracks not named by role: not written by the engine
                raise MidiSkip("foreign_tracks", str(err)) from err
            rows.append(song_features(song, cs.time_span_ticks, cs.ticks_per_quarter))
        except MidiSkip as skip:
            skipped[skip.reason] += 1
            continue
        songs.append(f"llm:{usable[i]['midi']}")
        groups.append(labels[i])
    order = [g for g in run.classes(label) if g in set(groups)] + sorted(set(groups) - set(run.classes(label)))
    index = {g: k for k, g in enumerate(order)}
    features = np.stack(rows) if rows else np.zeros((0, len(FEATURE_NAMES)), np.float32)
    return FeatureSet(features, np.asarray(songs, dtype=object), np.asarray([index[g] for g in groups], dtype=np.int64),
                      order, {k: v for k, v in skipped.items() if v})


def real_features(roots: Sequence[str | os.PathLike], labels: str | os.PathLike | Sequence[str | os.PathLike],
                  taxonomy: str, classes: Sequence[str],
                  time_span_ticks: int, ticks_per_quarter: int, windows_per_song: int | None = None,
                  max_songs_per_group: int | None = None, seed: int = 0, workers: int = 1) -> FeatureSet:
    """Windows of the real files under `roots` (found by md5, as the Lakh data sets find them) whose
    labels in `taxonomy` name exactly one of `classes`, grouped by that class in `classes` order."""
    table = load_label_maps(as_list(labels, "labels"))  # one labels file or several, as the Lakh data sets read them
    if taxonomy not in table:
        raise ValueError(f"{labels} has no {taxonomy!r} labels (keys: {sorted(table)})")
    by_md5 = table[taxonomy]
    files: dict[str, os.PathLike] = {}
    for root in roots:
        for md5, path in find_midi_by_md5(root).items():
            files.setdefault(md5, path)
    skipped: Counter = Counter()
    md5s, classes_of = [], []
    for md5 in sorted(files):
        distinct = set(by_md5.get(md5, [])) & set(classes)
        if not by_md5.get(md5):
            skipped["unlabelled"] += 1
        elif not distinct:
            skipped["unscored_label"] += 1
        elif len(set(by_md5[md5])) > 1:
            skipped["multiple_labels"] += 1
        else:
            md5s.append(md5)
            classes_of.append(distinct.pop())
    chosen = _sample(md5s, classes_of, max_songs_per_group, seed)
    skipped["sampled_out"] = len(md5s) - len(chosen)
    found = files_features([files[md5s[i]] for i in chosen], time_span_ticks, ticks_per_quarter, workers=workers)
    skipped.update(found.skipped())
    windows = spread_per_owner(found.owner, windows_per_song)
    owner = found.owner[windows]
    index = {c: k for k, c in enumerate(classes)}
    group = np.asarray([index[classes_of[i]] for i in chosen], dtype=np.int64)[owner]
    song = np.asarray([f"real:{md5s[i]}" for i in chosen], dtype=object)[owner]
    return FeatureSet(found.features[windows], song, group, list(classes), {k: v for k, v in skipped.items() if v})


def halves(songs: FeatureSet, seed: int = 0) -> tuple[FeatureSet, FeatureSet]:
    """Each group's songs dealt at random into two halves (the first gets the odd one out): real data
    probed against itself, the calibration a run's numbers are read against."""
    names, song = np.unique(songs.song.astype(str), return_inverse=True)
    group_of_song = np.zeros(len(names), np.int64)
    group_of_song[song] = songs.group
    first = np.zeros(len(names), bool)
    rng = np.random.default_rng(seed)
    for g in range(len(songs.groups)):
        members = rng.permutation(np.flatnonzero(group_of_song == g))
        first[members[:(len(members) + 1) // 2]] = True
    return songs.subset(first[song]), songs.subset(~first[song])
