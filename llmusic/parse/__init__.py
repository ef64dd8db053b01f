"""LLM reply text -> Song, or a typed failure: `parse_reply(text, constraints, policy)`.

Never raises on any reply text. Readers, cheapest first (`ParseResult.form` says which one found
the song): "json" (the whole reply is strict JSON), "embedded" (strict JSON inside ``` fences or
wrapped in prose), "lenient" (the tolerant reader: the Python-literal form the paper's prompt
shows, single quotes, tuples, trailing commas, comments, bare keys, cut-off replies); "none" when
nothing was found. Nothing is ever evaluated.

Policies for values outside the constraint set: "clamp" (default, as the paper's code does: pitch
and velocity to their ranges, duration to `duration_range`, start to [0, time_span_ticks],
programs to 0-127, an unknown meter to the set's first) and "strict" (fail with out_of_range).
Both policies apply the syntax repairs and drop malformed events.

Status: "ok" (the song is exactly what the reply said), "repaired" (something was clamped,
rounded, dropped, defaulted or cut; `reason` summarises it, e.g. "clamped 3 pitch, dropped 1
malformed event(s)"), "failed" (`reason` is "<key>" or "<key>: <detail>"; `reason_key` is the key).

Failure keys (stable: manifests record them and the analysis counts them):
    empty_reply     the reply is empty, whitespace or not text (a refusal with no content)
    no_json         no '{' starts a readable object
    not_an_object   the reply's value is not an object (detail: its type, e.g. "list")
    missing_track   a required track (constraints.tracks) is absent (detail: the track)
    not_a_list      a track's value is not a list (detail: the track)
    empty_track     a track has no valid event left (detail: the track)
    out_of_range    strict policy: a value outside the set (detail: "pitch 200 in melody event 3",
                    "time_signature '5/4'", "program 130 for bass")
    parser_error    a bug in this package, caught so a run never stops (detail: exception type)

Repair keys in `repairs` (counts; the first group makes the status "repaired"):
    truncated          the reply ended inside the object: its incomplete tail (a half-written
                       event or track) was dropped and the open brackets closed (count 1)
    syntax_error       unreadable spots: reading stopped there (the rest is dropped, as a cut),
                       or a stray / mismatched bracket or a key without value was skipped
    dropped_malformed  events dropped: wrong arity, a missing field, non-numeric, null, bool
    rounded            non-integer numbers rounded half up (60.7 -> 61)
    clamped_pitch, clamped_duration, clamped_velocity, clamped_start, clamped_program
    time_signature     missing or unknown meter replaced by the set's default (meter choice only)
    program            missing or unreadable program replaced by the set's (free_programs only)
  informational, status stays "ok":
    ignored_keys       unknown keys ignored (top level, in event objects, in "programs")
    aliased_tracks     tracks found under an alias ("drums", "drum", "percussion" -> rhythm,
                       "chord" -> chords); names otherwise match exactly, ignoring case, ' ', '_', '-'
    unwrapped          the tracks sat one level down, e.g. {"song": {"melody": ...}}

Not enforced (prompt guidance the analysis can measure on the Song): event counts, drum pitches,
notes ending after time_span_ticks. A reply may carry "time_signature" only under a set with
several meters and "programs" only with free_programs; elsewhere they are ignored keys and the
Song gets the set's tempo, ticks per quarter, programs and first time signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmusic.constraints import ConstraintSet
from llmusic.parse.extract import extract_object
from llmusic.parse.reasons import FAILURE_KEYS, INFO_KEYS, REPAIR_KEYS, ReplyRejected, changed, summarize
from llmusic.parse.validate import POLICIES, build_song, find_song_object
from llmusic.song import Song

__all__ = ["ParseResult", "parse_reply", "POLICIES", "FAILURE_KEYS", "REPAIR_KEYS", "INFO_KEYS"]


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


def parse_reply(text: str, constraints: ConstraintSet, policy: str = "clamp") -> ParseResult:
    """Parse and validate one LLM reply under a constraint set; never raises on any text.

    `policy` is "clamp" or "strict" (a ValueError for anything else: that is a config bug).
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    repairs: dict[str, int] = {}
    form = "none"
    try:
        obj, form, fixes = extract_object(text, lambda o: find_song_object(o, constraints) is not None)
        repairs.update(fixes)
        song = build_song(obj, constraints, policy, repairs)
    except ReplyRejected as rejected:
        return ParseResult("failed", rejected.reason, None, repairs, form)
    except Exception as error:  # noqa: BLE001 - a reply must never stop a 16,250-song run
        return ParseResult("failed", f"parser_error: {type(error).__name__}", None, repairs, form)
    if changed(repairs):
        return ParseResult("repaired", summarize(repairs), song, repairs, form)
    return ParseResult("ok", None, song, repairs, form)
