"""Melody completion (the PiRhDy / MusicBERT protocol): phrases, pairs, candidate lists, chance.

A pair is (context phrase, the phrase that really follows it) from one song's melody. A test
query ranks the true next phrase among `n_candidates - 1` negatives drawn from OTHER songs; MAP
and Hits@k score the ranking. A phrase is `n_tokens` int64 tokens on a grid of
`steps_per_quarter` steps (default 128 tokens of 32nd notes = 4 bars of 4/4): 0-127 a note onset of
that pitch, HOLD the previous note sounding on, REST silence, PAD past the phrase's end. Longer
phrases are cut, shorter ones padded.

Sources (each `songs()` -> list of `SongPhrases`, in a fixed order):
- `Pop909Phrases`: POP909 melodies, phrases from the human structure labels (capital letters are
  melodic phrases; consecutive melodic phrases give pairs).
- `LakhPhrases`: the melody track (by `assign_roles`) of MIDI files, cut into fixed bar spans.
- `LlmMidiPhrases`: each generated piece's melody split into a context and a continuation.
`MelodyPairs` splits songs (song index mod `test_every` == 0 -> test), caches the phrases, yields
(context, target) pairs and builds the saved, seeded `CompletionQueries` of its split.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from llmusic.data.cache import ArrayCache, fingerprint
from llmusic.data.labels import resolve_path
from llmusic.data.llm_midi import read_manifest
from llmusic.midi import MidiSkip, assign_roles, load_score, midi_windows, read_midi
from llmusic.song import DURATION, PITCH, START

HOLD, REST, PAD = 128, 129, 130
VOCAB_SIZE = 131
HITS_AT: tuple[int, ...] = (1, 5, 10, 15, 20, 25)


def chance_map(n: int) -> float:
    """MAP of a random ranking of n candidates with one relevant: mean of 1/rank = H_n / n."""
    return float(sum(Fraction(1, r) for r in range(1, n + 1)) / n)


def chance_hits(k: int, n: int) -> float:
    """Hits@k of a random ranking of n candidates with one relevant: k / n."""
    return min(k, n) / n


# --- phrase encoding --------------------------------------------------------------------------

def encode_phrase(onset: np.ndarray, duration: np.ndarray, pitch: np.ndarray, length: int,
                  n_tokens: int = 128) -> np.ndarray:
    """Notes (in grid steps from the phrase start) -> (n_tokens,) int64 tokens.

    The melody is made monophonic: of notes starting together the highest is kept, and a note
    ends where the next one starts. Notes starting before the phrase are not part of it (their
    tail reads as REST), steps from `length` on are PAD.
    """
    tokens = np.full(n_tokens, PAD, dtype=np.int64)
    end = min(length, n_tokens)
    tokens[:end] = REST
    inside = (onset >= 0) & (onset < end)
    onset, duration, pitch = onset[inside], np.maximum(duration[inside], 1), pitch[inside]
    order = np.lexsort((-pitch, onset))  # by onset, highest pitch first
    onset, duration, pitch = onset[order], duration[order], pitch[order]
    first = np.ones(len(onset), dtype=bool)
    first[1:] = onset[1:] != onset[:-1]
    onset, duration, pitch = onset[first], duration[first], pitch[first]
    stop = np.minimum(onset + duration, np.r_[onset[1:], end])
    for t0, t1, p in zip(onset.tolist(), stop.tolist(), pitch.tolist()):
        tokens[t0] = p
        tokens[t0 + 1:t1] = HOLD
    return tokens


def decode_phrase(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tokens -> (onset, duration, pitch) in grid steps: the inverse of `encode_phrase` for the
    monophonic, in-phrase melodies it produces."""
    tokens = np.asarray(tokens)
    onset = np.flatnonzero(tokens < HOLD)
    sounding = np.r_[tokens == HOLD, False]
    duration = np.array([np.argmin(sounding[t + 1:]) + 1 for t in onset.tolist()], dtype=np.int64)
    return onset.astype(np.int64), duration, tokens[onset].astype(np.int64)


