"""Chat completions through the official `openai` SDK: OpenAI or any OpenAI-compatible server.

The SDK's own retries are off: this backend retries 429, 5xx, timeouts and dropped connections
itself (exponential backoff with jitter, honouring Retry-After), so every retry is counted and
recorded. Concurrency is a fixed pool of workers; an optional token bucket keeps requests and
tokens per minute under the account's limits. The API key is read from the environment variable
named by `api_key_env` when the backend is built and lives only inside the client.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import AsyncIterator, Sequence
from urllib.parse import urlsplit

import openai

from llmusic.llm.limits import Backoff, RateLimiter, retry_after_s
from llmusic.llm.base import Backend, Completion, SongRequest
from llmusic.secret_guard import quiet_http_logs

try:  # the HTTP library the SDK is built on: httpx2 for openai >= 3, httpx before
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the installed SDK
    import httpx

RETRYABLE = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError)  # timeouts included
FATAL = (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError)  # every request would fail


class RequestFailed(Exception):
    """A request that still failed after its transport retries; `retries` lists what was tried."""

    def __init__(self, cause: BaseException, retries: list[dict]) -> None:
        super().__init__(f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''} "
                         f"(after {len(retries)} retries)")
        self.status_code = getattr(cause, "status_code", None)
        self.retries = retries


class OpenAIChat(Backend):
    paid = True  # a reply costs money (or, locally, GPU time): cached before it is parsed

    def __init__(
        self,
        model: str = "gpt-4o",
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        structured: bool = False,
        concurrency: int = 16,
        max_retries: int = 6,
        timeout: float = 120.0,
        rpm: float | None = None,
        tpm: float | None = None,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        name: str = "openai",
    ) -> None:
        self.name = name
        self.model = model
        self.base_url = base_url
        self.structured = structured
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.limiter = RateLimiter(rpm, tpm)
        self.backoff = Backoff(backoff_base_s, backoff_max_s)
        quiet_http_logs()  # the SDK's request log names every URL; keys and credentials are redacted
        key = os.environ.get(api_key_env)
        if not key:
            if base_url is None:
                raise RuntimeError(f"set the environment variable {api_key_env} to your OpenAI API key")
            key = "none"  # local OpenAI-compatible servers usually take any key
        self._client = openai.AsyncOpenAI(
            api_key=key, base_url=base_url, max_retries=0, timeout=timeout,
            http_client=openai.DefaultAsyncHttpxClient(
                timeout=timeout,
                limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            ),
        )

    def identity(self) -> dict:
        host = urlsplit(self.base_url).hostname if self.base_url else "api.openai.com"
        return {"name": self.name, "model": self.model, "host": host}

    async def complete_many(
        self, requests: Sequence[SongRequest]
    ) -> AsyncIterator[tuple[SongRequest, Completion | BaseException]]:
        todo: asyncio.Queue[SongRequest] = asyncio.Queue()
        for request in requests:
            todo.put_nowait(request)
        done: asyncio.Queue[tuple[SongRequest, Completion | BaseException, asyncio.Event]] = asyncio.Queue()

        async def worker() -> None:
            while not todo.empty():
                request = todo.get_nowait()
                try:
                    result: Completion | BaseException = await self._complete(request)
                except Exception as error:  # a FATAL error included: handed over, re-raised below
                    result = error
                consumed = asyncio.Event()
                done.put_nowait((request, result, consumed))
                # No new request until the engine has taken (and cached) this reply: a kill -9 then
                # loses at most one paid reply per worker, never a queue of them.
                await consumed.wait()

        workers = [asyncio.create_task(worker()) for _ in range(min(self.concurrency, len(requests)))]
        try:
            for _ in range(len(requests)):
                request, result, consumed = await done.get()
                if isinstance(result, FATAL):
                    raise result
                yield request, result
                consumed.set()  # the consumer asked for the next reply: it is done with this one
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _complete(self, request: SongRequest) -> Completion:
        """One request with its transport retries."""
        kwargs: dict = {"model": self.model, "messages": list(request.messages), "temperature": request.temperature,
                        "top_p": request.top_p, "max_tokens": request.max_tokens}
        if request.response_format is not None:
            kwargs["response_format"] = request.response_format
        if request.seed is not None:
            kwargs["seed"] = request.seed
        # What a token-per-minute limit counts: the prompt (about 4 characters a token) plus max_tokens.
        prompt_chars = sum(len(str(m.get("content", ""))) for m in request.messages)
        reserved = math.ceil(prompt_chars / 4) + (request.max_tokens or 0)
        retries: list[dict] = []
        while True:
            await self.limiter.acquire(reserved)
            start = time.perf_counter()
            try:
                response = await self._client.chat.completions.create(**kwargs)
            except RETRYABLE as error:
                self.limiter.settle(reserved, 0)
                if len(retries) >= self.max_retries:
                    raise RequestFailed(error, retries) from error
                headers = error.response.headers if isinstance(error, openai.APIStatusError) else None
                wait = self.backoff.delay(len(retries), retry_after_s(headers))
                retries.append({"error": type(error).__name__, "status": getattr(error, "status_code", None),
                                "wait_s": round(wait, 3)})
                await asyncio.sleep(wait)
                continue
            choice = response.choices[0]
            usage = response.usage
            used = (usage.prompt_tokens + usage.completion_tokens) if usage else reserved
            self.limiter.settle(reserved, used)
            return Completion(
                text=choice.message.content or "",
                finish_reason=choice.finish_reason or "stop",
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
                model=response.model,
                extra={"id": response.id, "retries": retries, "latency_s": round(time.perf_counter() - start, 4)},
            )

    async def aclose(self) -> None:
        await self._client.close()
