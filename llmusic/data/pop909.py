"""POP909 melodies (Wang et al. 2020) with the human phrase labels of Dai et al. (2020) as a phrase source.

A label file like 'i4A4B8A4A4b4B8...o3' is a letter per phrase and its length in bars: capital
letters are melodic phrases, lower-case ones intro, bridge, outro. Each boundary between two
consecutive melodic phrases gives a pair (llmusic.data.phrases.PhraseSource.cut_pairs): the last
`phrase_bars` bars before it and the first `phrase_bars` after it, whatever the two phrases'
lengths (a short phrase lets the window reach into its neighbour).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import numpy as np

from llmusic.config import resolve_path
from llmusic.data.phrases import PhraseSource, SongPhrases, read_sources
from llmusic.midi import MidiSkip, load_score
from llmusic.midi.phrase import grid_notes

PHRASE_LABEL = re.compile(r"([A-Za-z])(\d+)")


def parse_phrase_labels(text: str) -> list[tuple[str, int]]:
    """A POP909 structure label like 'i4A4B8...o3' -> [('i', 4), ('A', 4), ('B', 8), ..., ('o', 3)]."""
    text = text.strip()
    parts = PHRASE_LABEL.findall(text)
    if "".join(f"{letter}{bars}" for letter, bars in parts) != text or not parts:
        raise ValueError(f"not a phrase label string: {text!r}")
    return [(letter, int(bars)) for letter, bars in parts]


def read_pop909_melody(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """POP909 melody.txt -> (onset, duration, pitch) in 16th notes from the song's first bar.

    melody.txt is the MELODY track of NNN.mid quantised on the song's beat grid (pitch 0 is a
    rest); the structure labels count bars on this grid, while the MIDI file's own ticks drift
    from it wherever the tempo map changes.
    """
    rows = np.loadtxt(path, dtype=np.int64, ndmin=2)
    starts = np.r_[0, np.cumsum(rows[:, 1])[:-1]]
    notes = rows[:, 0] > 0
    return starts[notes], rows[notes, 1], rows[notes, 0]


def melodic_boundaries(labels: list[tuple[str, int]]) -> list[int]:
    """Bar numbers where a melodic phrase (capital letter) starts right after another one."""
    edges = np.cumsum([bars for _, bars in labels])  # the bar each phrase ends on
    return [int(edges[i]) for i in range(len(labels) - 1) if labels[i][0].isupper() and labels[i + 1][0].isupper()]


class Pop909Phrases(PhraseSource):
    """POP909 melodies (melody.txt), pairs at the boundaries between consecutive melodic phrases of
    `label_file`. The key comes from NNN.mid's tracks (MELODY, BRIDGE, PIANO: more notes than the
    melody alone); POP909's key signatures are all C major, so `key_signature` falls back to the profile."""

    name = "pop909"  # in 4/4 throughout: the labels count 4/4 bars

    def __init__(self, root: str | os.PathLike, label_file: str = "human_label1.txt", phrase_bars: int = 4,
                 steps_per_quarter: int = 8, key_normalization: str = "profile") -> None:
        super().__init__(phrase_bars, steps_per_quarter, key_normalization)
        self.root = resolve_path(root)
        self.label_file = label_file

    def song_dirs(self) -> list[Path]:
        return sorted(p for p in self.root.iterdir() if p.is_dir() and p.name.isdigit())

    def _inputs(self, song_dir: Path) -> list[Path]:
        midi = [song_dir / f"{song_dir.name}.mid"] if self.key_normalization != "none" else []
        return [song_dir / "melody.txt", song_dir / self.label_file, *midi]

    def files(self) -> list[Path]:
        return [f for d in self.song_dirs() for f in self._inputs(d) if f.exists()]

    def params(self) -> dict:
        return {**super().params(), "root": str(self.root), "label_file": self.label_file}

    def song(self, song_dir: Path) -> SongPhrases:
        try:
            labels = parse_phrase_labels((song_dir / self.label_file).read_text())
            onset, duration, pitch = read_pop909_melody(song_dir / "melody.txt")
        except OSError as error:
            raise MidiSkip("missing_file") from error
        except ValueError as error:
            raise MidiSkip("bad_phrase_labels") from error
        key, shift = None, 0
        if self.key_normalization != "none":
            pitch, key, shift = self.normalise(load_score(song_dir / f"{song_dir.name}.mid"), pitch)
        onset, duration = grid_notes(onset, duration, ticks_per_step=4 / self.steps_per_quarter)  # 16ths -> steps
        bar = 4 * self.steps_per_quarter
        boundaries = bar * np.asarray(melodic_boundaries(labels), dtype=np.int64)
        return self.cut_pairs(song_dir.name, onset, duration, pitch, boundaries, key, shift)

    def songs(self) -> list[SongPhrases]:
        self.skipped = Counter()
        return read_sources(self.song_dirs(), self.song, "pop909 phrases", self.skipped)
