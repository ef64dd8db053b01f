"""Piano rolls as the roll cache stores them: bit-packed along time (8 KB a 4 x 128 x 128 window),
and of those bytes only the non-zero ones, each with its distance from the previous one. A roll is
~98% silence, so 44,000 windows of the combined Lakh folders take 5 MB on disk and load in well
under a second; the dense bit-packed windows are rebuilt for the windows a data set keeps.
"""

from __future__ import annotations

import numpy as np

from llmusic.song import TRACKS


def window_bytes(steps: int) -> int:
    """Bytes of one bit-packed (4, 128, steps) window."""
    return len(TRACKS) * 128 * steps // 8


def nonzero_bytes(rolls: np.ndarray, first_window: int) -> tuple[np.ndarray, np.ndarray]:
    """(W, 4, 128, steps) binary rolls, numbered from `first_window` -> the flat positions (int64) and
    values (uint8) of the non-zero bytes of their bit-packed form."""
    packed = np.packbits(rolls.astype(bool), axis=-1).reshape(-1)
    nonzero = np.flatnonzero(packed)
    return nonzero + first_window * window_bytes(rolls.shape[-1]), packed[nonzero]


def stored(cells: list[np.ndarray], values: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The cache's arrays of the non-zero bytes: `cell_gap` (uint32, from the previous non-zero byte) and `value`."""
    cell = np.concatenate(cells) if cells else np.zeros(0, np.int64)
    return {"cell_gap": np.diff(cell, prepend=0).astype(np.uint32),
            "value": np.concatenate(values) if values else np.zeros(0, np.uint8)}


def packed_windows(arrays: dict[str, np.ndarray], n_windows: int, windows: np.ndarray, steps: int) -> np.ndarray:
    """(len(windows), 4, 128, steps / 8) bit-packed rolls of the chosen windows (of `n_windows`)."""
    size = window_bytes(steps)
    cell = np.cumsum(arrays["cell_gap"], dtype=np.int64)
    row = np.full(n_windows, -1, dtype=np.int64)
    row[windows] = np.arange(len(windows))
    dest = row[cell // size]
    keep = dest >= 0
    out = np.zeros(len(windows) * size, np.uint8)
    out[dest[keep] * size + cell[keep] % size] = arrays["value"][keep]
    return out.reshape(len(windows), len(TRACKS), 128, steps // 8)
