"""Loading real MIDI files defensively, and the one exception that says why a file is skipped.

A file is checked before and after the MIDI library reads it, so that no file can stop a data-set
build or take more than a bounded amount of memory: the header's time division must be ticks per
quarter (SMPTE time has no beats to cut windows on) and not 0, the file at most `MAX_FILE_BYTES`
(what the library holds in memory grows with it), and its notes at most `max_notes` (default
`MAX_NOTES_PER_FILE`, about 7x the largest of the 1,985 real files under ../shared/data).
"""

from __future__ import annotations

import os
from pathlib import Path

import symusic

MAX_FILE_BYTES = 16 * 2**20  # room for ~4 million notes; the largest real file under ../shared/data is 0.2 MB
MAX_NOTES_PER_FILE = 200_000


class MidiSkip(Exception):
    """A file that cannot give piano rolls; `reason` is a short stable key for counting skips.

    Keys: "unreadable" (the MIDI library failed; its message is in `detail`), "bad_header" (ticks
    per quarter 0), "smpte_division" (time in SMPTE frames, not beats), "too_large" (over
    MAX_FILE_BYTES), "too_many_notes" (over the reader's note limit), "too_many_windows" (cut into
    more windows than the roller's limit), "no_notes" (no pitched notes), "no_4_4_grid" (no pitched
    notes in a 4/4 section). A data set counts every other exception while reading or rolling a
    file as "roll_error".
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def check_header(path: str | Path) -> None:
    """MidiSkip for a file whose size or standard-MIDI header rules it out before it is read."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(14)
    except OSError as err:
        raise MidiSkip("unreadable", f"{path}: {type(err).__name__}: {err}") from err
    if size > MAX_FILE_BYTES:
        raise MidiSkip("too_large", f"{path}: {size} bytes > {MAX_FILE_BYTES}")
    if head[:4] != b"MThd" or len(head) < 14:
        return  # not a plain header (a RIFF wrapper, a damaged file): the library decides
    division = int.from_bytes(head[12:14], "big")
    if division & 0x8000:
        raise MidiSkip("smpte_division", f"{path}: {256 - (division >> 8)} frames a second, {division & 0xFF} "
                                         "ticks a frame: no beat grid")
    if division == 0:
        raise MidiSkip("bad_header", f"{path}: ticks per quarter is 0")


def load_score(path: str | Path, max_notes: int | None = MAX_NOTES_PER_FILE) -> symusic.Score:
    """Read a MIDI file with symusic (ticks); any failure becomes a MidiSkip with its reason."""
    check_header(path)
    try:
        score = symusic.Score(str(path))
    except Exception as err:  # symusic raises several types for corrupt files; all mean the same here
        raise MidiSkip("unreadable", f"{path}: {type(err).__name__}: {err}") from err
    if score.ticks_per_quarter <= 0:
        raise MidiSkip("bad_header", f"{path}: ticks per quarter is {score.ticks_per_quarter}")
    notes = sum(len(track.notes) for track in score.tracks)
    if max_notes is not None and notes > max_notes:
        raise MidiSkip("too_many_notes", f"{path}: {notes} notes > {max_notes}")
    return score
