"""Any `<root>/<label>/*.mid|*.midi` tree (default: the public balanced midi_genre_corpus)."""

from __future__ import annotations

import os
from collections import Counter

from llmusic.config import existing_path
from llmusic.data.label_map import LabelMap
from llmusic.data.lmd import MIDI_SUFFIXES
from llmusic.data.rolls import RollDataset


class MidiFolderDataset(RollDataset):
    """Windows of the MIDI files in each label folder; classes are the sorted folder names.

    With a non-identity `label_map` (target taxonomy = these folder names) the classes are the
    folders the map scores, in folder order.
    """

    def __init__(self, root: str | os.PathLike, label_map: LabelMap | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = existing_path(root, "root")
        folders = sorted(p for p in self.root.iterdir() if p.is_dir())
        if not folders:
            raise FileNotFoundError(f"no label folders under {self.root}")
        classes = [p.name for p in folders]
        if label_map is not None and label_map.scored_classes is not None:
            missing = set(label_map.scored_classes) - set(classes)
            if missing:
                raise ValueError(f"label map {label_map.name!r} scores classes with no folder under "
                                 f"{self.root}: {sorted(missing)}")
            classes = [c for c in classes if c in label_map.scored_classes]
        paths = [f for folder in folders for f in sorted(folder.iterdir())
                 if f.is_file() and f.suffix.lower() in MIDI_SUFFIXES]
        self._build(paths, [f"{p.parent.name}/{p.name}" for p in paths], [[p.parent.name] for p in paths],
                    classes, Counter(), desc=f"midi folder {self.root.name}")
