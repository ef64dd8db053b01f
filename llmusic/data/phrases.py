"""Melody phrase sources: songs -> phrases on the token grid (llmusic.midi.phrase), and which follow which.

Each source's `songs()` gives a list of `SongPhrases`, in a fixed order, and counts what it skipped:
- `Pop909Phrases`: POP909 melodies, phrases from the human structure labels (capital letters are
  melodic phrases; consecutive melodic phrases give pairs).
- `LakhPhrases`: the melody track (by `assign_roles`) of MIDI files, cut into fixed bar spans.
- `LlmMidiPhrases`: each generated piece's melody split into a context and a continuation.
`files()` and `params()` say what the phrases depend on, so `llmusic.data.melody.MelodyPairs`
can cache them.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from llmusic.config import resolve_path
from llmusic.midi import MidiSkip, assign_roles, load_score, midi_windows, read_midi
from llmusic.midi.phrase import HOLD, encode_phrase, grid_notes
from llmusic.run_dir import GenerateRun
from llmusic.song import DURATION, PITCH, START

log = logging.getLogger(__name__)


@dataclass
class SongPhrases:
    """One song's phrases and which of them follow each other."""

    name: str
    phrases: np.ndarray  # (P, n_tokens) int64
    pairs: np.ndarray  # (K, 2) int64: (context, target) rows of `phrases`


def _cut_phrases(onset: np.ndarray, duration: np.ndarray, pitch: np.ndarray,
                 bounds: list[tuple[int, int]], n_tokens: int) -> np.ndarray:
    """Notes on the grid + phrase (start, stop) steps -> (P, n_tokens) tokens."""
    out = np.empty((len(bounds), n_tokens), dtype=np.int64)
    for i, (start, stop) in enumerate(bounds):
        out[i] = encode_phrase(onset - start, duration, pitch, stop - start, n_tokens)
    return out


def _has_notes(tokens: np.ndarray) -> np.ndarray:
    return (tokens < HOLD).any(axis=-1)


# --- POP909 -------------------------------------------------------------------------------------

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


def read_sources(items, read, desc: str, skipped: Counter) -> list[SongPhrases]:
    """`read(item)` for every item; a MidiSkip is counted in `skipped` by its reason, any other
    exception as "roll_error", each named in the log: never fatal."""
    out = []
    for item in tqdm(items, desc=desc, leave=False):
        try:
            out.append(read(item))
        except MidiSkip as skip:
            skipped[skip.reason] += 1
            log.info("skipped %s: %s", item, skip)
        except Exception as error:  # noqa: BLE001 - one file never ends a build
            skipped["roll_error"] += 1
            log.warning("skipped %s: roll_error: %s: %s", item, type(error).__name__, error)
    return out


