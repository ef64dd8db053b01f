"""Prompt templates: genre x style x mood + a constraint set -> chat messages.

Two kinds of template share one class. A rendered template (`paper_structured`, `genre_style`,
`genre_only`) takes its rules from the constraint set (`{rules}`, `{bars}`), so it can never
contradict the validator. A verbatim template (`paper`: the official code's text, byte for byte)
states its limits in its own words; `states` lists them, and `check` refuses a constraint set
that differs, so a prompt never asks for what its validator would reject.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from llmusic.constraints import ConstraintSet


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    system: str
    user: str  # str.format fields: genre, style, mood, bars, rules
    # A verbatim template's limits, as ConstraintSet fields (e.g. time_span_ticks: 7680), which its
    # text states in words; None for a template rendered from the constraint set.
    states: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.states is not None:
            known = {f.name for f in fields(ConstraintSet)}
            unknown = sorted(set(self.states) - known)
            if unknown:
                raise ValueError(f"prompt {self.name!r}: `states` names no ConstraintSet field: {unknown}")

    def check(self, constraints: ConstraintSet) -> None:
        """Raise ValueError when the text states limits that differ from the constraint set's."""
        if self.states is None:
            return
        stated = replace(constraints, **self.states)  # normalised the way the constraint set normalises
        differ = [f"{key}: the prompt says {getattr(stated, key)!r}, constraints={constraints.name} has "
                  f"{getattr(constraints, key)!r}" for key in self.states
                  if getattr(stated, key) != getattr(constraints, key)]
        if differ:
            raise ValueError(
                f"prompt={self.name} states its limits in fixed words that constraints={constraints.name} "
                f"does not match, so replies would be validated against rules the LLM was never given:\n  "
                + "\n  ".join(differ)
                + f"\nUse a constraint set that matches (constraints=paper), or a prompt rendered from the "
                  f"constraint set (prompt=paper_structured).")

    def messages(self, constraints: ConstraintSet, genre: str, style: str, mood: str) -> list[dict]:
        user = self.user.format(
            genre=genre, style=style, mood=mood, bars=constraints.bars, rules=constraints.rules()
        )
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]
