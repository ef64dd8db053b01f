"""Hostile input (issue 12, item 1): every recorded line and every reply ends as exactly one record,
at its index, and no text stops a run or makes a paid backend pay twice.

The inputs that broke it come first, one test each; then a property test feeds random bytes, random
unicode (lone surrogates and line separators included) and random JSON shapes through replay and
the parser.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmusic.config import REPO_ROOT
from llmusic.engine.summary import print_summary
from llmusic.generate import generate
from llmusic.parse import POLICIES
from tests.fake_openai import FakeOpenAI, song_reply
from tests.helpers import compose_entry

KEY = "sk-test-" + os.urandom(12).hex()


def line(**fields) -> str:
    return json.dumps({"genre": "Pop", "style": "Swing", "mood": "happy", "response": song_reply(7), **fields})


def records_of(out: Path) -> list[dict]:
    """The manifest, split at `\\n` only, so this reader cannot hide a record split in two."""
    return [json.loads(text) for text in (out / "manifest.jsonl").read_bytes().decode("utf-8").split("\n") if text]


def replay(path: Path, out: Path, *extra: str) -> dict:
    return generate(compose_entry("generate", "llm=replay", f"llm.path={path}", f"out_dir={out}", "progress=false",
                                  *extra))


def test_a_reply_with_a_lone_surrogate_is_cached_and_never_paid_twice(tmp_path, monkeypatch):
    """`\\ud800` in a reply used to raise UnicodeEncodeError in the cache, before the reply was
    stored: the run died, and each rerun paid for the same reply and died again."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    grid = ["llm=openai", f"out_dir={tmp_path}", f"cache_dir={tmp_path / 'cache'}", "progress=false", "n_per_combo=2",
            "taxonomy.genres=[Pop]", "taxonomy.styles=[Swing,Ballad]", "llm.backoff_base_s=0.01"]
    with FakeOpenAI(faults=lambda body, n: "surrogate") as server:
        first = generate(compose_entry("generate", f"llm.base_url={server.base_url}", *grid))
        again = generate(compose_entry("generate", f"llm.base_url={server.base_url}", *grid))
        assert server.paid == 4  # once per song, the rerun from the cache
    assert first["songs"] == again["songs"] == 4 and first["valid"] == 4  # the stray character is prose after the song
    assert again["requests"] == 0 and again["cache_hits"] == 4
    replies = [json.loads(text) for text in (tmp_path / "replies.jsonl").read_text().split("\n") if text]
    assert len(replies) == 4 and all(r["text"].endswith(" \ud800") for r in replies)  # stored losslessly


BROKEN_LINES = {  # the line that broke a replay -> the reason its record now gives
    "deep nesting": ("[" * 100_000 + "]" * 100_000, "replay_line: nested too deep"),
    "a 5,000-digit integer": ('{"genre": "Pop", "n": ' + "9" * 5000 + "}", "replay_line: unreadable number"),
    "a model that is a list": (line(model=["gpt-4o"]), "replay_line: wrong type of model"),
    "messages that are a number": (line(messages=5), "replay_line: wrong type of messages"),
    "messages that are not chat messages": (line(messages=[1, "x"]), "replay_line: wrong type of messages"),
    "a string temperature": (line(temperature="hot"), "replay_line: wrong type of temperature"),
}


@pytest.mark.parametrize("name", list(BROKEN_LINES))
def test_a_line_that_gives_no_song_is_a_failed_record_at_its_index(tmp_path, name):
    bad, reason = BROKEN_LINES[name]
    path = tmp_path / "replies.jsonl"
    path.write_text("\n".join([line(), bad, line(style="Ballad")]) + "\n")
    summary = replay(path, tmp_path / "run")
    records = records_of(tmp_path / "run")
    assert [(r["index"], r["status"]) for r in records] == [(0, "ok"), (1, "failed"), (2, "ok")]
    assert records[1]["reason"].startswith(reason) and summary["failure_reasons"] == {"replay_line": 1}
    assert records[2]["style"] == "Ballad"  # the line after it is still itself


def test_a_bom_and_line_separators_inside_a_line_keep_every_index(tmp_path):
    """A file starting with a UTF-8 BOM lost its first line; U+2028, U+2029, U+0085 (and the ASCII
    separators str.splitlines also breaks at) split one record in two and shifted every later index."""
    separators = "\u2028\u2029\x85\x0b\x0c\x1c\x1d\x1e"
    lines = [line(mood=f"calm{separators}"), line(response=song_reply(8) + separators), line(style="Waltz"),
             line(genre="Jazz", messages=[{"role": "user", "content": f"a song{separators}\ud800"}])]
    path = tmp_path / "replies.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(json.dumps(json.loads(text), ensure_ascii=False) for text in lines)
                     .encode("utf-8", "surrogatepass").replace(b"\xed\xa0\x80", b"\\ud800"))
    summary = replay(path, tmp_path / "run")
    records = records_of(tmp_path / "run")
    assert [r["index"] for r in records] == [0, 1, 2, 3] and summary["songs"] == 4
    assert all(r["status"] == "ok" for r in records), [r["reason"] for r in records]
    assert records[0]["mood"] == f"calm{separators}" and records[2]["style"] == "Waltz"
    assert records[3]["messages"][0]["content"] == f"a song{separators}\ud800"  # kept, escaped on disk
    assert len((tmp_path / "run" / "manifest.jsonl").read_text(encoding="utf-8").splitlines()) == 4


