"""An exclusive lock on a folder (a generate run's out_dir, a reply cache) that names its holder.

`exclusive(path, what, wait)` holds an advisory `flock` on the file `path` for the block: the kernel
drops it when the holder exits, kill -9 included, so a lock is never left stale. The holder writes
who it is (pid, start time, command line) into the file; a second process that finds the lock taken
either waits for it (`wait=True`: parallel pipeline cells sharing a run, which then reuse it) or
stops at once with `Busy`, whose message names the holder (`wait=False`: a second `generate` on
the same folder, before it asks for anything). Within one thread the lock is re-entrant, so a
pipeline cell that holds its run's lock can call `generate` on it; another thread waits or stops
like another process.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from llmusic.config import UserError
from llmusic.secret_guard import redact

_held: dict[tuple[Path, int], int] = {}  # (lock file, thread) held by this process -> how many blocks hold it


class Busy(UserError, RuntimeError):
    """Another process holds the lock; the message names it and says what to do."""


def holder(path: Path) -> str:
    """Who holds the lock at `path`, as its file says."""
    try:
        info = json.loads(path.read_text() or "{}")
        return (f"pid {info['pid']} (holding it since {info['started']}: {info['command']})"
                if isinstance(info, dict) and {"pid", "started", "command"} <= info.keys() else "another process")
    except (OSError, ValueError):
        return "another process"


@contextmanager
def exclusive(path: str | os.PathLike, what: str, wait: bool = False) -> Iterator[None]:
    """Holds the lock file `path` (created as needed) for the block; `what` names the locked thing in
    messages. `wait=False`: raise Busy at once when another process holds it."""
    path = Path(path).resolve()
    mine = (path, threading.get_ident())
    if _held.get(mine):
        _held[mine] += 1
        try:
            yield
        finally:
            _held[mine] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise Busy(f"{what} is in use by {holder(path)}; nothing was asked or paid for. Wait for it to "
                           f"finish (or stop it), or set wait_for_lock=true to wait") from None
            print(f"waiting for {what}, in use by {holder(path)}", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        me = {"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
              "command": redact(" ".join(sys.argv))[:300]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        _held[mine] = 1
        try:
            yield
        finally:
            del _held[mine]
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the lock
