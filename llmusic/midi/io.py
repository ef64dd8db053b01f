"""Loading real MIDI files, and the one exception that says why a file is skipped."""

from __future__ import annotations

from pathlib import Path

import symusic


class MidiSkip(Exception):
    """A file that cannot give piano rolls; `reason` is a short stable key for counting skips.

    Keys: "unreadable" (the MIDI library failed; its message is in `detail`), "no_notes" (no
    pitched notes), "no_grid" (no window on the file's bar lines holds pitched notes),
    "meter_excluded" (none in the meters a data set keeps, e.g. `meters: [4/4]`).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def load_score(path: str | Path) -> symusic.Score:
    """Read a MIDI file with symusic (ticks); any failure becomes MidiSkip("unreadable")."""
    try:
        return symusic.Score(str(path))
    except Exception as err:  # symusic raises several types for corrupt files; all mean the same here
        raise MidiSkip("unreadable", f"{path}: {type(err).__name__}: {err}") from err
