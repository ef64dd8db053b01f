"""Melody phrase sources: songs -> key-normalised N-bar phrases on the token grid, and which follow which.

Every source frames its melodies as PiRhDy does (Liang et al. 2020; docs/melody.md says where each
source still differs):
- the whole song is moved to C major / A minor first (`key_normalization`: `profile`,
  `key_signature` or `none`; llmusic.midi.key.score_key on the file's pitched tracks);
- at each boundary the context is the last `phrase_bars` bars of 4/4 before it and the target the
  first `phrase_bars` bars after it, so a context ends exactly where its target begins. Both are
  `n_tokens` = phrase_bars x 4 x steps_per_quarter tokens (llmusic.midi.phrase) and fill them
  (silence reads as REST, never PAD): train and test phrases of one framing have one length and grid.
Sources (`songs()` gives a `SongPhrases` per song, in a fixed order, and counts what it skipped):
- `Pop909Phrases` (llmusic.data.pop909): boundaries between consecutive melodic phrases of the
  human structure labels;
- `LakhPhrases`: the melody track (`assign_roles`) in fixed N-bar chunks on the file's 4/4 grid;
  each chunk and the next form a pair;
- `LlmMidiPhrases`: each generated piece's melody in fixed N-bar chunks from its start.
`files()` and `params()` say what the phrases depend on, so llmusic.data.melody.MelodyPairs can cache them.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import symusic
from tqdm.auto import tqdm

from llmusic.config import resolve_path
from llmusic.constraints import melody_phrase_bars
from llmusic.midi import MidiSkip, assign_roles, load_score, midi_windows, score_to_song
from llmusic.midi.key import KEY_METHODS, Key, score_key, transpose_to_reference
from llmusic.midi.phrase import HOLD, encode_phrase, grid_notes
from llmusic.run_dir import GenerateRun
from llmusic.song import DURATION, PITCH, START

TOKEN_DTYPE = np.uint8  # the 131 phrase tokens fit a byte: a Lakh query set is 8x smaller than int64
log = logging.getLogger(__name__)


@dataclass
class SongPhrases:
    """One song's phrases, which of them follow each other, and the key it was moved from."""

    name: str
    phrases: np.ndarray  # (P, n_tokens) TOKEN_DTYPE
    pairs: np.ndarray  # (K, 2) int64: (context, target) rows of `phrases`
    key: Key | None = None  # the key found (None: key_normalization=none, or too few pitch classes)
    shift: int = 0  # semitones the song was moved by
    index: int = -1  # its place in the source's item list: what the train / test split reads


def read_sources(items, read, desc: str, skipped: Counter) -> list[SongPhrases]:
    """`read(item)` for every item; a MidiSkip is counted in `skipped` by its reason, any other
    exception as "roll_error", each named in the log: never fatal, and so is a song without a pair
    (`no_pairs`). Each song keeps its item's index, so a skipped file moves no other song across the split."""
    out = []
    for index, item in enumerate(tqdm(items, desc=desc, leave=False)):
        try:
            song = read(item)
        except MidiSkip as skip:
            skipped[skip.reason] += 1
            log.info("skipped %s: %s", item, skip)
            continue
        except Exception as error:  # noqa: BLE001 - one file never ends a build
            skipped["roll_error"] += 1
            log.warning("skipped %s: roll_error: %s: %s", item, type(error).__name__, error)
            continue
        if not len(song.pairs):
            skipped["no_pairs"] += 1
            continue
        song.index = index
        out.append(song)
    return out


