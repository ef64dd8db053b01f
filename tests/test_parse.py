"""The reply parser on real-looking replies (tests/replies/*.txt) under the real constraint configs.

Every fixture is checked for its exact outcome (status, reason, repair counts, reader), the
replies that spell one song in different forms must all give that song, every cut of a valid reply
must give a prefix of it, and no text at all (garbage, mutations, huge or deeply nested) may do
anything but return a consistent ParseResult.
"""

from __future__ import annotations

import json
import random
import string

import numpy as np
import pytest

import llmusic.parse
from llmusic.config import REPO_ROOT
from llmusic.parse import FAILURE_KEYS, INFO_KEYS, REPAIR_KEYS, ParseResult, parse_reply
from llmusic.song import DURATION, PITCH, START, VELOCITY, Song
from tests.helpers import constraint_set, mutations

REPLIES = REPO_ROOT / "tests" / "replies"
SETS = ("paper", "paper_consistent", "relaxed")
# One song (52 events: 16 melody, 12 chords, 8 bass, 16 rhythm) written the ways models write it.
SAME_SONG = (
    "strict_json.txt",
    "fenced_json.txt",
    "prose_wrapped.txt",
    "python_tuples.txt",
    "python_fenced_trailing_commas.txt",
    "event_objects.txt",
    "event_objects_aliases.txt",
)


@pytest.fixture(scope="module")
def sets() -> dict:
    return {name: constraint_set(name) for name in SETS}


def reply(name: str) -> str:
    return (REPLIES / name).read_text()


def reference_song() -> Song:
    """The song of strict_json.txt, read without the parser."""
    return Song(tracks=json.loads(reply("strict_json.txt")))


def assert_consistent(result: ParseResult, constraints) -> None:
    """What every result must satisfy, whatever the reply."""
    assert isinstance(result, ParseResult)
    assert result.status in ("ok", "repaired", "failed")
    assert set(result.repairs) <= set(REPAIR_KEYS) | set(INFO_KEYS)
    assert all(isinstance(n, int) and n > 0 for n in result.repairs.values())
    assert result.form in ("json", "embedded", "lenient", "none")
    json.dumps(result.record())
    if result.status == "failed":
        assert result.song is None
        assert result.reason_key in FAILURE_KEYS and result.reason_key != "parser_error", result.reason
        return
    changed = any(k in REPAIR_KEYS for k in result.repairs)
    assert (result.status == "repaired") == changed
    assert (result.reason is None) == (result.status == "ok")
    song = result.song
    assert list(song.tracks) == list(constraints.tracks)
    limits = {PITCH: constraints.pitch_range, DURATION: constraints.duration_range,
              VELOCITY: constraints.velocity_range, START: (0, constraints.time_span_ticks)}
    for events in song.tracks.values():
        assert events.dtype == np.int32 and events.shape[1] == 4 and len(events) > 0
        for column, (lo, hi) in limits.items():
            assert lo <= events[:, column].min() and events[:, column].max() <= hi
    assert f"{song.time_signature[0]}/{song.time_signature[1]}" in constraints.time_signatures
    assert song.ticks_per_quarter == constraints.ticks_per_quarter
    assert song.tempo_bpm == constraints.tempo_bpm
    assert all(0 <= p <= 127 for p in song.programs.values())


