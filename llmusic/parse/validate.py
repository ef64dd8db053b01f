"""Reply object -> Song, under a ConstraintSet and a policy for values outside it.

Track names match case-insensitively (ignoring spaces, '_' and '-'), plus the small alias table
TRACK_ALIASES; an exact name wins over an alias. Events are 4-element lists (pitch, duration,
velocity, start_time: the prompt's order) or objects keyed by the names in FIELD_ALIASES. Numbers
may be ints, floats (rounded half up) or numeric strings.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

from llmusic.constraints import ConstraintSet
from llmusic.parse.reasons import ReplyRejected, describe
from llmusic.song import DURATION, PITCH, START, VELOCITY, Song

TRACK_ALIASES = {"drums": "rhythm", "drum": "rhythm", "percussion": "rhythm", "chord": "chords"}
FIELDS = ("pitch", "duration", "velocity", "start")  # names in failure details and repair keys
FIELD_ALIASES = {
    **dict.fromkeys(("pitch", "note", "midi", "notenumber"), PITCH),
    **dict.fromkeys(("duration", "dur", "length"), DURATION),
    **dict.fromkeys(("velocity", "vel"), VELOCITY),
    **dict.fromkeys(("starttime", "start", "time", "starttick", "startticks", "onset"), START),
}
_MISSING = object()
_METER = re.compile(r"\s*(\d{1,2})\s*/\s*(\d{1,2})\s*")


@lru_cache(maxsize=4096)
def _norm_str(key: str) -> str:
    return re.sub(r"[\s_\-]", "", key.lower())


def _norm(key: object) -> str:
    """"Start_Time", "start time" and "startTime" are one key."""
    return _norm_str(key) if isinstance(key, str) else ""


def _coerce(value: object) -> tuple[int | None, bool]:
    """A reply number -> (int, whether rounding changed it); (None, False) if it is not one."""
    if type(value) is int:  # bool is not a number here
        return value, False
    if type(value) is str:
        try:
            value = float(value.strip())
        except ValueError:
            return None, False
    if type(value) is float and math.isfinite(value):
        rounded = math.floor(value + 0.5)
        return rounded, rounded != value
    return None, False


def _track_keys(obj: dict, constraints: ConstraintSet) -> dict[str, str]:
    """Normalised reply key -> the track it names, for this constraint set."""
    names = {_norm(t): t for t in constraints.tracks}
    aliases = {a: t for a, t in TRACK_ALIASES.items() if t in constraints.tracks}
    return {**aliases, **names}


def find_song_object(obj: dict, constraints: ConstraintSet) -> tuple[dict, bool] | None:
    """The dict holding the tracks: `obj` itself, or one value of it (a {"song": {...}} wrapper,
    reported as True); None when no key in either names a track."""
    keys = _track_keys(obj, constraints)
    if any(_norm(k) in keys for k in obj):
        return obj, False
    for value in obj.values():
        if isinstance(value, dict) and any(_norm(k) in keys for k in value):
            return value, True
    return None


def _bump(repairs: dict[str, int], key: str, n: int = 1) -> None:
    if n:
        repairs[key] = repairs.get(key, 0) + n


def _fields_of(event: dict, repairs: dict[str, int]) -> list | None:
    fields = [_MISSING] * 4
    for key, value in event.items():
        index = FIELD_ALIASES.get(_norm(key))
        if index is None or fields[index] is not _MISSING:
            _bump(repairs, "ignored_keys")
            continue
        fields[index] = value
    return None if any(f is _MISSING for f in fields) else fields


def _events(events: list, track: str, limits: list[tuple[int, int]], strict: bool,
            repairs: dict[str, int]) -> list[list[int]]:
    """Valid events of one track; malformed ones dropped, out-of-range values clamped or fatal."""
    rows = []
    malformed = rounded = 0
    clamped = [0, 0, 0, 0]
    (p_lo, p_hi), (d_lo, d_hi), (v_lo, v_hi), (s_lo, s_hi) = limits
    for i, event in enumerate(events):
        kind = type(event)
        if kind is list and len(event) == 4:  # the common case first: four in-range ints
            p, d, v, s = event
            if (type(p) is int and type(d) is int and type(v) is int and type(s) is int
                    and p_lo <= p <= p_hi and d_lo <= d <= d_hi and v_lo <= v <= v_hi and s_lo <= s <= s_hi):
                rows.append(event)
                continue
        if kind is list or kind is tuple:
            fields = event if len(event) == 4 else None
        elif kind is dict:
            fields = _fields_of(event, repairs)
        else:
            fields = None
        if fields is None:
            malformed += 1
            continue
        row = list(fields)
        n_rounded = 0
        for f in range(4):
            if type(row[f]) is not int:
                row[f], changed = _coerce(row[f])
                if row[f] is None:
                    break
                n_rounded += changed
        else:
            for f, (lo, hi) in enumerate(limits):
                value = row[f]
                if value < lo or value > hi:
                    if strict:
                        detail = f"{FIELDS[f]} {describe(value)} in {track} event {i}"
                        raise ReplyRejected("out_of_range", detail)
                    row[f] = lo if value < lo else hi
                    clamped[f] += 1
            rows.append(row)
            rounded += n_rounded
            continue
        malformed += 1
    _bump(repairs, "dropped_malformed", malformed)
    _bump(repairs, "rounded", rounded)
    for f, n in enumerate(clamped):
        _bump(repairs, f"clamped_{FIELDS[f]}", n)
    return rows


def _meter(value: object) -> str | None:
    """ "3/4", " 3 / 4 " or [3, 4] -> "3/4"; None for anything else."""
    if isinstance(value, str):
        match = _METER.fullmatch(value)
        return f"{int(match[1])}/{int(match[2])}" if match else None
    if isinstance(value, (list, tuple)) and len(value) == 2:
        (num, _), (den, _) = _coerce(value[0]), _coerce(value[1])
        return f"{num}/{den}" if num is not None and den is not None else None
    return None


def _time_signature(value: object, constraints: ConstraintSet, strict: bool,
                    repairs: dict[str, int]) -> tuple[int, int]:
    chosen = constraints.time_signatures[0]
    if constraints.allows_choice_of_meter:
        meter = _meter(value)
        if meter in constraints.time_signatures:
            chosen = meter
        elif strict and value is not _MISSING:
            raise ReplyRejected("out_of_range", f"time_signature {describe(value)}")
        else:
            _bump(repairs, "time_signature")
    num, den = chosen.split("/")
    return int(num), int(den)


def _programs(value: object, constraints: ConstraintSet, strict: bool,
              repairs: dict[str, int]) -> dict[str, int]:
    programs = dict(constraints.programs)
    if not constraints.free_programs:
        return programs
    given: dict[str, object] = {}
    if isinstance(value, dict):
        names = {_norm(t): t for t in programs}
        for key, program in value.items():
            track = names.get(_norm(key))
            if track is None or track in given:
                _bump(repairs, "ignored_keys")
            else:
                given[track] = program
    for track in programs:
        program, changed = _coerce(given.get(track, _MISSING))
        if program is None:
            _bump(repairs, "program")
            continue
        _bump(repairs, "rounded", changed)
        if not 0 <= program <= 127:
            if strict:
                raise ReplyRejected("out_of_range", f"program {describe(program)} for {track}")
            program = min(max(program, 0), 127)
            _bump(repairs, "clamped_program")
        programs[track] = program
    return programs


def build_song(obj: object, constraints: ConstraintSet, strict: bool, repairs: dict[str, int]) -> Song:
    """The Song a reply object describes; counts what it changed in `repairs`.

    Raises ReplyRejected when the object is not a song: not a dict, a required track missing,
    not a list or left with no valid event, or (`strict`: policy "strict") a value outside the set.
    """
    if not isinstance(obj, dict):
        raise ReplyRejected("not_an_object", type(obj).__name__)
    found = find_song_object(obj, constraints)
    if found is not None:
        inner, unwrapped = found
        if unwrapped:
            _bump(repairs, "unwrapped")
            _bump(repairs, "ignored_keys", len(obj) - 1)  # the wrapper's other keys ("tempo", ...)
        obj = inner

    roles = _track_keys(obj, constraints)
    extras = {}
    if constraints.allows_choice_of_meter:
        extras["timesignature"] = "time_signature"
    if constraints.free_programs:
        extras["programs"] = "programs"
    values: dict[str, object] = {}
    for aliased in (False, True):  # exact names first, so "rhythm" beats "drums"
        for key, value in obj.items():
            norm = _norm(key)
            role = roles.get(norm) or extras.get(norm)
            if role is not None and (norm != _norm(role)) == aliased and role not in values:
                values[role] = value
                _bump(repairs, "aliased_tracks", aliased)
    _bump(repairs, "ignored_keys", len(obj) - len(values))

    p, d, v = constraints.pitch_range, constraints.duration_range, constraints.velocity_range
    limits = [p, d, v, (0, constraints.time_span_ticks)]  # in song column order
    tracks = {}
    for track in constraints.tracks:
        events = values.get(track, _MISSING)
        if events is _MISSING:
            raise ReplyRejected("missing_track", track)
        if not isinstance(events, (list, tuple)):
            raise ReplyRejected("not_a_list", track)
        tracks[track] = _events(events, track, limits, strict, repairs)
        if not tracks[track]:
            raise ReplyRejected("empty_track", track)
    return Song(
        tracks=tracks,
        ticks_per_quarter=constraints.ticks_per_quarter,
        tempo_bpm=constraints.tempo_bpm,
        time_signature=_time_signature(values.get("time_signature", _MISSING), constraints, strict, repairs),
        programs=_programs(values.get("programs", _MISSING), constraints, strict, repairs),
    )
