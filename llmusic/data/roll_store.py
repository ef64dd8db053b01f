"""Piano rolls as the roll cache stores them: bit-packed along time (8 KB a 4 x 128 x 128 window),
and of those bytes only the non-zero ones, each with its distance from the previous one. A roll is
~98% silence, so 44,000 windows of the combined Lakh folders take 5 MB on disk and load in well
under a second; a window's dense bit-packed roll is rebuilt when a data set's item is read.
"""

from __future__ import annotations

import numpy as np

from llmusic.song import TRACKS


def window_bytes(steps: int) -> int:
    """Bytes of one bit-packed (4, 128, steps) window."""
    return len(TRACKS) * 128 * steps // 8


def nonzero_bytes(packed: np.ndarray, first_window: int) -> tuple[np.ndarray, np.ndarray]:
    """(W, 4, 128, steps / 8) bit-packed rolls, numbered from `first_window` -> the flat positions
    (int64) and values (uint8) of their non-zero bytes."""
    flat = packed.reshape(-1)
    nonzero = np.flatnonzero(flat)
    return nonzero + first_window * window_bytes(packed.shape[-1] * 8), flat[nonzero]


def stored(cells: list[np.ndarray], values: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The cache's arrays of the non-zero bytes: `cell_gap` (uint32, from the previous non-zero byte) and `value`."""
    cell = np.concatenate(cells) if cells else np.zeros(0, np.int64)
    return {"cell_gap": np.diff(cell, prepend=0).astype(np.uint32),
            "value": np.concatenate(values) if values else np.zeros(0, np.uint8)}


class SparseWindows:
    """The chosen windows' bit-packed rolls, kept as their non-zero bytes: `[i]` rebuilds window i
    as a (4, 128, steps / 8) uint8 array (microseconds), so a data set holds a few bytes per note
    rather than 8 KB per window, and building one from the cache never writes a dense array."""

    def __init__(self, arrays: dict[str, np.ndarray], n_windows: int, windows: np.ndarray, steps: int) -> None:
        self.steps, self.size = steps, window_bytes(steps)
        cell = np.cumsum(arrays["cell_gap"], dtype=np.int64)
        bounds = np.searchsorted(cell, np.arange(n_windows + 1) * self.size)  # (n_windows + 1,) byte ranges
        lo, hi = bounds[windows], bounds[np.asarray(windows) + 1]
        self.offsets = np.concatenate([[0], np.cumsum(hi - lo)])  # (len(windows) + 1,)
        take = np.repeat(lo - self.offsets[:-1], hi - lo) + np.arange(self.offsets[-1])
        self.cell = (cell[take] % self.size).astype(np.int32)  # the byte's place inside its window
        self.value = arrays["value"][take]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        a, b = self.offsets[i], self.offsets[i + 1]
        out = np.zeros(self.size, np.uint8)
        out[self.cell[a:b]] = self.value[a:b]
        return out.reshape(len(TRACKS), 128, self.steps // 8)

    def dense(self) -> np.ndarray:
        """(W, 4, 128, steps / 8) every window at once (for checks; 8 KB a window)."""
        return np.stack([self[i] for i in range(len(self))]) if len(self) else np.zeros(
            (0, len(TRACKS), 128, self.steps // 8), np.uint8)
