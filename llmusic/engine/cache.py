"""A content-addressed cache of paid replies, safe against kill -9 at any moment.

Every completion a server returned is stored before it is parsed, keyed by everything that
determines it (backend identity, messages, sampling, response format, song and attempt), so a
rerun never pays twice and a new parser policy can re-read old replies without the network.
Errors are never cached.

Storage: append-only shards `root/<time>-<pid>-<rand>.jsonl`, one per writing process (so runs
sharing a cache never interleave), one line per entry: `<64-hex key>\\t<entry JSON>\\n`, each
written with a single unbuffered write(2). Once put() returns the bytes are the kernel's, so
killing the process loses nothing; a kill during the write leaves a last line without its newline,
which readers skip. `fsync=True` also survives power loss, at a disk flush per reply.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from dataclasses import asdict
from pathlib import Path

from llmusic.llm.base import Completion, SongRequest

KEY_LEN = 64  # sha256 hex


def cache_key(identity: dict, request: SongRequest) -> str:
    """sha256 over what determines a reply. Genre and style are in it because an ablation prompt
    (genre only) renders the same messages for two styles, and those are still two songs."""
    payload = {
        "backend": identity,
        "song": request.song_id,
        "attempt": request.attempt,
        "messages": request.messages,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
        "response_format": request.response_format,
        "seed": request.seed,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class ReplyCache:
    """Completions on disk under `root`, indexed in memory by key -> (shard, byte offset)."""

    def __init__(self, root: str | os.PathLike, fsync: bool = False) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self._index: dict[str, tuple[Path, int]] | None = None  # read on first use
        self._shard: Path | None = None  # this process's shard, created by the first put
        self._fd: int | None = None
        self._size = 0

    def _entries(self) -> dict[str, tuple[Path, int]]:
        if self._index is None:
            self._index = {}
            for shard in sorted(self.root.glob("*.jsonl")) if self.root.exists() else []:
                offset = 0
                with open(shard, "rb") as f:
                    for line in f:
                        if line.endswith(b"\n") and line[KEY_LEN:KEY_LEN + 1] == b"\t":  # whole lines only
                            self._index[line[:KEY_LEN].decode("ascii", "replace")] = (shard, offset)
                        offset += len(line)
        return self._index

    def get(self, key: str) -> Completion | None:
        where = self._entries().get(key)
        if where is None:
            return None
        with open(where[0], "rb") as f:
            f.seek(where[1])
            line = f.readline()
        try:
            return Completion(**json.loads(line[KEY_LEN + 1:])["completion"])
        except (ValueError, KeyError, TypeError):
            return None  # a damaged entry (a disk fault) is paid for again, never trusted

    def put(self, key: str, completion: Completion, request: SongRequest) -> None:
        entries = self._entries()
        if self._fd is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._shard = self.root / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
            self._fd = os.open(self._shard, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        entry = {"song": request.song_id, "attempt": request.attempt, "completion": asdict(completion)}
        data = f"{key}\t{json.dumps(entry, ensure_ascii=False)}\n".encode()
        written = 0
        while written < len(data):  # a regular file takes it in one go; loop in case it does not
            written += os.write(self._fd, data[written:])
        if self.fsync:
            os.fsync(self._fd)
        entries[key] = (self._shard, self._size)
        self._size += len(data)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __len__(self) -> int:
        return len(self._entries())
