"""Benchmark: how a phase's observations travel to shard actors.

Takes the observations a real world produces in one phase (the social world: every acting user's view and action
model) and puts each encoding through Ray's serializer, as an actor call does: `ray.put` then `ray.get` from the
object store. Side by side:

- a bare list of Observation objects (Ray serialises the list item by item: one pickle per observation),
- the same list with the chat prompts built in the driver (what the runtime sent before minds moved prompt
  building into the shards),
- `ObservationBlock`, what the runtime sends now: one object, ids as Arrow, numbers as numpy, each distinct action
  model once, prompts left to the shard's mind.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def phase_observations(users: int, active: float) -> tuple[list[Any], Any, Any]:
    """(the users phase's observations, the world, its mind)."""
    from agentsim.bench.social_scale import scale_scenario
    from agentsim.core.world import StepContext

    sc = scale_scenario(users, 1, active, out=Path(tempfile.gettempdir()))
    world = sc.family.create_world(sc.spec, sc.world)
    ctx = StepContext(0, world.sim_time(0), np.random.default_rng(0), 0)
    ctx.phase = "platform"
    world.apply(ctx, "platform", [])
    return world.observe(ctx, "users"), world, sc.family.create_mind(sc.spec, sc.world)


def _time(fn: Any, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_transport(users: int = 100_000, active: float = 0.1) -> list[dict[str, Any]]:
    import copy

    import ray

    from agentsim.core.mind import AgentMinds
    from agentsim.core.world import agents_table
    from agentsim.runtime.ray_runtime import ObservationBlock, start_ray

    obs, world, mind = phase_observations(users, active)
    with_prompts = [copy.copy(o) for o in obs]
    AgentMinds(mind, agents_table(world)).prompt(with_prompts)  # as the driver would, if it built the prompts
    start_ray(None, log=lambda m: None)
    positions = np.arange(len(obs), dtype=np.int64)
    # Each case: what the driver builds, and what the shard does with what it gets.
    cases = {
        "list of observations, prompts built in the driver": (lambda: with_prompts, lambda x: x),
        "list of observations, prompts left to the shard": (lambda: obs, lambda x: x),
        "ObservationBlock (what the runtime sends)": (lambda: ObservationBlock.of(positions, obs), lambda b: b.observations()),
    }
    rows = []
    for name, (make, use) in cases.items():
        def trip(make: Any = make, use: Any = use) -> Any:
            return use(ray.get(ray.put(make())))

        t = _time(trip)
        rows.append({"encoding": name, "observations": len(obs), "put_get_s": t})
    base = rows[0]["put_get_s"]
    for r in rows:
        r["time_vs_first"] = r["put_get_s"] / base
    return rows
