"""A real LLM's replies to the paper's prompt, replayed: SmolLM2-135M-Instruct, free and constrained.

tests/data/smollm2/ holds every reply the two runs of its README got (one line per attempt, with
the run's own verdict). Replaying them checks the parser and the engine on what a real model
writes, not on replies made up for a test: each line must get the verdict the run gave it, each
failure a stable reason key, and each constrained reply the reply schema.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter

import jsonschema
import pytest
from hydra.utils import instantiate

from llmusic.config import REPO_ROOT, compose_config
from llmusic.generate import generate
from llmusic.llm.replay import recording
from llmusic.parse import parse_reply
from llmusic.parse.reasons import FAILURE_KEYS
from llmusic.run_dir import GenerateRun

DATA = REPO_ROOT / "tests" / "data" / "smollm2"
VALID = ("ok", "repaired")


def compose_replay(path, out_dir):
    return compose_config("generate", ["llm=replay", f"llm.path={path}", f"out_dir={out_dir}", "progress=false"])


@pytest.fixture(scope="module")
def constraints():
    return instantiate(compose_config("generate").constraints)


@pytest.fixture(scope="module")
def replays(tmp_path_factory):
    """decoding -> (recorded lines, the replay's manifest records, its summary, its out_dir), replayed once."""
    done = {}

    def replay(decoding: str):
        if decoding not in done:
            path = DATA / f"{decoding}.jsonl.gz"
            lines = [json.loads(line) for line in gzip.decompress(path.read_bytes()).decode().splitlines()]
            out = tmp_path_factory.mktemp(decoding)
            summary = generate(compose_replay(path, out))
            done[decoding] = lines, list(GenerateRun(out).records()), summary, out
        return done[decoding]

    return replay


DECODINGS = pytest.mark.parametrize("decoding", ["free", "structured"])


@DECODINGS
def test_a_replay_gives_every_reply_the_verdict_the_run_gave_it(replays, decoding, constraints):
    lines, records, summary, _ = replays(decoding)
    assert len(records) == len(lines) == summary["songs"] > 0
    for line, record in zip(lines, records):
        assert (record["genre"], record["style"], record["mood"]) == (line["genre"], line["style"], line["mood"])
        assert len(record["attempts"]) == 1  # a recording holds one reply per line
        if line["status"] == "length":
            # The run asked again instead of parsing a reply cut at max_tokens; a replay has no
            # second attempt, so it parses what was cut, as a run's last attempt does.
            assert line["finish_reason"] == "length"
            assert record["status"] == parse_reply(line["response"], constraints, "clamp").status
        else:
            assert (record["status"], record["reason"]) == (line["status"], line["reason"])
        assert (record["midi"] is not None) == (record["status"] in VALID)
        assert record["usage"]["completion_tokens"] == line["usage"]["completion_tokens"] <= line["max_tokens"]


@DECODINGS
def test_every_failure_has_a_stable_reason_key(replays, decoding):
    _, records, summary, _ = replays(decoding)
    failed = [r for r in records if r["status"] not in VALID]
    keys = Counter(r["reason"].split(":", 1)[0] for r in failed)
    assert set(keys) <= set(FAILURE_KEYS)
    assert keys == Counter(summary["failure_reasons"]) and sum(keys.values()) == len(records) - summary["valid"]


def test_free_replies_fail_in_several_real_ways(replays):
    """SmolLM2 does not write the paper's JSON unconstrained: Python code, prose around JSON, keys
    nested without end. The parser names each way; none crashes the run."""
    lines, records, summary, _ = replays("free")
    assert summary["valid_rate"] < 0.5
    assert len(summary["failure_reasons"]) >= 3  # the recording holds several distinct failure modes
    assert any("```" in line["response"] for line in lines)  # code fences, parsed through


def test_constrained_replies_that_stop_are_schema_valid_songs(replays, constraints):
    lines, records, _, _ = replays("structured")
    schema = constraints.json_schema()["schema"]
    stopped = [(line, record) for line, record in zip(lines, records) if line["finish_reason"] == "stop"]
    assert stopped
    for line, record in stopped:
        jsonschema.validate(json.loads(line["response"]), schema)
        assert record["status"] in VALID  # out-of-range numbers are clamped, the song is kept
    for line in lines:  # a reply cut at max_tokens is still the start of the schema's object
        assert line["response"].startswith('{"melody": [[')


@DECODINGS
def test_a_replay_run_records_back_to_the_same_replies(replays, decoding):
    lines, _, _, out = replays(decoding)
    again = recording(out)
    keys = ("genre", "style", "mood", "response", "finish_reason", "temperature", "top_p", "max_tokens", "messages")
    assert [{k: x[k] for k in keys} for x in again] == [{k: x[k] for k in keys} for x in lines]
