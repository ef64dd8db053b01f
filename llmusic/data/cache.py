"""A fingerprinted on-disk cache of built arrays.

Building piano-roll windows from hundreds of MIDI files takes seconds to minutes; loading them
back takes well under a second. The key is a hash of everything the arrays depend on: the input
files (path, size, mtime), the build parameters and `CODE_VERSION`, bumped whenever the way
arrays are built changes so stale caches are never read.

Each file carries a sha256 of its arrays (names, dtypes, shapes and bytes). A file that does not
load (cut short, a damaged zip) or whose arrays no longer match their checksum is reported with its
path (a warning of this module's logger, and `ArrayCache.dropped`), deleted and built again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from llmusic.config import REPO_ROOT

log = logging.getLogger(__name__)

CODE_VERSION = 2  # 2: checksums; rolls bit-packed as made, per-file skip details
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "llmusic"
CHECKSUM = "__sha256__"  # the array holding the checksum of the others


def checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        h.update(f"{name}\t{array.dtype.str}\t{array.shape}\n".encode())
        h.update(array.data if array.size else b"")
    return h.hexdigest()


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
        self.dropped: list[str] = []  # damaged files found, deleted and rebuilt: "<path>: <why>"

    def path(self, kind: str, key: str) -> Path:
        return self.dir / f"{kind}-{key}.npz"

    def load(self, kind: str, key: str) -> dict[str, np.ndarray] | None:
        path = self.path(kind, key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            stored = str(arrays.pop(CHECKSUM, ""))
            why = None if stored == checksum(arrays) else "its arrays do not match their checksum"
        except Exception as err:  # noqa: BLE001 - BadZipFile, EOFError, zlib.error, ValueError, OSError...
            why = f"it does not load: {type(err).__name__}: {err}"
        if why is None:
            return arrays
        log.warning("cache file %s is damaged (%s): deleted, built again", path, why)
        self.dropped.append(f"{path}: {why}")
        path.unlink(missing_ok=True)
        return None

    def save(self, kind: str, key: str, arrays: dict[str, np.ndarray]) -> Path:
        """Write atomically: a reader never sees half a file, even with parallel builds."""
        path = self.path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez_compressed(tmp, **arrays, **{CHECKSUM: np.asarray(checksum(arrays))})  # rolls are sparse: ~10x smaller
        os.replace(tmp, path)
        return path