class PhraseSource:
    """What every source shares: the framing (phrase_bars of 4/4 at steps_per_quarter), the key
    normalisation, and cutting a song's notes into (context, target) pairs at boundaries."""

    name = "phrases"

    def __init__(self, phrase_bars: int = 4, steps_per_quarter: int = 8, key_normalization: str = "profile") -> None:
        if key_normalization not in KEY_METHODS:
            raise ValueError(f"key_normalization must be one of {KEY_METHODS}, got {key_normalization!r}")
        if int(phrase_bars) < 1:
            raise ValueError(f"phrase_bars must be at least 1, got {phrase_bars}")
        self.phrase_bars, self.steps_per_quarter = int(phrase_bars), int(steps_per_quarter)
        self.key_normalization = key_normalization
        self.skipped: Counter[str] = Counter()

    @property
    def n_tokens(self) -> int:
        return self.phrase_bars * 4 * self.steps_per_quarter

    def framing(self) -> dict:
        """What a model trained on these phrases must be tested on (llmusic.models.datamodule checks it)."""
        return {"phrase_bars": self.phrase_bars, "steps_per_quarter": self.steps_per_quarter, "n_tokens": self.n_tokens}

    def params(self) -> dict:
        return {"source": self.name, **self.framing(), "key_normalization": self.key_normalization}

    def normalise(self, score: symusic.Score, pitch: np.ndarray) -> tuple[np.ndarray, Key | None, int]:
        """Melody pitches moved by the shift that takes the file's key to C major / A minor."""
        key = score_key(score, self.key_normalization)
        moved, shift = transpose_to_reference(pitch, key)
        return moved, key, shift

    def cut_pairs(self, name: str, onset: np.ndarray, duration: np.ndarray, pitch: np.ndarray,
                  boundaries, key: Key | None, shift: int) -> SongPhrases:
        """Notes on the grid (steps), boundary steps -> the pairs (last N bars before, first N after)
        whose context and target both hold a note. A note sounding across a boundary belongs to
        the context only (the target's first steps read REST until its first onset)."""
        n = self.n_tokens
        boundaries = np.asarray(boundaries, dtype=np.int64).reshape(-1)
        starts, rows = np.unique(np.r_[boundaries - n, boundaries], return_inverse=True)
        phrases = np.zeros((len(starts), n), dtype=TOKEN_DTYPE)
        for i, start in enumerate(starts.tolist()):
            phrases[i] = encode_phrase(onset - start, duration, pitch, n, n)
        pairs = np.asarray(rows).reshape(2, -1).T  # (K, 2): context row, target row
        pairs = pairs[(phrases < HOLD).any(1)[pairs].all(1)]
        used, rows = np.unique(pairs, return_inverse=True)  # only the phrases a pair uses
        return SongPhrases(name, phrases[used], np.asarray(rows, dtype=np.int64).reshape(-1, 2), key, shift)


class LakhPhrases(PhraseSource):
    """The melody track of every MIDI file under `roots`, cut into fixed `phrase_bars` chunks on the
    file's own 4/4 grid (the bar lines `midi_windows` uses); each chunk and the next form a pair.
    Files are ordered by name (the md5 of a Lakh file) across roots."""

    name = "lmd"

    def __init__(self, roots: str | os.PathLike | list, phrase_bars: int = 4, steps_per_quarter: int = 8,
                 key_normalization: str = "profile", max_files: int | None = None) -> None:
        super().__init__(phrase_bars, steps_per_quarter, key_normalization)
        roots = [roots] if isinstance(roots, (str, os.PathLike)) else list(roots)
        self.roots = [resolve_path(r) for r in roots]
        self.max_files = max_files

    def files(self) -> list[Path]:
        files = sorted((p for root in self.roots for p in root.rglob("*") if p.suffix.lower() in (".mid", ".midi")),
                       key=lambda p: (p.name, str(p)))
        return files[:self.max_files] if self.max_files is not None else files

    def params(self) -> dict:
        return {**super().params(), "roots": [str(r) for r in self.roots]}

    def song(self, path: Path) -> SongPhrases:
        score = load_score(path)
        tpq = score.ticks_per_quarter
        starts = midi_windows(score, 4 * self.phrase_bars * tpq, tpq, meters=["4/4"]).starts  # chunk starts, 4/4 grid
        parts = [score.tracks[i].notes.numpy() for i in assign_roles(score)["melody"]]
        if not parts:
            raise MidiSkip("no_melody")
        time, duration, pitch = (np.concatenate([p[k] for p in parts]).astype(np.int64)
                                 for k in ("time", "duration", "pitch"))
        pitch, key, shift = self.normalise(score, pitch)
        ticks_per_step = tpq / self.steps_per_quarter
        onset, steps = grid_notes(time, duration, ticks_per_step)
        origin = np.round(starts / ticks_per_step).astype(np.int64)
        follows = origin[1:] - origin[:-1] == self.n_tokens  # neighbouring chunks of one 4/4 section
        return self.cut_pairs(path.stem, onset, steps, pitch, origin[1:][follows], key, shift)

    def songs(self) -> list[SongPhrases]:
        self.skipped = Counter()
        return read_sources(self.files(), self.song, "lmd phrases", self.skipped)


