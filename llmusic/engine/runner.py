"""The generation engine: ask a backend for every planned song, attempt by attempt.

Round k sends every song still without a valid reply as attempt k, in one `complete_many` call
(one HTTP fan-out, or one Batch API job). Each reply is cached before anything else (keyed by what
was asked, never by how it is read), then parsed under the parse policy and written to MIDI by
the renderer; a parse failure, a reply cut at the token limit or a request that
failed after its transport retries costs one attempt, and every attempt is recorded. A song ends
with a record whatever happens: valid after some attempt, or failed with the last reason.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tqdm import tqdm

from llmusic.constraints import ConstraintSet
from llmusic.engine.cache import ReplyCache, cache_key
from llmusic.engine.cost import PriceTable
from llmusic.engine.plan import PlannedSong
from llmusic.llm.base import Backend, Completion, SongRequest
from llmusic.midi.render import PolyphonicRenderer, Renderer
from llmusic.parse import parse_reply
from llmusic.run_dir import VALID_STATUSES, GenerateRun
from llmusic.secret_guard import redact


def describe_error(error: BaseException) -> str:
    status = getattr(error, "status_code", None)
    message = redact(str(error).splitlines()[0][:200]) if str(error) else ""  # a URL may carry credentials
    return f"{type(error).__name__}{f' {status}' if status else ''}: {message}".rstrip(": ")


@dataclass
class SongState:
    song: PlannedSong
    attempts: list[dict] = field(default_factory=list)
    status: str = "failed"
    reason: str | None = None
    midi: str | None = None
    done: bool = False


@dataclass
class RunStats:
    requests: int = 0  # HTTP requests (or batch lines) sent this run, transport retries included
    transport_retries: int = 0
    cache_hits: int = 0
    cache_repairs: int = 0  # replies asked again because their cache entry was damaged
    fresh_replies: int = 0
    cost_usd_this_run: float = 0.0
    elapsed_s: float = 0.0


class Engine:
    """Runs a song plan through a backend into a run folder (its MIDI files and raw replies)."""

    def __init__(
        self,
        backend: Backend,
        constraints: ConstraintSet,
        run: GenerateRun,
        *,
        policy: str = "clamp",
        renderer: Renderer | None = None,
        max_attempts: int = 5,
        cache: ReplyCache | None = None,
        prices: PriceTable | None = None,
        cache_only: bool = False,
        seed: int | None = None,
        progress: bool = True,
    ) -> None:
        self.backend = backend
        self.constraints = constraints
        self.run_dir = run
        self.policy = policy
        self.renderer = renderer or PolyphonicRenderer()
        # A backend may know it has fewer tries to give (a recording holds one reply per song).
        self.max_attempts = min(max_attempts, backend.max_attempts or max_attempts)
        self.cache = cache
        self.prices = prices
        self.cache_only = cache_only
        self.seed = seed
        self.progress = progress
        self.identity = backend.identity()
        self.response_format = (
            {"type": "json_schema", "json_schema": constraints.json_schema()}
            if backend.structured else None
        )
        self.stats = RunStats()

    async def run(self, songs: Sequence[PlannedSong]) -> list[dict]:
        """Every song's manifest record, in plan order."""
        start = time.perf_counter()
        states = [SongState(song) for song in songs]
        by_id = {}
        for state in states:
            if state.song.failure is not None:
                state.reason, state.done = state.song.failure, True
            else:
                by_id[f"{state.song.genre}|{state.song.style}|{state.song.index}"] = state  # SongRequest.song_id
        bar = tqdm(total=len(states), desc=f"generate [{self.identity.get('name', '?')}]", unit="song",
                   disable=not self.progress, smoothing=0.05)
        bar.update(sum(s.done for s in states))
        with self.run_dir.replies() as self._write_reply:
            try:
                await self._rounds(states, by_id, bar)
            finally:
                if self.cache is not None:
                    self.cache.close()
        bar.close()
        self.stats.elapsed_s = time.perf_counter() - start
        return [self._manifest_record(s) for s in states]

    async def _rounds(self, states: list[SongState], by_id: dict[str, SongState], bar: tqdm) -> None:
        """Attempt after attempt, every song still without a valid reply."""
        for attempt in range(self.max_attempts):
            pending = [s for s in states if not s.done]
            if not pending:
                break
            to_send: list[SongRequest] = []
            for state in pending:
                request = state.song.request(attempt, self.response_format, self.seed)
                cached = self.cache.get(cache_key(self.identity, request)) if self.cache else None
                if cached is not None:
                    self.stats.cache_hits += 1
                    self._settle(state, request, cached, cached=True, bar=bar)
                elif self.cache_only:
                    state.done = True
                    self._record(state, {"attempt": attempt, "status": "error", "cached": False,
                                         "reason": "not_cached: cache_only run"}, bar)
                else:
                    to_send.append(request)
            bar.set_postfix(attempt=attempt, sending=len(to_send))
            if to_send:
                async for request, result in self.backend.complete_many(to_send):
                    state = by_id[request.song_id]
                    self._count_fresh(result)
                    if isinstance(result, Completion) and self.cache is not None:
                        key = cache_key(self.identity, request)
                        self.stats.cache_repairs += key in self.cache.damaged
                        self.cache.put(key, result, request)
                    self._settle(state, request, result, cached=False, bar=bar)

    def _count_fresh(self, result: Completion | BaseException) -> None:
        retries = result.extra.get("retries", []) if isinstance(result, Completion) else getattr(result, "retries", [])
        self.stats.requests += 1 + len(retries)
        self.stats.transport_retries += len(retries)
        if isinstance(result, Completion):
            self.stats.fresh_replies += 1

    def _settle(self, state: SongState, request: SongRequest, result: Completion | BaseException,
                *, cached: bool, bar: tqdm) -> None:
        attempt: dict = {"attempt": request.attempt, "cached": cached}
        if isinstance(result, BaseException):
            attempt.update(status="error", reason=f"request_error: {describe_error(result)}", finish_reason=None,
                           retries=len(getattr(result, "retries", [])))
            self._record(state, attempt, bar)
            return
        self._write_reply({
            "genre": request.genre, "style": request.style, "mood": request.mood, "index": request.index,
            "attempt": request.attempt, "finish_reason": result.finish_reason, "model": result.model,
            "text": result.text})
        cost = self._cost(result)
        if not cached and cost is not None:
            self.stats.cost_usd_this_run += cost
        attempt.update(finish_reason=result.finish_reason, model=result.model,
                       tokens={"prompt": result.prompt_tokens, "completion": result.completion_tokens},
                       cost=cost, retries=len(result.extra.get("retries", [])))
        if result.finish_reason == "length" and request.attempt + 1 < self.max_attempts:
            # A cut reply costs an attempt while attempts remain: a whole song beats a repaired one.
            attempt.update(status="length", reason="length: reply cut at max_tokens")
        else:
            # On the last attempt a cut reply is parsed anyway: the parser drops the incomplete tail,
            # so the paid-for complete events survive when every track is still there.
            parsed = parse_reply(result.text, self.constraints, self.policy)
            attempt.update(parsed.record())
            if parsed.status in VALID_STATUSES:
                try:
                    state.midi = self._render(state.song, parsed.song)
                except Exception as error:  # a song the parser passed but MIDI cannot hold: a failed attempt
                    attempt.update(status="failed", reason=f"render_error: {describe_error(error)}")
                else:
                    state.done = True
        self._record(state, attempt, bar)

    def _record(self, state: SongState, attempt: dict, bar: tqdm) -> None:
        state.attempts.append(attempt)
        state.status = attempt["status"] if attempt["status"] in VALID_STATUSES else "failed"
        state.reason = attempt.get("reason")
        if state.done or len(state.attempts) >= self.max_attempts:
            state.done = True
            bar.update(1)

    def _cost(self, completion: Completion) -> float | None:
        if self.backend.free:
            return 0.0
        if self.prices is None:
            return None
        model = self.identity.get("model") or completion.model
        return self.prices.cost(model, completion.prompt_tokens, completion.completion_tokens,
                                batch=bool(completion.extra.get("batch", False)))

    def _render(self, planned: PlannedSong, song) -> str:
        rel, path = self.run_dir.midi_file(planned.genre, planned.style, planned.index)
        self.renderer.write(song, path)
        return rel

    def _manifest_record(self, state: SongState) -> dict:
        song = state.song
        tokens = [a["tokens"] for a in state.attempts if a.get("tokens")]
        costs = [a["cost"] for a in state.attempts if a.get("cost") is not None]
        return {
            "genre": song.genre, "style": song.style, "mood": song.mood, "index": song.index,
            "status": state.status, "reason": state.reason, "midi": state.midi,
            "messages": list(song.messages), "sampling": song.sampling,
            "attempts": state.attempts,
            "usage": {"prompt_tokens": sum(t["prompt"] for t in tokens),
                      "completion_tokens": sum(t["completion"] for t in tokens)},
            "cost": sum(costs) if costs else None,
        }
