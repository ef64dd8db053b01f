"""Lakh MIDI files with TOP-MAGD genres or MASD styles (MusicBERT's genre / style tasks).

Files are found by md5 anywhere under `root` (lmd_full `<x>/<md5>.mid`, lmd_matched
`<A>/<B>/<C>/<track>/<md5>.mid`, or flat); `root` may list several folders (the shared data's
`lmd_subset/midi` and `lmd_extra/midi`), read together as one set. Labels come from the label map
JSON or a folder's labels.csv, or a list of such files merged. Class order is fixed
(`labels.CLASS_ORDERS[taxonomy]`); the split is MusicBERT's protocol, 5-fold cross-validation
stratified by file.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from llmusic.config import existing_path, resolve_path
from llmusic.data.label_map import LabelMap
from llmusic.data.labels import CLASS_ORDERS, load_label_map
from llmusic.data.rolls import RollDataset

MIDI_SUFFIXES = {".mid", ".midi"}


def as_list(paths: str | os.PathLike | Iterable[str | os.PathLike], key: str) -> list[Path]:
    """One path or several (a config's string or list) -> resolved paths; a ConfigError naming the
    config `key` and the path when one is missing."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return [existing_path(p, key) for p in paths]


def find_midi_by_md5(*roots: str | os.PathLike) -> dict[str, Path]:
    """md5 (file stem) -> path of every MIDI file under the roots, in any folder layout (the first
    root holding an md5 wins)."""
    found: dict[str, Path] = {}
    for root in roots:
        for dirpath, _, filenames in sorted(os.walk(resolve_path(root))):
            for name in sorted(filenames):
                stem, suffix = os.path.splitext(name)
                if suffix.lower() in MIDI_SUFFIXES:
                    found.setdefault(stem, Path(dirpath) / name)
    return found


def load_label_maps(paths: Iterable[Path]) -> dict[str, dict[str, list[str]]]:
    """Several label files merged per taxonomy (a later file's entry for an md5 wins)."""
    merged: dict[str, dict[str, list[str]]] = {}
    for path in paths:
        for taxonomy, by_md5 in load_label_map(path).items():
            merged.setdefault(taxonomy, {}).update(by_md5)
    return merged


class LakhMidiDataset(RollDataset):
    """Windows of labelled Lakh MIDI files: single-label view (files with exactly one distinct
    label) or multi-label view (multi-hot over the classes).

    With a `label_map` the classes are those the map scores (e.g. the TOP-MAGD genres the paper's
    13 prompt genres map to), so a model trained on LLM-MIDI with the same map shares them; with
    `keep_unscored` the files of the other classes stay in, for the open score.
    """

    def __init__(self, root: str | os.PathLike | Iterable[str | os.PathLike],
                 labels: str | os.PathLike | Iterable[str | os.PathLike], taxonomy: str = "topmagd",
                 label_map: LabelMap | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if taxonomy not in CLASS_ORDERS:
            raise ValueError(f"unknown taxonomy {taxonomy!r}, known: {sorted(CLASS_ORDERS)}")
        self.roots, self.taxonomy = as_list(root, "root"), taxonomy
        self.labels_paths = as_list(labels, "labels")
        classes = list(CLASS_ORDERS[taxonomy])
        if label_map is not None and label_map.scored_classes is not None:
            if label_map.target != taxonomy:
                raise ValueError(f"label map {label_map.name!r} maps to {label_map.target}, not {taxonomy}")
            classes = label_map.scored_classes
        table = load_label_maps(self.labels_paths)
        if taxonomy not in table:
            raise ValueError(f"{', '.join(map(str, self.labels_paths))} hold no {taxonomy!r} labels "
                             f"(keys: {sorted(table)})")
        files = find_midi_by_md5(*self.roots)
        if not files:
            raise FileNotFoundError(f"no MIDI files under {', '.join(map(str, self.roots))}")
        # Roll every file labelled in any taxonomy: one cache serves the genre and the style tasks.
        md5s = sorted(m for m in files if any(m in by_md5 for by_md5 in table.values()))
        skipped = Counter(unlabelled=len(files) - len(md5s))
        self._build([files[m] for m in md5s], md5s, [table[taxonomy].get(m, []) for m in md5s],
                    classes, skipped, desc=f"lmd {taxonomy}", unscored=CLASS_ORDERS[taxonomy])
