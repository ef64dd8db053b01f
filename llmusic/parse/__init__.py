"""LLM reply text -> Song, or a typed failure: `parse_reply(text, constraints, policy)`.

Never raises on any reply text. Three policies (`parse.policy`), each a reader:

- "clamp" (the default) and "strict" read leniently. Readers, cheapest first (`ParseResult.form`
  says which one found the song): "json" (the whole reply is strict JSON), "embedded" (strict JSON
  inside ``` fences or wrapped in prose), "lenient" (the tolerant reader: the Python-literal form
  the paper's prompt shows, single quotes, tuples, trailing commas, comments, bare keys, cut-off
  replies); "none" when nothing was found. Nothing is ever evaluated. Values outside the
  constraint set are clamped ("clamp": pitch and velocity to their ranges, duration to
  `duration_range`, start to [0, time_span_ticks], programs to 0-127, an unknown meter to the
  set's first; drum pitches are left as they are, where the official code moves them into 35-50)
  or fail the reply ("strict": out_of_range). Both apply the syntax repairs and drop malformed
  events; floats are rounded half up and numeric strings read ("60.5" -> 61).
- "official" reads as the paper's official code does (llmusic/parse/official.py): strict
  `json.loads`, exact track names, every key a list, `int()` (floats cut toward zero, "60.5"
  refused), the official clamps including drum pitches to 35-50; a malformed event fails the reply.
  `check_policy` refuses it at start-up with a constraint set that asks the reply for a meter or
  programs (keys the official reader fails).

Status: "ok" (the song is exactly what the reply said), "repaired" (something was clamped,
rounded, dropped, defaulted or cut; `reason` summarises it, e.g. "clamped 3 pitch, dropped 1
malformed event(s)"), "failed" (`reason` is "<key>" or "<key>: <detail>"; `reason_key` is the key).

Failure keys (stable: manifests record them and the analysis counts them):
    empty_reply     the reply is empty, whitespace or not text (a refusal with no content)
    no_json         no '{' starts a readable object
    not_an_object   the reply's value is not an object (detail: its type, e.g. "list")
    missing_track   a required track (constraints.tracks) is absent (detail: the track)
    not_a_list      a track's value is not a list (detail: the track; official: any key's value)
    empty_track     a track has no valid event left (detail: the track; not under official)
    out_of_range    strict policy: a value outside the set (detail: "pitch 200 in melody event 3",
                    "time_signature '5/4'", "program 130 for bass")
    parser_error    a bug in this package, caught so a run never stops (detail: exception type)
  official policy only (the official code fails or stops there; the detail says which):
    not_strict_json   json.loads refuses the stripped reply (detail: the decoder's message)
    malformed_event   an event is not 4 values (detail: "melody event 3 has 3 values, not 4")
    not_an_integer    int() refuses a value (detail: "velocity 'loud' in melody event 3")
    extra_track       a key besides the tracks holds a list (detail: the key)

Repair keys in `repairs` (counts; the first group makes the status "repaired"):
    truncated          the reply ended inside the object: its incomplete tail (a half-written
                       event or track) was dropped and the open brackets closed (count 1)
    syntax_error       unreadable spots: reading stopped there (the rest is dropped, as a cut),
                       or a stray / mismatched bracket or a key without value was skipped
    dropped_malformed  events dropped: wrong arity, a missing field, non-numeric, null, bool
    rounded            non-integer numbers rounded half up (60.7 -> 61)
    int_converted      official: values int() changed (a float cut toward zero, 60.7 -> 60; true -> 1)
    clamped_pitch, clamped_duration, clamped_velocity, clamped_start, clamped_program
    clamped_drum_pitch official: rhythm pitches moved into 35-50
    time_signature     missing or unknown meter replaced by the set's default (meter choice only)
    program            missing or unreadable program replaced by the set's (free_programs only)
  informational, status stays "ok":
    ignored_keys       unknown keys ignored (top level, in event objects, in "programs")
    aliased_tracks     tracks found under an alias ("drums", "drum", "percussion" -> rhythm,
                       "chord" -> chords); names otherwise match exactly, ignoring case, ' ', '_', '-'
    unwrapped          the tracks sat one level down, e.g. {"song": {"melody": ...}}

Not enforced (prompt guidance the analysis can measure on the Song): event counts, drum pitches
(but for the official clamp), notes ending after time_span_ticks. A reply may carry
"time_signature" only under a set with several meters and "programs" only with free_programs;
elsewhere the lenient policies ignore them and the Song gets the set's tempo, ticks per quarter,
programs and first time signature.
"""

from __future__ import annotations

from functools import partial

from llmusic.constraints import ConstraintSet
from llmusic.parse.extract import extract_object
from llmusic.parse.official import check_official, read_official
from llmusic.parse.reasons import FAILURE_KEYS, INFO_KEYS, REPAIR_KEYS
from llmusic.parse.result import ParseResult, read_with
from llmusic.parse.validate import build_song, find_song_object
from llmusic.song import Song

__all__ = ["ParseResult", "parse_reply", "check_policy", "POLICIES", "OFFICIAL_POLICY", "FAILURE_KEYS", "REPAIR_KEYS", "INFO_KEYS"]


def _read_lenient(text: str, constraints: ConstraintSet, result: ParseResult, *, strict: bool) -> Song:
    obj, result.form, fixes = extract_object(text, lambda o: find_song_object(o, constraints) is not None)
    result.repairs.update(fixes)
    return build_song(obj, constraints, strict, result.repairs)


OFFICIAL_POLICY = "official"  # the official code's reading
READERS = {
    "clamp": partial(_read_lenient, strict=False),
    "strict": partial(_read_lenient, strict=True),
    OFFICIAL_POLICY: read_official,
}
POLICIES = tuple(READERS)
# What a policy needs of the constraint set, checked before anything is paid.
_CHECKS = {OFFICIAL_POLICY: check_official}


def check_policy(policy: str, constraints: ConstraintSet) -> None:
    """ValueError for an unknown policy, or one that cannot read replies of this constraint set."""
    if policy not in READERS:
        raise ValueError(f"parse.policy must be one of {POLICIES}, got {policy!r}")
    _CHECKS.get(policy, lambda _: None)(constraints)


def parse_reply(text: str, constraints: ConstraintSet, policy: str = "clamp") -> ParseResult:
    """Parse and validate one LLM reply under a constraint set; never raises on any text.

    `policy` is one of POLICIES (a ValueError for anything else: that is a config bug).
    """
    if policy not in READERS:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    return read_with(READERS[policy], text, constraints)
