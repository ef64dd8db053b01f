"""What parsing a reply gives (`ParseResult`), and the one wrapper every reader runs in.

A reader is a function `(text, constraints, result) -> Song` that notes on `result` which form it
found and what it changed (`result.form`, `result.repairs`) and raises ReplyRejected for a reply
that is no song. `read_with` turns any outcome, a bug in the reader included, into a ParseResult.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from llmusic.constraints import ConstraintSet
from llmusic.parse.reasons import ReplyRejected, changed, summarize
from llmusic.song import Song


@dataclass
class ParseResult:
    status: str  # "ok" | "repaired" | "failed"
    reason: str | None  # failure "<key>: <detail>", or a summary of repairs; None when ok
    song: Song | None
    repairs: dict[str, int] = field(default_factory=dict)
    form: str = "none"  # "json" | "embedded" | "lenient" | "none": which reader found the object

    @property
    def reason_key(self) -> str | None:
        """The stable failure key ("missing_track"), None unless failed."""
        return self.reason.split(":", 1)[0] if self.status == "failed" else None

    def record(self) -> dict:
        """The JSON-ready outcome for a manifest line (the song goes to MIDI, not here)."""
        return {"status": self.status, "reason": self.reason, "repairs": dict(self.repairs),
                "form": self.form}


Reader = Callable[[str, ConstraintSet, ParseResult], Song]


def read_with(reader: Reader, text: str, constraints: ConstraintSet) -> ParseResult:
    """Run one reader on one reply; never raises on any text."""
    result = ParseResult("failed", None, None)
    try:
        song = reader(text, constraints, result)
    except ReplyRejected as rejected:
        result.reason = rejected.reason
        return result
    except Exception as error:  # noqa: BLE001 - a reply must never stop a 16,250-song run
        result.reason = f"parser_error: {type(error).__name__}"
        return result
    result.song = song
    if changed(result.repairs):
        result.status, result.reason = "repaired", summarize(result.repairs)
    else:
        result.status = "ok"
    return result