def grid_notes(ticks_onset: np.ndarray, ticks_duration: np.ndarray,
               ticks_per_step: float) -> tuple[np.ndarray, np.ndarray]:
    """Times (ticks or any unit) -> (onset, duration) in whole grid steps (nearest step; at least
    one step long)."""
    onset = np.round(ticks_onset / ticks_per_step).astype(np.int64)
    stop = np.round((ticks_onset + ticks_duration) / ticks_per_step).astype(np.int64)
    return onset, np.maximum(stop - onset, 1)


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
    """`read(item)` for every item; a MidiSkip is counted in `skipped` by its reason, never fatal."""
    out = []
    for item in tqdm(items, desc=desc, leave=False):
        try:
            out.append(read(item))
        except MidiSkip as skip:
            skipped[skip.reason] += 1
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
        span_quarters = 4 * self.phrase_bars
        _, starts = midi_windows(score, span_quarters)  # phrase starts on the 4/4 grid
        time, duration, pitch = _melody_notes(score)
        tps = score.ticks_per_quarter / self.steps_per_quarter
        span_steps = span_quarters * self.steps_per_quarter
        onset, steps = grid_notes(time, duration, tps)
        origin = np.round(starts / tps).astype(np.int64)
        phrases = _cut_phrases(onset, steps, pitch, [(o, o + span_steps) for o in origin.tolist()], self.n_tokens)
        keep = _has_notes(phrases)
        if not keep.any():
            raise MidiSkip("no_melody")
        row = np.cumsum(keep) - 1
        follows = (starts[1:] - starts[:-1] == span_quarters * score.ticks_per_quarter) & keep[1:] & keep[:-1]
        pairs = [(row[k], row[k + 1]) for k in np.flatnonzero(follows)]
        return SongPhrases(path.stem, phrases[keep], np.array(pairs, dtype=np.int64).reshape(-1, 2))

    def songs(self) -> list[SongPhrases]:
        self.skipped = Counter()
        return read_sources(self.files(), self.song, "lmd phrases", self.skipped)


class LlmMidiPhrases:
    """Each generated piece's melody: the first `context_bars` bars are the context, the next
    `target_bars` bars the continuation (the paper's 4-bar pieces give 2 + 2 bars)."""

    def __init__(self, out_dir: str | os.PathLike, context_bars: int = 2, target_bars: int = 2,
                 include_repaired: bool = True, steps_per_quarter: int = 8, n_tokens: int = 128) -> None:
        self.out_dir = resolve_path(out_dir)
        self.context_bars, self.target_bars = context_bars, target_bars
        self.include_repaired = include_repaired
        self.steps_per_quarter, self.n_tokens = steps_per_quarter, n_tokens
        self.skipped: Counter[str] = Counter()

    def records(self) -> list[dict]:
        """Manifest records of the songs used (failed ones, and repaired ones if so asked, are not)."""
        keep = ("ok", "repaired") if self.include_repaired else ("ok",)
        return [r for r in read_manifest(self.out_dir) if r.get("status") in keep and r.get("midi")]

    def files(self) -> list[Path]:
        return [self.out_dir / "manifest.jsonl"] + [self.out_dir / r["midi"] for r in self.records()]

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
        self.skipped = Counter()
        records = self.records()
        self.skipped["status_excluded"] += len(read_manifest(self.out_dir)) - len(records)
        return read_sources([self.out_dir / r["midi"] for r in records], self.song, "llm-midi phrases", self.skipped)


# --- pairs, queries -------------------------------------------------------------------------------

QUERY_ARRAYS = ("context", "candidates", "true_index", "song_ids")


@dataclass
class CompletionQueries(Dataset):
    """Test queries: rank `candidates[q]` for `context[q]`; the true next phrase is at `true_index[q]`.

    A Dataset of (context (T,), candidates (N, T), true_index) int64 tensors. Build one for a
    config with `CompletionQueries.from_pairs` (what conf/dataset/melody_pop909.yaml does).
    """

    context: np.ndarray  # (Q, T) int64
    candidates: np.ndarray  # (Q, N, T) int64
    true_index: np.ndarray  # (Q,) int64
    song_ids: np.ndarray  # (Q,) int64: the query's song in its MelodyPairs split
    pairs: MelodyPairs | None = field(default=None, repr=False, compare=False)  # where they came from

    @classmethod
    def from_pairs(cls, pairs: MelodyPairs) -> CompletionQueries:
        """The saved, seeded candidate lists of a split of pairs (built on first use)."""
        return pairs.queries()

    def __len__(self) -> int:
        return len(self.true_index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (torch.from_numpy(self.context[i]), torch.from_numpy(self.candidates[i]),
                torch.as_tensor(self.true_index[i]))

    @property
    def n_candidates(self) -> int:
        return self.candidates.shape[1]

    @property
    def skipped(self) -> dict[str, int]:
        return self.pairs.skipped if self.pairs is not None else {}

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in QUERY_ARRAYS}

    def save(self, path: str | os.PathLike) -> None:
        np.savez_compressed(path, **self.arrays())

    @classmethod
    def load(cls, path: str | os.PathLike) -> CompletionQueries:
        with np.load(path) as npz:
            return cls(**{name: npz[name] for name in QUERY_ARRAYS})

    def summary(self) -> dict:
        return {**(self.pairs.summary() if self.pairs is not None else {}), "dataset": type(self).__name__,
                "queries": len(self), "n_candidates": self.n_candidates, "chance_map": chance_map(self.n_candidates)}


