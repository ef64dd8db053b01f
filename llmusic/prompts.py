"""Prompt templates: genre x style x mood + a constraint set -> chat messages."""

from __future__ import annotations

from dataclasses import dataclass

from llmusic.constraints import ConstraintSet


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    system: str
    user: str  # str.format fields: genre, style, mood, bars, rules

    def messages(self, constraints: ConstraintSet, genre: str, style: str, mood: str) -> list[dict]:
        user = self.user.format(
            genre=genre, style=style, mood=mood, bars=constraints.bars, rules=constraints.rules()
        )
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]
