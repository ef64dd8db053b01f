"""The generation engine against the loopback OpenAI server: faults, retries, attempts, the cache,
resuming after kill -9, cost, and that the API key never reaches a file.

Every run composes the real configs (conf/generate.yaml, llm=openai) with Hydra's compose API.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmusic.config import REPO_ROOT
from llmusic.engine.cache import ReplyCache, cache_key
from llmusic.engine.cost import PriceTable
from llmusic.generate import generate
from llmusic.llm.base import Completion, SongRequest
from llmusic.llm.limits import Backoff, TokenBucket, retry_after_s
from tests.fake_openai import FakeOpenAI
from tests.helpers import compose_entry

KEY = "sk-test-" + os.urandom(12).hex()  # a fresh secret per session, to look for in every file
GRID = ["n_per_combo=2", "taxonomy.genres=[Pop,Jazz]", "taxonomy.styles=[Swing,Drone]"]  # 8 songs
SONGS = 8
FAST = ["llm.timeout=0.3", "llm.backoff_base_s=0.01", "llm.backoff_max_s=0.05", "llm.concurrency=4"]


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def overrides(base_url: str, out: Path, *extra: str) -> list[str]:
    return ["llm=openai", f"llm.base_url={base_url}", f"out_dir={out}", f"cache_dir={out}/cache",
            "progress=false", *GRID, *FAST, *extra]


def run(server: FakeOpenAI, out: Path, *extra: str) -> dict:
    return generate(compose_entry("generate", *overrides(server.base_url, out, *extra)))


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def assert_no_secret(root: Path) -> None:
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    leaks = [p for p in files if KEY.encode() in p.read_bytes()]
    assert not leaks, f"API key found in {leaks}"


# (fault, transport retries it forces, extra paid replies it forces, attempt status it leaves)
FAULT_CASES = [
    ("429", 2, 0, None),
    ("500", 2, 0, None),
    ("drop", 2, 0, None),
    ("slow", 2, None, None),  # billed by the server after the client gave up: counted loosely
    ("length", 0, 2, "length"),
    ("malformed", 0, 2, "failed"),
]


@pytest.mark.parametrize("fault,transport,extra_paid,attempt_status", FAULT_CASES)
def test_every_fault_ends_with_a_record_for_every_song(tmp_path, fault, transport, extra_paid, attempt_status):
    with FakeOpenAI(faults=[fault, fault], slow_seconds=0.6, retry_after=0.02) as server:
        summary = run(server, tmp_path)
        paid = server.paid
        sent = [{k.lower(): v for k, v in r["headers"].items()}.get("authorization") for r in server.requests]
        assert f"Bearer {KEY}" in sent  # the key did travel, so finding it in no file below means something
    records = manifest(tmp_path)
    assert len(records) == SONGS and all(r["status"] in ("ok", "repaired") and r["midi"] for r in records)
    assert summary["transport_retries"] == transport
    retried = [a for r in records for a in r["attempts"] if a["retries"]]
    assert sum(a["retries"] for a in retried) == transport
    extra_attempts = 2 if attempt_status else 0
    assert summary["attempts"] == sum(len(r["attempts"]) for r in records) == SONGS + extra_attempts
    assert summary["requests"] == SONGS + transport + extra_attempts
    if attempt_status:
        assert summary["attempt_status"][attempt_status] == 2
        assert sum(len(r["attempts"]) == 2 for r in records) == 2  # the failed attempt, then a good one
    if extra_paid is not None:
        assert paid == SONGS + extra_paid
    assert summary["tokens"]["prompt"] > 0 and summary["cost_usd"] == pytest.approx(
        sum(r["cost"] for r in records)) and summary["cost_usd"] > 0
    assert len((tmp_path / "replies.jsonl").read_text().splitlines()) == SONGS + extra_attempts
    assert_no_secret(tmp_path)


def test_a_reply_cut_on_the_last_attempt_is_parsed_not_thrown_away(tmp_path):
    with FakeOpenAI(faults=lambda body, n: "length") as server:
        summary = run(server, tmp_path, "max_attempts=2")
        assert server.paid == SONGS * 2
    for r in manifest(tmp_path):
        first, last = r["attempts"]
        assert (first["status"], first["finish_reason"]) == ("length", "length")
        assert last["finish_reason"] == "length" and not last["reason"].startswith("length")
        # half a reply keeps its first tracks: the parser cuts the tail and names what is missing
        if r["status"] == "failed":
            assert r["reason"].split(":")[0] in ("missing_track", "empty_track")
        else:
            assert r["status"] == "repaired" and last["repairs"].get("truncated") and r["midi"]
    assert summary["attempts"] == SONGS * 2


def test_requests_that_keep_failing_use_up_retries_and_attempts(tmp_path):
    with FakeOpenAI(faults=lambda body, n: "500") as server:
        summary = run(server, tmp_path, "llm.max_retries=2", "max_attempts=2")
        assert server.paid == 0 and len(server.calls("POST", "/v1/chat/completions")) == SONGS * 2 * 3
    records = manifest(tmp_path)
    assert len(records) == SONGS and summary["valid"] == 0 and summary["requests"] == SONGS * 2 * 3
    for r in records:
        assert r["status"] == "failed" and r["midi"] is None and r["reason"].startswith("request_error")
        assert [(a["status"], a["retries"]) for a in r["attempts"]] == [("error", 2), ("error", 2)]
    assert not (tmp_path / "midi").exists() or not any((tmp_path / "midi").rglob("*.mid"))


def test_rerun_pays_nothing_and_cache_only_reparses_offline(tmp_path):
    with FakeOpenAI(faults=["length", "malformed"]) as server:
        first = run(server, tmp_path)
        first_records = manifest(tmp_path)
        paid = server.paid
        again = run(server, tmp_path)
        assert server.paid == paid == SONGS + 2
        gone = server.base_url
    assert again["requests"] == 0 and again["cache_hits"] == first["attempts"] == SONGS + 2
    uncached = lambda rs: [{**r, "attempts": [{**a, "cached": None} for a in r["attempts"]]} for r in rs]  # noqa: E731
    assert uncached(manifest(tmp_path)) == uncached(first_records)
    assert all(a["cached"] for r in manifest(tmp_path) for a in r["attempts"])
    assert again["cost_usd"] == pytest.approx(first["cost_usd"]) and again["cost_usd_this_run"] == 0
    # The server is gone: a cache-only run with a new policy and one more song per pair.
    summary = generate(compose_entry("generate", *overrides(gone, tmp_path), "cache_only=true", "parse.policy=strict",
                                     "n_per_combo=3"))
    records = manifest(tmp_path)
    assert summary["requests"] == 0 and len(records) == 12
    missing = [r for r in records if r["index"] == 2]
    assert all(r["status"] == "failed" and r["reason"].startswith("not_cached") for r in missing)
    assert all(r["status"] in ("ok", "repaired") for r in records if r["index"] < 2)


def first_ask_in_tuples(style: str):
    """A fault plan: the first request for a song of `style` is answered in the prompt's tuple form."""
    seen: set[str] = set()

    def plan(body: dict, n: int) -> str | None:
        key = json.dumps(body, sort_keys=True)
        first = key not in seen
        seen.add(key)
        return "tuples" if first and f"song in {style} style" in body["messages"][-1]["content"] else None
    return plan


