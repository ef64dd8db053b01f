"""A generate run's manifest (read through llmusic.run_dir.GenerateRun): the tallies read straight off it."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

from llmusic.run_dir import GenerateRun

UNLABELLED = "(none)"  # genre/style/mood of a record without one (e.g. a replayed reply)


def load_manifest(out_dir: Path) -> list[dict]:
    """The run's records (GenerateRun.records) with missing labels filled in."""
    records = list(GenerateRun(out_dir).records())
    for record in records:
        for key in ("genre", "style", "mood"):
            record[key] = record.get(key) or UNLABELLED
    return records


def song_id(record: dict) -> str:
    """"Genre|Style|index", the id the engine gives a song (SongRequest.song_id)."""
    return f"{record['genre']}|{record['style']}|{record['index']}"


def file_stem(record: dict) -> str:
    """A file name for the song, e.g. "Jazz__Bossa_Nova__3": its id with '|' as '__' and anything but
    letters, digits, '_', '-' and '.' as '_'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", song_id(record).replace("|", "__"))


def axis_order(records: list[dict], key: str, preferred: list[str] | None = None) -> list[str]:
    """The distinct values of `key`, in `preferred` order (the run's taxonomy) then as they appear."""
    seen = list(dict.fromkeys(r[key] for r in records))
    first = [v for v in preferred or [] if v in seen]
    return first + [v for v in seen if v not in first]


def valid_rates(
    records: list[dict], genres: list[str], styles: list[str], valid_statuses: set[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(G, S) share of valid songs per genre x style (nan where none was asked), and (G, S) totals."""
    total = np.zeros((len(genres), len(styles)), dtype=np.int64)
    valid = np.zeros_like(total)
    gi = {g: i for i, g in enumerate(genres)}
    si = {s: i for i, s in enumerate(styles)}
    for r in records:
        i, j = gi[r["genre"]], si[r["style"]]
        total[i, j] += 1
        valid[i, j] += r["status"] in valid_statuses
    return np.where(total > 0, valid / np.maximum(total, 1), np.nan), total


def reason_key(reason: str | None) -> str:
    """The stable key of a failure reason: parse reasons read "<key>" or "<key>: <detail>"."""
    return (reason or "unknown").split(":", 1)[0].strip() or "unknown"


def failure_reasons(records: list[dict], valid_statuses: set[str]) -> tuple[Counter, dict[str, str]]:
    """reason key -> count over the songs that are not valid, and key -> the first full reason seen."""
    counts, examples = Counter(), {}
    for r in records:
        if r["status"] not in valid_statuses:
            key = reason_key(r.get("reason"))
            counts[key] += 1
            examples.setdefault(key, r.get("reason") or "unknown")
    return counts, examples


def repair_counts(records: list[dict]) -> Counter:
    """repair key -> how many songs' final reply needed it (the engine logs each attempt's repairs)."""
    counts = Counter()
    for r in records:
        final = (r.get("attempts") or [{}])[-1]
        counts.update(key for key, n in (final.get("repairs") or {}).items() if n)
    return counts


def attempt_counts(records: list[dict]) -> dict[int, int]:
    """attempts a song took -> how many songs took that many, ascending."""
    counts = Counter(len(r.get("attempts") or []) for r in records)
    return dict(sorted(counts.items()))
