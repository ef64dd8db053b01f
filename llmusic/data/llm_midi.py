"""A generate run's songs as a classification data set (the paper's training data).

Reads `<out_dir>/manifest.jsonl`: one record per song with its genre, style, mood, status and MIDI
path. Failed songs are left out, repaired ones kept unless `include_repaired=False`. The label is
one manifest key (`label`: genre, style or mood); a `label_map` turns it into an evaluation class
(songs whose label has no counterpart are left out and counted).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from llmusic.config import resolve_path
from llmusic.data.label_map import LabelMap
from llmusic.data.rolls import RollDataset
from llmusic.midi import MidiSkip, read_midi, song_pianoroll
from llmusic.midi.pianoroll import PITCHED

USABLE = ("ok", "repaired")


def read_manifest(out_dir: str | os.PathLike) -> list[dict]:
    """The records of `<out_dir>/manifest.jsonl`, in file order.

    A line that is not JSON (a damaged file) is skipped with a warning naming it: the rest of the
    run is still usable.
    """
    path = Path(out_dir) / "manifest.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"no manifest.jsonl in {out_dir}: is it a generate run's out_dir?")
    records = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            print(f"warning: {path}:{lineno} is not JSON ({err.msg}); skipped")
    return records


def run_classes(out_dir: Path, label: str, records: list[dict]) -> list[str]:
    """The run's own class order for a label key: its saved taxonomy (`taxonomy.<label>s` of
    config.yaml), else the sorted labels found in the manifest."""
    config = out_dir / "config.yaml"
    if config.exists():
        listed = OmegaConf.select(OmegaConf.load(config), f"taxonomy.{label}s")
        if listed is not None:
            return [str(c) for c in listed]
    return sorted({str(r[label]) for r in records if r.get(label) is not None})


class LlmMidiDataset(RollDataset):
    """Piano rolls of a generate run's songs, labelled by `label`.

    `from_song=True` rolls the song read back from its MIDI file over the constraint span
    (`song_pianoroll`) instead of cutting the file into windows like real music (`midi_windows`);
    both give the same roll for a song written by the engine.
    """

    def __init__(self, out_dir: str | os.PathLike, label: str = "genre", include_repaired: bool = True,
                 label_map: LabelMap | None = None, from_song: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.out_dir, self.label, self.from_song = resolve_path(out_dir), label, from_song
        if label_map is not None and label_map.source not in (None, label):
            raise ValueError(f"label map {label_map.name!r} maps {label_map.source} labels, "
                             f"but this data set is labelled by {label!r}")
        records = read_manifest(self.out_dir)
        keep = USABLE if include_repaired else ("ok",)
        skipped: Counter[str] = Counter()
        paths, names, labels = [], [], []
        for record in records:
            if record.get("status") not in keep or not record.get("midi"):
                skipped[f"status_{record.get('status')}"] += 1
                continue
            mapped = label_map(str(record[label])) if label_map is not None else str(record[label])
            if mapped is None:
                skipped["unmapped_label"] += 1
                continue
            paths.append(self.out_dir / record["midi"])
            names.append(record["midi"])
            labels.append([mapped])
        if label_map is not None and label_map.scored_classes is not None:
            classes = label_map.scored_classes
        else:
            classes = run_classes(self.out_dir, label, records)
        self._build(paths, names, labels, classes, skipped, desc=f"llm-midi {self.out_dir.name} {label}")

    def song_windows(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        if not self.from_song:
            return super().song_windows(path)
        try:
            song = read_midi(path)
        except Exception as err:  # symusic and the role check raise several types; all mean unreadable
            raise MidiSkip("unreadable", f"{path}: {type(err).__name__}: {err}") from err
        roll = song_pianoroll(song, int(self.span_quarters * song.ticks_per_quarter), self.steps)
        if not roll[PITCHED].any():
            raise MidiSkip("no_notes")
        return roll[None], np.zeros(1, dtype=np.int64)

    def roll_params(self) -> dict:
        return {**super().roll_params(), "from_song": self.from_song}
