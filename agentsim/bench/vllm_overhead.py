"""Benchmark: how much of the raw engine throughput a simulation keeps.

One run, one engine: the scenario is simulated for a few steps through the full path (observations, prompts,
tokenization, structured decoding, parsing, retries, logging), recording every batch sent to the engine. Then the
same batches (same token ids, sampling parameters and seeds) go straight to `LLM.generate`. The prefix cache is
reset before each side so neither inherits the other's cache. Ratio = simulated tokens/s / raw tokens/s.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentsim.llm.router import BackendRouter, build_backend
from agentsim.llm.types import LLMRequest, LLMResult
from agentsim.runtime.local import LocalRuntime
from agentsim.spec.loader import Scenario, apply_overrides, parse_scenario


def bench_model(name: str) -> tuple[str, int]:
    """(model path or name, max_model_len) of a benchmark's --model: 'tiny' (the random-weight Llama built offline
    in the temp dir; its small tokenizer needs a long context), 'embedded' (SmolLM2) or any model path / hub name."""
    if name == "tiny":
        from agentsim.llm.tiny import build_tiny_model

        return str(build_tiny_model(Path(tempfile.gettempdir()) / "agentsim-bench-tiny")), 16384
    if name == "embedded":
        from agentsim.spec.models import EMBEDDED_MODEL

        return EMBEDDED_MODEL, 8192
    return name, 8192


class RecordingRouter(BackendRouter):
    def __init__(self, inner: BackendRouter):
        super().__init__(inner.backend_for_alias)
        self.batches: list[list[LLMRequest]] = []

    async def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        self.batches.append(list(requests))
        return await super().generate(requests)


@dataclass
class OverheadResult:
    requests: int
    sim_tokens: int
    sim_s: float
    raw_tokens: int
    raw_s: float

    @property
    def sim_tps(self) -> float:
        return self.sim_tokens / self.sim_s

    @property
    def raw_tps(self) -> float:
        return self.raw_tokens / self.raw_s

    @property
    def ratio(self) -> float:
        return self.sim_tps / self.raw_tps


def _scenario(path: Path, model: str, steps: int, max_model_len: int, max_tokens: int, out: Path,
              runtime: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None) -> Scenario:
    from agentsim.spec.shipped import resolve_scenario
    from agentsim.spec.yamlio import read_yaml

    path = resolve_scenario(path)
    data = read_yaml(path, "scenario file").data
    # --set wins over the benchmark's own settings (--set steps=5 over --steps)
    fields = {"steps": steps, "logging.dir": str(out), **{f"runtime.{k}": v for k, v in (runtime or {}).items()}, **(overrides or {})}
    data = apply_overrides(data, **fields)
    for m in data["models"].values():
        m.update(backend="vllm", model=model, max_model_len=max_model_len)
        m.setdefault("sampling", {})["max_tokens"] = max_tokens
    return parse_scenario(data, str(path), base_dir=path.parent)


def _one(sc: Scenario, router: RecordingRouter, run_dir: Path) -> OverheadResult:
    vllm_backend: Any = next(iter(router.backend_for_alias.values()))
    engines = {id(e): e for e in vllm_backend._engine_for_alias.values()}
    router.batches.clear()
    for e in engines.values():
        e.llm.reset_prefix_cache()
    runtime = LocalRuntime(sc, router, run_dir)
    t0 = time.perf_counter()
    result = runtime.run()
    sim_s = time.perf_counter() - t0
    # The same batches straight to each engine, tokenized beforehand: pure engine time.
    raw_tokens, raw_s = 0, 0.0
    for key, engine in engines.items():
        mine = [b for b in router.batches if id(vllm_backend._engine_for_alias[b[0].alias]) == key]
        tokens, seconds = engine.raw_generate(mine)
        raw_tokens += tokens
        raw_s += seconds
    return OverheadResult(sum(len(b) for b in router.batches), result.totals.get("completion_tokens", 0), sim_s, raw_tokens, raw_s)


def run_overhead(
    scenario_path: Path, model: str, steps: int, max_model_len: int, max_tokens: int, repeats: int = 3, log: Any = print,
    overrides: dict[str, Any] | None = None,
) -> list[OverheadResult]:
    """A warm-up run (imports, grammar compilation), then `repeats` pairs of (simulated, raw) measurements."""
    with tempfile.TemporaryDirectory() as tmp:
        sc = _scenario(scenario_path, model, steps, max_model_len, max_tokens, Path(tmp), overrides=overrides)
        router = RecordingRouter(build_backend(sc.spec.models, sc.family.scripted_policy, log=log))
        try:
            warm = _scenario(scenario_path, model, 1, max_model_len, max_tokens, Path(tmp), overrides=overrides)
            _one(warm, router, Path(tmp) / "warmup")
            return [_one(sc, router, Path(tmp) / f"run{i}") for i in range(repeats)]
        finally:
            router.close()


def run_overhead_ray(scenario_path: Path, model: str, steps: int, max_model_len: int, max_tokens: int, shards: int,
                     log: Any = print, overrides: dict[str, Any] | None = None) -> OverheadResult:
    """The LLM path through shard actors and an engine actor, against the engine actor re-running the same merged
    batches straight through LLM.generate."""
    import ray

    from agentsim.runtime.ray_runtime import ShardedPolicy, make_shards

    with tempfile.TemporaryDirectory() as tmp:
        sc = _scenario(scenario_path, model, steps, max_model_len, max_tokens, Path(tmp),
                       runtime={"kind": "ray", "shards": shards, "engines": 1}, overrides=overrides)
        actors, engines = make_shards(sc.spec, sc.family.scripted_policy, None, log=log, record=True)
        engine = next(iter(engines.values()))[0]
        # Warm-up, as on the local path: imports in the shards, grammar compilation in the engine. Without it the
        # raw replay (which runs second) would inherit compiled grammars and the comparison would be unfair.
        warm = _scenario(scenario_path, model, 1, max_model_len, max_tokens, Path(tmp),
                         runtime={"kind": "ray", "shards": shards, "engines": 1}, overrides=overrides)
        LocalRuntime(warm, None, Path(tmp) / "warmup", policy=ShardedPolicy(actors)).run()
        ray.get(engine.reset_stats.remote())
        ray.get(engine.reset_cache.remote())
        t0 = time.perf_counter()
        result = LocalRuntime(sc, None, Path(tmp) / "run", policy=ShardedPolicy(actors)).run()
        sim_s = time.perf_counter() - t0
        raw_tokens, raw_s = ray.get(engine.raw_replay.remote())
        stats = ray.get(engine.stats.remote())
        log(f"engine actor: {stats['calls']} shard calls merged into {stats['batches']} engine batches")
        return OverheadResult(result.totals.get("llm_calls", 0), result.totals.get("completion_tokens", 0), sim_s, raw_tokens, raw_s)