class Pop909Phrases:
    """POP909 melodies cut at the human phrase labels (Dai et al. 2020)."""

    SIXTEENTHS_PER_BAR = 16  # POP909 is in 4/4 throughout; the labels count 4/4 bars

    def __init__(self, root: str | os.PathLike, label_file: str = "human_label1.txt",
                 steps_per_quarter: int = 8, n_tokens: int = 128) -> None:
        self.root = resolve_path(root)
        self.label_file = label_file
        self.steps_per_quarter = steps_per_quarter
        self.n_tokens = n_tokens
        self.skipped: Counter[str] = Counter()

    def song_dirs(self) -> list[Path]:
        return sorted(p for p in self.root.iterdir() if p.is_dir() and p.name.isdigit())

    def files(self) -> list[Path]:
        return [f for d in self.song_dirs() for f in (d / "melody.txt", d / self.label_file) if f.exists()]

    def params(self) -> dict:
        return {"source": "pop909", "root": str(self.root), "label_file": self.label_file,
                "steps_per_quarter": self.steps_per_quarter, "n_tokens": self.n_tokens}

    def song(self, song_dir: Path) -> SongPhrases:
        try:
            return self._phrases(song_dir)
        except OSError as error:
            raise MidiSkip("missing_file") from error
        except ValueError as error:
            raise MidiSkip("bad_phrase_labels") from error

    def _phrases(self, song_dir: Path) -> SongPhrases:
        labels = parse_phrase_labels((song_dir / self.label_file).read_text())
        onset, duration, pitch = read_pop909_melody(song_dir / "melody.txt")
        onset, duration = grid_notes(onset, duration, ticks_per_step=4 / self.steps_per_quarter)  # 16ths -> steps
        bar = self.SIXTEENTHS_PER_BAR * self.steps_per_quarter // 4
        edges = np.r_[0, np.cumsum([bars for _, bars in labels])] * bar
        melodic = [i for i, (letter, _) in enumerate(labels) if letter.isupper()]
        bounds = [(int(edges[i]), int(edges[i + 1])) for i in melodic]
        phrases = _cut_phrases(onset, duration, pitch, bounds, self.n_tokens)
        keep = _has_notes(phrases)
        row = np.cumsum(keep) - 1  # row of each kept phrase in `phrases[keep]`
        pairs = [(row[a], row[a + 1]) for a in range(len(melodic) - 1)
                 if melodic[a + 1] == melodic[a] + 1 and keep[a] and keep[a + 1]]
        return SongPhrases(song_dir.name, phrases[keep], np.array(pairs, dtype=np.int64).reshape(-1, 2))

    def songs(self) -> list[SongPhrases]:
        self.skipped = Counter()
        return read_sources(self.song_dirs(), self.song, "pop909 phrases", self.skipped)


# --- Lakh MIDI and LLM-MIDI -----------------------------------------------------------------------

def _melody_notes(score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time, duration, pitch) ticks of the tracks `assign_roles` calls melody, merged."""
    parts = [score.tracks[i].notes.numpy() for i in assign_roles(score)["melody"]]
    if not parts:
        raise MidiSkip("no_melody")
    return tuple(np.concatenate([p[k] for p in parts]).astype(np.int64) for k in ("time", "duration", "pitch"))


class LakhPhrases:
    """The melody track of every MIDI file under `root`, cut into fixed `phrase_bars` spans on the
    file's own 4/4 grid (the bar lines `midi_windows` uses); neighbouring spans with notes pair up."""

    def __init__(self, root: str | os.PathLike, phrase_bars: int = 4, steps_per_quarter: int = 8,
                 n_tokens: int = 128, max_files: int | None = None) -> None:
        self.root = resolve_path(root)
        self.phrase_bars, self.steps_per_quarter, self.n_tokens = phrase_bars, steps_per_quarter, n_tokens
        self.max_files = max_files
        self.skipped: Counter[str] = Counter()

    def files(self) -> list[Path]:
        files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
        return files[:self.max_files] if self.max_files is not None else files

    def params(self) -> dict:
        return {"source": "lmd", "root": str(self.root), "phrase_bars": self.phrase_bars,
                "steps_per_quarter": self.steps_per_quarter, "n_tokens": self.n_tokens}

    def song(self, path: Path) -> SongPhrases:
        score = load_score(path)
        phrase_ticks = 4 * self.phrase_bars * score.ticks_per_quarter
        _, starts = midi_windows(score, phrase_ticks, score.ticks_per_quarter)  # phrase starts on the 4/4 grid
        time, duration, pitch = _melody_notes(score)
        tps = score.ticks_per_quarter / self.steps_per_quarter
        phrase_steps = 4 * self.phrase_bars * self.steps_per_quarter
        onset, steps = grid_notes(time, duration, tps)
        origin = np.round(starts / tps).astype(np.int64)
        phrases = _cut_phrases(onset, steps, pitch, [(o, o + phrase_steps) for o in origin.tolist()], self.n_tokens)
        keep = _has_notes(phrases)
        if not keep.any():
            raise MidiSkip("no_melody")
        row = np.cumsum(keep) - 1
        follows = (starts[1:] - starts[:-1] == phrase_ticks) & keep[1:] & keep[:-1]
        pairs = [(row[k], row[k + 1]) for k in np.flatnonzero(follows)]
        return SongPhrases(path.stem, phrases[keep], np.array(pairs, dtype=np.int64).reshape(-1, 2))

    def songs(self) -> list[SongPhrases]:
        self.skipped = Counter()
        return read_sources(self.files(), self.song, "lmd phrases", self.skipped)


