"""The scripted backend: each family's rule-based policy answers instead of an LLM.

It answers the same requests an LLM would get, with JSON text, so the prompt, parse, validate and log path is
the same as for a real model; only the model is replaced. Its randomness comes from the request seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import BaseModel

from agentsim.llm.types import LLMRequest, LLMResult

ScriptedPolicy = Callable[[Any, np.random.Generator], BaseModel | str]


NO_LOGPROBS = "the scripted backend has no token probabilities; log-probability measures need the vllm backend"


def word_count(text: str) -> int:
    return len(text.split())


class ScriptedBackend:
    """Token counts are whitespace-delimited words (there is no tokenizer); latency is zero by definition,
    which keeps scripted logs byte-identical across runs."""

    name = "scripted"

    def __init__(self, policy: ScriptedPolicy):
        self.policy = policy

    async def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        out = []
        for r in requests:
            if r.continuation is not None:
                out.append(LLMResult(r.request_id, "", 0, 0, "error", 0.0, error=NO_LOGPROBS, retryable=False))
                continue
            answer = self.policy(r.context, np.random.default_rng(r.seed))
            text = answer.model_dump_json() if isinstance(answer, BaseModel) else str(answer)
            prompt_words = sum(word_count(m.get("content", "")) for m in r.messages)
            out.append(LLMResult(r.request_id, text, prompt_words, word_count(text), "stop", 0.0))
        return out

    def close(self) -> None:
        pass
