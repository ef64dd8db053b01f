"""The common windowed piano-roll Dataset.

Every classification data set is songs -> piano-roll windows of the constraint set's span, one
label (or a multi-hot) per song, song ids on windows so song-level results can average window
logits. A subclass says which files to roll and what labels they carry; this base rolls them
(cached on disk, bit-packed), drops unusable files with a counted reason, assigns stratified
folds by song and keeps the requested split.

Rolls are binary, so they are kept bit-packed along time (8 KB a window) and unpacked to float32
per item: 13,000 windows of the LMD subset take 107 MB instead of 3.4 GB. On disk only their
non-zero bytes are stored (llmusic.data.roll_store).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from llmusic.data.cache import ArrayCache, fingerprint
from llmusic.data.roll_store import SparseWindows, nonzero_bytes, stored
from llmusic.midi import MidiSkip, Windows, load_score, midi_windows, spread_per_owner
from llmusic.midi.features import FEATURE_NAMES, window_features
from llmusic.midi.io import MAX_NOTES_PER_FILE
from llmusic.midi.meter import ANY, allowed_meters

log = logging.getLogger(__name__)

SPLITS = ("train", "test", "all")
INPUTS = ("rolls", "features")


def stratified_folds(strata: Sequence[str], n_folds: int, seed: int) -> np.ndarray:
    """Fold (0..n_folds-1) per item: each stratum is shuffled and dealt round-robin, continuing
    where the previous stratum stopped, so every fold gets its share of each stratum (to within one
    item) and folds differ in size by at most one."""
    strata = np.asarray(strata, dtype=object)
    rng = np.random.default_rng(seed)
    folds = np.empty(len(strata), dtype=np.int64)
    dealt = 0
    for stratum in sorted(set(strata.tolist())):
        members = rng.permutation(np.flatnonzero(strata == stratum))
        folds[members] = (dealt + np.arange(len(members))) % n_folds
        dealt += len(members)
    return folds


class RollDataset(Dataset):
    """Piano-roll windows of labelled songs. Subclasses call `_build` from their constructor.

    Public attributes: `classes` (what a model predicts), `unscored_classes` (test classes kept for
    the open score, `keep_unscored`), `multilabel`, `song_ids` (W,) int64, `song_names`, `song_labels`
    ((S,) int64 or (S, C) float32 over `classes + unscored_classes`), `scored` (S,) bool (the
    songs the closed score covers), `starts` (W,) window start ticks, `meters` (W,) the meter at each
    start, `skipped` (reason -> files), `skipped_files` (each file that did not read or roll: file,
    reason, detail), `cache_path`, and the framing: `time_span_ticks` at `ticks_per_quarter`.

    `meters`: "any" (windows on the bar lines of every meter) or a list such as ["4/4"] (windows in
    those meters only; files without one are skipped as `meter_excluded`). `shuffle_labels`: a
    seed, and the songs' labels are permuted among the songs of this split (class counts kept): the
    control of what a model learns from the data without its labels. `inputs="features"`: an item
    is the (F,) note statistics of its window (llmusic.midi.features) instead of its roll: the same
    windows, labels and splits, for the feature baseline.
    """

    def __init__(self, *, time_span_ticks: int, ticks_per_quarter: int, split: str = "all", fold: int = 0,
                 n_folds: int = 5, seed: int = 0, multilabel: bool = False, steps: int = 128,
                 hop_quarters: float | None = None, max_windows_per_song: int | None = None,
                 max_notes_per_file: int | None = MAX_NOTES_PER_FILE, max_windows_per_file: int | None = 2000,
                 meters: str | Sequence[str] = ANY, keep_unscored: bool = False, shuffle_labels: int | None = None,
                 inputs: str = "rolls", cache_dir: str | os.PathLike | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if not 0 <= fold < n_folds:
            raise ValueError(f"fold must lie in [0, {n_folds}), got {fold}")
        if steps % 8:
            raise ValueError(f"steps must be a multiple of 8 (rolls are bit-packed), got {steps}")
        if inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {INPUTS}, got {inputs!r}")
        self.split, self.fold, self.n_folds, self.seed = split, fold, n_folds, seed
        self.multilabel = multilabel
        self.time_span_ticks, self.ticks_per_quarter = time_span_ticks, ticks_per_quarter  # 7680 at 480: 4 bars
        self.steps, self.hop_quarters = steps, hop_quarters
        allowed = allowed_meters(meters)  # checks the setting before any file is read
        self.allowed_meters = ANY if allowed is None else sorted(allowed)
        self.max_windows_per_song = max_windows_per_song
        self.max_notes_per_file, self.max_windows_per_file = max_notes_per_file, max_windows_per_file
        self.keep_unscored, self.shuffle_labels, self.inputs = keep_unscored, shuffle_labels, inputs
        self.cache = ArrayCache(cache_dir)
        self.skipped: dict[str, int] = {}
        self.skipped_files: list[dict[str, str]] = []
        self.unscored_classes: list[str] = []

    def song_windows(self, path: Path) -> Windows:
        """The windows of one file (rolls bit-packed along time, start ticks, meters); MidiSkip if unusable."""
        return midi_windows(load_score(path, self.max_notes_per_file), self.time_span_ticks, self.ticks_per_quarter,
                            self.steps, self.hop_quarters, meters=self.allowed_meters,
                            max_windows=self.max_windows_per_file, packed=True)

    def song_features(self, path: Path, starts: np.ndarray) -> np.ndarray:
        """(W, F) float32 note statistics of the windows of one file starting at `starts` (those of
        `song_windows`); a window whose pitched notes all started before it gets 0s."""
        rows = np.zeros((len(starts), len(FEATURE_NAMES)), np.float32)
        try:
            found, at = window_features(load_score(path, self.max_notes_per_file), self.time_span_ticks, self.ticks_per_quarter,
                                        self.hop_quarters, self.allowed_meters)
        except MidiSkip:  # pitched notes sound in the windows, but none starts in one
            return rows
        rows[np.searchsorted(starts, at)] = found  # every window with a pitched onset is a roll window
        return rows

    def roll_params(self) -> dict:
        """Everything besides the files that the cached rolls depend on."""
        return {"roller": type(self).song_windows.__qualname__, "time_span_ticks": self.time_span_ticks,
                "ticks_per_quarter": self.ticks_per_quarter, "steps": self.steps, "hop_quarters": self.hop_quarters,
                "meters": self.allowed_meters, "inputs": self.inputs,
                "max_notes_per_file": self.max_notes_per_file, "max_windows_per_file": self.max_windows_per_file}

    def _roll_all(self, paths: Sequence[Path], desc: str) -> dict[str, np.ndarray]:
        """Rolls of every path, from the cache when its fingerprint matches."""
        key = fingerprint(paths, self.roll_params())
        cached = self.cache.load("rolls", key)
        self.cache_path = self.cache.path("rolls", key)
        self.cache_hit = cached is not None
        if cached is not None:
            return cached
        cells, values, features, owner, start, meter, reasons, details = [], [], [], [], [], [], [], []
        n_windows = 0
        for i, path in enumerate(tqdm(paths, desc=f"rolling {desc}", leave=False)):
            try:
                rolls, starts, meters = self.song_windows(path)
                if self.inputs == "features":
                    features.append(self.song_features(path, starts))
            except MidiSkip as skip:
                reason, detail = skip.reason, skip.detail
                log.info("skipped %s: %s", path, skip)
            except Exception as error:  # noqa: BLE001 - one file never ends a build
                reason, detail = "roll_error", f"{type(error).__name__}: {error}"[:500]
                log.warning("skipped %s: %s: %s", path, reason, detail)
            else:
                reason = detail = ""
            reasons.append(reason)
            details.append(detail)
            if reason:
                continue
            if self.inputs != "features":
                cell, value = nonzero_bytes(rolls, n_windows)
                cells.append(cell)
                values.append(value)
            n_windows += len(rolls)
            owner.append(np.full(len(rolls), i, dtype=np.int64))
            start.append(np.asarray(starts, dtype=np.int64))
            meter += meters
        arrays = {
            **stored(cells, values),  # llmusic.data.roll_store: the non-zero bytes of the bit-packed rolls
            "features": np.concatenate(features) if features else np.zeros((0, len(FEATURE_NAMES)), np.float32),
            "owner": np.concatenate(owner) if owner else np.zeros(0, np.int64),
            "start": np.concatenate(start) if start else np.zeros(0, np.int64),
            "meter": np.asarray(meter, dtype=str),
            "reason": np.asarray(reasons, dtype=str),
            "detail": np.asarray(details, dtype=str),
            "paths": np.asarray([os.fspath(p) for p in paths], dtype=str),
        }
        self.cache.save("rolls", key, arrays)
        return arrays

    def _build(self, paths: Sequence[Path], names: Sequence[str], labels: Sequence[Sequence[str]],
               classes: Sequence[str], skipped: Counter, desc: str, unscored: Sequence[str] = ()) -> None:
        """Roll `paths` and keep the songs of this split.

        All `paths` are rolled (one cache, shared by every view of the same files); `labels[i]`
        are the labels of `paths[i]` in this data set's taxonomy (already mapped), and `skipped`
        holds the exclusions counted before. A single-label view keeps songs with exactly one
        distinct label, a multi-label view songs with any label among `classes`. The `unscored`
        classes (of the taxonomy, outside `classes`) keep their songs too when `keep_unscored`.
        """
        self.classes = list(classes)
        self.unscored_classes = [c for c in unscored if c not in self.classes] if self.keep_unscored else []
        columns = self.classes + self.unscored_classes
        index = {c: k for k, c in enumerate(columns)}
        arrays = self._roll_all(paths, desc)
        skipped = Counter(skipped)
        self.skipped_files = []
        songs = []  # rows of `paths` that make it in
        for i, (song_labels, reason) in enumerate(zip(labels, arrays["reason"].tolist())):
            distinct = set(song_labels)
            if not distinct:
                skipped["unlabelled"] += 1
            elif not distinct & index.keys():
                skipped["unscored_label"] += 1
            elif not self.multilabel and len(distinct) > 1:
                skipped["multiple_labels"] += 1
            elif reason:
                skipped[reason] += 1
                self.skipped_files.append({"file": names[i], "reason": reason, "detail": str(arrays["detail"][i])})
            else:
                songs.append(i)
        self.skipped = dict(sorted(skipped.items()))

        target = np.zeros((len(songs), len(columns)), dtype=np.float32)
        for s, i in enumerate(songs):
            target[s, [index[c] for c in set(labels[i]) & index.keys()]] = 1.0
        folds = stratified_folds(self._strata(target, columns), self.n_folds, self.seed)
        keep = {"all": np.ones(len(songs), bool), "test": folds == self.fold, "train": folds != self.fold}[self.split]
        kept = [i for s, i in enumerate(songs) if keep[s]]

        # Windows of kept songs, at most max_windows_per_song each, spread evenly over the song.
        song_of_path = np.full(len(paths), -1, dtype=np.int64)
        song_of_path[kept] = np.arange(len(kept))
        song_of_window = song_of_path[arrays["owner"]]
        windows = np.flatnonzero(song_of_window >= 0)
        if self.max_windows_per_song is not None:
            windows = windows[spread_per_owner(song_of_window[windows], self.max_windows_per_song)]
        if self.inputs == "features":
            self.features = arrays["features"][windows]
        else:
            self.packed = SparseWindows(arrays, len(arrays["owner"]), windows, self.steps)
        self.starts = arrays["start"][windows]
        self.meters = arrays["meter"][windows]
        self.song_ids = song_of_window[windows]
        self.song_names = [names[i] for i in kept]
        self.song_paths = [Path(paths[i]) for i in kept]
        self.folds = folds[keep]
        self.scored = target[keep][:, :len(self.classes)].any(1)
        self.song_labels = target[keep] if self.multilabel else target[keep].argmax(1).astype(np.int64)
        if self.shuffle_labels is not None:  # the control: same songs, same class counts, labels at random
            self.song_labels = self.song_labels[np.random.default_rng(self.shuffle_labels).permutation(len(kept))]
        log.info("%s [%s]: %d songs, %d windows, %d classes; skipped %s", desc, self.split,
                 len(self.song_names), len(self.song_ids), len(self.classes), self.skipped)

    @staticmethod
    def _strata(target: np.ndarray, columns: Sequence[str]) -> list[str]:
        """A song's stratum is its set of classes, as MusicBERT's StratifiedKFold over the
        '+'-joined label set (single-label: the label)."""
        return ["+".join(columns[k] for k in np.flatnonzero(row)) for row in target]

    def __len__(self) -> int:
        return len(self.song_ids)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        if self.inputs == "features":
            x = self.features[i]  # (F,)
        else:
            x = np.unpackbits(self.packed[i], axis=-1, count=self.steps).astype(np.float32)  # (4, 128, steps)
        y = self.song_labels[self.song_ids[i]]
        return torch.from_numpy(x), torch.as_tensor(y), int(self.song_ids[i])

    def class_counts(self) -> dict[str, int]:
        """Songs per class, unscored classes last (a multi-label song counts once for each of its classes)."""
        columns = self.classes + self.unscored_classes
        if self.multilabel:
            counts = self.song_labels.sum(0)
        else:
            counts = np.bincount(self.song_labels, minlength=len(columns))
        return {c: int(n) for c, n in zip(columns, counts)}

    def meter_counts(self) -> dict[str, dict[str, int]]:
        """Windows per meter, and songs per meter (the meter most of a song's windows start in)."""
        names, code = np.unique(self.meters, return_inverse=True)
        per_song = np.zeros((len(self.song_names), len(names)), np.int64)  # (S, meters)
        np.add.at(per_song, (self.song_ids, code), 1)
        main = per_song.argmax(1)[per_song.any(1)]
        windows = Counter(dict(zip(names.tolist(), per_song.sum(0).tolist())))
        songs = Counter(dict(zip(names.tolist(), np.bincount(main, minlength=len(names)).tolist())))
        return {"windows": dict((+windows).most_common()), "songs": dict((+songs).most_common())}

    def coverage(self) -> dict:
        """Which test songs and classes the closed score (the classes a model predicts) and the open
        score (every labelled song kept) cover."""
        present = [c for c, n in self.class_counts().items() if n]
        return {"closed": {"songs": int(self.scored.sum()), "classes": [c for c in present if c in self.classes]},
                "open": {"songs": len(self.song_names), "classes": present,
                         "unscored_songs": int((~self.scored).sum()),
                         "unscored_classes": [c for c in present if c in self.unscored_classes]}}

    def summary(self) -> dict:
        return {"dataset": type(self).__name__, "split": self.split, "fold": self.fold,
                "songs": len(self.song_names), "windows": len(self.song_ids), "classes": len(self.classes),
                "multilabel": self.multilabel, "class_counts": self.class_counts(), "coverage": self.coverage(),
                "meters": self.meter_counts(), "labels_shuffled": self.shuffle_labels is not None,
                "skipped": self.skipped, "skipped_files": self.skipped_files, "cache": os.fspath(self.cache_path),
                "cache_dropped": self.cache.dropped}
