"""The common windowed piano-roll Dataset.

Every classification data set is songs -> piano-roll windows of the constraint set's span, one
label (or a multi-hot) per song, song ids on windows so song-level results can average window
logits. A subclass says which files to roll and what labels they carry; this base rolls them
(cached on disk, bit-packed), drops unusable files with a counted reason, assigns stratified
folds by song and keeps the requested split.

Rolls are binary, so they are stored bit-packed along time (8 KB a window) and unpacked to float32
per item: 13,000 windows of the LMD subset take 107 MB instead of 3.4 GB.
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
from llmusic.midi import MidiSkip, load_score, midi_windows
from llmusic.midi.io import MAX_NOTES_PER_FILE

log = logging.getLogger(__name__)

SPLITS = ("train", "test", "all")


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


class PackedWindows:
    """Bit-packed windows appended file by file into one buffer grown in place (`ndarray.resize`:
    realloc, which moves large blocks by remapping pages), so a build holds its windows once, not
    once in a list and once more while the list is joined."""

    def __init__(self, width: int) -> None:
        self.array = np.empty((1024, 4, 128, width), np.uint8)  # untouched pages take no memory
        self.n = 0

    def add(self, rows: np.ndarray) -> None:
        end = self.n + len(rows)
        if end > len(self.array):
            self.array.resize((max(end, 2 * len(self.array)), *self.array.shape[1:]), refcheck=False)
        self.array[self.n:end] = rows
        self.n = end

    def done(self) -> np.ndarray:
        self.array.resize((self.n, *self.array.shape[1:]), refcheck=False)
        return self.array


class RollDataset(Dataset):
    """Piano-roll windows of labelled songs. Subclasses call `_build` from their constructor.

    Public attributes: `classes`, `multilabel`, `song_ids` (W,) int64, `song_names`, `song_labels`
    ((S,) int64 or (S, C) float32), `starts` (W,) window start ticks, `skipped` (reason -> files),
    `skipped_files` (each file that did not read or roll: file, reason, detail), `cache_path`, and the
    framing: `time_span_ticks` at `ticks_per_quarter` (a constraint set's span).
    """

    def __init__(self, *, time_span_ticks: int, ticks_per_quarter: int, split: str = "all", fold: int = 0,
                 n_folds: int = 5, seed: int = 0, multilabel: bool = False, steps: int = 128,
                 hop_quarters: float | None = None, max_windows_per_song: int | None = None,
                 max_notes_per_file: int | None = MAX_NOTES_PER_FILE, max_windows_per_file: int | None = 2000,
                 cache_dir: str | os.PathLike | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if not 0 <= fold < n_folds:
            raise ValueError(f"fold must lie in [0, {n_folds}), got {fold}")
        if steps % 8:
            raise ValueError(f"steps must be a multiple of 8 (rolls are bit-packed), got {steps}")
        self.split, self.fold, self.n_folds, self.seed = split, fold, n_folds, seed
        self.multilabel = multilabel
        self.time_span_ticks, self.ticks_per_quarter = time_span_ticks, ticks_per_quarter  # 7680 at 480: 4 bars
        self.steps, self.hop_quarters = steps, hop_quarters
        self.max_windows_per_song = max_windows_per_song
        self.max_notes_per_file, self.max_windows_per_file = max_notes_per_file, max_windows_per_file
        self.cache = ArrayCache(cache_dir)
        self.skipped: dict[str, int] = {}
        self.skipped_files: list[dict[str, str]] = []

    # --- what subclasses may override -------------------------------------------------------------

    def song_windows(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """(W, 4, 128, steps // 8) bit-packed binary rolls of one file and (W,) start ticks; MidiSkip
        if unusable."""
        return midi_windows(load_score(path, self.max_notes_per_file), self.time_span_ticks, self.ticks_per_quarter,
                            self.steps, self.hop_quarters, max_windows=self.max_windows_per_file, packed=True)

    def roll_params(self) -> dict:
        """Everything besides the files that the cached rolls depend on."""
        return {"roller": type(self).song_windows.__qualname__, "time_span_ticks": self.time_span_ticks,
                "ticks_per_quarter": self.ticks_per_quarter, "steps": self.steps, "hop_quarters": self.hop_quarters,
                "max_notes_per_file": self.max_notes_per_file, "max_windows_per_file": self.max_windows_per_file}

    # --- building -------------------------------------------------------------------------------

    def _roll_all(self, paths: Sequence[Path], desc: str) -> dict[str, np.ndarray]:
        """Rolls of every path, from the cache when its fingerprint matches."""
        key = fingerprint(paths, self.roll_params())
        cached = self.cache.load("rolls", key)
        self.cache_path = self.cache.path("rolls", key)
        self.cache_hit = cached is not None
        if cached is not None:
            return cached
        packed, owner, start, reasons, details = PackedWindows(self.steps // 8), [], [], [], []
        for i, path in enumerate(tqdm(paths, desc=f"rolling {desc}", leave=False)):
            try:
                rolls, starts = self.song_windows(path)
            except MidiSkip as skip:
                reason, detail = skip.reason, skip.detail
                log.info("skipped %s: %s", path, skip)
            except Exception as error:  # noqa: BLE001 - one file never ends a build
                reason, detail = "roll_error", f"{type(error).__name__}: {error}"[:500]
                log.warning("skipped %s: %s: %s", path, reason, detail)
            else:
                reason = detail = ""
                packed.add(rolls)
                owner.append(np.full(len(rolls), i, dtype=np.int64))
                start.append(np.asarray(starts, dtype=np.int64))
            reasons.append(reason)
            details.append(detail)
        arrays = {
            "packed": packed.done(),
            "owner": np.concatenate(owner) if owner else np.zeros(0, np.int64),
            "start": np.concatenate(start) if start else np.zeros(0, np.int64),
            "reason": np.asarray(reasons, dtype=str),
            "detail": np.asarray(details, dtype=str),
            "paths": np.asarray([os.fspath(p) for p in paths], dtype=str),
        }
        self.cache.save("rolls", key, arrays)
        return arrays

    def _build(self, paths: Sequence[Path], names: Sequence[str], labels: Sequence[Sequence[str]],
               classes: Sequence[str], skipped: Counter, desc: str) -> None:
        """Roll `paths` and keep the songs of this split.

        All `paths` are rolled (one cache, shared by every view of the same files); `labels[i]`
        are the labels of `paths[i]` in this data set's taxonomy (already mapped), and `skipped`
        holds the exclusions counted before. A single-label view keeps songs with exactly one
        distinct label, a multi-label view songs with any label among `classes`.
        """
        self.classes = list(classes)
        index = {c: k for k, c in enumerate(self.classes)}
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

        target = np.zeros((len(songs), len(self.classes)), dtype=np.float32)
        for s, i in enumerate(songs):
            target[s, [index[c] for c in set(labels[i]) & index.keys()]] = 1.0
        folds = stratified_folds(self._strata(target), self.n_folds, self.seed)
        keep = {"all": np.ones(len(songs), bool), "test": folds == self.fold, "train": folds != self.fold}[self.split]
        kept = [i for s, i in enumerate(songs) if keep[s]]

        # Windows of kept songs, at most max_windows_per_song each, spread evenly over the song.
        song_of_path = np.full(len(paths), -1, dtype=np.int64)
        song_of_path[kept] = np.arange(len(kept))
        song_of_window = song_of_path[arrays["owner"]]
        windows = np.flatnonzero(song_of_window >= 0)
        if self.max_windows_per_song is not None:
            windows = self._thin(windows, song_of_window[windows], self.max_windows_per_song)
        self.packed = arrays["packed"][windows]
        self.starts = arrays["start"][windows]
        self.song_ids = song_of_window[windows]
        self.song_names = [names[i] for i in kept]
        self.song_paths = [Path(paths[i]) for i in kept]
        self.folds = folds[keep]
        self.song_labels = target[keep] if self.multilabel else target[keep].argmax(1).astype(np.int64)
        log.info("%s [%s]: %d songs, %d windows, %d classes; skipped %s", desc, self.split,
                 len(self.song_names), len(self.song_ids), len(self.classes), self.skipped)

    def _strata(self, target: np.ndarray) -> list[str]:
        """A song's stratum is its set of classes, as MusicBERT's StratifiedKFold over the
        '+'-joined label set (single-label: the label)."""
        return ["+".join(self.classes[k] for k in np.flatnonzero(row)) for row in target]

    @staticmethod
    def _thin(windows: np.ndarray, owners: np.ndarray, limit: int) -> np.ndarray:
        keep = []
        for song in np.unique(owners):
            mine = windows[owners == song]
            if len(mine) > limit:
                mine = mine[np.linspace(0, len(mine) - 1, limit).round().astype(np.int64)]
            keep.append(mine)
        return np.concatenate(keep) if keep else windows

    # --- Dataset --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.song_ids)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        x = np.unpackbits(self.packed[i], axis=-1, count=self.steps).astype(np.float32)  # (4, 128, steps)
        y = self.song_labels[self.song_ids[i]]
        return torch.from_numpy(x), torch.as_tensor(y), int(self.song_ids[i])

    def class_counts(self) -> dict[str, int]:
        """Songs per class (a multi-label song counts once for each of its classes)."""
        if self.multilabel:
            counts = self.song_labels.sum(0)
        else:
            counts = np.bincount(self.song_labels, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, counts)}

    def summary(self) -> dict:
        return {"dataset": type(self).__name__, "split": self.split, "fold": self.fold,
                "songs": len(self.song_names), "windows": len(self.song_ids), "classes": len(self.classes),
                "multilabel": self.multilabel, "class_counts": self.class_counts(), "skipped": self.skipped,
                "skipped_files": self.skipped_files, "cache": os.fspath(self.cache_path),
                "cache_dropped": self.cache.dropped}
