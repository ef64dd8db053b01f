"""The vocabulary of parse outcomes: failure keys, repair keys and the one-line repair summary.

The generate engine writes these keys into manifests and the analysis step counts them, so they
are part of the data format: add keys, never rename them. The meaning of each is documented in
the `llmusic.parse` module docstring.
"""

from __future__ import annotations

FAILURE_KEYS: tuple[str, ...] = (
    "empty_reply",
    "no_json",
    "not_an_object",
    "missing_track",
    "not_a_list",
    "empty_track",
    "out_of_range",
    "parser_error",
    # policy "official" (llmusic/parse/official.py): where the official code's reading fails a reply
    "not_strict_json",
    "malformed_event",
    "not_an_integer",
    "extra_track",
)

# Repairs that changed what the reply said, in the order the summary names them.
REPAIR_KEYS: tuple[str, ...] = (
    "truncated",
    "syntax_error",
    "dropped_malformed",
    "rounded",
    "int_converted",
    "clamped_pitch",
    "clamped_duration",
    "clamped_velocity",
    "clamped_start",
    "clamped_drum_pitch",
    "time_signature",
    "clamped_program",
    "program",
)
# Counted but harmless: the song is exactly what the reply said, so they leave status "ok".
INFO_KEYS: tuple[str, ...] = ("ignored_keys", "aliased_tracks", "unwrapped")

_PHRASES = {
    "truncated": "closed a reply cut off mid-value",
    "syntax_error": "skipped {n} syntax error(s)",
    "dropped_malformed": "dropped {n} malformed event(s)",
    "rounded": "rounded {n} non-integer value(s)",
    "int_converted": "int() changed {n} value(s)",
    "clamped_pitch": "clamped {n} pitch",
    "clamped_duration": "clamped {n} duration",
    "clamped_velocity": "clamped {n} velocity",
    "clamped_start": "clamped {n} start",
    "clamped_drum_pitch": "clamped {n} drum pitch",
    "time_signature": "defaulted time_signature",
    "clamped_program": "clamped {n} program(s)",
    "program": "defaulted {n} program(s)",
}


class ReplyRejected(Exception):
    """A reply that cannot become a song; `reason` is "<key>" or "<key>: <detail>"."""

    def __init__(self, key: str, detail: str | None = None) -> None:
        assert key in FAILURE_KEYS, key
        self.reason = key if detail is None else f"{key}: {detail}"
        super().__init__(self.reason)


def changed(repairs: dict[str, int]) -> bool:
    """Whether any counted repair changed the song (informational counts do not)."""
    return any(n and key not in INFO_KEYS for key, n in repairs.items())


def summarize(repairs: dict[str, int]) -> str:
    """e.g. "clamped 3 pitch, dropped 1 malformed event(s)", in REPAIR_KEYS order."""
    return ", ".join(_PHRASES[k].format(n=repairs[k]) for k in REPAIR_KEYS if repairs.get(k))


def describe(value: object) -> str:
    """A short, never-failing rendering of a reply value for a failure detail."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        text = f"{'-' if value < 0 else ''}2**{value.bit_length() - 1}+"  # str() refuses > 4300 digits
    elif isinstance(value, (bool, int, float)) or value is None:
        text = str(value)
    elif isinstance(value, str):
        text = repr(value)
    else:
        return type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."
