"""A generate run's songs as a classification data set (the paper's training data).

Reads the run through `llmusic.run_dir.GenerateRun`: one manifest record per song with its genre,
style, mood, status and MIDI path. Failed songs are left out, repaired ones kept unless
`include_repaired=False`. The label is one manifest key (`label`: genre, style or mood); a
`label_map` turns it into an evaluation class (songs whose label has no counterpart are left out
and counted). Windows span the run's own constraint set; a config that states another span is
refused, since the test set's windows would then not match what the songs were asked to span.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from llmusic.config import resolve_path
from llmusic.data.label_map import LabelMap
from llmusic.data.rolls import RollDataset
from llmusic.midi import MidiSkip, read_midi, song_pianoroll
from llmusic.midi.pianoroll import PITCHED
from llmusic.run_dir import GenerateRun


class LlmMidiDataset(RollDataset):
    """Piano rolls of a generate run's songs, labelled by `label`.

    `from_song=True` rolls the song read back from its MIDI file over the constraint span
    (`song_pianoroll`) instead of cutting the file into windows like real music (`midi_windows`);
    both give the same roll for a song written by the engine. `time_span_ticks` and
    `ticks_per_quarter` are the span the training config states (None: the run's); they must frame
    the songs as the run's constraint set does.
    """

    def __init__(self, out_dir: str | os.PathLike, label: str = "genre", include_repaired: bool = True,
                 label_map: LabelMap | None = None, from_song: bool = False, time_span_ticks: int | None = None,
                 ticks_per_quarter: int | None = None, **kwargs) -> None:
        run = GenerateRun(resolve_path(out_dir))
        run.check_time_span(time_span_ticks, ticks_per_quarter)
        constraints = run.constraints
        super().__init__(time_span_ticks=constraints.time_span_ticks, ticks_per_quarter=constraints.ticks_per_quarter,
                         **kwargs)
        self.out_dir, self.label, self.from_song = run.dir, label, from_song
        if label_map is not None and label_map.source not in (None, label):
            raise ValueError(f"label map {label_map.name!r} maps {label_map.source} labels, "
                             f"but this data set is labelled by {label!r}")
        usable, excluded = run.usable(include_repaired)
        skipped = Counter({f"status_{status}": n for status, n in excluded.items()})
        paths, names, labels = [], [], []
        for record in usable:
            mapped = label_map(str(record[label])) if label_map is not None else str(record[label])
            if mapped is None:
                skipped["unmapped_label"] += 1
                continue
            paths.append(run.midi_path(record))
            names.append(record["midi"])
            labels.append([mapped])
        if label_map is not None and label_map.scored_classes is not None:
            classes = label_map.scored_classes
        else:
            classes = run.classes(label)
        self._build(paths, names, labels, classes, skipped, desc=f"llm-midi {self.out_dir.name} {label}")

    def song_windows(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        if not self.from_song:
            return super().song_windows(path)
        try:
            song = read_midi(path)
        except Exception as err:  # symusic and the role check raise several types; all mean unreadable
            raise MidiSkip("unreadable", f"{path}: {type(err).__name__}: {err}") from err
        # The span in the file's own ticks (the engine writes the constraint set's ticks per quarter).
        roll = song_pianoroll(song, self.time_span_ticks * song.ticks_per_quarter // self.ticks_per_quarter, self.steps)
        if not roll[PITCHED].any():
            raise MidiSkip("no_notes")
        return np.packbits(roll[None] > 0, axis=-1), np.zeros(1, dtype=np.int64)  # bit-packed, as the base class

    def roll_params(self) -> dict:
        return {**super().roll_params(), "from_song": self.from_song}
