"""A fingerprinted on-disk cache of built arrays.

Building piano-roll windows from hundreds of MIDI files takes seconds to minutes; loading them
back takes well under a second. The key is a hash of everything the arrays depend on: the input
files (path, size, mtime), the build parameters and `CODE_VERSION`, bumped whenever the way
arrays are built changes so stale caches are never read.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from llmusic.config import REPO_ROOT

CODE_VERSION = 2  # 2: windows on the bar lines of every meter (with the meter of each), sparse rolls
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "llmusic"


def fingerprint(files: Iterable[str | os.PathLike], params: dict) -> str:
    """A short hex digest of input files (path, size, mtime) and JSON-able parameters."""
    h = hashlib.sha1()
    h.update(f"llmusic.data v{CODE_VERSION}\n".encode())
    for path in files:
        st = os.stat(path)
        h.update(f"{os.fspath(path)}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


class ArrayCache:
    """Named groups of numpy arrays stored as `<cache_dir>/<kind>-<key>.npz`."""

    def __init__(self, cache_dir: str | os.PathLike | None = None) -> None:
        self.dir = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR

    def path(self, kind: str, key: str) -> Path:
        return self.dir / f"{kind}-{key}.npz"

    def load(self, kind: str, key: str) -> dict[str, np.ndarray] | None:
        path = self.path(kind, key)
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}

    def save(self, kind: str, key: str, arrays: dict[str, np.ndarray]) -> Path:
        """Write atomically: a reader never sees half a file, even with parallel builds."""
        path = self.path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez_compressed(tmp, **arrays)  # rolls are sparse: ~10x smaller
        os.replace(tmp, path)
        return path
