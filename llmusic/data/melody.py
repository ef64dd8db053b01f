"""Melody completion (the PiRhDy / MusicBERT protocol): phrase pairs and ranked candidate lists.

A pair is (context, target) from one song's melody, the context the last N bars before a boundary
and the target the first N bars after it (llmusic.data.phrases), both in the token vocabulary of
llmusic.midi.phrase. A test query ranks the true target among `n_candidates - 1` negatives drawn
from the targets of OTHER songs' pairs of the split (continuations, as in PiRhDy, never an opening
or the query's own song); MAP and Hits@k score the ranking (llmusic.eval.ranking, with their chance
values). `MelodyPairs` takes a phrase source, caches its phrases with every song's key, splits
its songs (the song's index in the source mod `test_every` == 0 -> test), yields (context, target)
pairs and builds the saved, seeded `CompletionQueries` of its split.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from llmusic.data.cache import ArrayCache, fingerprint
from llmusic.data.phrases import TOKEN_DTYPE
from llmusic.eval.ranking import chance_map

QUERY_ARRAYS = ("context", "candidates", "true_index", "song_ids")
PHRASES_FORMAT = 2  # of the cached arrays: 2 = adjacent N-bar pairs, song index and key per song


def _tokens(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array.astype(np.int64))


@dataclass
class CompletionQueries(Dataset):
    """Test queries: rank `candidates[q]` for `context[q]`; the true next phrase is at `true_index[q]`.

    A Dataset of (context (T,), candidates (N, T), true_index) int64 tensors. Build one for a
    config with `CompletionQueries.from_pairs` (what conf/dataset/melody_pop909.yaml does).
    """

    context: np.ndarray  # (Q, T) tokens
    candidates: np.ndarray  # (Q, N, T) tokens
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
        return _tokens(self.context[i]), _tokens(self.candidates[i]), torch.as_tensor(self.true_index[i])

    @property
    def n_candidates(self) -> int:
        return self.candidates.shape[1]

    @property
    def skipped(self) -> dict[str, int]:
        return self.pairs.skipped if self.pairs is not None else {}

    @property
    def framing(self) -> dict | None:
        return self.pairs.framing if self.pairs is not None else None

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


def build_queries(context: np.ndarray, target: np.ndarray, song_ids: np.ndarray, n_candidates: int,
                  seed: int) -> CompletionQueries:
    """Candidates = the true target + n_candidates - 1 negatives drawn uniformly from the targets of
    other songs' pairs that differ from the true one, in a seeded random order."""
    rng = np.random.default_rng(seed)
    _, ids = np.unique(target, axis=0, return_inverse=True)
    ids = np.asarray(ids).reshape(-1)  # the same phrase, the same id
    Q, T = target.shape
    candidates = np.empty((Q, n_candidates, T), dtype=target.dtype)
    true_index = rng.integers(0, n_candidates, size=Q)
    for q in range(Q):
        allowed = np.flatnonzero((song_ids != song_ids[q]) & (ids != ids[q]))
        if len(allowed) < n_candidates - 1:
            raise ValueError(f"only {len(allowed)} negatives for query {q}: need {n_candidates - 1}; "
                             "use more songs or fewer candidates")
        negatives = target[rng.choice(allowed, n_candidates - 1, replace=False)]
        candidates[q] = np.insert(negatives, true_index[q], target[q], axis=0)
    return CompletionQueries(context, candidates, true_index.astype(np.int64), song_ids.astype(np.int64))


