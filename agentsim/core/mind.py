"""Minds: where an agent's persona and memory live and where its prompt is built.

A world may leave `Observation.messages` empty and put the agent's view of the world in `data`. The family's
mind then turns (persona, memory, view) into the chat prompt and, once the agent has decided, updates its memory.
The policy runs the mind wherever the agents are: in the driver under the local runtime, in the shard actor that
owns the agent under Ray. So prompt text is built in parallel on the shards, only compact views travel to them,
and memories stay with their agents. Memories are JSON values, so checkpoints can store them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

import pyarrow as pa

from agentsim.core.types import Decision, Observation


class Mind(Protocol):
    """A family's prompt builder and memory keeper (pickled to the shards, so it holds configuration only)."""

    def messages(self, persona: dict[str, Any], memory: Any, obs: Observation) -> list[dict[str, str]]: ...

    def remember(self, memory: Any, obs: Observation, decision: Decision) -> Any:
        """The agent's memory after this decision (None: nothing to remember)."""
        ...


class AgentStateLost(RuntimeError):
    """A shard lost the personas and memories it held (its actor died and was restarted empty)."""


class AgentMinds:
    """The personas and memories of the agents one policy holds, and the family's mind that uses them.

    Personas stay in the Arrow agents table (JSON text per agent) and are parsed when the agent acts: a million
    parsed persona dicts would cost more than the table itself.
    """

    def __init__(self, mind: Mind, agents: pa.Table, owned: Callable[[str], bool] | None = None):
        self.mind = mind
        self.personas = agents.column("persona")
        ids = agents.column("agent_id").to_pylist()
        self.row = {a: i for i, a in enumerate(ids) if owned is None or owned(a)}
        self.memory: dict[str, Any] = {}

    def persona(self, agent_id: str) -> dict[str, Any]:
        i = self.row.get(agent_id)
        if i is None:
            raise KeyError(f"agent {agent_id!r} is not held here (not in the agents table, or owned by another shard)")
        raw = self.personas[i].as_py()
        return json.loads(raw) if raw else {}

    def prompt(self, observations: list[Observation]) -> None:
        """Fill in the messages of observations that came without them."""
        for o in observations:
            if o.messages is None:
                o.messages = self.mind.messages(self.persona(o.agent_id), self.memory.get(o.agent_id), o)

    def remember(self, observations: list[Observation], decisions: list[Decision]) -> None:
        for o, d in zip(observations, decisions, strict=True):
            m = self.mind.remember(self.memory.get(o.agent_id), o, d)
            if m is None:
                self.memory.pop(o.agent_id, None)
            else:
                self.memory[o.agent_id] = m

    def memories(self) -> dict[str, Any]:
        return dict(self.memory)

    def set_memories(self, memories: dict[str, Any]) -> None:
        self.memory = {a: m for a, m in memories.items() if a in self.row}


def no_mind_error(obs: Observation) -> ValueError:
    return ValueError(f"the observation of {obs.agent_id!r} has no messages, and the family has no mind to build them")
