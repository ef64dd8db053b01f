"""Prompt templates: genre x style x mood + a constraint set -> chat messages.

Two kinds of template share one class. A rendered template (`paper_structured`, `genre_style`,
`genre_only`) takes its rules from the constraint set (`{rules}`, `{bars}`), so it can never
contradict the validator. A verbatim template (`paper`: the official code's text, byte for byte)
states its limits in its own words; `states` lists them, and `check` refuses a constraint set
that differs, so a prompt never asks for what its validator would reject.

`template_sha256` names what a template sends under a constraint set (its messages with the genre,
style and mood left as fields); the saved config and the summary of a generate run carry it (the
resolver `llmusic.template_sha256` computes it for conf/generate.yaml), and
`OFFICIAL_TEMPLATE_SHA256` is the official text's, so any run says whether it sent the paper's
prompt.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from llmusic.constraints import ConstraintSet

# template_sha256 of the official code's messages (../shared/reference/official_prompt.json, its
# `{prompt}` field written "{genre} song in {style} style"); tests/test_prompts.py derives it again.
OFFICIAL_TEMPLATE_SHA256 = "30261911de354b7b"


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

    def template_sha256(self, constraints: ConstraintSet) -> str:
        """16 hex digits of sha256 over the messages this template sends under `constraints`, the
        genre, style and mood left as the fields "{genre}", "{style}", "{mood}"."""
        messages = self.messages(constraints, "{genre}", "{style}", "{mood}")
        return hashlib.sha256(json.dumps(messages, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()[:16]


def _template_sha256(prompt: DictConfig, constraints: DictConfig) -> str:
    return instantiate(prompt).template_sha256(instantiate(constraints))


OmegaConf.register_new_resolver("llmusic.template_sha256", _template_sha256, replace=True)
