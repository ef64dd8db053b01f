"""The OpenAI chat backend alone, against the loopback server: what it sends, how it retries,
how many requests it keeps in flight, and where the key goes (the Authorization header only).

Backends are built from the real conf/llm/openai.yaml with Hydra's compose API.
"""

from __future__ import annotations

import asyncio
import json
import time

import openai
import pytest
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from llmusic.engine.plan import Sampling, plan_grid
from llmusic.llm.base import Completion
from llmusic.llm.openai_chat import OpenAIChat, RequestFailed
from tests.fake_openai import FakeOpenAI
from tests.helpers import compose_entry

KEY = "sk-test-chat-secret"


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def compose_generate(*overrides: str):
    return compose_entry("generate", "llm=openai", *overrides)


def backend_and_requests(server: FakeOpenAI, *overrides: str, n: int = 4) -> tuple[OpenAIChat, list]:
    cfg = compose_generate(f"llm.base_url={server.base_url}", "llm.backoff_base_s=0.01", "llm.backoff_max_s=0.05",
                           *overrides)
    backend = instantiate(cfg.llm)
    constraints = instantiate(cfg.constraints)
    songs = plan_grid(["Jazz"], ["Swing"], list(cfg.taxonomy.moods), n, instantiate(cfg.prompt), constraints,
                      instantiate(cfg.sampling), cfg.seed)
    response_format = {"type": "json_schema", "json_schema": constraints.json_schema()} if backend.structured else None
    return backend, [s.request(0, response_format, None) for s in songs]


def collect(backend: OpenAIChat, requests: list) -> dict:
    async def go() -> dict:
        try:
            return {r.index: out async for r, out in backend.complete_many(requests)}
        finally:
            await backend.aclose()

    return asyncio.run(go())


def chat_bodies(server: FakeOpenAI) -> list[dict]:
    return [r["body"] for r in server.calls("POST", "/v1/chat/completions")]


@pytest.mark.parametrize("structured", [False, True])
def test_request_body_carries_the_paper_sampling(structured):
    with FakeOpenAI() as server:
        backend, requests = backend_and_requests(server, f"llm.structured={structured}", "llm.model=gpt-4o-mini")
        results = collect(backend, requests)
        bodies = chat_bodies(server)
    assert sorted(results) == [0, 1, 2, 3] and all(isinstance(c, Completion) for c in results.values())
    assert sorted(b["temperature"] for b in bodies) == [0.6, 0.64, 0.68, 0.72]
    for body in bodies:
        assert body["model"] == "gpt-4o-mini" and body["top_p"] == 0.9 and body["max_tokens"] == 1200
        assert [m["role"] for m in body["messages"]] == ["system", "user"] and "seed" not in body
        if structured:
            assert body["response_format"]["type"] == "json_schema"
            assert body["response_format"]["json_schema"]["name"] == "llmusic_song_paper"
            schema = body["response_format"]["json_schema"]["schema"]
            assert schema["required"] == ["melody", "chords", "bass", "rhythm"]
        else:
            assert "response_format" not in body
    completion = results[0]
    assert json.loads(completion.text).keys() == {"melody", "chords", "bass", "rhythm"}
    assert completion.prompt_tokens > 0 and completion.completion_tokens > 0 and completion.model == "gpt-4o-mini"
    assert completion.extra["retries"] == [] and completion.extra["id"].startswith("chatcmpl")


def test_key_goes_only_into_the_authorization_header():
    with FakeOpenAI() as server:
        backend, requests = backend_and_requests(server, n=1)
        identity = backend.identity()
        collect(backend, requests)
        (call,) = server.calls("POST", "/v1/chat/completions")
    headers = {k.lower(): v for k, v in call["headers"].items()}
    assert headers["authorization"] == f"Bearer {KEY}" and headers["x-stainless-retry-count"] == "0"
    assert identity == {"name": "openai-gpt-4o", "model": "gpt-4o", "host": "127.0.0.1"}  # no port, no key
    assert KEY not in json.dumps(call["body"])


