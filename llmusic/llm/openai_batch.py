"""The OpenAI Batch API backend: one batch per call, half the price, replies within 24 hours.

A call uploads one JSONL file of chat-completion requests, creates one batch, polls it, downloads
its output and error files and yields every request's completion or error. A batch can run for
hours, so it must survive the process that started it: before polling, a state file under
`state_dir` records the batch id and the request set (written atomically, never holding the API
key). A rerun asking for the same requests - or for the part of them its cache still lacks -
finds that file and resumes polling the SAME batch instead of paying for a new one. The
downloaded results are kept beside it, so a crash while handing them over costs no download.
(One window stays: a kill in the instant between the service creating the batch and the state
recording its id leaves that batch unpolled; its id is in the log line "created batch".)
A state is retired once every one of its results has been handed over; asking again for a request
already handed over (say, to retry an error) starts a new batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit

import openai
from tqdm.auto import tqdm

from llmusic.files import DamagedFile, read_json, write_text_atomic
from llmusic.llm.base import Backend, Completion, SongRequest
from llmusic.secret_guard import quiet_http_logs

log = logging.getLogger(__name__)

ENDPOINT = "/v1/chat/completions"
TERMINAL = ("completed", "failed", "expired", "cancelled")
MAX_BATCH_REQUESTS = 50_000  # the service's limit per batch


class BatchRequestError(RuntimeError):
    """A request the batch did not answer with a completion: its HTTP error, or the batch ended."""

    def __init__(self, message: str, *, batch_id: str, custom_id: str,
                 status_code: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.batch_id = batch_id
        self.custom_id = custom_id
        self.status_code = status_code
        self.code = code


def custom_id(request: SongRequest) -> str:
    """Stable across runs and unique per distinct request (song, attempt, prompt, sampling)."""
    blob = json.dumps(asdict(request), sort_keys=True, ensure_ascii=False)
    return "llmusic-" + hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:32]  # any text


class OpenAIBatchBackend(Backend):
    """Chat completions through the Batch API (`/v1/batches`), resumable after a crash."""

    paid = True

    def __init__(
        self,
        model: str = "gpt-4o",
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        state_dir: str | os.PathLike = "batch_state",
        poll_interval: float = 60.0,
        completion_window: str = "24h",
        structured: bool = False,
        max_tokens_param: str = "max_tokens",
        timeout: float = 120.0,
        max_retries: int = 5,
        progress: bool = True,
        name: str = "openai_batch",
    ) -> None:
        self.name = name
        self.model = model
        self.base_url = base_url
        quiet_http_logs()  # the SDK's request log names every URL; keys and credentials are redacted
        self.api_key_env = api_key_env  # the variable's name; the key itself is read per call, never kept
        self.state_dir = Path(state_dir)
        self.poll_interval = float(poll_interval)
        self.completion_window = completion_window
        self.structured = structured
        self.max_tokens_param = max_tokens_param  # newer models take "max_completion_tokens"
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.progress = progress

    def identity(self) -> dict:
        return {"name": self.name, "model": self.model,
                "host": urlsplit(self.base_url or "https://api.openai.com/v1").hostname}

    def request_line(self, cid: str, request: SongRequest) -> dict:
        """One line of the batch input file."""
        body = {
            "model": self.model,
            "messages": [dict(m) for m in request.messages],
            "temperature": request.temperature,
            "top_p": request.top_p,
            self.max_tokens_param: request.max_tokens,
        }
        if request.response_format is not None:
            body["response_format"] = request.response_format
        if request.seed is not None:
            body["seed"] = request.seed
        return {"custom_id": cid, "method": "POST", "url": ENDPOINT, "body": body}

    def _client(self) -> openai.AsyncOpenAI:
        key = os.environ.get(self.api_key_env)
        if not key:
            raise RuntimeError(f"the OpenAI Batch backend needs an API key in the environment variable "
                               f"{self.api_key_env}; it is unset or empty")
        return openai.AsyncOpenAI(api_key=key, base_url=self.base_url, timeout=self.timeout,
                                  max_retries=self.max_retries)

    async def complete_many(
        self, requests: Sequence[SongRequest]
    ) -> AsyncIterator[tuple[SongRequest, Completion | BaseException]]:
        by_id: dict[str, list[SongRequest]] = {}
        for request in requests:  # identical requests are asked once and answered alike
            by_id.setdefault(custom_id(request), []).append(request)
        if not by_id:
            return
        if len(by_id) > MAX_BATCH_REQUESTS:
            raise ValueError(f"{len(by_id)} requests exceed the Batch API's {MAX_BATCH_REQUESTS} per batch; "
                             "hand the backend smaller chunks")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        async with self._client() as client:
            try:
                path, state = self._find_state(by_id) or self._new_state(by_id)
                rows = await self._results(client, path, state, by_id)
            except openai.OpenAIError as e:
                # The network or the service failed us; a started batch stays resumable from its state.
                log.warning("batch backend: %s: %s", type(e).__name__, e)
                for request in requests:
                    yield request, e
                return
        for cid, same in by_id.items():
            outcome = self._outcome(cid, rows.get(cid), state)
            for request in same:
                yield request, outcome
        # Only now: a crash while yielding resumes from the downloaded results.
        state["handed_over"] = sorted(set(state["handed_over"]) | set(by_id))
        write_text_atomic(path, json.dumps(state, indent=1))

    # -- state ----------------------------------------------------------------------------------

    def _find_state(self, by_id: dict) -> tuple[Path, dict] | None:
        """The state of a batch holding every wanted request, none handed over yet; exact set first."""
        wanted = set(by_id)
        found = []
        for path in sorted(self.state_dir.glob("*.json")):
            try:
                state = read_json(path)
            except (OSError, DamagedFile) as e:
                log.warning("batch backend: unreadable state file %s skipped (%s)", path, e)
                continue
            if not isinstance(state, dict) or not isinstance(state.get("requests"), dict) \
                    or not isinstance(state.get("handed_over"), list):
                log.warning("batch backend: state file %s is not a batch's state; skipped", path)
                continue
            if state.get("identity") != self.identity():
                continue
            if wanted <= set(state["requests"]) - set(state["handed_over"]):
                found.append((len(state["requests"]) != len(wanted), path, state))
        if not found:
            return None
        _, path, state = min(found, key=lambda t: t[0])
        log.info("batch backend: resuming batch %s from %s", state.get("batch_id"), path)
        return path, state

    def _new_state(self, by_id: dict) -> tuple[Path, dict]:
        key = hashlib.sha256(json.dumps([self.identity(), sorted(by_id)]).encode()).hexdigest()
        state = {
            "key": key,
            "identity": self.identity(),
            "requests": {cid: f"{same[0].song_id}#{same[0].attempt}" for cid, same in by_id.items()},
            "input_file_id": None,
            "batch_id": None,
            "status": None,
            "batch_errors": [],
            "created_at": time.time(),
            "handed_over": [],  # custom_ids whose results a caller has received
        }
        return self.state_dir / f"{key[:16]}-{time.time_ns()}.json", state

    # -- the batch's life -------------------------------------------------------------------------

    async def _results(self, client: openai.AsyncOpenAI, path: Path, state: dict, by_id: dict) -> dict[str, dict]:
        """custom_id -> output or error line, from disk when a previous run already downloaded them."""
        results = path.with_suffix(".results.jsonl")
        if state["status"] in TERMINAL and results.exists():
            return _read_rows(results.read_text(encoding="utf-8"))
        if state["input_file_id"] is None:
            data = "".join(json.dumps(self.request_line(cid, same[0])) + "\n" for cid, same in by_id.items())
            upload = await client.files.create(file=("llmusic_batch.jsonl", data.encode()), purpose="batch")
            state["input_file_id"] = upload.id
            write_text_atomic(path, json.dumps(state, indent=1))
        if state["batch_id"] is None:
            batch = await client.batches.create(
                input_file_id=state["input_file_id"], endpoint=ENDPOINT,
                completion_window=self.completion_window, metadata={"llmusic_state": path.name},
            )
            log.info("batch backend: created batch %s with %d requests (state %s)", batch.id, len(by_id), path)
            state["batch_id"] = batch.id
            write_text_atomic(path, json.dumps(state, indent=1))  # before the first poll: resumable
        batch = await self._wait(client, state["batch_id"], len(state["requests"]))
        text = ""
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                text += (await client.files.content(file_id)).text.rstrip("\n") + "\n"
        write_text_atomic(results, text)
        state["status"] = batch.status
        state["batch_errors"] = [f"{e.code}: {e.message}" for e in (batch.errors.data or [])] if batch.errors else []
        write_text_atomic(path, json.dumps(state, indent=1))
        return _read_rows(text)

    async def _wait(self, client: openai.AsyncOpenAI, batch_id: str, total: int):
        status = None
        with tqdm(total=total, desc=f"batch {batch_id}", unit="req", disable=not self.progress) as bar:
            while True:
                batch = await client.batches.retrieve(batch_id)
                counts = batch.request_counts
                done = counts.completed + counts.failed if counts else 0
                bar.update(done - bar.n)
                if batch.status != status:
                    status = batch.status
                    bar.set_postfix_str(status)
                    log.info("batch backend: batch %s is %s (%d/%d done)", batch_id, status, done, total)
                if status in TERMINAL:
                    return batch
                await asyncio.sleep(self.poll_interval)

    def _outcome(self, cid: str, row: dict | None, state: dict) -> Completion | BatchRequestError:
        batch_id = state["batch_id"]
        if row is None:
            why = "; ".join(state["batch_errors"])
            message = f"batch {batch_id} ended '{state['status']}' without running this request"
            return BatchRequestError(message + (f" ({why})" if why else ""),
                                     batch_id=batch_id, custom_id=cid, code=state["status"])
        response = row.get("response")
        if response is None:
            error = row.get("error") or {}
            return BatchRequestError(f"batch request failed: {error.get('code')}: {error.get('message')}",
                                     batch_id=batch_id, custom_id=cid, code=error.get("code"))
        body = response.get("body") or {}
        if response.get("status_code") != 200:
            error = body.get("error") or {}
            return BatchRequestError(f"batch request got HTTP {response.get('status_code')}: {error.get('message')}",
                                     batch_id=batch_id, custom_id=cid, status_code=response.get("status_code"),
                                     code=error.get("code"))
        try:
            choice = body["choices"][0]
            message = choice["message"]
        except (KeyError, IndexError, TypeError):
            return BatchRequestError(f"batch reply without choices: {json.dumps(body)[:200]}",
                                     batch_id=batch_id, custom_id=cid, status_code=200)
        usage = body.get("usage") or {}
        extra = {"batch": True, "batch_id": batch_id, "custom_id": cid}  # "batch": priced at the discount
        if message.get("refusal"):
            extra["refusal"] = message["refusal"]
        return Completion(
            text=message.get("content") or "",
            finish_reason=choice.get("finish_reason") or "stop",
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            model=body.get("model"),
            extra=extra,
        )


def _read_rows(text: str) -> dict[str, dict]:
    """custom_id -> row of a batch's output and error files. Split at `\\n` only: a reply may hold
    U+2028 or U+0085, where `str.splitlines` would cut its row in two. A row that does not read
    leaves its request without a result, which the engine records as a failed request."""
    rows = {}
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows[row["custom_id"]] = row
        except (ValueError, RecursionError, KeyError, TypeError) as err:
            log.warning("batch backend: results line %d does not read (%s); skipped", lineno, type(err).__name__)
    return rows
