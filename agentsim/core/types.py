"""The data that crosses the boundaries of a step: observations in, decisions out, events to the log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel


@dataclass(slots=True)
class AgentRecord:
    """An agent is data: an id, a kind, a model alias, a group and a persona."""

    agent_id: str
    kind: str
    model: str
    group: str = ""
    persona: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Observation:
    """What one agent sees in one phase of a step, and what form its answer must take.

    `messages` is the chat prompt an LLM policy sends; None lets the family's mind build it from `data`, the agent's
    persona and its memory, where the agent lives (see core/mind.py). `action_model` is the typed action the answer must
    validate as (None means free text). `data` is the structured view a rule-based policy reads instead of text.
    `validation_context` is passed to pydantic validators (e.g. which targets are legal for this agent).
    """

    agent_id: str
    model: str
    messages: list[dict[str, str]] | None
    action_model: type[BaseModel] | None = None
    data: Any = None
    validation_context: dict[str, Any] | None = None
    max_words: int | None = None
    #: Distinguishes several requests of one agent in one batch (a judge judging many matches).
    tag: str = ""
    #: Set to score this text as the reply (log-probabilities) instead of asking for a reply.
    continuation: str | None = None
    score_top_k: int = 0


@dataclass(slots=True)
class Decision:
    """The outcome of asking one agent: a validated action, or an invalid answer with its raw text."""

    agent_id: str
    action: Any  # the validated action model, free text, or TokenScores for a scoring request
    raw_text: str
    valid: bool
    request_id: str
    attempts: int
    error: str | None = None


@dataclass(slots=True)
class Event:
    """One row of the `events` table."""

    event_id: int
    step: int
    sim_time: float
    phase: str
    agent_id: str
    action: str
    target: str | None = None
    payload: str | None = None  # JSON text
    parent_event_id: int | None = None
    request_id: str | None = None


@dataclass(slots=True)
class Metric:
    """One row of the `metrics` table (long format, so every family can add its own)."""

    step: int
    metric: str
    value: float
    agent_id: str | None = None
