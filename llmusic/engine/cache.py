"""A content-addressed cache of paid replies, safe against kill -9 at any moment.

Every completion a server returned is stored before it is parsed, keyed by everything that
determines it (backend identity, messages, sampling, response format, song and attempt), so a
rerun never pays twice and a new parser policy can re-read old replies without the network.
Errors are never cached.

Storage: append-only shards `root/<time>-<pid>-<rand>.jsonl`, one per writing process (so runs
sharing a cache never interleave), one line per entry: `<64-hex key>\\t<16-hex check>\\t<entry
JSON>\\n`, each written with a single unbuffered write(2). Once put() returns the bytes are the
kernel's, so killing the process loses nothing; a kill during the write leaves a last line without
its newline, which readers skip. `fsync=True` also survives power loss, at a disk flush per reply.
A reply is stored losslessly whatever it holds (a lone UTF-16 surrogate is kept in its escaped
JSON form), so no reply text can stop it from being cached.

The check is a sha256 of the key and the entry's bytes: an entry whose bytes changed on disk (one
flipped digit that is still valid JSON) or that does not read is reported with its shard and line
(a warning of this module's logger), dropped and asked again; `damaged` lists them for the run's
summary. Lines written before checks existed (`<key>\\t<entry JSON>`) are read as before, unchecked.
The engine holds `locked()` for a whole run, so two runs on one cache never ask for one reply twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from llmusic.files import json_line
from llmusic.llm.base import Completion, SongRequest
from llmusic.lock import exclusive

log = logging.getLogger(__name__)

KEY_LEN = 64  # sha256 hex
CHECK_LEN = 16  # hex digits of the sha256 over key and entry
LOCK = ".lock"
_CHECKED = re.compile(rb"[0-9a-f]{%d}\t" % CHECK_LEN)


def entry_check(key: bytes, entry: bytes) -> bytes:
    return hashlib.sha256(key + b"\t" + entry).hexdigest()[:CHECK_LEN].encode()


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
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()  # any text has a key


class ReplyCache:
    """Completions on disk under `root`, indexed in memory by key -> (shard, byte offset, line)."""

    def __init__(self, root: str | os.PathLike, fsync: bool = False) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self.damaged: dict[str, str] = {}  # key -> where and why, for entries dropped as damaged
        self._index: dict[str, tuple[Path, int, int]] | None = None  # read on first use
        self._shard: Path | None = None  # this process's shard, created by the first put
        self._fd: int | None = None
        self._size = 0  # bytes and lines in this process's shard
        self._lines = 0

    @contextmanager
    def locked(self, wait: bool = False) -> Iterator[None]:
        """Holds the cache for one run (see llmusic.lock): Busy at once, or a wait, when another has it."""
        with exclusive(self.root / LOCK, f"the reply cache {self.root}", wait):
            yield

    def _entries(self) -> dict[str, tuple[Path, int, int]]:
        if self._index is None:
            self._index = {}
            for shard in sorted(self.root.glob("*.jsonl")) if self.root.exists() else []:
                offset = 0
                with open(shard, "rb") as f:
                    for lineno, line in enumerate(f, 1):
                        if line.endswith(b"\n") and line[KEY_LEN:KEY_LEN + 1] == b"\t":  # whole lines only
                            self._add(line, shard, offset, lineno)
                        offset += len(line)
        return self._index

    def _add(self, line: bytes, shard: Path, offset: int, lineno: int) -> None:
        key, rest = line[:KEY_LEN], line[KEY_LEN + 1:-1]
        name = key.decode("ascii", "replace")
        if _CHECKED.match(rest) and entry_check(key, rest[CHECK_LEN + 1:]) != rest[:CHECK_LEN]:
            # Shards of one second sort by a random suffix: a whole copy read first stands.
            if name not in self._index:
                self._drop(name, f"{shard}:{lineno}", "its bytes do not match their checksum")
            return
        self._index[name] = (shard, offset, lineno)
        self.damaged.pop(name, None)  # a later whole copy of the entry replaces a damaged one

    def _drop(self, key: str, where: str, why: str) -> None:
        log.warning("reply cache entry %s is damaged (%s): dropped; its reply is asked again unless cache_only",
                    where, why)
        self.damaged[key] = f"{where}: {why}"
        self._index.pop(key, None)

    def get(self, key: str) -> Completion | None:
        where = self._entries().get(key)
        if where is None:
            return None
        shard, offset, lineno = where
        with open(shard, "rb") as f:
            f.seek(offset)
            rest = f.readline()[KEY_LEN + 1:]
        entry = rest[CHECK_LEN + 1:] if _CHECKED.match(rest) else rest  # checked when indexed
        try:
            return Completion(**json.loads(entry)["completion"])
        except (ValueError, KeyError, TypeError, RecursionError) as err:  # unchecked lines only
            self._drop(key, f"{shard}:{lineno}", f"{type(err).__name__}")
            return None

    def put(self, key: str, completion: Completion, request: SongRequest) -> None:
        entries = self._entries()
        if self._fd is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._shard = self.root / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
            self._fd = os.open(self._shard, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        entry = json_line({"song": request.song_id, "attempt": request.attempt,
                           "completion": asdict(completion)})[:-1].encode()
        data = b"%s\t%s\t%s\n" % (key.encode(), entry_check(key.encode(), entry), entry)
        written = 0
        while written < len(data):  # a regular file takes it in one go; loop in case it does not
            written += os.write(self._fd, data[written:])
        if self.fsync:
            os.fsync(self._fd)
        self._lines += 1
        entries[key] = (self._shard, self._size, self._lines)
        self._size += len(data)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __len__(self) -> int:
        return len(self._entries())
