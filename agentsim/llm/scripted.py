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

#: What a scripted agent answers in an interview: a rule-based policy has no reasons beyond its rules, so it says so
#: and repeats the answer it gave (the conversation's last assistant turn), which is all it can truthfully tell.
INTERVIEW_ANSWER = "I am a scripted (rule-based) policy: I follow fixed rules and have no reasons beyond them."


def interview_answer(messages: list[dict[str, str]]) -> str:
    """The scripted backend's answer to an interview question (see INTERVIEW_ANSWER)."""
    given = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "assistant"), None)
    return INTERVIEW_ANSWER + (f" My answer was: {given}" if given else "")


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
            if r.purpose == "interview":
                text = interview_answer(r.messages)
                out.append(LLMResult(r.request_id, text, sum(word_count(m.get("content", "")) for m in r.messages),
                                     word_count(text), "stop", 0.0))
                continue
            answer = self.policy(r.context, np.random.default_rng(r.seed))
            text = answer.model_dump_json() if isinstance(answer, BaseModel) else str(answer)
            prompt_words = sum(word_count(m.get("content", "")) for m in r.messages)
            out.append(LLMResult(r.request_id, text, prompt_words, word_count(text), "stop", 0.0))
        return out

    def close(self) -> None:
        pass
