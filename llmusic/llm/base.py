"""The contract between the generation engine and every LLM backend.

The engine builds one `SongRequest` per attempt at a song and hands backends a batch of them; a
backend yields a `Completion` (or the exception that ended that request) for each, in any order.
A backend that answers from a recording says which songs it holds (`recorded_lines`), and the
engine's planner asks for those.
Backends do no parsing, caching or retrying of invalid replies: the engine does that once for all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SongRequest:
    genre: str
    style: str
    mood: str
    index: int  # song number within its genre-style pair: two songs with one prompt differ by it
    attempt: int  # 0-based; a parse failure or a reply cut at the token limit costs one
    messages: tuple[dict, ...]  # chat messages: ({"role": ..., "content": ...}, ...)
    temperature: float
    top_p: float
    max_tokens: int
    response_format: dict | None = None  # OpenAI `response_format` for structured outputs
    seed: int | None = None

    @property
    def song_id(self) -> str:
        return f"{self.genre}|{self.style}|{self.index}"


@dataclass
class Completion:
    text: str
    finish_reason: str = "stop"  # "length" when the reply was cut at max_tokens
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None  # what the server says answered
    extra: dict = field(default_factory=dict)  # backend-specific facts worth keeping (batch id, ...)


@dataclass(frozen=True)
class RecordedLine:
    """One line of a recording a backend answers from: the song it holds, or why it holds none."""

    index: int  # the line number, which is the song's index
    genre: str | None
    style: str | None
    mood: str | None
    messages: Sequence[dict] | None = None  # the prompt as recorded; None: the run's template renders it
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    failure: str | None = None  # why the line gives no song ("replay_line: not JSON (...)")


class Backend(ABC):
    """One way of getting replies: an API, a local model, a recording, or a rule-based control."""

    name: str = "backend"
    is_llm: bool = True  # False for non-LLM controls (the baseline composer)
    paid: bool = False  # True when a reply costs money: the engine caches those before anything else
    free: bool = False  # True when replies cost no money (local weights): cost 0 whatever the prices say
    structured: bool = False  # True: the engine sends the constraint set's JSON schema as response_format
    max_attempts: int | None = None  # a cap of the backend's own on attempts per song (a recording: 1)

    @abstractmethod
    def identity(self) -> dict:
        """Everything about this backend that determines a reply (name, model, base URL host).

        Goes into the cache key and the manifest, so it must never hold a secret.
        """

    @abstractmethod
    def complete_many(
        self, requests: Sequence[SongRequest]
    ) -> AsyncIterator[tuple[SongRequest, Completion | BaseException]]:
        """Yield (request, completion or error) for every request, as each finishes."""

    def recorded_lines(self) -> list[RecordedLine] | None:
        """The songs of the recording this backend answers from, one per line (the engine's planner
        asks for exactly these); None for a backend that answers any song it is asked for."""
        return None

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections, files or models."""