def midi_files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in (out / "midi").rglob("*.mid")}


def test_one_set_of_paid_replies_gives_both_modes_offline(tmp_path):
    """cache_only=true re-derives the official-mode run from a default-mode run's cached replies, and
    the default-mode run from an official-mode run's, with zero requests: the reply cache is keyed
    by what was asked, never by the parse policy or the renderer."""
    official = ["preset=official"]
    with FakeOpenAI(faults=first_ask_in_tuples("Swing")) as server:  # 4 of the 8 songs: Pop/Jazz x Swing
        default_run = run(server, tmp_path / "default", f"cache_dir={tmp_path}/cache_a")
        paid_default = server.paid
    with FakeOpenAI(faults=first_ask_in_tuples("Swing")) as server:  # the same replies, asked afresh
        official_run = run(server, tmp_path / "official", f"cache_dir={tmp_path}/cache_b", *official)
        paid_official = server.paid
        gone = server.base_url
    # Paid: the lenient reader keeps the tuple replies; the official one asks again for those 4 songs.
    assert (paid_default, default_run["valid"], default_run["requests"]) == (SONGS, SONGS, SONGS)
    assert (paid_official, official_run["valid"], official_run["requests"]) == (SONGS + 4, SONGS, SONGS + 4)

    # Offline: each mode from the other's cache.
    official_again = generate(compose_entry("generate", *overrides(gone, tmp_path / "official_from_a"),
                                            f"cache_dir={tmp_path}/cache_a", "cache_only=true", *official))
    default_again = generate(compose_entry("generate", *overrides(gone, tmp_path / "default_from_b"),
                                           f"cache_dir={tmp_path}/cache_b", "cache_only=true"))
    for summary in (official_again, default_again):
        assert summary["requests"] == 0 and summary["cost_usd_this_run"] == 0
    assert official_again["setting"]["official_mode"] and not default_again["setting"]["official_mode"]
    # The default run paid for one reply per song: the 4 songs whose only reply is not strict JSON
    # would have cost the official code another attempt, which the cache does not hold.
    assert official_again["cache_hits"] == SONGS and official_again["failure_reasons"] == {"not_cached": 4}
    for record in manifest(tmp_path / "official_from_a"):
        if record["style"] == "Swing":
            first, second = record["attempts"]
            assert first["reason"].startswith("not_strict_json") and second["reason"].startswith("not_cached")
    kept = midi_files(tmp_path / "official_from_a")
    assert len(kept) == 4 and all(midi_files(tmp_path / "official")[name] == data for name, data in kept.items())
    # Every song of the official run's cache reads leniently at its first reply.
    assert default_again["valid"] == SONGS and default_again["cache_hits"] == SONGS
    assert midi_files(tmp_path / "default_from_b") == midi_files(tmp_path / "default")


