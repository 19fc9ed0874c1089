"""The policy's re-ask: a refused answer comes back to the model with the reason, so it can correct it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agentsim.core.policy import REASK, CallLog, LLMPolicy
from agentsim.core.types import Observation
from agentsim.llm.types import LLMRequest, LLMResult
from agentsim.scenarios.wargame.actions import make_turn_model, target_kinds
from agentsim.scenarios.wargame.data import load_actions
from agentsim.spec.models import LoggingSpec, ModelSpec

NATIONS = ["Red", "Blue"]
SELF_NUKE = '{"reasoning": "", "actions": [{"action_name": "Execute full nuclear attack", "target_nation": "Red"}], "messages": []}'
FIXED = '{"reasoning": "", "actions": [{"action_name": "Wait", "target_nation": "Red"}], "messages": []}'


class Scripted:
    """Answers each agent's attempts with a fixed list of texts (a server with canned answers) and keeps the
    messages it was sent."""

    name = "canned"

    def __init__(self, answers: list[str], error_first: str | None = None):
        self.answers = answers
        self.error_first = error_first
        self.seen: list[list[dict[str, str]]] = []

    async def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        out = []
        for r in requests:
            self.seen.append(r.messages)
            if self.error_first and r.attempt == 0:
                out.append(LLMResult(r.request_id, "", 0, 0, "error", 0.0, error=self.error_first))
            else:
                out.append(LLMResult(r.request_id, self.answers[min(r.attempt, len(self.answers) - 1)], 10, 5, "stop", 0.0))
        return out

    def close(self) -> None:
        pass


def decide(backend: Any, reask: bool) -> Any:
    actions = load_actions()
    model = make_turn_model([a.name for a in actions], NATIONS, 3, 2, 500, 200, kinds=target_kinds(actions), nation="Red")
    policy = LLMPolicy(backend, {"m": ModelSpec(backend="scripted")}, seed=0, max_retries=2, logging=LoggingSpec(),
                       reask_with_reason=reask)
    prompt = [{"role": "system", "content": "rules"}, {"role": "user", "content": "your turn, Red"}]
    obs = [Observation("Red", "m", prompt, model, validation_context={"nation": "Red"})]
    calls = CallLog()
    return asyncio.run(policy.decide(0, "nations", obs, calls)), calls.rows, prompt


def test_a_refused_answer_is_asked_again_with_the_reason() -> None:
    backend = Scripted([SELF_NUKE, FIXED])
    (d,), rows, prompt = decide(backend, reask=True)
    assert d.valid and d.attempts == 2
    first, second = backend.seen
    assert first == prompt
    assert second[:2] == prompt and second[2] == {"role": "assistant", "content": SELF_NUKE}
    assert second[3]["role"] == "user" and "cannot aim 'Execute full nuclear attack' at itself" in second[3]["content"]
    assert second[3]["content"] == REASK.format(reason=rows[0]["error"])
    assert rows[0]["request_hash"] != rows[1]["request_hash"]  # the replay backend keys the re-ask on its own text


def test_without_reask_with_reason_the_same_prompt_is_sent_again() -> None:
    backend = Scripted([SELF_NUKE, FIXED])
    (d,), rows, prompt = decide(backend, reask=False)
    assert d.valid and backend.seen == [prompt, prompt]


@pytest.mark.parametrize("reask", [True, False])
def test_a_servers_error_is_not_presented_to_the_model_as_its_answer(reask: bool) -> None:
    backend = Scripted([FIXED], error_first="server answered 503: overloaded")
    (d,), rows, prompt = decide(backend, reask=reask)
    assert d.valid and backend.seen == [prompt, prompt]


def test_every_re_ask_carries_the_latest_refusal() -> None:
    backend = Scripted([SELF_NUKE, "not json at all", FIXED])
    (d,), rows, prompt = decide(backend, reask=True)
    assert d.valid and d.attempts == 3
    third = backend.seen[2]
    assert len(third) == 4 and third[2]["content"] == "not json at all"  # the last refused answer, not a growing log
