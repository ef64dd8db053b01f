"""The Batch API backend against the loopback fake: matching, errors, batch endings, crash resume."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from hydra.utils import instantiate

from llmusic.config import REPO_ROOT, compose_config
from llmusic.generate import generate
from llmusic.llm.base import Completion, SongRequest
from llmusic.llm.openai_batch import BatchRequestError, OpenAIBatchBackend, custom_id
from tests.fake_openai import FakeOpenAI, body_seed, song_reply
from tests.helpers import compose_entry

SECRET = "sk-test-SECRET-do-not-write-me"


def compose_group(group: str, name: str, overrides=()):
    return compose_config(f"{group}/{name}", overrides)


@pytest.fixture(scope="module")
def requests() -> list[SongRequest]:
    """Real prompts: the paper's template and constraint set over a few genre x style pairs."""
    template = instantiate(compose_group("prompt", "paper").prompt)
    constraints = instantiate(compose_group("constraints", "paper").constraints)
    taxonomy = compose_group("taxonomy", "paper").taxonomy
    pairs = itertools.product(taxonomy.genres[:3], taxonomy.styles[:2])
    return [
        SongRequest(genre=g, style=s, mood="happy", index=0, attempt=0,
                    messages=tuple(template.messages(constraints, g, s, "happy")),
                    temperature=1.0, top_p=1.0, max_tokens=4096,
                    response_format={"type": "json_schema", "json_schema": constraints.json_schema()})
        for g, s in pairs
    ]


@pytest.fixture
def make_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_OPENAI_KEY", SECRET)

    def make(server: FakeOpenAI, *overrides: str) -> OpenAIBatchBackend:
        cfg = compose_group("llm", "openai_batch", [
            f"+out_dir={tmp_path}", f"llm.base_url={server.base_url}", "llm.api_key_env=TEST_OPENAI_KEY",
            "llm.poll_interval=0.005", "llm.progress=false", "llm.max_retries=0", *overrides,
        ])
        return instantiate(cfg.llm)

    return make


def collect(backend, reqs) -> list[tuple[SongRequest, Completion | BaseException]]:
    async def run():
        return [pair async for pair in backend.complete_many(reqs)]

    return asyncio.run(run())


def expected_text(backend: OpenAIBatchBackend, request: SongRequest) -> str:
    return song_reply(body_seed(backend.request_line(custom_id(request), request)["body"]))


def uploaded_lines(server: FakeOpenAI) -> list[dict]:
    (file,) = [f for f in server.files.values() if f["purpose"] == "batch"]
    return [json.loads(line) for line in file["content"].decode().splitlines()]


def test_config_builds_the_backend(make_backend, tmp_path):
    with FakeOpenAI() as server:
        backend = make_backend(server)
    assert backend.state_dir == tmp_path / "batch_state"
    assert backend.paid and backend.is_llm and not backend.structured
    assert backend.identity() == {"name": "openai_batch", "model": "gpt-4o", "host": "127.0.0.1"}


def test_every_request_gets_its_own_completion(make_backend, requests):
    with FakeOpenAI(batch_polls=3) as server:
        backend = make_backend(server)
        results = collect(backend, requests)
        lines = uploaded_lines(server)
    assert len(server.calls("POST", "/v1/batches")) == 1 and len(server.calls("POST", "/v1/files")) == 1
    assert server.calls("POST", "/v1/batches")[0]["body"]["completion_window"] == "24h"
    assert sorted(r.song_id for r, _ in results) == sorted(r.song_id for r in requests)
    for request, completion in results:
        assert isinstance(completion, Completion)
        # The fake shuffles its output file: the right song proves matching by custom_id.
        assert completion.text == expected_text(backend, request)
        assert completion.finish_reason == "stop" and completion.model == "gpt-4o"
        assert completion.prompt_tokens > 0 and completion.completion_tokens > 0
        assert completion.extra["batch"] is True and completion.extra["batch_id"].startswith("batch")
        assert completion.extra["custom_id"] == custom_id(request)
    assert len({line["custom_id"] for line in lines}) == len(requests)
    for line, request in zip(lines, requests):
        assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
        assert line["body"]["messages"] == list(request.messages)
        assert line["body"]["model"] == "gpt-4o" and line["body"]["max_tokens"] == 4096
        assert line["body"]["temperature"] == 1.0 and line["body"]["top_p"] == 1.0
        assert line["body"]["response_format"] == request.response_format
        assert "seed" not in line["body"]


