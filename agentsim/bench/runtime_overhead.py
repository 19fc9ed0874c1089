"""Benchmark: agent-steps/s of the Ray runtime (agent shards as actors) and the local runtime, same world, same
run, scripted backend; plus peak memory per agent."""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from agentsim.core.registry import registered
from agentsim.runtime.local import LocalRuntime
from agentsim.spec.loader import parse_scenario


def _scenario(agents: int, steps: int, runtime: dict[str, Any], out: Path) -> Any:
    with registered("echo", "agentsim.bench.echo:FAMILY"):  # the scenario keeps the family object
        return parse_scenario({
            "kind": "echo", "name": "bench-echo", "seed": 0, "steps": steps,
            "models": {"default": {"backend": "scripted"}}, "world": {"agents": agents},
            "runtime": {**runtime, "checkpoint_every": None}, "logging": {"dir": str(out), "record_completions": False},
        })


def run_runtime_overhead(agents: int, steps: int, shards: int, address: str | None = None, log: Any = print) -> dict[str, float]:
    from agentsim.llm.router import build_backend
    from agentsim.runtime.ray_runtime import ShardedPolicy, make_shards

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        sc = _scenario(agents, steps, {"kind": "local"}, Path(tmp))
        router = build_backend(sc.spec.models, sc.family.scripted_policy)
        rt = LocalRuntime(sc, router, Path(tmp) / "local")
        t0 = time.perf_counter()
        rt.run()
        out["local_s"] = time.perf_counter() - t0
        out["local_peak_bytes_per_agent"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) * 1024 / agents
        sc = _scenario(agents, steps, {"kind": "ray", "shards": shards, "address": address}, Path(tmp))
        shard_actors, _ = make_shards(sc.spec, sc.family.scripted_policy, None, log=log)
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rt = LocalRuntime(sc, None, Path(tmp) / "ray", policy=ShardedPolicy(shard_actors))
        t0 = time.perf_counter()
        rt.run()
        out["ray_s"] = time.perf_counter() - t0
        # The driver's peak only grows past the local run's if the Ray run needs more; the shards' growth since
        # they were created is what holding and answering their agents cost.
        import ray

        peaks = ray.get([a.peak_rss.remote() for a in shard_actors])
        out["ray_driver_extra_bytes_per_agent"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss1) * 1024 / agents
        out["ray_shard_bytes_per_agent"] = sum(now - at0 for at0, now in peaks) / agents
        out["ray_shard_base_bytes"] = sum(at0 for at0, _ in peaks) / len(peaks)
    out["local_agent_steps_per_s"] = agents * steps / out["local_s"]
    out["ray_agent_steps_per_s"] = agents * steps / out["ray_s"]
    out["ratio"] = out["ray_agent_steps_per_s"] / out["local_agent_steps_per_s"]
    return out