def test_kill_minus_9_then_rerun_pays_each_song_once(tmp_path):
    """A run killed mid-flight and rerun: every song ends with a record, and the server billed no
    more than one reply per song, plus what the faults forced, plus what was in flight."""
    concurrency, n_per_combo = 4, 6  # 24 songs
    songs = 4 * n_per_combo
    faults = ["length", "429", "malformed", "500", "drop"]
    forced_paid = 2  # "length" and "malformed" are billed and ask again; the rest are not billed
    with FakeOpenAI(faults=faults, latency=0.1, retry_after=0.02) as server:
        cmd = [sys.executable, "-m", "llmusic.generate",
               *overrides(server.base_url, tmp_path, f"n_per_combo={n_per_combo}", f"llm.concurrency={concurrency}",
                          "llm.timeout=5")]
        env = {**os.environ, "OPENAI_API_KEY": KEY}
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while server.paid < songs // 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        paid_at_kill = server.paid
        assert 0 < paid_at_kill < songs, f"the kill must land mid-run, not after {paid_at_kill} replies"
        done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        paid = server.paid
    records = manifest(tmp_path)
    assert len(records) == songs and all(r["status"] in ("ok", "repaired") for r in records)
    assert paid <= songs + forced_paid + concurrency, f"{paid} paid, {paid_at_kill} before the kill"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["cache_hits"] >= paid_at_kill - concurrency
    cache = ReplyCache(tmp_path / "cache")
    assert len(cache) >= songs  # every entry a whole file; stray temporaries are not entries
    assert_no_secret(tmp_path)


# -- the parts, alone ---------------------------------------------------------------------------


def request(**kw) -> SongRequest:
    base = dict(genre="Pop", style="Swing", mood="happy", index=3, attempt=0,
                messages=({"role": "user", "content": "a song"},), temperature=0.72, top_p=0.9, max_tokens=1200)
    return SongRequest(**{**base, **kw})


