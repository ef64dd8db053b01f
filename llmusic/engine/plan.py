"""The song plan: which songs a run asks for, with what prompt and sampling.

A planned song is fixed before any request: genre, style, mood, index and the rendered messages.
Everything is a pure function of the config and the seed, so a rerun plans the same songs and
finds its earlier replies in the cache. `plan_songs` asks for the taxonomy grid, or for the lines
of the recording a backend answers from (`Backend.recorded_lines`, e.g. a replay).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from llmusic.constraints import ConstraintSet
from llmusic.llm.base import Backend, RecordedLine, SongRequest
from llmusic.prompts import PromptTemplate


@dataclass(frozen=True)
class Sampling:
    """The paper's sampling: temperature cycles 0.6, 0.64, ..., 0.96 over a pair's songs."""

    temperature_base: float = 0.6
    temperature_step: float = 0.04
    temperature_cycle: int = 10
    top_p: float = 0.9
    max_tokens: int = 1200
    seed: int | None = None  # sent as the API's `seed` when set (best-effort determinism)

    def temperature(self, index: int) -> float:
        # Rounded so 0.6 + 0.04 * 3 is 0.72, not 0.72000000001, in requests and cache keys.
        return round(self.temperature_base + self.temperature_step * (index % self.temperature_cycle), 6)


@dataclass(frozen=True)
class PlannedSong:
    genre: str | None
    style: str | None
    mood: str | None
    index: int  # within its genre-style pair (a replay: the line number)
    messages: tuple[dict, ...]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    failure: str | None = None  # known to fail before any request (a replay line that doesn't read)

    def request(self, attempt: int, response_format: dict | None, seed: int | None) -> SongRequest:
        return SongRequest(
            genre=self.genre or "",
            style=self.style or "",
            mood=self.mood or "",
            index=self.index,
            attempt=attempt,
            messages=self.messages,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            response_format=response_format,
            seed=seed,
        )

    @property
    def sampling(self) -> dict:
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens}


def stable_hash(text: str) -> int:
    """A hash that, unlike hash(), is the same in every process."""
    return zlib.crc32(text.encode())


def draw_mood(moods: Sequence[str], seed: int, genre: str, style: str, index: int) -> str:
    """The mood of one song: seeded, and a function of (genre, style, index) alone."""
    rng = np.random.default_rng([seed, stable_hash(genre), stable_hash(style), index])
    return str(moods[int(rng.integers(len(moods)))])


def plan_grid(
    genres: Sequence[str],
    styles: Sequence[str],
    moods: Sequence[str],
    n_per_combo: int,
    prompt: PromptTemplate,
    constraints: ConstraintSet,
    sampling: Sampling,
    seed: int,
) -> list[PlannedSong]:
    """Every genre x style pair, n_per_combo songs each, in taxonomy order."""
    songs = []
    for genre in genres:
        for style in styles:
            for index in range(n_per_combo):
                mood = draw_mood(moods, seed, genre, style, index)
                songs.append(PlannedSong(
                    genre=genre, style=style, mood=mood, index=index,
                    messages=tuple(prompt.messages(constraints, genre, style, mood)),
                    temperature=sampling.temperature(index), top_p=sampling.top_p,
                    max_tokens=sampling.max_tokens,
                ))
    return songs


def plan_recording(lines: Sequence[RecordedLine], prompt: PromptTemplate,
                   constraints: ConstraintSet) -> list[PlannedSong]:
    """One planned song per recorded line, asked as recorded (the template renders a line without
    messages); a line that gives no song is planned as a failure, so it still gets its record."""
    songs = []
    for line in lines:
        if line.failure is not None:
            songs.append(PlannedSong(line.genre, line.style, line.mood, line.index, (), failure=line.failure))
            continue
        messages = line.messages or prompt.messages(constraints, line.genre, line.style, line.mood)
        songs.append(PlannedSong(line.genre, line.style, line.mood, line.index, tuple(messages),
                                 temperature=line.temperature, top_p=line.top_p, max_tokens=line.max_tokens))
    return songs


def plan_songs(backend: Backend, prompt: PromptTemplate, constraints: ConstraintSet, taxonomy: Mapping,
               n_per_combo: int, sampling: Sampling, seed: int) -> list[PlannedSong]:
    """The songs to make: the recording's lines when the backend answers from one, else the grid
    of the taxonomy's genres x styles, n_per_combo songs each."""
    lines = backend.recorded_lines()
    if lines is not None:
        return plan_recording(lines, prompt, constraints)
    return plan_grid(list(taxonomy["genres"]), list(taxonomy["styles"]), list(taxonomy["moods"]), n_per_combo,
                     prompt, constraints, sampling, seed)
