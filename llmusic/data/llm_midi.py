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
from llmusic.midi import MidiSkip, Windows, song_pianoroll
from llmusic.midi.features import song_features
from llmusic.midi.meter import ANY
from llmusic.midi.pianoroll import PITCHED
from llmusic.run_dir import GenerateRun
from llmusic.song import Song


class LlmMidiDataset(RollDataset):
    """Piano rolls of a generate run's songs, labelled by `label`.

    `from_song=True` rolls each 4/4 song over the constraint span (`song_pianoroll`) straight from
    the notes the run saved of it (`GenerateRun.songs`), instead of reading its file back and
    cutting it into windows like real music (`midi_windows`, what `from_song=False` does for every
    song); both give the same rolls, the first without reading any MIDI
    (benchmarks/README-render.md has the cost of each). `time_span_ticks` and
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
        self.saved = {run.dir / name: song for name, song in run.songs().items()} if from_song else {}
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

    def _saved_song(self, path: Path) -> Song | None:
        """The notes the run saved of this file, if it is in 4/4. Real music is cut into windows on
        its bar lines (midi_windows): a 4/4 song's first window is its roll over the span, so the
        saved notes give the same roll; a song in another meter, or one the run saved no notes of,
        is read back and cut like real music."""
        song = self.saved.get(Path(path))
        return song if song is not None and tuple(song.time_signature) == (4, 4) else None

    def song_windows(self, path: Path) -> Windows:
        song = self._saved_song(path)
        if song is None:
            return super().song_windows(path)
        if self.allowed_meters != ANY and "4/4" not in self.allowed_meters:
            raise MidiSkip("meter_excluded", f"{path}: 4/4")
        # The span in the song's own ticks (the engine writes the constraint set's ticks per quarter).
        roll = song_pianoroll(song, self.time_span_ticks * song.ticks_per_quarter // self.ticks_per_quarter, self.steps)
        if not roll[PITCHED].any():
            raise MidiSkip("no_notes")
        return Windows(np.packbits(roll[None] > 0, axis=-1), np.zeros(1, dtype=np.int64), ["4/4"])  # packed, as the base class

    def song_features(self, path: Path, starts: np.ndarray) -> np.ndarray:
        song = self._saved_song(path)
        if song is None:
            return super().song_features(path, starts)
        return song_features(song, self.time_span_ticks, self.ticks_per_quarter)[None]

    def roll_params(self) -> dict:
        return {**super().roll_params(), "from_song": self.from_song}
