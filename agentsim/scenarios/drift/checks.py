"""Constraint checkers: each scores one reply against one constraint of the task, True when satisfied."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field

from agentsim.spec.models import StrictModel

_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+\S")
_CONTRACTION = re.compile(r"\b\w+'(?:t|s|re|ve|ll|d|m)\b", re.IGNORECASE)
_EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf]")
INFORMAL_WORDS = ("gonna", "wanna", "gotta", "kinda", "awesome", "cool", "hey", "lol", "stuff", "super", "yeah", "guys")


def words(text: str) -> int:
    return len(re.findall(r"\b[\w'-]+\b", text))


def bullets(text: str) -> int:
    return sum(1 for line in text.splitlines() if _BULLET.match(line))


class Bullets(StrictModel):
    kind: Literal["bullets"] = "bullets"
    exactly: int | None = Field(None, ge=0)
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)

    def check(self, text: str) -> bool:
        n = bullets(text)
        return (self.exactly is None or n == self.exactly) and (self.min is None or n >= self.min) and (self.max is None or n <= self.max)


class Words(StrictModel):
    kind: Literal["words"] = "words"
    min: int = Field(0, ge=0)
    max: int | None = Field(None, ge=1)

    def check(self, text: str) -> bool:
        n = words(text)
        return n >= self.min and (self.max is None or n <= self.max)


class FormalTone(StrictModel):
    """A lexical test of formal register: no contractions, exclamation marks, emoji or informal words."""

    kind: Literal["formal"] = "formal"
    extra_informal: list[str] = Field(default_factory=list, description="More words that break formality.")

    def check(self, text: str) -> bool:
        low = text.lower()
        informal = set(INFORMAL_WORDS) | {w.lower() for w in self.extra_informal}
        return not (_CONTRACTION.search(text) or "!" in text or _EMOJI.search(text)
                    or any(re.search(rf"\b{re.escape(w)}\b", low) for w in informal))


class Pattern(StrictModel):
    kind: Literal["regex"] = "regex"
    pattern: str
    must_match: bool = True

    def check(self, text: str) -> bool:
        return bool(re.search(self.pattern, text, re.MULTILINE)) == self.must_match


class Keywords(StrictModel):
    kind: Literal["keywords"] = "keywords"
    required: list[str] = Field(default_factory=list)
    forbidden: list[str] = Field(default_factory=list)

    def check(self, text: str) -> bool:
        low = text.lower()
        return all(k.lower() in low for k in self.required) and not any(k.lower() in low for k in self.forbidden)


Constraint = Annotated[Bullets | Words | FormalTone | Pattern | Keywords, Field(discriminator="kind")]


def describe(c: Constraint) -> str:
    return c.model_dump_json(exclude_none=True)
