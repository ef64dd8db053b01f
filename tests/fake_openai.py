"""A loopback OpenAI server for tests and benchmarks: chat completions and the Batch API.

It speaks enough of the protocol for the official `openai` SDK, answers every chat request with a
deterministic song (`song_reply`), and fails requests on demand so clients can be tested against
what the SDK really sees:

    with FakeOpenAI(faults=["429", None, "malformed"]) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test")
        ...
        assert server.paid == 2

Faults, consumed one per chat request (or per line of a batch) in order; when the queue is empty
the request succeeds. Instead of a list, `faults` may be a callable `(body, n) -> fault` deciding
per request (n counts requests from 0):
    None         a valid song reply
    "429"        rate limited, with a small Retry-After (`retry_after` seconds)
    "500"        server error
    "drop"       the socket is closed without a reply
    "slow"       the reply comes after `slow_seconds`, past a short client timeout (and is billed,
                 as the real service bills work the client stopped waiting for)
    "length"     200 with finish_reason "length" and the song cut mid-way
    "malformed"  200 with prose instead of JSON
    "tuples"     200 with the song in the prompt's own Python-tuple form (not JSON: what the official
                 code's strict json.loads refuses and the lenient reader reads)
    "401"        the key is refused (no retry can help)
    "surrogate"  200 with a valid song followed by a lone UTF-16 surrogate (JSON `\\ud800`), which
                 no UTF-8 encoder takes as it is

A batch is seen unfinished by its first `batch_polls` retrieves (`validating`, then `in_progress`)
and ends at the next one as `batch_outcome` ("completed", "expired" or "failed"). Its output file
holds the 200 replies in shuffled order, its error file the lines the fault plan failed (and, for
"expired", the unfinished half). `latency` (default 0) delays each chat reply; 0 for benchmarks.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import random
import re
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("429", "500", "drop", "slow", "length", "malformed", "tuples", "401", "surrogate")
REPLY_FAULTS = ("length", "malformed", "tuples", "surrogate")  # answered with 200 and a (faulty) reply
MALFORMED_TEXT = (
    "Sure! Here is a cheerful jazz tune for you: the melody opens on middle C, climbs a fifth, "
    "and the bass walks down while the drums keep a steady swing."
)
FaultPlan = Callable[[dict, int], "str | None"]


def song_reply(seed: int) -> str:
    """A valid 4-track song as the paper's prompt asks for it: 16/8/8/16 events in range."""
    rng = random.Random(seed)
    melody = [[rng.randint(60, 84), rng.choice([240, 480]), rng.randint(70, 110), 480 * i] for i in range(16)]
    chords = [[rng.randint(48, 72), 960, rng.randint(60, 90), 960 * i] for i in range(8)]
    bass = [[rng.randint(36, 52), rng.choice([480, 960]), rng.randint(70, 100), 960 * i] for i in range(8)]
    rhythm = [[(35, 42, 38, 42)[i % 4], 240, rng.randint(80, 120), 480 * i] for i in range(16)]
    return json.dumps({"melody": melody, "chords": chords, "bass": bass, "rhythm": rhythm})


def body_seed(body: dict) -> int:
    """Same request body, same song: replies are a pure function of what was asked."""
    return zlib.crc32(json.dumps(body, sort_keys=True).encode())


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


