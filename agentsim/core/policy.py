"""Policies turn a batch of observations into a batch of decisions.

`LLMPolicy` is the one policy every backend goes through (the scripted and replay backends too): it builds one
request per observation, sends the whole batch to the backend, parses and validates each answer against the
agent's typed action, re-asks the invalid ones (again as one batch) and gives up after `max_retries`,
returning an invalid decision with the raw text. An answer can never crash the run.

Every result is cleaned of credentials (`Redactor`) where it enters here, before it is parsed, logged or
printed, so no backend can put an API key into the log. A backend that raises, or a family validator that raises
on an odd answer, is a last resort caught here: it becomes the requests' error, never the run's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from agentsim.core.mind import AgentMinds, Mind, no_mind_error
from agentsim.core.seeding import derive_seed
from agentsim.core.types import Decision, Observation
from agentsim.llm.redact import Redactor
from agentsim.llm.types import Backend, BackendError, LLMRequest, LLMResult, ResponseFormat, TokenScores
from agentsim.spec.models import LoggingSpec, ModelSpec


class Policy(Protocol):
    async def decide(self, step: int, phase: str, observations: list[Observation]) -> list[Decision]: ...


@lru_cache(maxsize=256)
def response_format_for(action_model: type[BaseModel] | None) -> ResponseFormat:
    if action_model is None:
        return ResponseFormat("text")
    return ResponseFormat("json", json_schema=action_model.model_json_schema())


#: The user turn of a re-ask after a refused answer (policy.reask_with_reason).
REASK = ("Your answer above was refused: {reason}. Answer again, following the instructions and the required "
         "format exactly.")

_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


def _json_candidates(text: str) -> list[str]:
    """The text itself, then the outermost {...} (models without structured decoding add prose or fences)."""
    s = text.strip()
    out = [s]
    unfenced = _FENCE.sub("", s).strip()
    if unfenced != s:
        out.append(unfenced)
    i, j = s.find("{"), s.rfind("}")
    if 0 <= i < j:
        out.append(s[i : j + 1])
    return out


def _short_error(e: ValidationError) -> str:
    parts = []
    for err in e.errors(include_url=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(answer)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def parse_answer(text: str, obs: Observation) -> tuple[BaseModel | str | None, str | None]:
    """(action, None) when the answer is valid, else (None, reason)."""
    if obs.action_model is None:
        answer = text.strip()
        if not answer:
            return None, "empty answer"
        if obs.max_words is not None:
            words = answer.split()
            if len(words) > obs.max_words:
                answer = " ".join(words[: obs.max_words])
        return answer, None
    last_error = "empty answer"
    for cand in _json_candidates(text):
        if not cand:
            continue
        try:
            return obs.action_model.model_validate_json(cand, context=obs.validation_context), None
        except ValidationError as e:
            last_error = _short_error(e)
    return None, last_error


def answer_problem(text: str, obs: Observation) -> str | None:
    """Why `text` would be refused as `obs`'s answer (None: it would be accepted), as `parse_answer` says; a
    validator that raises on an odd answer is a reason too (see `LLMPolicy._check`)."""
    try:
        return parse_answer(text, obs)[1]
    except Exception as e:  # last resort, as in LLMPolicy._check
        return f"the answer could not be checked ({type(e).__name__}: {str(e)[:300]})"


def _scores(res: LLMResult) -> tuple[TokenScores | None, str | None]:
    if res.logprobs is None:
        return None, "the backend returned no log-probabilities for a scoring request"
    try:
        return TokenScores.from_result(res), None
    except (ValueError, KeyError, TypeError) as e:
        return None, f"malformed scores: {e}"


def unserved(rows: list[dict[str, Any]]) -> list[tuple[str, str, int, str, int]]:
    """The model aliases whose requests among `rows` (one phase's call rows) the backend could not serve
    (`LLMResult.outage`): [(alias, outage, requests not served, an example error, the alias's requests)]. An alias counts when none of its
    requests was served (the server is down), or when a replay had no recorded answer for any one of them
    (`unrecorded`: the replay would log invalid answers the recorded run never gave, and call itself completed)."""
    by_alias: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_alias.setdefault(r["alias"], []).append(r)
    out = []
    for alias, rs in by_alias.items():
        missed = [r for r in rs if r.get("_outage")]
        if missed and (len(missed) == len(rs) or any(r["_outage"] == "unrecorded" for r in missed)):
            out.append((alias, missed[0]["_outage"], len({r["_obs"] for r in missed}), missed[0]["error"] or "",
                        len({r["_obs"] for r in rs})))
    return out


@dataclass
class CallLog:
    """What a decide() call leaves for the `llm_calls` table."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0


class LLMPolicy:
    def __init__(
        self,
        backend: Backend,
        models: dict[str, ModelSpec],
        seed: int,
        max_retries: int,
        logging: LoggingSpec,
        backend_name: Any = None,
        model_name: Any = None,
        reask_with_reason: bool = True,
    ):
        self.backend = backend
        self.models = models
        self.seed = seed
        self.max_retries = max_retries
        self.logging = logging
        self._backend_name = backend_name or (lambda alias: models[alias].backend)
        self._model_name = model_name or (lambda alias: models[alias].model)
        self.minds: AgentMinds | None = None
        self.redactor = Redactor.for_models(models)
        self.reask_with_reason = reask_with_reason

    def attach(self, agents: Any, mind: Mind | None, owned: Any = None) -> None:
        """Hold these agents' personas and memories (an Arrow agents table), for a family with a mind."""
        self.minds = AgentMinds(mind, agents, owned) if mind is not None else None

    def memories(self) -> dict[str, Any]:
        return self.minds.memories() if self.minds is not None else {}

    def set_memories(self, memories: dict[str, Any]) -> None:
        if self.minds is not None:
            self.minds.set_memories(memories)

    def request(self, step: int, phase: str, obs: Observation, attempt: int, refused: tuple[str, str] | None = None) -> LLMRequest:
        """The request for `obs` at `attempt`; `refused` = (the previous answer, why it was refused) adds both to
        the conversation (policy.reask_with_reason), so the re-ask says what was wrong."""
        messages = obs.messages
        if refused is not None and self.reask_with_reason and messages is not None:
            messages = [*messages, {"role": "assistant", "content": refused[0]},
                        {"role": "user", "content": REASK.format(reason=refused[1])}]
        return LLMRequest(
            request_id=f"s{step}-{phase}-{obs.agent_id}{obs.tag}-a{attempt}",
            agent_id=obs.agent_id,
            alias=obs.model,
            model=self.models[obs.model].model,
            messages=messages,
            sampling=self.models[obs.model].sampling,
            seed=derive_seed(self.seed, "request", step, phase, obs.agent_id + obs.tag, attempt),
            response_format=response_format_for(obs.action_model),
            step=step,
            attempt=attempt,
            context=obs.data,
            continuation=obs.continuation,
            score_top_k=obs.score_top_k,
            check=partial(answer_problem, obs=obs),
        )

    def _call_row(self, phase: str, req: LLMRequest, res: LLMResult, valid: bool, error: str | None, index: int) -> dict[str, Any]:
        return {
            "_obs": index,  # position in the batch; not a log column (the writer keeps only schema columns)
            "request_id": req.request_id,
            "step": req.step,
            "phase": phase,
            "agent_id": req.agent_id,
            "alias": req.alias,
            "model": self._model_name(req.alias),
            "backend": self._backend_name(req.alias),
            "attempt": req.attempt,
            "seed": req.seed,
            "request_hash": req.content_hash(),
            "prompt_tokens": res.prompt_tokens,
            "completion_tokens": res.completion_tokens,
            "cached_tokens": res.cached_tokens,
            "latency_s": res.latency_s,
            "finish_reason": res.finish_reason,
            "valid": valid,
            "error": error,
            "prompt": json.dumps(req.messages, ensure_ascii=False) if self.logging.record_prompts else None,
            "completion_text": res.text if self.logging.record_completions else None,
            "logprobs": res.logprobs,
            "_outage": res.outage,  # not a log column either: the runtime checks it for a backend that is down
        }

    async def _generate(self, reqs: list[LLMRequest]) -> list[LLMResult]:
        """The backend's results, each cleaned of credentials. If the backend raises anything but a BackendError
        (a bug, an answer it did not expect), every request of the batch gets that as its error."""
        try:
            results = await self.backend.generate(reqs)
            if len(results) != len(reqs):
                raise ValueError(f"{len(results)} results for {len(reqs)} requests")
        except BackendError:
            raise
        except Exception as e:  # last resort, see the module docstring
            why = f"the backend failed on this batch ({type(e).__name__}: {str(e)[:300]})"
            results = [LLMResult(r.request_id, "", 0, 0, "error", 0.0, error=why, retryable=False, outage="crashed")
                       for r in reqs]
        clean = self.redactor.clean
        for res in results:
            res.text = clean(res.text)
            if res.error:
                res.error = clean(res.error)
        return results

    @staticmethod
    def _check(obs: Observation, req: LLMRequest, res: LLMResult) -> tuple[Any, str | None]:
        """(action, None) for a usable answer, else (None, why)."""
        if res.error:
            return None, res.error
        try:
            if obs.continuation is not None:
                return _scores(res)
            action, error = parse_answer(res.text, obs)
        except Exception as e:  # last resort: a family's validator that raises on an answer it did not expect
            return None, f"the answer could not be checked ({type(e).__name__}: {str(e)[:300]})"
        if error is not None and res.finish_reason == "length":
            error = f"the answer was cut off at max_tokens ({req.sampling.max_tokens}) before it was complete: {error}"
        return action, error

    async def decide(
        self, step: int, phase: str, observations: list[Observation], calls: CallLog | None = None
    ) -> list[Decision]:
        calls = calls if calls is not None else CallLog()
        if self.minds is not None:
            self.minds.prompt(observations)
        else:
            for o in observations:
                if o.messages is None:
                    raise no_mind_error(o)
        decisions: list[Decision | None] = [None] * len(observations)
        pending = list(range(len(observations)))
        last: dict[int, tuple[str, str, str]] = {}
        refused: dict[int, tuple[str, str]] = {}  # answers the model gave that were refused, and why
        for attempt in range(self.max_retries + 1):
            if not pending:
                break
            reqs = [self.request(step, phase, observations[i], attempt, refused.get(i)) for i in pending]
            results = await self._generate(reqs)
            still = []
            for i, req, res in zip(pending, reqs, results, strict=True):
                obs = observations[i]
                action, error = self._check(obs, req, res)
                valid = error is None
                calls.rows.append(self._call_row(phase, req, res, valid, error, i))
                calls.prompt_tokens += res.prompt_tokens
                calls.completion_tokens += res.completion_tokens
                calls.cached_tokens += res.cached_tokens
                if valid:
                    decisions[i] = Decision(obs.agent_id, action, res.text, True, req.request_id, attempt + 1)
                elif res.retryable:
                    last[i] = (res.text, req.request_id, error or "invalid")
                    if not res.error:  # the model answered, wrongly: tell it why (not for a server's error)
                        refused[i] = (res.text, error or "invalid")
                    still.append(i)
                else:
                    decisions[i] = Decision(obs.agent_id, None, res.text, False, req.request_id, attempt + 1, error)
            pending = still
        for i in pending:
            text, rid, error = last[i]
            decisions[i] = Decision(observations[i].agent_id, None, text, False, rid, self.max_retries + 1, error)
        done = [d for d in decisions if d is not None]
        if self.minds is not None:
            self.minds.remember(observations, done)
        return done