def build_queries(context: np.ndarray, target: np.ndarray, query_song: np.ndarray, pool: np.ndarray,
                  pool_song: np.ndarray, n_candidates: int, seed: int) -> CompletionQueries:
    """Candidates = the true target + n_candidates - 1 negatives drawn uniformly from the pool
    phrases of other songs that differ from the target, in a seeded random order."""
    rng = np.random.default_rng(seed)
    _, ids = np.unique(np.concatenate([pool, target]), axis=0, return_inverse=True)
    ids = ids.reshape(-1)
    pool_id, target_id = ids[:len(pool)], ids[len(pool):]
    Q, T = target.shape
    candidates = np.empty((Q, n_candidates, T), dtype=np.int64)
    true_index = rng.integers(0, n_candidates, size=Q)
    for q in range(Q):
        allowed = np.flatnonzero((pool_song != query_song[q]) & (pool_id != target_id[q]))
        if len(allowed) < n_candidates - 1:
            raise ValueError(f"only {len(allowed)} negatives for query {q}: need {n_candidates - 1}; "
                             "use more songs or fewer candidates")
        negatives = pool[rng.choice(allowed, n_candidates - 1, replace=False)]
        candidates[q] = np.insert(negatives, true_index[q], target[q], axis=0)
    return CompletionQueries(context.astype(np.int64), candidates, true_index.astype(np.int64),
                             query_song.astype(np.int64))


class MelodyPairs(Dataset):
    """(context, target) phrase pairs of one split of a phrase source; items are int64 tensors.

    Songs are split by their index in the source's order: index % test_every == 0 -> test.
    `queries()` gives this split's CompletionQueries, built once from `seed` and saved (npz) so
    every model is scored on the same candidate lists.
    """

    def __init__(self, source, split: str = "train", test_every: int = 10, n_candidates: int = 50,
                 seed: int = 0, cache_dir: str | os.PathLike | None = None) -> None:
        if split not in ("train", "test", "all"):
            raise ValueError(f"split must be train, test or all, got {split!r}")
        self.source, self.split, self.test_every = source, split, test_every
        self.n_candidates, self.seed = n_candidates, seed
        self.cache = ArrayCache(cache_dir)
        self.key = fingerprint(source.files(), source.params())
        arrays = self.cache.load("phrases", self.key)
        self.cache_hit = arrays is not None
        if arrays is None:
            arrays = self._collect(source)
            self.cache.save("phrases", self.key, arrays)
        self.skipped = dict(zip(arrays["skip_reason"].tolist(), arrays["skip_count"].tolist()))

        n_songs = len(arrays["song_names"])
        in_split = {"all": np.ones(n_songs, bool), "test": np.arange(n_songs) % test_every == 0,
                    "train": np.arange(n_songs) % test_every != 0}[split]
        new_id = np.full(n_songs, -1, dtype=np.int64)
        new_id[in_split] = np.arange(int(in_split.sum()))
        self.song_names = arrays["song_names"][in_split].tolist()
        phrase_song = new_id[arrays["phrase_song"]]
        mine = phrase_song >= 0
        self.phrases, self.phrase_song = arrays["phrases"][mine], phrase_song[mine]
        pairs = arrays["pairs"][phrase_song[arrays["pairs"][:, 0]] >= 0]
        self.context, self.target = arrays["phrases"][pairs[:, 0]], arrays["phrases"][pairs[:, 1]]
        self.song_ids = phrase_song[pairs[:, 0]]

    @staticmethod
    def _collect(source) -> dict[str, np.ndarray]:
        songs = source.songs()
        offsets = np.cumsum([0] + [len(s.phrases) for s in songs])
        width = source.n_tokens
        return {
            "phrases": np.concatenate([s.phrases for s in songs]) if songs else np.zeros((0, width), np.int64),
            "phrase_song": np.repeat(np.arange(len(songs)), [len(s.phrases) for s in songs]).astype(np.int64),
            "pairs": (np.concatenate([s.pairs + o for s, o in zip(songs, offsets)]) if songs
                      else np.zeros((0, 2), np.int64)),
            "song_names": np.asarray([s.name for s in songs], dtype=str),
            "skip_reason": np.asarray(list(source.skipped), dtype=str),
            "skip_count": np.asarray(list(source.skipped.values()), dtype=np.int64),
        }

    def __len__(self) -> int:
        return len(self.context)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.context[i]), torch.from_numpy(self.target[i])

    def queries(self) -> CompletionQueries:
        """This split's candidate lists (negatives from its other songs), loaded when saved before."""
        key = fingerprint([], {"phrases": self.key, "split": self.split, "test_every": self.test_every,
                               "n_candidates": self.n_candidates, "seed": self.seed})
        self.queries_path = self.cache.path("queries", key)
        saved = self.cache.load("queries", key)
        if saved is not None:
            return CompletionQueries(**saved, pairs=self)
        queries = build_queries(self.context, self.target, self.song_ids, self.phrases, self.phrase_song,
                                self.n_candidates, self.seed)
        queries.pairs = self
        self.cache.save("queries", key, queries.arrays())
        return queries

    def summary(self) -> dict:
        return {"dataset": type(self).__name__, "source": type(self.source).__name__, "split": self.split,
                "songs": len(self.song_names), "phrases": len(self.phrases), "pairs": len(self),
                "n_candidates": self.n_candidates, "chance_map": chance_map(self.n_candidates),
                "skipped": self.skipped, "cache": os.fspath(self.cache.path("phrases", self.key))}
