"""Request and result types shared by every LLM backend."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
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
    #: Scoring instead of generating: the log-probability of this text as the reply to `messages`, with the
    #: top-`score_top_k` alternatives at each of its positions.
    continuation: str | None = None
    score_top_k: int = 0
    #: Why an answer text would be refused (None: it would be accepted): the same parse and validation the policy
    #: applies to every answer (core/policy.py: parse_answer), for a backend that can ask again itself (a person,
    #: agentsim/llm/human.py). Never serialised, not part of the content hash.
    check: Callable[[str], str | None] | None = None
    #: "act": a step's request, answered with an action; "interview": a question put to an agent after the fact
    #: (agentsim/interviews.py), answered in free text. Rule-based backends answer the two differently.
    purpose: Literal["act", "interview"] = "act"

    def content_hash(self) -> str:
        """Identifies the request's content (not its seed), so the replay backend can find its recorded answer.

        The hash of json.dumps([model, messages, response format, sampling(, continuation, top_k)]); the JSON of
        the response format and sampling (a schema of several KB, the same for thousands of requests) is cached."""
        parts = [_dumps(self.model), _dumps(self.messages), _format_json(self.response_format), _sampling_json(self.sampling)]
        if self.continuation is not None:
            parts += [_dumps(self.continuation), _dumps(self.score_top_k)]
        return hashlib.sha256(("[" + ", ".join(parts) + "]").encode()).hexdigest()[:32]


def _dumps(x: Any) -> str:
    return json.dumps(x, sort_keys=True, ensure_ascii=False)


_FORMAT_JSON: dict[int, tuple[Any, str]] = {}


def _format_json(rf: Any) -> str:
    hit = _FORMAT_JSON.get(id(rf))
    if hit is None or hit[0] is not rf:
        hit = (rf, _dumps(rf.key()))
        if len(_FORMAT_JSON) > 1024:
            _FORMAT_JSON.clear()
        _FORMAT_JSON[id(rf)] = hit
    return hit[1]


@lru_cache(maxsize=256)
def _sampling_json(sampling: Any) -> str:
    return _dumps(sampling.model_dump(mode="json"))


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
    #: Prompt tokens served from the prefix cache (vLLM), for the cache hit rate.
    cached_tokens: int = 0
    #: False when asking again cannot help (the backend lacks a capability), so no retries are spent.
    retryable: bool = True
    #: Set when the backend itself could not serve the request, as opposed to a model answering badly:
    #: "unreachable" (connection refused, DNS, timeout), "refused" (HTTP 401/403: the key), "not_found" (HTTP
    #: 404: URL or model name), "unavailable" (HTTP 502/503/504 after the client's retries), "unrecorded" (replay:
    #: no answer recorded), "crashed" (the backend raised). A phase in which every request of one model alias
    #: fails this way stops the run (`BackendUnavailable`); otherwise it is that request's error.
    outage: str | None = None


@runtime_checkable
class Backend(Protocol):
    """Answers a batch of requests. All of one step's requests arrive in one call."""

    name: str

    async def generate(self, requests: list[LLMRequest]) -> list[LLMResult]: ...

    def close(self) -> None: ...


#: A request's attempts share its id up to this suffix (agentsim/core/policy.py: LLMPolicy.request names them
#: "...-a<attempt>"): a regex whose group is the attempt.
ATTEMPT_SUFFIX = r"-a(\d+)$"


@dataclass(slots=True)
class TokenScores:
    """The scores of a continuation: each token's log-probability and the top-k alternatives per position."""

    token_ids: list[int]
    logprobs: list[float]
    top: list[dict[int, float]]

    def to_json(self) -> str:
        return json.dumps({"ids": self.token_ids, "top": [[[t, round(v, 6)] for t, v in d.items()] for d in self.top]},
                          separators=(",", ":"))

    @classmethod
    def from_result(cls, res: LLMResult) -> TokenScores:
        data = json.loads(res.text)
        return cls(list(data["ids"]), list(res.logprobs or []), [{int(t): float(v) for t, v in pos} for pos in data["top"]])


class BackendError(RuntimeError):
    """A backend that cannot start or serve (missing model, engine failure). The message says what to do."""

    #: The CLI's exit status for this error (2 is bad input, 3 a backend that cannot serve).
    exit_code = 3


class ReplaySourceError(BackendError):
    """--replay-from names a run whose answers cannot serve this scenario (another family, another seed)."""

    exit_code = 2


class BackendUnavailable(BackendError):
    """Every request that one phase sent to one model alias failed on the backend's side (see
    `LLMResult.outage`): the server is down, refuses the key, or does not know the model. The run stops here,
    resumable from its last checkpoint, instead of logging a whole run of invalid answers."""

    def __init__(self, alias: str, backend: str, where: str | None, outage: str, step: int, phase: str,
                 requests: int, example: str, total: int | None = None):
        self.alias, self.backend, self.where, self.outage = alias, backend, where, outage
        self.step, self.phase, self.requests, self.example = step, phase, requests, example
        at = f" at {where}" if where else ""
        # a replay stops at its first unrecorded request, also when it could answer the others (`total` of them)
        which = (f"none of the {requests} request(s)" if total is None or total == requests
                 else f"{requests} of the {total} requests")
        super().__init__(
            f"model alias '{alias}' ({backend} backend{at}): {which} of step {step}, "
            f"phase '{phase}' could be served ({outage}): {example}"
        )

    def to_json(self) -> dict[str, Any]:
        """What run.json records as the run's `error`."""
        return {"kind": "backend_unavailable", "alias": self.alias, "backend": self.backend, "where": self.where,
                "outage": self.outage, "step": self.step, "phase": self.phase, "requests": self.requests,
                "message": str(self)}


async def fan_out(
    requests: list[LLMRequest],
    target_of: Callable[[LLMRequest], T],
    call: Callable[[T, list[LLMRequest]], Awaitable[list[LLMResult]]],
) -> list[LLMResult]:
    """Send each group of requests that share a target (backend, engine) as one batch, all groups concurrently,
    and return the results in request order.

    A target whose `holds_loop` is true (the in-process vLLM backend: it generates on the event loop's thread and
    returns only when its batch is done) starts last: asyncio starts tasks in the order they are created, so every
    other target has sent its batch (a person's seat shows its request, an HTTP server has it) before the loop is
    held, and they work meanwhile instead of after it."""
    groups: dict[int, tuple[T, list[int]]] = {}
    for i, r in enumerate(requests):
        target = target_of(r)
        groups.setdefault(id(target), (target, []))[1].append(i)
    ordered = sorted(groups.values(), key=lambda g: bool(getattr(g[0], "holds_loop", False)))
    batches = await asyncio.gather(*[call(t, [requests[i] for i in idxs]) for t, idxs in ordered])
    out: list[LLMResult | None] = [None] * len(requests)
    for (_, idxs), results in zip(ordered, batches, strict=True):
        for i, res in zip(idxs, results, strict=True):
            out[i] = res
    return [r for r in out if r is not None]
