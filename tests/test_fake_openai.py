"""The fake OpenAI server, seen through the real `openai` SDK: every fault as a client meets it."""

from __future__ import annotations

import asyncio
import json
import time

import openai
import pytest

from tests.fake_openai import MALFORMED_TEXT, FakeOpenAI, body_seed, song_reply
from tests.helpers import constraint_set

MESSAGES = [{"role": "system", "content": "You are a composer."}, {"role": "user", "content": "A jazz song."}]


@pytest.fixture(scope="module")
def paper_constraints():
    return constraint_set("paper")


def client(server: FakeOpenAI, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test-secret", **{"max_retries": 0, **kw})


def ask(c: openai.OpenAI, **kw):
    return c.chat.completions.create(model="gpt-fake", messages=MESSAGES, max_tokens=300, **kw)


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_song_reply_obeys_the_paper_constraints(seed, paper_constraints):
    cs = paper_constraints
    song = json.loads(song_reply(seed))
    assert song_reply(seed) == song_reply(seed)
    assert {name: len(ev) for name, ev in song.items()} == cs.event_counts
    for name, events in song.items():
        for pitch, duration, velocity, start in events:
            assert cs.pitch_range[0] <= pitch <= cs.pitch_range[1]
            assert cs.duration_range[0] <= duration <= cs.duration_range[1]
            assert cs.velocity_range[0] <= velocity <= cs.velocity_range[1]
            assert 0 <= start <= cs.time_span_ticks
            if name == "rhythm":
                assert pitch in cs.drum_pitches
    assert song_reply(0) != song_reply(1)


def test_valid_reply_is_a_full_chat_completion():
    with FakeOpenAI() as server:
        r = ask(client(server))
        again = ask(client(server))
    assert r.object == "chat.completion" and r.model == "gpt-fake" and r.id.startswith("chatcmpl")
    choice = r.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert set(json.loads(choice.message.content)) == {"melody", "chords", "bass", "rhythm"}
    assert choice.message.content == again.choices[0].message.content  # same body, same song
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert server.paid == 2
    logged = server.calls("POST", "/v1/chat/completions")
    assert len(logged) == 2
    assert logged[0]["body"]["messages"] == MESSAGES and logged[0]["body"]["max_tokens"] == 300
    assert logged[0]["headers"]["authorization"] == "Bearer sk-test-secret"


@pytest.mark.parametrize(
    "fault, error",
    [
        ("429", openai.RateLimitError),
        ("500", openai.InternalServerError),
        ("drop", openai.APIConnectionError),
        ("slow", openai.APITimeoutError),
    ],
)
def test_failing_faults_raise_what_the_sdk_raises(fault, error):
    with FakeOpenAI([fault], slow_seconds=1.0) as server:
        with pytest.raises(error):
            ask(client(server, timeout=0.3))
        assert server.paid == 0
        ok = ask(client(server))  # the fault is consumed: the next request succeeds
        assert ok.choices[0].finish_reason == "stop"
        assert len(server.calls("POST", "/v1/chat/completions")) == 2


def test_rate_limit_sends_retry_after_and_the_sdk_honours_it():
    with FakeOpenAI(["429", "429", "429"], retry_after=0.1) as server:
        with pytest.raises(openai.RateLimitError) as info:
            ask(client(server))
        assert float(info.value.response.headers["Retry-After"]) == pytest.approx(0.1)
        t0 = time.perf_counter()
        r = ask(client(server, max_retries=2))
        elapsed = time.perf_counter() - t0
    assert r.choices[0].finish_reason == "stop"
    assert len(server.calls("POST", "/v1/chat/completions")) == 4
    assert elapsed >= 0.2  # two waits of Retry-After, not the SDK's default backoff


def test_length_is_a_truncated_song_and_malformed_is_prose():
    with FakeOpenAI(["length", "malformed"]) as server:
        cut = ask(client(server))
        prose = ask(client(server))
        assert server.paid == 2  # both are billed 200 replies
        full = song_reply(body_seed(server.calls("POST", "/v1/chat/completions")[0]["body"]))
    text = cut.choices[0].message.content
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 300
    assert full.startswith(text) and 0 < len(text) < len(full)
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert prose.choices[0].finish_reason == "stop" and prose.choices[0].message.content == MALFORMED_TEXT
    with pytest.raises(json.JSONDecodeError):
        json.loads(prose.choices[0].message.content)


def test_fault_plan_callable_decides_per_request():
    seen = []

    def plan(body, n):
        seen.append(n)
        return "500" if body["messages"][-1]["content"] == "fail me" else None

    with FakeOpenAI(plan) as server:
        c = client(server)
        with pytest.raises(openai.InternalServerError):
            c.chat.completions.create(model="m", messages=[{"role": "user", "content": "fail me"}])
        assert ask(c).choices[0].finish_reason == "stop"
    assert seen == [0, 1] and server.paid == 1


def test_unknown_fault_is_rejected():
    with FakeOpenAI() as server, pytest.raises(ValueError, match="unknown fault"):
        server.fault("teapot")


def test_concurrent_requests_are_counted_exactly():
    n = 40

    async def run(server):
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=3) as c:
            return await asyncio.gather(*(
                c.chat.completions.create(model="m", messages=[{"role": "user", "content": str(i)}])
                for i in range(n)
            ))

    with FakeOpenAI(["429"] * 5, retry_after=0.01, record=False) as server:
        replies = asyncio.run(run(server))
    assert all(r.choices[0].finish_reason == "stop" for r in replies)
    assert server.paid == n and server.requests == []