# (file, set, policy) -> (status, reason, repairs, form)
CASES = {
    ("strict_json.txt", "paper", "clamp"): ("ok", None, {}, "json"),
    ("fenced_json.txt", "paper", "clamp"): ("ok", None, {}, "embedded"),
    ("prose_wrapped.txt", "paper", "clamp"): ("ok", None, {}, "embedded"),
    ("python_tuples.txt", "paper", "clamp"): ("ok", None, {}, "lenient"),
    ("python_fenced_trailing_commas.txt", "paper", "strict"): ("ok", None, {}, "lenient"),
    ("event_objects.txt", "paper", "clamp"): ("ok", None, {}, "json"),
    ("event_objects_aliases.txt", "paper", "clamp"): ("ok", None, {"ignored_keys": 16}, "embedded"),
    ("comments_bare_keys.txt", "paper", "clamp"): ("ok", None, {}, "lenient"),
    ("ellipsis_placeholder.txt", "paper", "clamp"): ("ok", None, {}, "lenient"),
    ("double_encoded.txt", "paper", "clamp"): ("ok", None, {}, "embedded"),
    ("extra_keys.txt", "paper", "clamp"): ("ok", None, {"ignored_keys": 4}, "json"),
    ("wrapped_with_drums_alias.txt", "paper", "clamp"): (
        "ok", None, {"unwrapped": 1, "aliased_tracks": 1, "ignored_keys": 2}, "json"),
    ("numeric_strings_floats.txt", "paper", "strict"): (
        "repaired", "rounded 2 non-integer value(s)", {"rounded": 2}, "json"),
    ("truncated_mid_event.txt", "paper", "clamp"): (
        "repaired", "closed a reply cut off mid-value", {"truncated": 1}, "lenient"),
    ("truncated_between_events.txt", "paper", "strict"): (
        "repaired", "closed a reply cut off mid-value", {"truncated": 1}, "lenient"),
    ("truncated_before_rhythm.txt", "paper", "clamp"): (
        "failed", "missing_track: rhythm", {"truncated": 1}, "lenient"),
    ("out_of_range.txt", "paper", "clamp"): (
        "repaired", "clamped 2 pitch, clamped 2 duration, clamped 1 velocity, clamped 2 start",
        {"clamped_pitch": 2, "clamped_duration": 2, "clamped_velocity": 1, "clamped_start": 2}, "json"),
    ("out_of_range.txt", "paper", "strict"): (
        "failed", "out_of_range: pitch 130 in melody event 2", {}, "json"),
    ("malformed_events.txt", "paper", "strict"): (
        "repaired", "dropped 6 malformed event(s)", {"dropped_malformed": 6}, "embedded"),
    ("missing_bass.txt", "paper", "clamp"): ("failed", "missing_track: bass", {}, "json"),
    ("empty_rhythm.txt", "paper", "clamp"): ("failed", "empty_track: rhythm", {}, "embedded"),
    ("rhythm_not_a_list.txt", "paper", "clamp"): ("failed", "not_a_list: rhythm", {}, "json"),
    ("refusal.txt", "paper", "clamp"): ("failed", "no_json", {}, "none"),
    ("top_level_list.txt", "paper", "clamp"): ("failed", "not_an_object: list", {}, "json"),
    ("long_form_8_bars.txt", "paper", "clamp"): (
        "repaired", "clamped 6 start", {"clamped_start": 6}, "lenient"),
    ("long_form_8_bars.txt", "paper_consistent", "strict"): ("ok", None, {}, "lenient"),
    ("relaxed_waltz_programs.txt", "relaxed", "strict"): ("ok", None, {}, "embedded"),
    ("relaxed_waltz_programs.txt", "paper", "clamp"): (
        "repaired", "clamped 7 duration", {"clamped_duration": 7, "ignored_keys": 2}, "embedded"),
    ("relaxed_bad_meter_programs.txt", "relaxed", "clamp"): (
        "repaired", "defaulted time_signature, clamped 1 program(s), defaulted 1 program(s)",
        {"time_signature": 1, "clamped_program": 1, "program": 1, "ignored_keys": 1}, "json"),
    ("relaxed_bad_meter_programs.txt", "relaxed", "strict"): (
        "failed", "out_of_range: time_signature '5/4'", {}, "json"),
    ("relaxed_without_extras.txt", "relaxed", "strict"): (
        "repaired", "defaulted time_signature, defaulted 3 program(s)", {"time_signature": 1, "program": 3},
        "lenient"),
    ("extra_keys.txt", "relaxed", "clamp"): (
        "repaired", "defaulted 3 program(s)", {"program": 3, "ignored_keys": 3}, "json"),
}


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_reply_outcome(case, sets):
    name, set_name, policy = case
    status, reason, repairs, form = CASES[case]
    result = parse_reply(reply(name), sets[set_name], policy)
    assert (result.status, result.reason, result.repairs, result.form) == (status, reason, repairs, form)
    assert_consistent(result, sets[set_name])


def test_every_fixture_is_covered():
    assert {c[0] for c in CASES} == {p.name for p in REPLIES.glob("*.txt")}


@pytest.mark.parametrize("name", SAME_SONG)
def test_forms_give_the_same_song(name, sets):
    result = parse_reply(reply(name), sets["paper"])
    assert result.song.equals(reference_song())
    assert result.song.n_notes == 52


