"""Request and result types shared by every LLM backend."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from agentsim.spec.models import SamplingSpec

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """What shape the answer must take; vLLM enforces it during decoding (structured outputs)."""

    kind: Literal["text", "json", "choice", "regex"] = "text"
    json_schema: dict[str, Any] | None = None
    choices: tuple[str, ...] | None = None
    regex: str | None = None

    def key(self) -> Any:
        return [self.kind, self.json_schema, list(self.choices or ()), self.regex]


@dataclass(slots=True)
class LLMRequest:
    request_id: str
    agent_id: str
    alias: str
    model: str
    messages: list[dict[str, str]]
    sampling: SamplingSpec
    seed: int
    response_format: ResponseFormat = field(default_factory=ResponseFormat)
    step: int = 0
    attempt: int = 0
    #: The structured observation, for rule-based backends; never serialised.
    context: Any = None

    def content_hash(self) -> str:
        """Identifies the request's content (not its seed), so the replay backend can find its recorded answer."""
        blob = json.dumps(
            [
                self.model,
                self.messages,
                self.response_format.key(),
                self.sampling.model_dump(mode="json"),
            ],
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:32]


@dataclass(slots=True)
class LLMResult:
    request_id: str
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    latency_s: float
    #: Log-probability of each sampled token, when the request asked for logprobs.
    logprobs: list[float] | None = None
    #: Top-k alternatives per position: list of {token: logprob}.
    top_logprobs: list[dict[str, float]] | None = None
    error: str | None = None


@runtime_checkable
class Backend(Protocol):
    """Answers a batch of requests. All of one step's requests arrive in one call."""

    name: str

    async def generate(self, requests: list[LLMRequest]) -> list[LLMResult]: ...

    def close(self) -> None: ...


class BackendError(RuntimeError):
    """A backend that cannot start or serve (missing model, engine failure). The message says what to do."""


async def fan_out(
    requests: list[LLMRequest],
    target_of: Callable[[LLMRequest], T],
    call: Callable[[T, list[LLMRequest]], Awaitable[list[LLMResult]]],
) -> list[LLMResult]:
    """Send each group of requests that share a target (backend, engine) as one batch, all groups concurrently,
    and return the results in request order."""
    groups: dict[int, tuple[T, list[int]]] = {}
    for i, r in enumerate(requests):
        target = target_of(r)
        groups.setdefault(id(target), (target, []))[1].append(i)
    batches = await asyncio.gather(*[call(t, [requests[i] for i in idxs]) for t, idxs in groups.values()])
    out: list[LLMResult | None] = [None] * len(requests)
    for (_, idxs), results in zip(groups.values(), batches, strict=True):
        for i, res in zip(idxs, results, strict=True):
            out[i] = res
    return [r for r in out if r is not None]