def batch_lines(n: int, *, dup: bool = False) -> bytes:
    rows = [
        {"custom_id": f"req-{0 if dup else i}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "gpt-fake", "messages": [{"role": "user", "content": f"song {i}"}], "max_tokens": 50}}
        for i in range(n)
    ]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def run_batch(server: FakeOpenAI, content: bytes):
    c = client(server)
    f = c.files.create(file=("requests.jsonl", content), purpose="batch")
    batch = c.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    statuses = [batch.status]
    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        batch = c.batches.retrieve(batch.id)
        statuses.append(batch.status)
    rows = {}
    for file_id in (batch.output_file_id, batch.error_file_id):
        if file_id:
            for line in c.files.content(file_id).text.splitlines():
                row = json.loads(line)
                rows[row["custom_id"]] = row
    return batch, statuses, rows


def test_batch_runs_through_its_states_and_splits_output_and_errors():
    with FakeOpenAI([None, "500", "length", "429", "drop"], batch_polls=3) as server:
        batch, statuses, rows = run_batch(server, batch_lines(6))
        upload = server.calls("POST", "/v1/files")[0]["body"]
    assert statuses == ["validating", "validating", "in_progress", "in_progress", "completed"]
    assert upload == {"purpose": "batch", "filename": "requests.jsonl", "bytes": len(batch_lines(6))}
    assert batch.request_counts.total == 6 and batch.request_counts.completed == 3
    assert batch.request_counts.failed == 3
    assert set(rows) == {f"req-{i}" for i in range(6)}
    ok = rows["req-0"]["response"]
    assert ok["status_code"] == 200 and ok["body"]["choices"][0]["finish_reason"] == "stop"
    assert rows["req-2"]["response"]["body"]["choices"][0]["finish_reason"] == "length"
    assert rows["req-1"]["response"]["status_code"] == 500 and rows["req-3"]["response"]["status_code"] == 429
    assert rows["req-4"]["response"] is None and rows["req-4"]["error"]["code"] == "request_timeout"
    assert rows["req-5"]["response"]["status_code"] == 200
    assert server.paid == 3


def test_batch_expired_keeps_the_finished_half():
    with FakeOpenAI(batch_polls=1, batch_outcome="expired") as server:
        batch, _, rows = run_batch(server, batch_lines(4))
    assert batch.status == "expired" and batch.request_counts.completed == 2
    assert [rows[f"req-{i}"]["error"]["code"] for i in (2, 3)] == ["batch_expired", "batch_expired"]


def test_batch_with_a_bad_input_file_fails_validation():
    with FakeOpenAI(batch_polls=0) as server:
        batch, _, rows = run_batch(server, batch_lines(3, dup=True))
    assert batch.status == "failed" and rows == {}
    assert "duplicate custom_id" in batch.errors.data[0].message


def test_batch_cancel():
    with FakeOpenAI(batch_polls=5) as server:
        c = client(server)
        f = c.files.create(file=("r.jsonl", batch_lines(2)), purpose="batch")
        batch = c.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
        assert c.batches.cancel(batch.id).status == "cancelling"
        final = c.batches.retrieve(batch.id)
    assert final.status == "cancelled" and final.output_file_id is None and server.paid == 0


def test_unknown_routes_are_404():
    with FakeOpenAI() as server:
        with pytest.raises(openai.NotFoundError):
            client(server).batches.retrieve("batch-missing")
        with pytest.raises(openai.NotFoundError):
            client(server).files.content("file-missing")
