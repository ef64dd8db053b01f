"""Lakh MIDI files with TOP-MAGD genres or MASD styles (MusicBERT's genre / style tasks).

Files are found by md5 anywhere under `root` (lmd_full `<x>/<md5>.mid`, lmd_matched
`<A>/<B>/<C>/<track>/<md5>.mid`, or flat), labels come from the label map JSON or the subset's
labels.csv. Class order is fixed (`labels.CLASS_ORDERS[taxonomy]`); the split is MusicBERT's
protocol, 5-fold cross-validation stratified by file.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from llmusic.config import existing_path, resolve_path
from llmusic.data.label_map import LabelMap
from llmusic.data.labels import CLASS_ORDERS, load_label_map
from llmusic.data.rolls import RollDataset

MIDI_SUFFIXES = {".mid", ".midi"}


def find_midi_by_md5(root: str | os.PathLike) -> dict[str, Path]:
    """md5 (file stem) -> path of every MIDI file under root, in any folder layout."""
    found: dict[str, Path] = {}
    for dirpath, _, filenames in os.walk(resolve_path(root)):
        for name in filenames:
            stem, suffix = os.path.splitext(name)
            if suffix.lower() in MIDI_SUFFIXES:
                found.setdefault(stem, Path(dirpath) / name)
    return found


class LakhMidiDataset(RollDataset):
    """Windows of labelled Lakh MIDI files: single-label view (files with exactly one distinct
    label) or multi-label view (multi-hot over the classes).

    With a `label_map` the classes are those the map scores (e.g. the TOP-MAGD genres the paper's
    13 prompt genres map to), so a model trained on LLM-MIDI with the same map shares them.
    """

    def __init__(self, root: str | os.PathLike, labels: str | os.PathLike, taxonomy: str = "topmagd",
                 label_map: LabelMap | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if taxonomy not in CLASS_ORDERS:
            raise ValueError(f"unknown taxonomy {taxonomy!r}, known: {sorted(CLASS_ORDERS)}")
        self.root, self.labels_path, self.taxonomy = existing_path(root, "root"), existing_path(labels, "labels"), taxonomy
        classes = list(CLASS_ORDERS[taxonomy])
        if label_map is not None and label_map.scored_classes is not None:
            if label_map.target != taxonomy:
                raise ValueError(f"label map {label_map.name!r} maps to {label_map.target}, not {taxonomy}")
            classes = label_map.scored_classes
        table = load_label_map(self.labels_path)
        if taxonomy not in table:
            raise ValueError(f"{self.labels_path} has no {taxonomy!r} labels (keys: {sorted(table)})")
        files = find_midi_by_md5(self.root)
        if not files:
            raise FileNotFoundError(f"no MIDI files under {self.root}")
        # Roll every file labelled in any taxonomy: one cache serves the genre and the style tasks.
        md5s = sorted(m for m in files if any(m in by_md5 for by_md5 in table.values()))
        skipped = Counter(unlabelled=len(files) - len(md5s))
        self._build([files[m] for m in md5s], md5s, [table[taxonomy].get(m, []) for m in md5s],
                    classes, skipped, desc=f"lmd {taxonomy}")
