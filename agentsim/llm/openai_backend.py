"""The openai backend: any OpenAI-compatible chat-completions server (vllm serve, Ray Serve LLM, Ollama, hosted).

The official client does the retries: exponential backoff with jitter on 429, 5xx, connection errors and
timeouts, honouring Retry-After. A semaphore per alias bounds the requests in flight. JSON schemas go to vLLM
servers as `extra_body.structured_outputs` and to others as `response_format`. The API key is read from the
environment variable the YAML names, and only from there.

Whatever a server sends back is that request's result, never the run's exception: the body is read raw and
checked against `ChatAnswer` (the part of the chat-completion shape this backend uses) in one place, so an empty
`choices`, an HTML page, a truncated body or a number where text belongs becomes an error naming what was wrong.
Failures on the server's side (nothing listening, the key refused, an unknown model) are marked as outages
(`LLMResult.outage`), which the runtime tells apart from a model that answers badly.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from agentsim.llm.types import BackendError, LLMRequest, LLMResult
from agentsim.spec.models import OPENAI_TIMEOUT_S, ModelSpec

NO_SCORING = (
    "the openai backend cannot score a given continuation (chat completions return no prompt log-probabilities); "
    "log-probability measures need the vllm backend"
)
#: How much of an unusable body an error quotes.
QUOTE = 200

# HTTP statuses that mean the server cannot serve any request of this alias, as opposed to one bad request.
_OUTAGE_STATUS = {401: "refused", 403: "refused", 404: "not_found", 502: "unavailable", 503: "unavailable",
                  504: "unavailable"}


# -- the answer's shape --------------------------------------------------------------------------------------------
# Only what this backend reads; unknown fields are ignored (servers add their own). Types are checked: a number
# where the text belongs is an error, not text.
class _TokenLogprob(BaseModel):
    logprob: float


class _Logprobs(BaseModel):
    content: list[_TokenLogprob] | None = None


class _Message(BaseModel):
    content: str | None = None
    tool_calls: list[Any] | None = None
    refusal: str | None = None


class _Choice(BaseModel):
    message: _Message
    finish_reason: str | None = None
    logprobs: _Logprobs | None = None


class _PromptDetails(BaseModel):
    cached_tokens: int | None = None


class _Usage(BaseModel):
    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)
    prompt_tokens_details: _PromptDetails | None = None


class ChatAnswer(BaseModel):
    """The fields of an OpenAI chat completion this backend uses. A missing `usage` counts zero tokens."""

    choices: list[_Choice] = Field(min_length=1)
    usage: _Usage | None = None


def _shape_error(e: ValidationError) -> str:
    parts = []
    for err in e.errors(include_url=False)[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "(body)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _quote(body: bytes) -> str:
    text = body[:QUOTE].decode("utf-8", "replace")
    return repr(text) + ("..." if len(body) > QUOTE else "")


def read_answer(body: bytes, content_type: str, status: int = 200) -> LLMResult:
    """One server answer -> a result (request id and latency left to the caller). Never raises: a body of the
    wrong shape is an error result that quotes the start of the body."""
    try:
        ans = ChatAnswer.model_validate_json(body)
    except ValidationError as e:
        what = "not JSON" if any(err["type"] == "json_invalid" for err in e.errors()) else "not a chat completion"
        return LLMResult("", "", 0, 0, "error", 0.0, error=(
            f"unusable answer from the server (HTTP {status}, {content_type or 'no content type'}): {what} "
            f"({_shape_error(e)}); body {_quote(body)}"))
    choice = ans.choices[0]
    usage = ans.usage or _Usage()
    cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else None
    lps = [t.logprob for t in choice.logprobs.content] if choice.logprobs and choice.logprobs.content is not None else None
    finish = choice.finish_reason or "unknown"
    msg = choice.message
    text = msg.content or ""
    error = None
    if finish == "content_filter":
        error = "the server's content filter withheld the answer (finish_reason content_filter)"
    elif not text and msg.tool_calls:
        names = [str((c or {}).get("function", {}).get("name", "?")) if isinstance(c, dict) else "?" for c in msg.tool_calls]
        error = f"the model called tools ({', '.join(names[:5])}) instead of answering with text"
    elif not text and msg.refusal:
        error = f"the model refused: {msg.refusal[:QUOTE]}"
    return LLMResult("", text, usage.prompt_tokens, usage.completion_tokens, finish, 0.0, logprobs=lps,
                     error=error, cached_tokens=cached or 0)


def _cause_names(e: BaseException) -> set[str]:
    """Class names along the chain of causes: the client wraps its HTTP library's errors (httpx or httpx2,
    depending on its version; both name them alike) in APIConnectionError."""
    names: set[str] = set()
    seen = 0
    cur: BaseException | None = e
    while cur is not None and seen < 8:
        names.update(c.__name__ for c in type(cur).__mro__)
        cur, seen = cur.__cause__ or cur.__context__, seen + 1
    return names


class OpenAIBackend:
    name = "openai"

    def __init__(self, models: dict[str, ModelSpec]):
        try:
            from openai import AsyncOpenAI
        except ImportError as e:  # pragma: no cover
            raise BackendError("the openai backend needs the openai package: pip install openai") from e
        self.models = models
        self._clients: dict[str, Any] = {}
        self._limits: dict[str, asyncio.Semaphore] = {}
        #: alias -> why its server could not be connected to, while no request of this batch has reached it since:
        #: requests still queued fail at once instead of each spending the client's retries on a dead address.
        self._down: dict[str, str] = {}
        for alias, spec in models.items():
            key = "EMPTY"  # local servers accept any key
            if spec.api_key_env:
                key = os.environ.get(spec.api_key_env, "")
                if not key:
                    raise BackendError(f"models.{alias}.api_key_env: the environment variable {spec.api_key_env} is not set")
            self._clients[alias] = AsyncOpenAI(base_url=spec.base_url, api_key=key, max_retries=spec.max_retries, timeout=spec.timeout_s or OPENAI_TIMEOUT_S)

    def _limit(self, alias: str) -> asyncio.Semaphore:
        # Created lazily, inside the running event loop.
        if alias not in self._limits:
            self._limits[alias] = asyncio.Semaphore(self.models[alias].max_concurrency)
        return self._limits[alias]

    def _kwargs(self, r: LLMRequest) -> dict[str, Any]:
        spec = self.models[r.alias]
        s = r.sampling
        kw: dict[str, Any] = dict(model=spec.model, messages=r.messages, temperature=s.temperature, top_p=s.top_p,
                                  max_tokens=s.max_tokens, seed=r.seed)
        if s.logprobs is not None:
            kw.update(logprobs=True, top_logprobs=s.logprobs)
        fmt = r.response_format
        extra: dict[str, Any] = {}
        if fmt.kind != "text" and spec.structured_outputs == "vllm":
            key = {"json": "json", "choice": "choice", "regex": "regex"}[fmt.kind]
            value = {"json": fmt.json_schema, "choice": list(fmt.choices or ()), "regex": fmt.regex}[fmt.kind]
            extra["structured_outputs"] = {key: value}
        elif fmt.kind == "json" and spec.structured_outputs == "response_format":
            kw["response_format"] = {"type": "json_schema", "json_schema": {"name": "action", "schema": fmt.json_schema}}
        if extra:
            kw["extra_body"] = extra
        return kw

    async def _one(self, r: LLMRequest) -> LLMResult:
        if r.continuation is not None:
            return LLMResult(r.request_id, "", 0, 0, "error", 0.0, error=NO_SCORING, retryable=False)
        import openai

        def failed(error: str, outage: str | None = None, retryable: bool = True) -> LLMResult:
            return LLMResult(r.request_id, "", 0, 0, "error", time.perf_counter() - t0, error=error,
                             retryable=retryable and outage is None, outage=outage)

        async with self._limit(r.alias):
            t0 = time.perf_counter()
            if r.alias in self._down:
                return failed(f"not sent: {self._down[r.alias]}", "unreachable")
            try:
                raw = await self._clients[r.alias].chat.completions.with_raw_response.create(**self._kwargs(r))
            except openai.APIStatusError as e:
                self._down.pop(r.alias, None)
                code = e.status_code
                return failed(f"server answered {code}: {str(e)[:300]}", _OUTAGE_STATUS.get(code),
                              retryable=code >= 500 or code == 429)
            except openai.APITimeoutError as e:
                return failed(f"no answer within {self.models[r.alias].timeout_s or OPENAI_TIMEOUT_S:g} s (timeout_s), after "
                              f"{self.models[r.alias].max_retries} retries: {e}", "unreachable")
            except openai.APIConnectionError as e:
                # Nothing listening, no such host: the server is unreachable. A connection dropped in the middle
                # of an answer (a truncated body) is that request's error.
                names = _cause_names(e)
                if names & {"ConnectError", "ConnectTimeout"}:
                    cause = e.__cause__ or e.__context__
                    why = f"cannot connect to {self.models[r.alias].base_url} ({cause or e})"
                    self._down[r.alias] = why
                    return failed(why, "unreachable")
                detail = next((str(c) for c in (e.__cause__, e.__context__) if c is not None and str(c)), str(e))
                return failed(f"the connection failed during the answer: {detail[:300]}")
            except openai.APIError as e:  # the client's own checks of the response
                self._down.pop(r.alias, None)
                return failed(f"{type(e).__name__}: {str(e)[:300]}")
            latency = time.perf_counter() - t0
        self._down.pop(r.alias, None)
        res = read_answer(raw.content, raw.headers.get("content-type", ""), raw.status_code)
        res.request_id, res.latency_s = r.request_id, latency
        return res

    async def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        self._down.clear()  # each batch tries every server again
        return list(await asyncio.gather(*[self._one(r) for r in requests]))

    def close(self) -> None:
        self._clients.clear()