class LlmMidiPhrases(PhraseSource):
    """Each generated piece's melody in fixed `phrase_bars` chunks of 4/4 from its start, over the
    span of the run's constraint set; each chunk and the next form a pair (the paper's 4-bar pieces
    at phrase_bars=2: one pair, 2 bars of context and 2 to complete). null phrase_bars: half the
    span, at most 4 (llmusic.constraints.melody_phrase_bars). Pieces in another meter than 4/4 are
    skipped (`not_4_4`): their bars would not be the test set's."""

    name = "llm_midi"

    def __init__(self, out_dir: str | os.PathLike, phrase_bars: int | None = None, steps_per_quarter: int = 8,
                 key_normalization: str = "profile", include_repaired: bool = True,
                 time_span_ticks: int | None = None, ticks_per_quarter: int | None = None) -> None:
        self.run = GenerateRun(resolve_path(out_dir))
        self.run.check_time_span(time_span_ticks, ticks_per_quarter)
        self.out_dir, constraints = self.run.dir, self.run.constraints
        self.span_bars = int(constraints.time_span_ticks // (4 * constraints.ticks_per_quarter))  # bars of 4/4
        if phrase_bars is None:
            phrase_bars = melody_phrase_bars(constraints.time_span_ticks, constraints.ticks_per_quarter)
        if 2 * int(phrase_bars) > self.span_bars:
            raise ValueError(f"phrase_bars={phrase_bars} needs pieces of {2 * int(phrase_bars)} bars (a context and "
                             f"its continuation), but {self.out_dir} was generated under constraint set "
                             f"{constraints.name!r}, whose pieces span {self.span_bars} bars of 4/4: set "
                             f"phrase_bars={self.span_bars // 2} for training AND test (the melody experiments' "
                             "`phrase_bars`), or generate with constraints=paper_consistent for phrase_bars=4")
        super().__init__(phrase_bars, steps_per_quarter, key_normalization)
        self.include_repaired = include_repaired

    def records(self) -> list[dict]:
        """Manifest records of the songs used (failed ones, and repaired ones if so asked, are not)."""
        return self.run.usable(self.include_repaired)[0]

    def files(self) -> list[Path]:
        return self.run.files(self.records())

    def params(self) -> dict:
        return {**super().params(), "out_dir": str(self.out_dir), "include_repaired": self.include_repaired}

    def song(self, path: Path) -> SongPhrases:
        score = load_score(path)
        try:
            song = score_to_song(score)
        except Exception as err:  # the role check raises on a file write_midi did not write
            raise MidiSkip("unreadable", f"{path}: {type(err).__name__}: {err}") from err
        if tuple(song.time_signature) != (4, 4):
            raise MidiSkip("not_4_4")
        melody = song.tracks["melody"]
        pitch, key, shift = self.normalise(score, melody[:, PITCH].astype(np.int64))
        onset, steps = grid_notes(melody[:, START], melody[:, DURATION], song.ticks_per_quarter / self.steps_per_quarter)
        boundaries = self.n_tokens * np.arange(1, self.span_bars // self.phrase_bars)
        return self.cut_pairs(path.relative_to(self.out_dir).as_posix(), onset, steps, pitch, boundaries, key, shift)

    def songs(self) -> list[SongPhrases]:
        usable, excluded = self.run.usable(self.include_repaired)
        self.skipped = Counter({"status_excluded": sum(excluded.values())})
        return read_sources([self.run.midi_path(r) for r in usable], self.song, "llm-midi phrases", self.skipped)
