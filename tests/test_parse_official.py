"""parse.policy=official: every reply is classified as the paper's official code classifies it.

`official_code` below is the official code's handling of a reply, written from the facts of
../shared/reference/README.md (json.loads of the stripped reply, the track check, list check,
unpacking, int(), the clamps, and the writer's instrument lookup that stops on an extra track). On
every reply we have (the fixtures, the recorded replay lines, hand-made edge cases, thousands of
mutations) the parser must keep exactly the songs that code keeps, with the same values in the
same track order, and fail the others, marking the ones where that code would have stopped.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from llmusic.config import REPO_ROOT
from llmusic.parse import FAILURE_KEYS, INFO_KEYS, REPAIR_KEYS, check_policy, parse_reply
from llmusic.parse.official import STOPS
from tests.helpers import constraint_set, mutations

REPLIES = REPO_ROOT / "tests" / "replies"
REPLAY = REPO_ROOT / "tests" / "data" / "replay_sample.jsonl"
OFFICIAL_FAILURES = {"empty_reply", "not_strict_json", "not_an_object", "missing_track", "not_a_list",
                     "malformed_event", "not_an_integer", "extra_track"}
TRACKS = ("melody", "chords", "bass", "rhythm")
RANGES = [(0, 127), (240, 960), (0, 127), (0, 7680)]  # pitch, duration, velocity, start
PROGRAMS = {"melody": 0, "chords": 0, "bass": 33, "rhythm": None}  # the writer's instrument per part


def official_code(text: str) -> dict:
    """What the official program keeps of a reply, step by step from ../shared/reference/README.md,
    with Python's own operations so that it raises what the program raises: ValueError (its
    `except` catches it: another attempt) or anything else (the program stops)."""
    reply = json.loads(text.strip())
    if any(track not in reply for track in TRACKS):  # a membership test: on a list or a string too
        raise ValueError("a track is missing")
    kept = {}
    for name in reply:  # every key, in order
        if not isinstance(reply[name], list):
            raise ValueError(f"{name} is not a list")
        rows = []
        for event in reply[name]:
            pitch, duration, velocity, start = event  # unpacking: ValueError for another count of items
            values = [int(pitch), int(duration), int(velocity), int(start)]
            rows.append([min(max(value, lo), hi) for value, (lo, hi) in zip(values, RANGES)])
        if name == "rhythm":
            for row in rows:
                row[0] = min(max(row[0], 35), 50)
        kept[name] = rows
    for name in kept:  # the writer looks up each part's instrument: a KeyError stops the program
        PROGRAMS[name]
    return kept


@pytest.fixture(scope="module")
def paper():
    return constraint_set("paper")


def event_json(melody_event: str, extra: str = "") -> str:
    return ('{"melody": [' + melody_event + '], "chords": [[48, 960, 70, 0]], "bass": [[36, 960, 90, 0]], '
            '"rhythm": [[35, 240, 100, 0]]' + extra + "}")


EDGE = [
    "", "   ", "null", "5", "3.5", "true", '"melody chords bass rhythm"', '"melody"', "[]",
    '["melody", "chords", "bass", "rhythm"]', "{}", '{"melody": []}',
    '{"melody": [], "chords": [], "bass": [], "rhythm": []}',
    event_json("[60, 480, 80, 0]"), event_json("[60, 480, 80]"), event_json("[60, 480, 80, 0, 1]"),
    event_json("5"), event_json("null"), event_json('"1234"'), event_json('"12345"'), event_json('"abcd"'),
    event_json('{"pitch": 60, "duration": 480, "velocity": 80, "start_time": 0}'),
    event_json('{"60": 1, "480": 1, "80": 1, "0": 1}'), event_json('{"pitch": 60}'),
    event_json("[60.7, 480.2, -0.5, 1e3]"), event_json('["60", " 480 ", "+80", "1_0"]'),
    event_json('["60.5", 480, 80, 0]'), event_json('["sixty", 480, 80, 0]'), event_json("[null, 480, 80, 0]"),
    event_json("[[60], 480, 80, 0]"), event_json("[true, false, 80, 0]"), event_json("[NaN, 480, 80, 0]"),
    event_json("[Infinity, 480, 80, 0]"), event_json("[1e400, 480, 80, 0]"),
    event_json("[" + "9" * 5000 + ", 480, 80, 0]"), event_json("[-5, 100000, 300, 99999]"),
    event_json("[60, 480, 80, 0]", ', "tempo": 120'), event_json("[60, 480, 80, 0]", ', "drums": []'),
    event_json("[60, 480, 80, 0]", ', "drums": [[1, 2, 3]]'), event_json("[60, 480, 80, 0]", ', "notes": null'),
    '{"melody": [[60, 480, 80, 0]], "melody": 5, "chords": [], "bass": [], "rhythm": []}',
    '{"Melody": [], "chords": [], "bass": [], "rhythm": []}',
    '{"rhythm": [[10, 240, 90, 0], [81, 240, 90, 240], [42, 240, 90, 480]], "melody": [], "bass": [], "chords": []}',
    "```json\n" + event_json("[60, 480, 80, 0]") + "\n```", "Here you go: " + event_json("[60, 480, 80, 0]"),
    event_json("[60, 480, 80, 0]").replace('"', "'"), "{" * 100_000, "[" * 100_000,
]


def all_replies() -> list[str]:
    texts = [p.read_text() for p in sorted(REPLIES.glob("*.txt"))]
    for line in REPLAY.read_text().splitlines():
        try:
            texts.append(json.loads(line)["response"])
        except (ValueError, KeyError, TypeError):
            pass
    texts += EDGE
    rng = random.Random(0)
    for base in (REPLIES / "strict_json.txt").read_text(), EDGE[13], EDGE[24]:
        texts += list(mutations(base, rng, 400, max_edits=4, alphabet='{}[]()":,0123456789-.e \ntruefalsnul'))
    return [t for t in texts if isinstance(t, str)]


def test_every_reply_is_kept_or_failed_as_the_official_code_does(paper):
    outcomes = {"kept": 0, "retried": 0, "stopped": 0}
    for text in all_replies():
        result = parse_reply(text, paper, "official")
        assert result.status in ("ok", "repaired", "failed")
        assert set(result.repairs) <= set(REPAIR_KEYS) | set(INFO_KEYS)
        json.dumps(result.record())
        try:
            expected = official_code(text)
        except ValueError:  # the official `except (json.JSONDecodeError, ValueError, ...)`: another attempt
            outcomes["retried"] += 1
            assert result.status == "failed" and STOPS not in result.reason, (text[:200], result.reason)
            assert result.reason_key in OFFICIAL_FAILURES
            continue
        except Exception:  # noqa: BLE001 - anything else stops the official program
            outcomes["stopped"] += 1
            if text.strip():  # an empty reply is a JSONDecodeError there: never here
                assert result.status == "failed" and result.reason.endswith(STOPS), (text[:200], result.reason)
            continue
        outcomes["kept"] += 1
        assert result.status in ("ok", "repaired"), (text[:200], result.reason)
        assert result.form == "json"
        song = {name: events.tolist() for name, events in result.song.tracks.items()}
        assert song == expected and list(song) == list(expected)  # same values, in the reply's track order
        assert all(events.dtype == np.int32 for events in result.song.tracks.values())
    assert min(outcomes.values()) >= 10, outcomes  # every outcome is exercised


# (what the reply is) -> (status, reason)
CASES = {
    "strict_json.txt": ("ok", None),
    "python_tuples.txt": ("failed", "not_strict_json: Expecting property name enclosed in double quotes"),
    "fenced_json.txt": ("failed", "not_strict_json: Expecting value"),
    "prose_wrapped.txt": ("failed", "not_strict_json: Expecting value"),
    "missing_bass.txt": ("failed", "missing_track: bass"),
    "rhythm_not_a_list.txt": ("failed", "not_a_list: rhythm"),
    "extra_keys.txt": ("failed", "not_a_list: title"),  # a key the lenient reader ignores
    "event_objects.txt": ("failed", "not_an_integer: pitch 'pitch' in melody event 0"),  # a dict unpacks its keys
    "top_level_list.txt": ("failed", "not_an_object: list"),
    "out_of_range.txt": ("repaired", "clamped 2 pitch, clamped 2 duration, clamped 1 velocity, clamped 2 start"),
    "numeric_strings_floats.txt": ("repaired", "int() changed 2 value(s)"),
}


@pytest.mark.parametrize("name", CASES)
def test_fixture_outcomes(name, paper):
    result = parse_reply((REPLIES / name).read_text(), paper, "official")
    assert (result.status, result.reason) == CASES[name]


@pytest.mark.parametrize("event, status, reason, row", [
    ("[60, 480, 80, 0]", "ok", None, [60, 480, 80, 0]),
    ("[60, 480, 80]", "failed", "malformed_event: melody event 0 has 3 values, not 4", None),
    ("5", "failed", f"malformed_event: melody event 0 is int, not 4 values{STOPS}", None),
    ("[60.7, 480.2, -0.5, 1e3]", "repaired", "int() changed 3 value(s)", [60, 480, 0, 1000]),  # cut toward zero
    ('["60", " 480 ", "+80", "1_0"]', "ok", None, [60, 480, 80, 10]),  # int() reads integer strings
    ('["60.5", 480, 80, 0]', "failed", "not_an_integer: pitch '60.5' in melody event 0", None),
    ("[null, 480, 80, 0]", "failed", f"not_an_integer: pitch None in melody event 0{STOPS}", None),
    ("[-5, 100000, 300, 99999]", "repaired", "clamped 1 pitch, clamped 1 duration, clamped 1 velocity, "
                                             "clamped 1 start", [0, 960, 127, 7680]),
])
def test_event_values(event, status, reason, row, paper):
    result = parse_reply(event_json(event), paper, "official")
    assert (result.status, result.reason) == (status, reason)
    if row is not None:
        assert result.song.tracks["melody"].tolist() == [row]


def test_drum_pitches_are_clamped_to_35_50_only_here(paper):
    text = '{"melody": [], "chords": [], "bass": [], "rhythm": [[10, 240, 90, 0], [81, 240, 90, 240], [42, 240, 90, 480]]}'
    official = parse_reply(text, paper, "official")
    assert official.status == "repaired" and official.repairs == {"clamped_drum_pitch": 2}
    assert official.song.tracks["rhythm"][:, 0].tolist() == [35, 50, 42]
    assert official.song.tracks["melody"].shape == (0, 4)  # an empty track is kept, as there
    lenient = parse_reply(text.replace('"melody": []', '"melody": [[60, 480, 80, 0]]')
                          .replace('"chords": []', '"chords": [[60, 480, 80, 0]]')
                          .replace('"bass": []', '"bass": [[40, 480, 80, 0]]'), paper, "clamp")
    assert lenient.status == "ok" and lenient.song.tracks["rhythm"][:, 0].tolist() == [10, 81, 42]


def test_extra_keys_fail_as_there(paper):
    listed = parse_reply(event_json("[60, 480, 80, 0]", ', "drums": []'), paper, "official")
    assert listed.reason == f"extra_track: 'drums'{STOPS}"
    scalar = parse_reply(event_json("[60, 480, 80, 0]", ', "tempo": 120'), paper, "official")
    assert scalar.reason == "not_a_list: tempo"


def test_the_official_keys_are_failure_keys():
    assert OFFICIAL_FAILURES <= set(FAILURE_KEYS)


@pytest.mark.parametrize("constraints, refused", [
    ("paper", False), ("paper_consistent", False), ("relaxed", True)])
def test_a_constraint_set_asking_for_keys_the_official_reader_fails_is_refused(constraints, refused):
    limits = constraint_set(constraints)
    if refused:
        with pytest.raises(ValueError, match=r"parse.policy=official .* a time signature and programs"):
            check_policy("official", limits)
    else:
        check_policy("official", limits)
    check_policy("clamp", limits)
    with pytest.raises(ValueError, match="parse.policy must be one of"):
        check_policy("lenient", limits)