def test_missing_key_is_a_clear_error_for_openai_but_not_for_a_local_server(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(InstantiationException, match="set the environment variable OPENAI_API_KEY"):
        instantiate(compose_generate().llm)
    with FakeOpenAI() as server:
        backend, requests = backend_and_requests(server, n=1)
        assert isinstance(collect(backend, requests)[0], Completion)


def test_retries_are_ours_counted_and_honour_retry_after():
    with FakeOpenAI(faults=["429", "500", "drop"], retry_after=0.3) as server:
        backend, requests = backend_and_requests(server, "llm.concurrency=1", n=1)
        start = time.perf_counter()
        (completion,) = collect(backend, requests).values()
        elapsed = time.perf_counter() - start
        assert len(chat_bodies(server)) == 4 and server.paid == 1
    assert [(r["error"], r["status"]) for r in completion.extra["retries"]] == [
        ("RateLimitError", 429), ("InternalServerError", 500), ("APIConnectionError", None)]
    assert 0.3 <= completion.extra["retries"][0]["wait_s"] <= 0.33 and elapsed >= 0.3


def test_a_timeout_is_retried_and_exhausted_retries_are_reported():
    with FakeOpenAI(faults=["slow", "slow", "slow"], slow_seconds=1.0) as server:
        backend, requests = backend_and_requests(server, "llm.timeout=0.2", "llm.max_retries=2", "llm.concurrency=1",
                                                 n=2)
        results = collect(backend, requests)
    failed = [r for r in results.values() if isinstance(r, RequestFailed)]
    assert len(failed) == 1 and isinstance(results[1], Completion)
    assert [r["error"] for r in failed[0].retries] == ["APITimeoutError", "APITimeoutError"]
    assert "APITimeoutError" in str(failed[0]) and "after 2 retries" in str(failed[0])


@pytest.mark.parametrize("concurrency", [2, 4])
def test_concurrency_bounds_and_fills_the_requests_in_flight(concurrency):
    latency, n = 0.1, 12
    with FakeOpenAI(latency=latency) as server:
        backend, requests = backend_and_requests(server, f"llm.concurrency={concurrency}", n=n)
        start = time.perf_counter()
        results = collect(backend, requests)
        elapsed = time.perf_counter() - start
    assert len(results) == n
    waves = n / concurrency  # the server answers each request after `latency`
    assert waves * latency <= elapsed  # never more than `concurrency` at once...
    assert server.max_in_flight == concurrency  # ...and that many (a wall-clock bound would flake when busy)


def test_requests_per_minute_limit_spaces_requests():
    with FakeOpenAI() as server:
        backend, requests = backend_and_requests(server, "llm.rpm=600", "llm.concurrency=8", n=8)
        backend.limiter.requests.capacity = backend.limiter.requests.level = 1.0  # no burst: 10 per second
        start = time.perf_counter()
        collect(backend, requests)
        elapsed = time.perf_counter() - start
    assert elapsed >= 0.65  # the first at once, then one every 0.1 s


def test_sampling_schedule_is_the_papers():
    sampling = Sampling()
    assert [sampling.temperature(i) for i in range(12)] == [
        0.6, 0.64, 0.68, 0.72, 0.76, 0.8, 0.84, 0.88, 0.92, 0.96, 0.6, 0.64]


def test_a_refused_key_stops_the_run_at_once_without_retries(tmp_path):
    """401 would fail every request alike: the run stops with the error instead of paying for retries."""
    from llmusic.generate import generate

    out = tmp_path / "run"
    cfg = compose_generate("llm.concurrency=2", "n_per_combo=3", "taxonomy.genres=[Jazz]",
                           "taxonomy.styles=[Swing]", f"out_dir={out}", f"cache_dir={out}/cache", "progress=false")
    with FakeOpenAI(faults=lambda body, n: "401") as server:
        cfg.llm.base_url = server.base_url
        with pytest.raises(openai.AuthenticationError):
            generate(cfg)
        assert server.paid == 0
        assert len(server.calls("POST", "/v1/chat/completions")) <= 2  # what was in flight; nothing retried
    leaks = [p for p in out.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert not leaks
