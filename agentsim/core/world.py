"""The World protocol and the step context through which a world writes events and metrics."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from agentsim.core.types import AgentRecord, Decision, Event, Metric, Observation


class StepContext:
    """Handed to a world for one step. Events get run-wide sequential ids at emission, so a world can link
    later events to earlier ones (`parent_event_id`) without keeping its own counter."""

    def __init__(self, step: int, sim_time: float, rng: np.random.Generator, next_event_id: int):
        self.step = step
        self.sim_time = sim_time
        self.rng = rng
        self.phase = ""
        self.events: list[Event] = []
        self.metrics: list[Metric] = []
        self._next_id = next_event_id

    @property
    def next_event_id(self) -> int:
        return self._next_id

    def emit(
        self,
        agent_id: str,
        action: str,
        target: str | None = None,
        payload: dict[str, Any] | None = None,
        parent_event_id: int | None = None,
        request_id: str | None = None,
    ) -> int:
        eid = self._next_id
        self._next_id += 1
        self.events.append(
            Event(
                event_id=eid,
                step=self.step,
                sim_time=self.sim_time,
                phase=self.phase,
                agent_id=agent_id,
                action=action,
                target=target,
                payload=json.dumps(payload, sort_keys=True, ensure_ascii=False) if payload is not None else None,
                parent_event_id=parent_event_id,
                request_id=request_id,
            )
        )
        return eid

    def metric(self, name: str, value: float, agent_id: str | None = None) -> None:
        self.metrics.append(Metric(self.step, name, float(value), agent_id))


@runtime_checkable
class World(Protocol):
    """A simulated environment. One step runs each phase in order: observe all acting agents in one batch,
    let the policy answer them in one batch, then apply the decisions simultaneously."""

    phases: Sequence[str]

    def agents(self) -> list[AgentRecord]: ...

    def sim_time(self, step: int) -> float: ...

    def observe(self, ctx: StepContext, phase: str) -> list[Observation]: ...

    def apply(self, ctx: StepContext, phase: str, decisions: list[Decision]) -> None: ...

    def get_state(self) -> dict[str, Any]: ...

    def set_state(self, state: dict[str, Any]) -> None: ...


def agents_table(world: World) -> Any:
    """The world's agents as an Arrow table (the `agents` log table). A world with a million agents builds it in
    columns (`agent_table()`) instead of one object per agent."""
    import pyarrow as pa

    from agentsim.logs.schema import AGENTS

    table_fn = getattr(world, "agent_table", None)
    if table_fn is not None:
        return table_fn()
    return pa.Table.from_pylist([
        {"agent_id": a.agent_id, "kind": a.kind, "model": a.model, "group": a.group,
         "persona": json.dumps(a.persona, sort_keys=True, ensure_ascii=False, default=str)}
        for a in world.agents()
    ], schema=AGENTS)