def test_failed_lines_come_back_as_errors(make_backend, requests):
    faults = [None, "500", "429", "drop", "length", "malformed"]
    with FakeOpenAI(faults, batch_polls=1) as server:
        backend = make_backend(server)
        results = dict((r.song_id, c) for r, c in collect(backend, requests))
    outcome = [results[r.song_id] for r in requests]
    assert outcome[0].text == expected_text(backend, requests[0])
    assert isinstance(outcome[1], BatchRequestError) and outcome[1].status_code == 500
    assert isinstance(outcome[2], BatchRequestError) and outcome[2].status_code == 429
    assert "rate_limit_exceeded" == outcome[2].code and "HTTP 429" in str(outcome[2])
    assert isinstance(outcome[3], BatchRequestError) and outcome[3].code == "request_timeout"
    assert outcome[4].finish_reason == "length" and expected_text(backend, requests[4]).startswith(outcome[4].text)
    assert outcome[5].finish_reason == "stop" and not outcome[5].text.startswith("{")


@pytest.mark.parametrize("ending, answered", [("expired", 3), ("failed", 0)])
def test_a_batch_that_ends_early_errs_the_unfinished_requests(make_backend, requests, ending, answered):
    with FakeOpenAI(batch_polls=1, batch_outcome=ending) as server:
        results = collect(make_backend(server), requests)
    done = [c for _, c in results if isinstance(c, Completion)]
    errors = [c for _, c in results if isinstance(c, BatchRequestError)]
    assert len(results) == len(requests) and len(done) == answered
    assert len(errors) == len(requests) - answered
    if ending == "expired":
        assert all(e.code == "batch_expired" for e in errors)
    else:
        assert all(f"ended '{ending}'" in str(e) and "told to fail" in str(e) for e in errors)


def test_identical_requests_are_asked_once(make_backend, requests):
    with FakeOpenAI(batch_polls=1) as server:
        results = collect(make_backend(server), [requests[0], requests[0], requests[1]])
        assert len(uploaded_lines(server)) == 2
    assert len(results) == 3 and results[0][1].text == results[1][1].text


def test_an_interrupted_run_resumes_the_same_batch(make_backend, requests, tmp_path):
    with FakeOpenAI(batch_polls=10_000) as server:

        async def interrupted():
            task = asyncio.create_task(anext(aiter(make_backend(server).complete_many(requests))))
            while not server.calls("GET", r"/v1/batches/.+"):  # the batch exists and was polled once
                await asyncio.sleep(0.005)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(interrupted())
        (state_file,) = (tmp_path / "batch_state").glob("*.json")
        state = json.loads(state_file.read_text())
        assert state["batch_id"] in server.batches and state["handed_over"] == []
        assert set(state["requests"]) == {custom_id(r) for r in requests}

        server.batch_polls = server.batches[state["batch_id"]]["_retrieves"] + 2
        # The cache answered the first request before the crash: the rerun asks for the rest only.
        rerun = make_backend(server)
        results = collect(rerun, requests[1:])
        assert len(server.calls("POST", "/v1/batches")) == 1 and len(server.calls("POST", "/v1/files")) == 1
        assert [c.text for _, c in results] == [expected_text(rerun, r) for r in requests[1:]]
        assert {c.extra["batch_id"] for _, c in results} == {state["batch_id"]}

        # The last request is still unhanded in that batch: served from the saved results, no network.
        downloads = len(server.calls("GET", r"/v1/files/.+/content"))
        (last,) = collect(make_backend(server), requests[:1])
        assert last[1].text == expected_text(rerun, requests[0])
        assert len(server.calls("GET", r"/v1/files/.+/content")) == downloads
        assert len(server.calls("POST", "/v1/batches")) == 1

        # Everything was handed over: asking again (a retry) is a new batch, not a replay.
        collect(make_backend(server), requests[:1])
        assert len(server.calls("POST", "/v1/batches")) == 2


