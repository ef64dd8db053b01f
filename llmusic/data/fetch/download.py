"""One resumable HTTP download: `<file>.part` grows until it holds the whole body.

A `.part` left by a dropped connection or a killed run is continued with a `Range` request; a
server that ignores the range (200) sends the whole file again, which replaces the part. A short
body is an error to retry, never a finished file: urllib returns end-of-file, not an exception,
when a connection drops before Content-Length bytes have come.
"""

from __future__ import annotations

import re
import shutil
import time
from http.client import HTTPException
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import unquote, urlsplit
from urllib.request import Request, urlopen

USER_AGENT = "llmusic-fetch (python urllib)"
CHUNK = 1 << 20
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class FetchError(RuntimeError):
    """A download that cannot succeed (or gave up); the message names the URL and the file."""


class ShortBody(OSError):
    """The connection ended before the whole body came: retried, resuming from what arrived."""


class BadRange(OSError):
    """A partial answer that does not continue the part: retried from the start."""


def local_path(url: str) -> Path | None:
    """The path a `file://` URL or a plain path names; None for a network URL."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    return Path(url) if not parts.scheme else None


def _start_and_total(response, offset: int) -> tuple[int, int | None]:
    """Where the body starts in the file, and the file's full size when the server says it."""
    if response.status == 206:
        match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", "").strip())
        if not match or int(match[1]) > offset:  # a gap after what we have: unusable
            raise BadRange(f"asked for bytes {offset}-, got Content-Range {response.headers.get('Content-Range')!r}")
        return int(match[1]), None if match[2] == "*" else int(match[2])  # an earlier start just rewrites
    length = response.headers.get("Content-Length")
    return 0, int(length) if length is not None else None  # 200: the whole file, from its start


def download(url: str, part: Path, *, timeout: float = 60.0, retries: int = 5, backoff: float = 2.0,
             bar=None, label: str = "") -> int:
    """Fetch `url` into `part` (resuming from its size); returns the bytes received by this call.

    Network errors, short bodies and 408/429/5xx answers are retried `retries` times, waiting
    backoff * 2**attempt seconds; other HTTP errors fail at once. `bar` (a tqdm) is advanced by
    the bytes received. `label` names the file in errors. A local path or `file://` URL is copied.
    """
    what = f"{url} ({label or part.name})"
    source = local_path(url)
    if source is not None:
        if not source.is_file():
            raise FetchError(f"{what}: no such file")
        shutil.copyfile(source, part)
        if bar is not None:
            bar.update(part.stat().st_size)
        return part.stat().st_size
    received, error = 0, None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        offset = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={offset}-"} if offset else {})}
        try:
            with urlopen(Request(url, headers=headers), timeout=timeout) as response:
                start, total = _start_and_total(response, offset)
                if bar is not None and bar.total is None and total is not None:
                    bar.total = total
                    bar.update(start)
                with open(part, "r+b" if start else "wb") as f:
                    f.seek(start)
                    f.truncate()
                    while chunk := response.read(CHUNK):
                        f.write(chunk)
                        received += len(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
                    size = f.tell()
            if total is not None and size != total:
                raise ShortBody(f"connection ended at byte {size} of {total}")
            return received
        except HTTPError as e:
            if e.code == 416 and offset:  # the range starts at or past the end: start over
                part.unlink()
                error = e
                continue
            if e.code not in RETRY_STATUS:
                raise FetchError(f"{what}: HTTP {e.code} {e.reason}") from e
            error = e
        except (URLError, HTTPException, OSError) as e:  # timeouts, resets, refused, short bodies
            if isinstance(e, BadRange):
                part.unlink()
            error = e
    kept = part.stat().st_size if part.exists() else 0
    raise FetchError(f"{what}: gave up after {retries + 1} attempts ({error}); "
                     f"{part} keeps {kept} bytes, the next run resumes from there")