def test_the_command_exits_0_on_a_hostile_recording(tmp_path):
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(text.encode() for text, _ in BROKEN_LINES.values())
                     + b"\n\xff\xfe\x00garbage\n" + line(genre="\ud800", style="x\u2028y").encode() + b"\n")
    done = subprocess.run([sys.executable, "-m", "llmusic.generate", "llm=replay", f"llm.path={path}",
                           f"out_dir={tmp_path / 'run'}"], cwd=REPO_ROOT, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert [r["index"] for r in records_of(tmp_path / "run")] == list(range(len(BROKEN_LINES) + 2))
    assert b"\\ud800" in done.stdout  # the summary table shows the odd genre escaped


def test_the_summary_prints_any_label_on_a_strict_utf8_terminal():
    import io

    from rich.console import Console

    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    row = {"songs": 1, "valid": 0, "valid_rate": 0.0}
    summary = {"per_genre": {"\ud800": row}, "per_style": {"a\u2028b": row}, "cost_usd": None, "songs": 1, "valid": 0,
               "valid_rate": 0.0, "attempts": 1, "requests": 0, "transport_retries": 0, "cache_hits": 0,
               "cache_damaged": {}, "cache_repairs": 0, "tokens": {"prompt": 0, "completion": 0},
               "cost_usd_this_run": 0.0, "elapsed_s": 0.0,
               "setting": {"prompt": "paper", "prompt_sha256": "0" * 16, "parse_policy": "clamp", "renderer": "pretty_midi",
                           "constraints": "paper", "official_mode": False,
                           "official": {"prompt": True, "parse": False, "render": False}}}
    print_summary(summary, Console(file=stream, width=120))
    stream.flush()
    assert b"\\ud800" in stream.buffer.getvalue()


# --- the property test ------------------------------------------------------------------------------

SEPARATORS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
any_text = st.text(st.characters(categories=["L", "N", "P", "S", "Z", "C"]) | st.sampled_from(SEPARATORS),
                   max_size=30)  # every category, lone surrogates (Cs) and control characters included
json_shapes = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4), max_leaves=12)
song_fields = st.fixed_dictionaries(
    {"genre": any_text, "style": any_text, "mood": any_text,
     "response": st.one_of(st.just(song_reply(3)), any_text, json_shapes.map(json.dumps),
                           st.builds(lambda s, cut: s[:cut], st.just(song_reply(4)), st.integers(0, 1200)))},
    optional={"messages": json_shapes, "model": json_shapes, "temperature": json_shapes, "max_tokens": json_shapes,
              "usage": json_shapes, "finish_reason": json_shapes})


def encoded(value: object, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


lines = st.one_of(
    st.builds(encoded, song_fields, st.booleans()),  # a song line, any text in any field
    st.builds(encoded, json_shapes, st.booleans()),  # any JSON at all
    any_text.map(lambda text: text.encode("utf-8", "surrogatepass")),  # not JSON
    st.binary(max_size=40),  # not text
    st.integers(1, 20_000).map(lambda n: b"[" * n + b"]" * n),  # deep
    st.integers(4_301, 6_000).map(lambda n: b'{"genre": ' + b"7" * n + b"}"),  # a number past the digit limit
)


def line_count(raw: bytes) -> int:
    """What a recording holds by the docs: `\\n`-separated lines after an optional BOM, a final
    newline opening none."""
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    return raw.count(b"\n") + (not raw.endswith(b"\n")) if raw else 0


@pytest.fixture(scope="module")
def replay_config(tmp_path_factory):
    """One composed replay config (composing takes longer than a run): each example points it at its file."""
    return compose_entry("generate", "llm=replay", "llm.path=unset", "progress=false"), tmp_path_factory.mktemp("prop")


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                                HealthCheck.too_slow])
@given(st.lists(lines, max_size=6), st.booleans(), st.sampled_from([b"\n", b"\r\n"]), st.booleans(),
       st.sampled_from(POLICIES))
def test_every_line_of_any_recording_is_one_record_in_order(replay_config, body, bom, newline, final_newline, policy):
    raw = (b"\xef\xbb\xbf" if bom else b"") + newline.join(body) + (newline if final_newline and body else b"")
    cfg, root = replay_config
    root = Path(tempfile.mkdtemp(dir=root))
    (root / "replies.jsonl").write_bytes(raw)
    cfg.llm.path, cfg.out_dir, cfg.parse.policy = str(root / "replies.jsonl"), str(root / "run"), policy  # every reader
    summary = generate(cfg)
    records = records_of(root / "run")
    assert [r["index"] for r in records] == list(range(line_count(raw))) and summary["songs"] == len(records)
    assert all(r["status"] in ("ok", "repaired", "failed") and (r["status"] == "failed") != bool(r["midi"])
               for r in records)
