"""Train/validation/test loaders around two data sets built by Hydra (conf/dataset/).

The train and test sets are chosen separately (the paper trains on LLM-MIDI and tests on real
music); the validation set is carved from the train set by song, so no song's windows or phrases
land on both sides. `balance=True` draws training windows with weights that give every class (for
multi-label data: every label set) the same share of an epoch: mapping Pop, Rock, Metal and Punk
all to Pop_Rock gives that class 4 of the paper's 12 mapped genres. Melody data sets must frame
their phrases alike (`framing`: bars, grid, tokens): a model is never tested on phrases of another
length than it was trained on.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, WeightedRandomSampler

from llmusic.config import UserError


def split_by_song(song_ids: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample indices -> (train indices, validation indices), whole songs on each side."""
    songs = np.unique(song_ids)
    n_val = int(round(len(songs) * val_fraction))
    if val_fraction > 0 and len(songs) > 1:
        n_val = min(max(n_val, 1), len(songs) - 1)  # at least one song on each side
    val_songs = np.random.default_rng(seed).permutation(songs)[:n_val]
    is_val = np.isin(song_ids, val_songs)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def class_balanced_weights(song_labels: np.ndarray, song_ids: np.ndarray) -> np.ndarray:
    """A sampling weight per window: 1 / (windows of its song's class), so every class (multi-label:
    every label set) draws the same share of the windows."""
    labels = np.asarray(song_labels)
    keys = [row.tobytes() for row in labels.reshape(len(labels), -1)]
    _, group = np.unique(keys, return_inverse=True)
    window_group = group[np.asarray(song_ids)]
    return 1.0 / np.bincount(window_group)[window_group]


PHRASE_FACTS = ("source", "phrase_bars", "steps_per_quarter", "n_tokens", "key_normalization", "keys_found_by")


def check_framing(train: dict | None, test: dict | None) -> None:
    """Stops a run whose melody phrases differ in length or grid between training and test."""
    if train is None or test is None or train == test:
        return
    raise ValueError(
        f"train phrases ({train}) and test phrases ({test}) differ: a model must be tested on phrases of "
        "the length and grid it was trained on, and nothing is padded to hide it. Set `phrase_bars` (the melody "
        "experiments hand it to data.train.source.phrase_bars and data.test.pairs.source.phrase_bars) and "
        "keep data.train.source.steps_per_quarter = data.test.pairs.source.steps_per_quarter. An LLM-MIDI run "
        "made with constraints=paper spans 4 bars (phrase_bars=2 for training and test); generate with "
        "constraints=paper_consistent for phrase_bars=4")


class TrainTestData(L.LightningDataModule):
    def __init__(self, train: Dataset, test: Dataset, val_fraction: float = 0.1, batch_size: int = 64,
                 test_batch_size: int | None = None, num_workers: int = 0, seed: int = 0,
                 balance: bool = False) -> None:
        """`train` needs `song_ids` (one per sample); a classification pair must share `classes`."""
        super().__init__()
        if hasattr(train, "classes") and list(train.classes) != list(test.classes):
            raise ValueError(f"train and test classes differ: {train.classes} vs {test.classes}")
        if getattr(train, "unscored_classes", None):
            raise ValueError("the training set keeps files of unscored classes (keep_unscored): a model cannot "
                             "learn classes outside its head; keep_unscored is for test sets")
        if balance and not hasattr(train, "song_labels"):
            raise ValueError(f"balance=true needs a classification training set, got {type(train).__name__}")
        check_framing(getattr(train, "framing", None), getattr(test, "framing", None))
        self.train_full, self.test = train, test
        self.balance, self.seed = balance, seed
        self.batch_size = batch_size
        self.test_batch_size = test_batch_size or batch_size
        self.num_workers = num_workers
        if not len(train):  # torch would say only "num_samples should be a positive integer value"
            raise UserError(
                f"the training set ({type(train).__name__}) holds no samples: every source song was skipped "
                f"({dict(getattr(train, 'skipped', None) or {}) or 'no reasons recorded'}). Nothing can be trained "
                "on it; in a pipeline cell, leave this student out (e.g. students.melody=null)")
        train_idx, val_idx = split_by_song(np.asarray(train.song_ids), val_fraction, seed)
        self.train, self.val = Subset(train, train_idx.tolist()), Subset(train, val_idx.tolist())

    def model_kwargs(self) -> dict:
        """What the model's head needs to know about the data (classification: its label set)."""
        if hasattr(self.train_full, "classes"):
            kwargs = {"classes": list(self.train_full.classes), "multilabel": bool(self.train_full.multilabel)}
            if getattr(self.test, "unscored_classes", None):
                kwargs["unscored_classes"] = list(self.test.unscored_classes)
            return kwargs
        if getattr(self.train_full, "framing", None) is not None:
            return {"framing": dict(self.train_full.framing)}
        return {}

    def describe(self) -> dict:
        """Sizes and skip counts of every split, for metrics.json."""
        ids = np.asarray(self.train_full.song_ids)
        out = {
            "train": {"samples": len(self.train), "songs": len(np.unique(ids[self.train.indices]))},
            "val": {"samples": len(self.val), "songs": len(np.unique(ids[self.val.indices]))},
            "test": {"samples": len(self.test)},
        }
        if hasattr(self.test, "song_ids"):
            out["test"]["songs"] = len(np.unique(np.asarray(self.test.song_ids)))
        for name, ds in (("train", self.train_full), ("test", self.test)):
            if getattr(ds, "skipped", None):
                out[name]["skipped"] = dict(ds.skipped)
            if getattr(ds, "framing", None) is not None and hasattr(ds, "summary"):  # melody phrases
                summary = ds.summary()
                out[name]["phrases"] = {k: summary[k] for k in PHRASE_FACTS if k in summary}
        if hasattr(self.test, "meter_counts"):
            out["test"]["meters"] = self.test.meter_counts()
            out["test"]["coverage"] = self.test.coverage()
        out["train"]["balanced"] = self.balance
        out["train"]["labels_shuffled"] = getattr(self.train_full, "shuffle_labels", None) is not None
        return out

    def _loader(self, ds: Dataset, batch_size: int, shuffle: bool) -> DataLoader:
        return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        if not self.balance:
            return self._loader(self.train, self.batch_size, shuffle=True)
        ids = np.asarray(self.train_full.song_ids)[self.train.indices]
        weights = class_balanced_weights(self.train_full.song_labels, ids)
        sampler = WeightedRandomSampler(weights.tolist(), num_samples=len(weights), replacement=True,
                                        generator=torch.Generator().manual_seed(self.seed))
        return DataLoader(self.train, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val, self.batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test, self.test_batch_size, shuffle=False)

