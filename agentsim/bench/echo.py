"""A minimal family for runtime benchmarks: N agents, every one acts every step with a one-line prompt and a
typed answer. It measures the platform's own cost per agent-step (observations, requests, parsing, logging)
with the scripted backend, so the runtimes can be compared without an LLM in the way."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agentsim.core.family import Family
from agentsim.core.types import AgentRecord, Decision, Observation
from agentsim.core.world import StepContext
from agentsim.spec.models import StrictModel


class EchoConfig(StrictModel):
    agents: int = Field(1000, ge=1, le=10_000_000)
    log_events: bool = Field(False, description="Also log one event per agent-step (off: measure the step path).")


class Echo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: int


class EchoWorld:
    phases = ("act",)

    def __init__(self, config: EchoConfig, model: str):
        self.config = config
        self.model = model
        self.ids = [f"a{i}" for i in range(config.agents)]
        self.total = 0

    def agents(self) -> list[AgentRecord]:
        return [AgentRecord(a, "echo", self.model) for a in self.ids]

    def sim_time(self, step: int) -> float:
        return float(step)

    def observe(self, ctx: StepContext, phase: str) -> list[Observation]:
        # No prompt text here: EchoMind builds it where the agent lives (a shard, under Ray).
        return [Observation(a, self.model, None, Echo, (ctx.step, i)) for i, a in enumerate(self.ids)]

    def apply(self, ctx: StepContext, phase: str, decisions: list[Decision]) -> None:
        values = [d.action.value for d in decisions if d.valid]
        self.total += int(np.sum(values))
        if self.config.log_events:
            for d in decisions:
                ctx.emit(d.agent_id, "echo", None, {"value": d.action.value} if d.valid else None)
        ctx.metric("sum", float(self.total))

    def get_state(self) -> dict[str, Any]:
        return {"total": self.total}

    def set_state(self, state: dict[str, Any]) -> None:
        self.total = state["total"]


class EchoMind:
    """The prompt names the step and the agent's last answer (its memory)."""

    def messages(self, persona: dict[str, Any], memory: Any, obs: Observation) -> list[dict[str, str]]:
        last = "" if memory is None else f" (last time you said {memory})"
        return [{"role": "user", "content": f"step {obs.data[0]}: reply with a number{last}"}]

    def remember(self, memory: Any, obs: Observation, decision: Decision) -> Any:
        return decision.action.value if decision.valid else memory


def scripted(data: Any, rng: np.random.Generator) -> Echo:
    return Echo(value=(data[0] + data[1]) % 7)


FAMILY = Family(
    name="echo",
    description="Benchmark family: every agent answers a one-line prompt each step.",
    config_model=EchoConfig,
    create_world=lambda spec, config: EchoWorld(config, spec.population.model),
    scripted_policy=scripted,
    create_mind=lambda spec, config: EchoMind(),
)