class MelodyPairs(Dataset):
    """(context, target) phrase pairs of one split of a phrase source; items are int64 tensors.

    Songs are split by their index in the source's item list: index % test_every == 0 -> test
    (POP909: songs 001, 011, ...; Lakh: every 10th file by name). `queries()` gives this split's
    CompletionQueries, built once from `seed` and saved (npz) so every model is scored on the
    same candidate lists. The cache holds every song's key and the shift it was moved by.
    """

    def __init__(self, source, split: str = "train", test_every: int = 10, n_candidates: int = 50,
                 seed: int = 0, cache_dir: str | os.PathLike | None = None) -> None:
        if split not in ("train", "test", "all"):
            raise ValueError(f"split must be train, test or all, got {split!r}")
        self.source, self.split, self.test_every = source, split, test_every
        self.n_candidates, self.seed = n_candidates, seed
        self.framing = source.framing()
        self.cache = ArrayCache(cache_dir)
        self.key = fingerprint(source.files(), {**source.params(), "format": PHRASES_FORMAT})
        arrays = self.cache.load("phrases", self.key)
        self.cache_hit = arrays is not None
        if arrays is None:
            arrays = self._collect(source)
            self.cache.save("phrases", self.key, arrays)
        self.skipped = dict(zip(arrays["skip_reason"].tolist(), arrays["skip_count"].tolist()))

        index = arrays["song_index"]
        in_split = {"all": np.ones(len(index), bool), "test": index % test_every == 0,
                    "train": index % test_every != 0}[split]
        new_id = np.full(len(index), -1, dtype=np.int64)
        new_id[in_split] = np.arange(int(in_split.sum()))
        self.song_names = arrays["song_names"][in_split].tolist()
        self.keys = {name: arrays[name][in_split].tolist() for name in ("key_name", "key_method", "key_shift")}
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
            "phrases": np.concatenate([s.phrases for s in songs]) if songs else np.zeros((0, width), TOKEN_DTYPE),
            "phrase_song": np.repeat(np.arange(len(songs)), [len(s.phrases) for s in songs]).astype(np.int64),
            "pairs": (np.concatenate([s.pairs + o for s, o in zip(songs, offsets)]) if songs
                      else np.zeros((0, 2), np.int64)),
            "song_names": np.asarray([s.name for s in songs], dtype=str),
            "song_index": np.asarray([s.index for s in songs], dtype=np.int64),
            "key_name": np.asarray([s.key.name if s.key else "none" for s in songs], dtype=str),
            "key_method": np.asarray([s.key.method if s.key else "none" for s in songs], dtype=str),
            "key_shift": np.asarray([s.shift for s in songs], dtype=np.int64),
            "skip_reason": np.asarray(list(source.skipped), dtype=str),
            "skip_count": np.asarray(list(source.skipped.values()), dtype=np.int64),
        }

    def __len__(self) -> int:
        return len(self.context)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _tokens(self.context[i]), _tokens(self.target[i])

    def song_keys(self) -> list[dict]:
        """Each song of the split: the key it was found in, how, and the semitones it was moved by."""
        return [{"song": name, "key": k, "method": m, "shift": int(s)} for name, k, m, s in
                zip(self.song_names, self.keys["key_name"], self.keys["key_method"], self.keys["key_shift"])]

    def queries(self) -> CompletionQueries:
        """This split's candidate lists (negatives: other songs' targets), loaded when saved before."""
        key = fingerprint([], {"phrases": self.key, "split": self.split, "test_every": self.test_every,
                               "n_candidates": self.n_candidates, "seed": self.seed})
        self.queries_path = self.cache.path("queries", key)
        saved = self.cache.load("queries", key)
        if saved is not None:
            return CompletionQueries(**saved, pairs=self)
        queries = build_queries(self.context, self.target, self.song_ids, self.n_candidates, self.seed)
        queries.pairs = self
        self.cache.save("queries", key, queries.arrays())
        return queries

    def summary(self) -> dict:
        return {"dataset": type(self).__name__, "source": type(self.source).__name__, "split": self.split,
                **self.framing, "key_normalization": self.source.key_normalization,
                "keys_found_by": dict(Counter(self.keys["key_method"])),
                "songs": len(self.song_names), "phrases": len(self.phrases), "pairs": len(self),
                "n_candidates": self.n_candidates, "chance_map": chance_map(self.n_candidates),
                "skipped": self.skipped, "cache": os.fspath(self.cache.path("phrases", self.key))}
