"""Conformance test for scenario families, after PettingZoo's api_test: every family's test suite calls
`check_world(scenario)`. It drives the world with the family's scripted policy and checks the contract the
runtime relies on."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Any

import pyarrow as pa
from pydantic import BaseModel

from agentsim.core.policy import CallLog, LLMPolicy, response_format_for
from agentsim.core.seeding import make_rng
from agentsim.core.state import join_arrays, same_state, split_arrays
from agentsim.core.world import StepContext, World, agents_table
from agentsim.llm.router import BackendRouter
from agentsim.llm.scripted import ScriptedBackend
from agentsim.logs.schema import EVENTS, METRICS


class ConformanceError(AssertionError):
    pass


def _drive(scenario: Any, steps: int) -> tuple[World, list[dict[str, Any]], list[dict[str, Any]]]:
    spec = scenario.spec
    world = scenario.family.create_world(spec, scenario.world)
    backend = ScriptedBackend(scenario.family.scripted_policy)
    policy = LLMPolicy(BackendRouter(dict.fromkeys(spec.models, backend)), spec.models, spec.seed, 0, spec.logging)
    make_mind = scenario.family.create_mind
    policy.attach(agents_table(world), make_mind(spec, scenario.world) if make_mind else None)
    rng = make_rng(spec.seed, "world")
    events: list[dict[str, Any]] = []
    metrics: list[dict[str, Any]] = []
    next_id = 0
    agent_ids = {a.agent_id for a in world.agents()}
    for step in range(steps):
        ctx = StepContext(step, world.sim_time(step), rng, next_id)
        for phase in world.phases:
            ctx.phase = phase
            obs = world.observe(ctx, phase)
            for o in obs:
                if o.agent_id not in agent_ids:
                    raise ConformanceError(f"step {step} {phase}: observation for unknown agent {o.agent_id!r}")
                if o.model not in spec.models:
                    raise ConformanceError(f"step {step} {phase}: {o.agent_id} uses unknown model alias {o.model!r}")
                if o.messages is None and make_mind is None:
                    raise ConformanceError(f"step {step} {phase}: {o.agent_id}'s observation has no messages and the family no mind")
                if o.action_model is not None:
                    if not (isinstance(o.action_model, type) and issubclass(o.action_model, BaseModel)):
                        raise ConformanceError(f"{o.agent_id}: action_model must be a pydantic model")
                    response_format_for(o.action_model)  # the schema must be serialisable for structured decoding
            if len({(o.agent_id, o.tag) for o in obs}) != len(obs):
                raise ConformanceError(f"step {step} {phase}: an agent was observed twice in one batch")
            decisions = asyncio.run(policy.decide(step, phase, obs, CallLog()))
            for o in obs:  # the mind has built the missing prompts by now
                if not o.messages or any(set(m) != {"role", "content"} for m in o.messages):
                    raise ConformanceError(f"step {step} {phase}: {o.agent_id}'s prompt is not a list of chat messages")
            # Scoring requests need a model's probabilities, which the scripted backend does not have.
            bad = [d for d, o in zip(decisions, obs, strict=True) if not d.valid and o.continuation is None]
            if bad:
                raise ConformanceError(f"step {step} {phase}: the scripted policy's answer for {bad[0].agent_id} does not validate: {bad[0].error}")
            world.apply(ctx, phase, decisions)
        events.extend(asdict(e) for e in ctx.events)
        metrics.extend(asdict(m) for m in ctx.metrics)
        next_id = ctx.next_event_id
    try:
        json.dumps(policy.memories())
    except (TypeError, ValueError) as e:
        raise ConformanceError(f"the mind's memories are not JSON (checkpoints store them): {e}") from e
    return world, events, metrics


def check_world(scenario: Any, steps: int = 3) -> None:
    """Raise ConformanceError if the family breaks the contract; return None if it keeps it."""
    world, events, metrics = _drive(scenario, steps)
    _, again, again_metrics = _drive(scenario, steps)
    if events != again or metrics != again_metrics:
        raise ConformanceError("the same seed gave different events or metrics (determinism)")
    try:
        pa.Table.from_pylist(events, schema=EVENTS)
        pa.Table.from_pylist(metrics, schema=METRICS)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise ConformanceError(f"events or metrics do not fit the log schema: {e}") from e
    # The state must survive what a checkpoint does to it: JSON for the structure, numpy arrays kept aside.
    state = world.get_state()
    structure, arrays = split_arrays(state)
    try:
        structure = json.loads(json.dumps(structure))
    except (TypeError, ValueError) as e:
        raise ConformanceError(f"get_state() holds something neither JSON nor a numpy array: {e}") from e
    fresh = scenario.family.create_world(scenario.spec, scenario.world)
    fresh.set_state(join_arrays(structure, arrays))
    if not same_state(fresh.get_state(), state):
        raise ConformanceError("set_state(get_state()) does not restore the world")