class LlmMidiPhrases:
    """Each generated piece's melody: the first `context_bars` bars are the context, the next
    `target_bars` bars the continuation. By default each is half the span of the run's constraint
    set, up to the 4/4 bars a phrase of `n_tokens` holds (the paper's 4-bar pieces give 2 + 2 bars);
    stated counts must fit in that span."""

    def __init__(self, out_dir: str | os.PathLike, context_bars: int | None = None, target_bars: int | None = None,
                 include_repaired: bool = True, steps_per_quarter: int = 8, n_tokens: int = 128) -> None:
        self.run = GenerateRun(resolve_path(out_dir))
        self.out_dir = self.run.dir
        constraints = self.run.constraints
        span_bars = int(constraints.span_bars)
        half = min(span_bars // 2, n_tokens // (4 * steps_per_quarter))
        self.context_bars = half if context_bars is None else context_bars
        self.target_bars = half if target_bars is None else target_bars
        if self.context_bars + self.target_bars > span_bars:
            raise ValueError(f"context_bars + target_bars = {self.context_bars} + {self.target_bars} exceed the "
                             f"{span_bars} bars of constraint set {constraints.name!r} that {self.out_dir} was "
                             "generated under: lower them, or leave them null (half the span each)")
        self.include_repaired = include_repaired
        self.steps_per_quarter, self.n_tokens = steps_per_quarter, n_tokens
        self.skipped: Counter[str] = Counter()

    def records(self) -> list[dict]:
        """Manifest records of the songs used (failed ones, and repaired ones if so asked, are not)."""
        return self.run.usable(self.include_repaired)[0]

    def files(self) -> list[Path]:
        return self.run.files(self.records())

    def params(self) -> dict:
        return {"source": "llm_midi", "out_dir": str(self.out_dir), "context_bars": self.context_bars,
                "target_bars": self.target_bars, "include_repaired": self.include_repaired,
                "steps_per_quarter": self.steps_per_quarter, "n_tokens": self.n_tokens}

    def song(self, path: Path) -> SongPhrases:
        try:
            song = read_midi(path)
        except Exception as err:  # symusic and the role check raise several types; all mean unreadable
            raise MidiSkip("unreadable", f"{path}: {type(err).__name__}: {err}") from err
        melody = song.tracks["melody"]
        tps = song.ticks_per_quarter / self.steps_per_quarter
        numerator, denominator = song.time_signature
        bar = 4 * self.steps_per_quarter * numerator // denominator
        onset, steps = grid_notes(melody[:, START], melody[:, DURATION], tps)
        cut = self.context_bars * bar
        bounds = [(0, cut), (cut, cut + self.target_bars * bar)]
        phrases = _cut_phrases(onset, steps, melody[:, PITCH].astype(np.int64), bounds, self.n_tokens)
        if not _has_notes(phrases).all():
            raise MidiSkip("empty_phrase")
        return SongPhrases(path.relative_to(self.out_dir).as_posix(), phrases, np.array([[0, 1]], dtype=np.int64))

    def songs(self) -> list[SongPhrases]:
        usable, excluded = self.run.usable(self.include_repaired)
        self.skipped = Counter({"status_excluded": sum(excluded.values())})
        return read_sources([self.run.midi_path(r) for r in usable], self.song, "llm-midi phrases", self.skipped)