class FakeOpenAI:
    """The server; use it as a context manager (or `start()` / `close()`)."""

    def __init__(
        self,
        faults: Iterable[str | None] | FaultPlan | None = None,
        *,
        retry_after: float = 0.05,
        slow_seconds: float = 2.0,
        latency: float = 0.0,
        batch_polls: int = 2,
        batch_outcome: str = "completed",
        record: bool = True,
    ) -> None:
        if batch_outcome not in ("completed", "expired", "failed"):
            raise ValueError(f"batch_outcome must be completed, expired or failed, got {batch_outcome!r}")
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.latency = latency  # seconds per chat reply; 0 for benchmarks of the client alone
        self.batch_polls = batch_polls
        self.batch_outcome = batch_outcome
        self.record = record  # False keeps no request log (long benchmarks)
        self.paid = 0  # completions billed: 200 chat replies and successful batch lines
        self.in_flight = 0  # chat requests being answered now
        self.max_in_flight = 0  # the most answered at once
        self.requests: list[dict] = []  # {path, method, headers (lower-case names), body}
        self.files: dict[str, dict] = {}  # id -> {filename, purpose, content: bytes, created_at}
        self.batches: dict[str, dict] = {}  # id -> the Batch object, plus private "_" keys
        self._plan: FaultPlan | None = faults if callable(faults) else None
        self._queue: deque[str | None] = deque() if callable(faults) else deque(faults or ())
        self._n = itertools.count()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> "FakeOpenAI":
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval, once per test.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stopping.set()  # wakes "slow" handlers so they do not outlive the server
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join()
            self._httpd = None

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    # -- faults and counters --------------------------------------------------------------------

    def fault(self, *faults: str | None) -> None:
        """Queue more faults, consumed in order by the next requests."""
        for f in faults:
            if f is not None and f not in FAULTS:
                raise ValueError(f"unknown fault {f!r}; known: {FAULTS}")
        with self._lock:
            self._queue.extend(faults)

    def next_fault(self, body: dict) -> str | None:
        with self._lock:
            n = next(self._n)
            if self._plan is not None:
                return self._plan(body, n)
            return self._queue.popleft() if self._queue else None

    def calls(self, method: str, path: str) -> list[dict]:
        """Logged requests with this method whose path matches the regex `path` in full."""
        with self._lock:
            return [r for r in self.requests if r["method"] == method and re.fullmatch(path, r["path"])]

    def _log(self, entry: dict) -> None:
        if self.record:
            with self._lock:
                self.requests.append(entry)

    def _pay(self, n: int = 1) -> None:
        with self._lock:
            self.paid += n

    def _new_id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}-fake{next(self._ids)}"

    # -- replies --------------------------------------------------------------------------------

    def chat_completion(self, body: dict, fault: str | None) -> dict:
        """The chat.completion object the server answers `body` with, under a 200 fault."""
        song = song_reply(body_seed(body))
        prompt_tokens = sum(_tokens(str(m.get("content", ""))) for m in body.get("messages", []))
        if fault == "length":
            content, finish = song[: len(song) // 2], "length"
            completion_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or _tokens(content))
        elif fault == "malformed":
            content, finish = MALFORMED_TEXT, "stop"
            completion_tokens = _tokens(content)
        elif fault == "tuples":
            content, finish = repr({k: [tuple(e) for e in v] for k, v in json.loads(song).items()}), "stop"
            completion_tokens = _tokens(content)
        elif fault == "surrogate":
            content, finish = song + " \ud800", "stop"
            completion_tokens = _tokens(content)
        else:
            content, finish = song, "stop"
            completion_tokens = _tokens(content)
        return {
            "id": self._new_id("chatcmpl"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake-model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "finish_reason": finish,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    @staticmethod
    def error_body(fault: str) -> tuple[int, dict]:
        if fault == "429":
            return 429, {"error": {"message": "Rate limit reached (fake)", "type": "requests",
                                   "code": "rate_limit_exceeded", "param": None}}
        if fault == "401":
            return 401, {"error": {"message": "Incorrect API key provided (fake)", "type": "invalid_request_error",
                                   "code": "invalid_api_key", "param": None}}
        return 500, {"error": {"message": "The server had an error (fake)", "type": "server_error",
                               "code": None, "param": None}}

    # -- the Batch API --------------------------------------------------------------------------

    def create_batch(self, body: dict) -> dict:
        now = int(time.time())
        batch = {
            "id": self._new_id("batch"),
            "object": "batch",
            "endpoint": body.get("endpoint"),
            "errors": None,
            "input_file_id": body.get("input_file_id"),
            "completion_window": body.get("completion_window"),
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "expires_at": now + 24 * 3600,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
            "_retrieves": 0,
        }
        with self._lock:
            self.batches[batch["id"]] = batch
        return batch

    def advance_batch(self, batch_id: str) -> dict:
        """One retrieve: the batch moves one step along validating -> in_progress -> final."""
        with self._lock:
            batch = self.batches[batch_id]
            batch["_retrieves"] += 1
            step = batch["_retrieves"]
            if batch["status"] == "cancelling":
                batch.update(status="cancelled", cancelled_at=int(time.time()))
                return batch
            if batch["status"] != "validating" and batch["status"] != "in_progress":
                return batch
            if step <= self.batch_polls:
                if step > 1:
                    batch.update(status="in_progress", in_progress_at=batch.get("in_progress_at") or int(time.time()))
                return batch
            batch["status"] = "finalizing"  # a concurrent retrieve must not run the batch twice
        self._finish_batch(batch)
        return batch

    def cancel_batch(self, batch_id: str) -> dict:
        with self._lock:
            batch = self.batches[batch_id]
            if batch["status"] in ("validating", "in_progress"):
                batch.update(status="cancelling", cancelling_at=int(time.time()))
            return batch

    def _finish_batch(self, batch: dict) -> None:
        lines, problem = self._read_batch_input(batch)
        if problem is None and self.batch_outcome == "failed":
            problem = "the fake server was told to fail this batch"
        if problem is not None:
            with self._lock:
                batch.update(status="failed", failed_at=int(time.time()),
                             errors={"object": "list", "data": [{"code": "invalid_request", "message": problem,
                                                                 "param": None, "line": None}]})
            return
        unfinished = lines[len(lines) // 2:] if self.batch_outcome == "expired" else []
        out, err = [], []
        for line in lines[: len(lines) - len(unfinished)]:
            fault = self.next_fault(line["body"])
            result = {"id": self._new_id("batch_req"), "custom_id": line["custom_id"]}
            if fault is None or fault in REPLY_FAULTS:
                out.append({**result, "response": {"status_code": 200, "request_id": self._new_id("req"),
                                                   "body": self.chat_completion(line["body"], fault)}, "error": None})
            elif fault in ("429", "500"):
                status, body = self.error_body(fault)
                err.append({**result, "response": {"status_code": status, "request_id": self._new_id("req"),
                                                   "body": body}, "error": None})
            else:  # "drop" and "slow" have no HTTP reply inside a batch: the request timed out
                err.append({**result, "response": None,
                            "error": {"code": "request_timeout", "message": f"fake {fault}: no reply"}})
        for line in unfinished:
            err.append({"id": self._new_id("batch_req"), "custom_id": line["custom_id"], "response": None,
                        "error": {"code": "batch_expired", "message": "This request could not be executed "
                                  "before the completion window expired."}})
        random.Random(len(lines)).shuffle(out)  # the service keeps no input order: match by custom_id
        self._pay(len(out))
        with self._lock:
            now = int(time.time())
            if out:
                batch["output_file_id"] = self._store_file("batch_output.jsonl", "batch_output", out)
            if err:
                batch["error_file_id"] = self._store_file("batch_errors.jsonl", "batch_output", err)
            final = "expired" if self.batch_outcome == "expired" else "completed"
            batch.update(status=final, request_counts={"total": len(lines), "completed": len(out), "failed": len(err)},
                         in_progress_at=batch.get("in_progress_at") or now, finalizing_at=now)
            batch[f"{final}_at"] = now

    def _read_batch_input(self, batch: dict) -> tuple[list[dict], str | None]:
        """Parse and check the input file as the real service does before running anything."""
        with self._lock:
            file = self.files.get(batch["input_file_id"])
        if file is None:
            return [], f"input file {batch['input_file_id']} not found"
        if file["purpose"] != "batch":
            return [], f"input file purpose is {file['purpose']!r}, not 'batch'"
        lines, seen = [], set()
        for i, raw in enumerate(file["content"].decode().splitlines()):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except json.JSONDecodeError as e:
                return [], f"line {i + 1}: invalid JSON ({e})"
            missing = {"custom_id", "method", "url", "body"} - set(line)
            if missing:
                return [], f"line {i + 1}: missing {sorted(missing)}"
            if line["method"] != "POST" or line["url"] != batch["endpoint"]:
                return [], f"line {i + 1}: {line['method']} {line['url']} does not match the batch endpoint"
            if line["custom_id"] in seen:
                return [], f"line {i + 1}: duplicate custom_id {line['custom_id']!r}"
            seen.add(line["custom_id"])
            lines.append(line)
        return lines, None

    def _store_file(self, filename: str, purpose: str, rows: list[dict]) -> str:
        file_id = f"file-fake{next(self._ids)}"  # caller holds the lock
        content = "".join(json.dumps(r) + "\n" for r in rows).encode()
        self.files[file_id] = {"filename": filename, "purpose": purpose, "content": content,
                               "created_at": int(time.time())}
        return file_id

    def upload(self, filename: str, purpose: str, content: bytes) -> dict:
        with self._lock:
            file_id = f"file-fake{next(self._ids)}"
            self.files[file_id] = {"filename": filename, "purpose": purpose, "content": content,
                                   "created_at": int(time.time())}
        return self.file_object(file_id)

    def file_object(self, file_id: str) -> dict:
        f = self.files[file_id]
        return {"id": file_id, "object": "file", "bytes": len(f["content"]), "created_at": f["created_at"],
                "filename": f["filename"], "purpose": f["purpose"], "status": "processed"}


def public(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if not k.startswith("_")}


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # the default backlog of 5 resets connections when 256 clients connect at once


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the SDK reuses connections
    disable_nagle_algorithm = True  # else each reply body waits ~40 ms behind its headers (delayed ACK)
    fake: FakeOpenAI

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass  # a test's output is not the place for an access log

    def _send(self, status: int, payload: dict | bytes, headers: dict | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if not isinstance(payload, bytes)
                             else "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout): nothing to answer

    def _not_found(self) -> None:
        self._send(404, {"error": {"message": f"no route {self.command} {self.path}", "type": "invalid_request_error"}})

    def _read(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        fake = self.fake
        fake._log({"path": self.path, "method": "GET", "headers": _headers(self.headers), "body": None})
        if m := re.fullmatch(r"/v1/files/([^/]+)/content", self.path):
            f = fake.files.get(m[1])
            return self._send(200, f["content"]) if f else self._not_found()
        if m := re.fullmatch(r"/v1/files/([^/]+)", self.path):
            return self._send(200, fake.file_object(m[1])) if m[1] in fake.files else self._not_found()
        if m := re.fullmatch(r"/v1/batches/([^/]+)", self.path):
            return self._send(200, public(fake.advance_batch(m[1]))) if m[1] in fake.batches else self._not_found()
        self._not_found()

    def do_POST(self) -> None:
        fake = self.fake
        raw = self._read()
        if self.path == "/v1/files":
            form = _multipart(self.headers.get("Content-Type", ""), raw)
            filename, content = form.get("file", ("upload.jsonl", b""))
            fake._log({"path": self.path, "method": "POST", "headers": _headers(self.headers),
                       "body": {"purpose": form.get("purpose"), "filename": filename, "bytes": len(content)}})
            return self._send(200, fake.upload(filename, form.get("purpose"), content))
        body = json.loads(raw) if raw else {}
        fake._log({"path": self.path, "method": "POST", "headers": _headers(self.headers), "body": body})
        if self.path == "/v1/chat/completions":
            return self._chat(body)
        if self.path == "/v1/batches":
            if body.get("input_file_id") not in fake.files:
                return self._not_found()
            return self._send(200, public(fake.create_batch(body)))
        if m := re.fullmatch(r"/v1/batches/([^/]+)/cancel", self.path):
            return self._send(200, public(fake.cancel_batch(m[1]))) if m[1] in fake.batches else self._not_found()
        self._not_found()

    def _chat(self, body: dict) -> None:
        fake = self.fake
        with fake._lock:
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
        try:
            self._answer_chat(body)
        finally:
            with fake._lock:
                fake.in_flight -= 1

    def _answer_chat(self, body: dict) -> None:
        fake = self.fake
        fault = fake.next_fault(body)
        if fake.latency:
            time.sleep(fake.latency)
        if fault in ("429", "500", "401"):
            status, payload = fake.error_body(fault)
            headers = {"Retry-After": f"{fake.retry_after:g}",
                       "retry-after-ms": f"{fake.retry_after * 1000:g}"} if fault == "429" else {}
            return self._send(status, payload, headers)
        if fault == "drop":
            self.close_connection = True  # the request was read; the socket closes with no reply
            return
        if fault == "slow" and fake._stopping.wait(fake.slow_seconds):
            self.close_connection = True
            return
        reply = fake.chat_completion(body, fault if fault in REPLY_FAULTS else None)
        fake._pay()
        self._send(200, reply)


def _multipart(content_type: str, raw: bytes) -> dict:
    """multipart/form-data -> {field: value}, file fields as (filename, bytes)."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    form: dict = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        form[name] = (filename, payload) if filename else payload.decode()
    return form


def _headers(headers) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}  # clients differ in case; HTTP does not care