def test_cache_key_covers_what_decides_a_reply():
    identity = {"name": "openai-gpt-4o", "model": "gpt-4o", "host": "127.0.0.1"}
    key = cache_key(identity, request())
    assert key == cache_key(dict(identity), request())
    variants = [request(attempt=1), request(index=4), request(style="Waltz"), request(temperature=0.76),
                request(max_tokens=600), request(response_format={"type": "json_object"}), request(seed=1),
                request(messages=({"role": "user", "content": "a sad song"},))]
    keys = {cache_key(identity, r) for r in variants} | {cache_key({**identity, "model": "gpt-4o-mini"}, request())}
    assert key not in keys and len(keys) == len(variants) + 1


def test_cache_survives_a_torn_last_line_and_damaged_entries(tmp_path):
    req = request()
    keys = [cache_key({"name": str(i)}, req) for i in range(4)]
    first = ReplyCache(tmp_path)
    assert first.get(keys[0]) is None and len(first) == 0
    first.put(keys[0], Completion("{}", "stop", 10, 20, "gpt-4o", {"id": "c1"}), req)
    first.put(keys[1], Completion("[]", "length", 1, 2), req)
    first.close()
    # Another writer killed mid-write, and a line damaged on disk.
    (tmp_path / "killed.jsonl").write_bytes(f"{keys[2]}\t{{\"completion\": {{\"text\": \"}}\n".encode()
                                            + f"{keys[3]}\t{{\"completion\": {{\"te".encode())
    second = ReplyCache(tmp_path)
    assert second.get(keys[0]) == Completion("{}", "stop", 10, 20, "gpt-4o", {"id": "c1"})
    assert second.get(keys[1]).finish_reason == "length"
    assert second.get(keys[2]) is None and second.get(keys[3]) is None  # damaged, torn: paid again
    second.put(keys[3], Completion("ok"), req)  # a second shard; the first stays as it was
    second.close()
    assert ReplyCache(tmp_path).get(keys[3]).text == "ok" and len(list(tmp_path.glob("*.jsonl"))) == 3


def test_price_table_matches_snapshots_and_halves_batch():
    prices = PriceTable({"gpt-4o": [2.5, 10.0], "gpt-4o-mini": [0.15, 0.6]})
    assert prices.cost("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(12.5)
    assert prices.cost("gpt-4o-2024-08-06", 1000, 0) == pytest.approx(0.0025)
    assert prices.cost("gpt-4o-mini-2024-07-18", 0, 1000) == pytest.approx(0.0006)
    assert prices.cost("gpt-4o", 1000, 1000, batch=True) == pytest.approx(0.0125 / 2)
    assert prices.cost("llama3", 1000, 1000) is None and prices.cost(None, 1, 1) is None


@pytest.mark.parametrize("headers,expected", [
    ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
    ({"retry-after": "2"}, 2.0),
    ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past: go now
    ({"retry-after": "soon"}, None),
    ({}, None),
    (None, None),
])
def test_retry_after_is_read_in_every_form(headers, expected):
    assert retry_after_s(headers) == expected


def test_backoff_grows_with_jitter_and_honours_the_server():
    backoff = Backoff(base_s=1.0, max_s=8.0, seed=0)
    for retry in range(6):
        assert 0 <= backoff.delay(retry) <= min(8.0, 2**retry)
    assert 3.0 <= backoff.delay(0, retry_after=3.0) <= 3.3
    assert 100 <= backoff.delay(0, retry_after=100) <= 110  # the server's wait beats our cap


class FakeClock:
    """Time that passes only when the code under test sleeps: rates are exact on any machine."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds + 1e-6  # a real sleep overshoots a little, so the awaited level is always reached


def test_token_bucket_holds_the_rate():
    async def take(n: int, amount: float) -> float:
        clock = FakeClock()
        bucket = TokenBucket(rate_per_min=6000, burst_s=0.1, clock=clock, sleep=clock.sleep)  # 100 per s, bursts of 10
        for _ in range(n):
            await bucket.acquire(amount)
        return clock.now

    assert asyncio.run(take(10, 1)) < 0.05  # the burst goes at once
    assert 0.18 <= asyncio.run(take(30, 1)) < 0.5  # 20 more at 100/s
    assert 0.18 <= asyncio.run(take(2, 20)) < 0.5  # larger than the burst: waits, never starves