@pytest.mark.parametrize("damage", [b'{"key": "cut sh', b"\xff\xfe not text", b"[1, 2]", b'{"requests": {}}'])
def test_a_damaged_state_file_is_named_and_skipped(make_backend, requests, tmp_path, caplog, damage):
    """A state file cut short, not UTF-8, or not a batch's state (valid JSON of another shape)."""
    (tmp_path / "batch_state").mkdir()
    (tmp_path / "batch_state" / "damaged.json").write_bytes(damage)
    with FakeOpenAI(batch_polls=1) as server, caplog.at_level("WARNING"):
        backend = make_backend(server)
        results = collect(backend, requests[:2])
    assert [c.text for _, c in results] == [expected_text(backend, r) for r in requests[:2]]
    assert f"state file {tmp_path / 'batch_state' / 'damaged.json'}" in caplog.text


def test_service_failure_while_polling_yields_errors_and_keeps_the_batch(make_backend, requests, tmp_path):
    with FakeOpenAI(batch_polls=10_000) as server:
        backend = make_backend(server)
        batch_id = None

        async def run_then_kill_server():
            nonlocal batch_id
            gen = backend.complete_many(requests)
            first = asyncio.create_task(anext(gen))
            while not any(b["_retrieves"] for b in server.batches.values()):  # polled once
                await asyncio.sleep(0.005)
            batch_id = next(iter(server.batches))
            server.batches.pop(batch_id)  # the service forgot it: every poll from now on is a 404
            return [await first] + [pair async for pair in gen]

        results = asyncio.run(run_then_kill_server())
    assert len(results) == len(requests)
    assert all(type(c).__name__ == "NotFoundError" for _, c in results)
    (state_file,) = (tmp_path / "batch_state").glob("*.json")
    assert json.loads(state_file.read_text())["batch_id"] == batch_id  # still there to resume by hand


def test_the_api_key_is_never_written(make_backend, requests, tmp_path):
    with FakeOpenAI(batch_polls=1) as server:
        backend = make_backend(server)
        collect(backend, requests)
        assert server.calls("POST", "/v1/batches")[0]["headers"]["authorization"] == f"Bearer {SECRET}"
    files = [p for p in (tmp_path / "batch_state").rglob("*") if p.is_file()]
    assert len(files) == 2  # the state and the downloaded results
    for path in files:
        assert SECRET not in path.read_text()
    assert SECRET not in json.dumps(backend.identity()) and SECRET not in json.dumps(vars(backend), default=str)


def test_missing_api_key_is_a_clear_error(make_backend, requests, monkeypatch):
    with FakeOpenAI() as server:
        backend = make_backend(server)
        monkeypatch.delenv("TEST_OPENAI_KEY")
        with pytest.raises(RuntimeError, match="TEST_OPENAI_KEY"):
            collect(backend, requests)
        assert server.requests == []


def generate_overrides(server: FakeOpenAI, out) -> list[str]:
    return ["llm=openai_batch", f"llm.base_url={server.base_url}", "llm.api_key_env=TEST_OPENAI_KEY",
            "llm.poll_interval=0.01", "llm.progress=false", f"out_dir={out}", f"cache_dir={out}/cache",
            "progress=false", "n_per_combo=2", "taxonomy.genres=[Pop,Jazz]", "taxonomy.styles=[Swing,Drone]"]


def test_generate_killed_while_a_batch_runs_resumes_that_batch(tmp_path, monkeypatch):
    """The engine, kill -9 during polling, then the same command again: one upload, one batch,
    each of the 8 songs paid once, and the key in no file of the run."""
    monkeypatch.setenv("TEST_OPENAI_KEY", SECRET)
    with FakeOpenAI(batch_polls=10**6) as server:
        cmd = [sys.executable, "-m", "llmusic.generate", *generate_overrides(server, tmp_path)]
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env={**os.environ, "TEST_OPENAI_KEY": SECRET},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not any(b["_retrieves"] for b in server.batches.values()) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        (batch,) = server.batches.values()
        server.batch_polls = batch["_retrieves"] + 1  # the service finishes it while nobody watches
        generate(compose_entry("generate", *generate_overrides(server, tmp_path)))
        assert len(server.calls("POST", "/v1/files")) == 1 and len(server.calls("POST", "/v1/batches")) == 1
        assert server.paid == 8
    records = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert len(records) == 8 and all(r["status"] == "ok" for r in records)
    leaks = [p for p in tmp_path.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert not leaks, f"API key found in {leaks}"