def test_numbers_as_floats_and_strings(sets):
    song = parse_reply(reply("numeric_strings_floats.txt"), sets["paper"]).song
    expected = reference_song().tracks
    expected["melody"][1, PITCH], expected["melody"][2, PITCH] = 73, 71  # 72.7 and 70.8 rounded
    assert all(np.array_equal(song.tracks[t], expected[t]) for t in expected)


@pytest.mark.parametrize("name, kept_rhythm", [
    ("truncated_mid_event.txt", 14), ("truncated_between_events.txt", 12)])
def test_truncation_keeps_complete_events(name, kept_rhythm, sets):
    song = parse_reply(reply(name), sets["paper"]).song
    full = reference_song().tracks
    for track in ("melody", "chords", "bass"):
        assert np.array_equal(song.tracks[track], full[track])
    assert np.array_equal(song.tracks["rhythm"], full["rhythm"][:kept_rhythm])


def test_clamped_values(sets):
    song = parse_reply(reply("out_of_range.txt"), sets["paper"]).song
    assert song.tracks["melody"][2].tolist() == [127, 240, 127, 960]
    assert song.tracks["melody"][3].tolist() == [81, 960, 90, 1200]
    assert song.tracks["melody"][5].tolist() == [76, 240, 88, 7680]
    assert song.tracks["bass"][3].tolist() == [0, 960, 100, 2880]
    assert song.tracks["rhythm"][4].tolist() == [35, 240, 120, 0]


def test_malformed_events_dropped(sets):
    song = parse_reply(reply("malformed_events.txt"), sets["paper"]).song
    assert song.tracks["melody"][:, START].tolist() == [0, 960, 2880]
    assert [len(song.tracks[t]) for t in ("chords", "bass", "rhythm")] == [6, 3, 4]


def test_meter_and_programs_reach_the_song(sets):
    waltz = parse_reply(reply("relaxed_waltz_programs.txt"), sets["relaxed"]).song
    assert waltz.time_signature == (3, 4)
    assert waltz.programs == {"melody": 40, "chords": 48, "bass": 43}
    clamped = parse_reply(reply("relaxed_bad_meter_programs.txt"), sets["relaxed"]).song
    assert clamped.time_signature == (4, 4)
    assert clamped.programs == {"melody": 127, "chords": 0, "bass": 33}
    paper = parse_reply(reply("relaxed_waltz_programs.txt"), sets["paper"]).song
    assert paper.time_signature == (4, 4) and paper.programs == sets["paper"].programs


@pytest.mark.parametrize("meter, expected", [
    ("6/8", (6, 8)), (" 3 / 4 ", (3, 4)), ([3, 4], (3, 4)), ("3-4", (4, 4))])
def test_meter_spellings(meter, expected, sets):
    obj = json.loads(reply("relaxed_waltz_programs.txt").split("```json")[1].split("```")[0])
    obj["time_signature"] = meter
    assert parse_reply(json.dumps(obj), sets["relaxed"]).song.time_signature == expected


def test_unquoted_meter_and_arithmetic(sets):
    text = reply("relaxed_waltz_programs.txt").replace('"3/4"', "3/4")
    result = parse_reply(text, sets["relaxed"])
    assert (result.status, result.form, result.song.time_signature) == ("ok", "lenient", (3, 4))
    broken = text.replace("[74, 480, 76, 1440]", "[74, 960/2, 76, 1440]")
    assert parse_reply(broken, sets["relaxed"]).repairs == {"dropped_malformed": 1}


def test_exact_track_name_beats_alias(sets):
    obj = json.loads(reply("strict_json.txt"))
    obj = {"drums": [[38, 240, 90, 0]], **obj}
    result = parse_reply(json.dumps(obj), sets["paper"])
    assert result.status == "ok" and result.repairs == {"ignored_keys": 1}
    assert result.song.equals(reference_song())


