"""The openai backend: any OpenAI-compatible chat-completions server (vllm serve, Ray Serve LLM, Ollama, hosted).

The official client does the retries: exponential backoff with jitter on 429, 5xx, connection errors and
timeouts, honouring Retry-After. A semaphore per alias bounds the requests in flight. JSON schemas go to vLLM
servers as `extra_body.structured_outputs` and to others as `response_format`. The API key is read from the
environment variable the YAML names, and only from there.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from agentsim.llm.types import BackendError, LLMRequest, LLMResult
from agentsim.spec.models import ModelSpec

NO_SCORING = (
    "the openai backend cannot score a given continuation (chat completions return no prompt log-probabilities); "
    "log-probability measures need the vllm backend"
)


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
        for alias, spec in models.items():
            key = "EMPTY"  # local servers accept any key
            if spec.api_key_env:
                key = os.environ.get(spec.api_key_env, "")
                if not key:
                    raise BackendError(f"models.{alias}.api_key_env: the environment variable {spec.api_key_env} is not set")
            self._clients[alias] = AsyncOpenAI(base_url=spec.base_url, api_key=key, max_retries=spec.max_retries, timeout=spec.timeout_s)

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

        async with self._limit(r.alias):
            t0 = time.perf_counter()
            try:
                resp = await self._clients[r.alias].chat.completions.create(**self._kwargs(r))
            except openai.APIStatusError as e:
                return LLMResult(r.request_id, "", 0, 0, "error", time.perf_counter() - t0,
                                 error=f"server answered {e.status_code}: {str(e)[:300]}", retryable=e.status_code >= 500 or e.status_code == 429)
            except openai.APIError as e:  # connection errors and timeouts, after the client's own retries
                return LLMResult(r.request_id, "", 0, 0, "error", time.perf_counter() - t0, error=f"{type(e).__name__}: {str(e)[:300]}")
            latency = time.perf_counter() - t0
        choice = resp.choices[0]
        usage = resp.usage
        lps = None
        if choice.logprobs is not None and choice.logprobs.content is not None:
            lps = [float(t.logprob) for t in choice.logprobs.content]
        return LLMResult(
            r.request_id, choice.message.content or "", int(usage.prompt_tokens if usage else 0),
            int(usage.completion_tokens if usage else 0), str(choice.finish_reason or "unknown"), latency, logprobs=lps,
        )

    async def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        return list(await asyncio.gather(*[self._one(r) for r in requests]))

    def close(self) -> None:
        self._clients.clear()
