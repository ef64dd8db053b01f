"""`parse.policy=official`: a reply read as the paper's official code reads it.

The official code (github shinandrew/LLM-MIDI, generate.py; ../shared/reference/README.md) does,
for each reply, these steps; any of them that raises ValueError there costs an attempt (up to 5).
Here every step is the same Python operation, and whatever it raises fails the reply with a key:

1. `json.loads` of the stripped reply: Python's decoder as it is (NaN and Infinity read, a repeated
   key keeps its last value). Code fences, prose or the prompt's own tuple syntax: `not_strict_json`.
2. The four tracks must be keys, spelled exactly: `missing_track` (a reply that is not an object:
   `not_an_object`).
3. Every key of the reply, in order, must hold a list, so an extra key such as "tempo": 120 fails
   the reply too: `not_a_list`. Its events are unpacked as `pitch, duration, velocity, start = event`
   (any 4 items: a 4-character string or a 4-key object unpacks too) and each value goes
   through `int()`: another count of items is `malformed_event`, a value `int()` refuses
   `not_an_integer`. `int()` is Python's: a float is cut toward zero (60.7 -> 60, counted as
   `int_converted`), a string must spell an integer ("60" and " 60 " read, "60.5" does not), true is 1.
4. Values are clamped to the constraint set's ranges (constraints=paper: the official numbers,
   pitch and velocity 0-127, duration 240-960, start 0-7680), then the rhythm's pitches to 35-50
   (`clamped_drum_pitch`; the lenient policies leave drum pitches as they are).
5. An extra key holding a list passes all that, and the official writer then stops the program on
   it (it has no instrument for it): here the reply fails with `extra_track`.

Where the official program would stop rather than retry (an event or value of the wrong type, an
infinite number, an extra list-valued key, a reply that is a number), the detail ends with
"(the official program stops here)": a run here never stops. Tracks keep the reply's key order
(the official writer writes them in that order); an empty track is kept, as there.
"""

from __future__ import annotations

import json

from llmusic.constraints import ConstraintSet
from llmusic.parse.reasons import ReplyRejected, describe
from llmusic.parse.result import ParseResult
from llmusic.song import DRUM_TRACK, PITCH, Song

OFFICIAL_DRUM_PITCHES = (35, 50)  # the official code clamps the rhythm's pitches to these
FIELDS = ("pitch", "duration", "velocity", "start")
STOPS = " (the official program stops here)"  # an exception its `except ValueError` does not catch


def _events(name: str, events: list, limits: list[tuple[int, int]], repairs: dict[str, int]) -> list[list[int]]:
    """One track's events as the official code converts and clamps them."""
    rows = []
    for i, event in enumerate(events):
        try:
            values = list(event)  # what the official `pitch, duration, velocity, start = event` iterates
        except TypeError:
            raise ReplyRejected("malformed_event", f"{name} event {i} is {type(event).__name__}, not 4 "
                                f"values{STOPS}") from None
        if len(values) != 4:
            raise ReplyRejected("malformed_event", f"{name} event {i} has {len(values)} values, not 4")
        row = []
        for field, value in zip(FIELDS, values):
            try:
                number = int(value)
            except (TypeError, ValueError, OverflowError) as error:
                raise ReplyRejected("not_an_integer", f"{field} {describe(value)} in {name} event {i}"
                                    + ("" if isinstance(error, ValueError) else STOPS)) from None
            if type(value) is bool or (type(value) is float and number != value):
                repairs["int_converted"] = repairs.get("int_converted", 0) + 1
            row.append(number)
        for f, (lo, hi) in enumerate(limits):
            if not lo <= row[f] <= hi:
                row[f] = min(max(row[f], lo), hi)
                repairs[f"clamped_{FIELDS[f]}"] = repairs.get(f"clamped_{FIELDS[f]}", 0) + 1
        rows.append(row)
    if name == DRUM_TRACK:
        lo, hi = OFFICIAL_DRUM_PITCHES
        for row in rows:
            if not lo <= row[PITCH] <= hi:
                row[PITCH] = min(max(row[PITCH], lo), hi)
                repairs["clamped_drum_pitch"] = repairs.get("clamped_drum_pitch", 0) + 1
    return rows


def read_official(text: str, constraints: ConstraintSet, result: ParseResult) -> Song:
    """The Song the official code would keep of `text` (a `llmusic.parse.result.Reader`)."""
    if not isinstance(text, str) or not text.strip():
        raise ReplyRejected("empty_reply")
    try:
        obj = json.loads(text.strip())
    except ValueError as error:
        raise ReplyRejected("not_strict_json", getattr(error, "msg", str(error))) from None
    except RecursionError:  # nested too deep for the decoder
        raise ReplyRejected("not_strict_json", f"RecursionError{STOPS}") from None
    result.form = "json"
    if not isinstance(obj, dict):
        # The official `all(track in reply ...)` looks for items of a list and substrings of a string
        # (it fails the attempt without them, then stops indexing them by name); a number stops it.
        stops = not isinstance(obj, (list, str)) or all(track in obj for track in constraints.tracks)
        raise ReplyRejected("not_an_object", type(obj).__name__ + (STOPS if stops else ""))
    for track in constraints.tracks:
        if track not in obj:
            raise ReplyRejected("missing_track", track)
    p, d, v = constraints.pitch_range, constraints.duration_range, constraints.velocity_range
    limits = [p, d, v, (0, constraints.time_span_ticks)]  # in song column order
    tracks = {}
    for name, events in obj.items():
        if not isinstance(events, list):
            raise ReplyRejected("not_a_list", name)
        tracks[name] = _events(name, events, limits, result.repairs)
    extra = [name for name in tracks if name not in constraints.tracks]
    if extra:
        raise ReplyRejected("extra_track", f"{describe(extra[0])}{STOPS}")
    return Song(
        tracks=tracks,
        ticks_per_quarter=constraints.ticks_per_quarter,
        tempo_bpm=constraints.tempo_bpm,
        time_signature=tuple(int(x) for x in constraints.time_signatures[0].split("/")),
        programs=dict(constraints.programs),
    )


def check_official(constraints: ConstraintSet) -> None:
    """The official reader has no place for a meter or programs in a reply (an extra key fails it):
    refuse a constraint set that asks for them, before anything is paid."""
    asks = [what for what, asked in (("a time signature", constraints.allows_choice_of_meter),
                                      ("programs", constraints.free_programs)) if asked]
    if asks:
        raise ValueError(
            f"parse.policy=official reads a reply as the official code does, where any key besides the "
            f"four tracks fails it, but constraints={constraints.name} asks the reply for "
            f"{' and '.join(asks)}: every reply that obeys would fail. Use constraints=paper (or "
            f"paper_consistent) with parse.policy=official, or parse.policy=clamp with {constraints.name}.")