@pytest.mark.parametrize("events, repairs", [
    ([[60, 480, 80, 0]], {}),
    ([(60.0, "480", " 80.0 ", 0.4)], {"rounded": 1}),  # lossless but for 0.4 -> 0
    ([[60.5, 480, 80, 0]], {"rounded": 1}),
    ([[60, 480, 80, 0], [True, 480, 80, 0]], {"dropped_malformed": 1}),
    ([[60, 480, 80, 0], [60, 480, 80, float("nan")]], {"dropped_malformed": 1}),
    ([[60, 480, 80, 0], {"pitch": 60, "duration": 480, "velocity": 80}], {"dropped_malformed": 1}),
    ([[60, 480, 80, 0], [60, "1e999", 80, 0], [60, "9" * 5000, 80, 0]], {"dropped_malformed": 2}),
    ([[int("9" * 400), 480, 80, 0]], {"clamped_pitch": 1}),
])
def test_event_values(events, repairs, sets):
    obj = {t: [[36, 480, 80, 0]] for t in ("chords", "bass", "rhythm")}
    obj["melody"] = events
    result = parse_reply(repr(obj), sets["paper"])  # repr: the Python-literal form
    assert result.repairs == repairs
    assert result.song.tracks["melody"][0].tolist()[1:3] == [480, 80]


def test_strict_details_name_field_and_value(sets):
    obj = json.loads(reply("strict_json.txt"))
    obj["bass"][3][VELOCITY] = 2 ** 1000  # too long to print in full
    result = parse_reply(json.dumps(obj), sets["paper"], "strict")
    assert result.reason == "out_of_range: velocity 2**1000+ in bass event 3"
    assert result.reason_key == "out_of_range"


def test_unknown_policy_is_a_config_error(sets):
    with pytest.raises(ValueError, match="policy"):
        parse_reply(reply("strict_json.txt"), sets["paper"], "lenient")


def test_docstring_documents_every_key():
    doc = llmusic.parse.__doc__
    assert all(key in doc for key in FAILURE_KEYS + REPAIR_KEYS + INFO_KEYS)


@pytest.mark.parametrize("name", ["strict_json.txt", "python_tuples.txt", "event_objects.txt"])
def test_every_cut_gives_a_prefix(name, sets):
    """A reply cut anywhere (the token limit) keeps only complete events, never invents one."""
    text, full = reply(name).rstrip(), reference_song().tracks
    for cut in range(len(text)):
        result = parse_reply(text[:cut], sets["paper"])
        assert_consistent(result, sets["paper"])
        if result.status == "failed":
            assert result.reason_key in ("empty_reply", "no_json", "missing_track", "empty_track")
            continue
        assert result.repairs == {"truncated": 1}
        for track, events in result.song.tracks.items():
            assert np.array_equal(events, full[track][: len(events)])


def _garbage(rng: random.Random, n: int):
    alphabet = string.printable + "{}[]()'\":,\u2026é\x00"
    for _ in range(n):
        yield "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
        yield bytes(rng.randrange(256) for _ in range(rng.randint(0, 200))).decode("latin-1")
        tokens = ["{", "}", "[", "]", "(", ")", ":", ",", "'melody'", '"rhythm"', "60", "-1.5e3", "null",
                  "True", "...", "//", "#", "'", '"', "/*", "bass", "\n"]
        yield " ".join(rng.choice(tokens) for _ in range(rng.randint(0, 200)))


HOSTILE = [
    None, b"{}", 42, "", "   \n", "{", "}", "{}", "[]", '""', "null", "{'melody': }", "{melody [}",
    "[" * 100_000, "{" * 100_000, "{'a': " * 50_000, "(" * 100_000 + ")" * 100_000,
    '{"melody": ' + "[" * 5000 + "]" * 5000 + "}",
    "Use {curly braces} " * 20_000,
    "{" + "'x': 1, " * 200_000 + "}",
    '{"melody": [[' + "9" * 5000 + ", 480, 80, 0]]}",
    '{"melody": [[1e999, NaN, Infinity, -Infinity]], "chords": [], "bass": 1, "rhythm": {}}',
    "\"\\ud800{'melody'",
]


def test_no_reply_can_crash_the_parser(sets):
    rng = random.Random(0)
    texts = HOSTILE + list(_garbage(rng, 60))
    for name in ("strict_json.txt", "python_tuples.txt", "event_objects_aliases.txt",
                 "relaxed_waltz_programs.txt"):
        texts += list(mutations(reply(name), rng, 60, max_edits=8))
    huge = json.loads(reply("strict_json.txt"))
    texts.append(json.dumps({t: events * 2000 for t, events in huge.items()}))
    for text in texts:
        for set_name in ("paper", "relaxed"):
            for policy in ("clamp", "strict"):
                assert_consistent(parse_reply(text, sets[set_name], policy), sets[set_name])
