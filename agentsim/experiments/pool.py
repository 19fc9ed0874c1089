"""The engine pool of an experiment: one engine per distinct model for every concurrent run, and the requests that
runs send while the engine is free merged into one engine batch (cross-run batching).

A run never knows it is not alone: it gets a `BackendRouter` like any run, whose vLLM and openai aliases point at
the pool's shared backends. Runs of an experiment are asyncio tasks of one event loop; between two LLM phases a
run computes synchronously, so when the loop gets control back, every run is either waiting on an engine or about
to ask one. A shared backend therefore waits until every active run is waiting, or until a few loop turns pass
with no new request, and then sends everything it holds as one batch. Request seeds depend only on (run seed,
step, phase, agent, attempt), so a run's requests are the same whether it runs alone or merged with others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentsim.llm.router import BackendRouter
from agentsim.llm.types import Backend, LLMRequest, LLMResult
from agentsim.spec.models import NON_LLM_BACKENDS, ModelSpec

#: Loop turns without a new request before a partial batch goes to the engine. Runs reach their next request
#: within a few turns (fan-out tasks, gather); more only delays a batch nobody else will join.
PATIENCE = 8


@dataclass
class BatchStats:
    calls: int = 0  # generate() calls from runs
    batches: int = 0  # engine calls
    requests: int = 0
    runs_per_batch: list[int] = field(default_factory=list)


class MergedBackend:
    """A backend shared by concurrent runs: calls that arrive together become one call of `send`."""

    def __init__(self, name: str, send: Callable[[list[LLMRequest]], Awaitable[list[LLMResult]]], active: Callable[[], int]):
        self.name = name
        self._send = send
        self._active = active
        self._queue: list[tuple[list[LLMRequest], asyncio.Future[list[LLMResult]]]] = []
        self._draining = False
        self.stats = BatchStats()

    async def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        if not requests:
            return []
        self.stats.calls += 1
        fut: asyncio.Future[list[LLMResult]] = asyncio.get_running_loop().create_future()
        self._queue.append((requests, fut))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        try:
            while self._queue:
                idle = 0
                while len(self._queue) < self._active() and idle < PATIENCE:
                    n = len(self._queue)
                    await asyncio.sleep(0)
                    idle = idle + 1 if len(self._queue) == n else 0
                batch, self._queue = self._queue, []
                merged = [r for reqs, _ in batch for r in reqs]
                self.stats.batches += 1
                self.stats.requests += len(merged)
                self.stats.runs_per_batch.append(len(batch))
                try:
                    results = await self._send(merged)
                except Exception as e:  # the waiting runs get the error; the pool lives on
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(e)
                    continue
                i = 0
                for reqs, fut in batch:
                    if not fut.done():
                        fut.set_result(results[i : i + len(reqs)])
                    i += len(reqs)
        finally:
            self._draining = False

    def close(self) -> None:  # the pool closes the engine, not a run
        pass


class EnginePool:
    """Shared backends for the runs of one experiment, keyed by what makes an engine distinct (`engine_key`)."""

    def __init__(self, share: bool = True, log: Callable[[str], None] = print):
        self.share = share
        self.log = log
        self.active_runs = 0
        self._engines: dict[str, Any] = {}  # engine key -> VLLMEngine / OpenAIBackend
        self._merged: dict[str, MergedBackend] = {}
        #: Ray runs: engine key -> engine actor replicas, shared by every run's shards (see make_shards).
        self.ray_engines: dict[str, list[Any]] = {}

    def _active(self) -> int:
        return max(self.active_runs, 1)

    def _vllm(self, spec: ModelSpec) -> MergedBackend:
        key = "vllm:" + spec.engine_key()
        if key not in self._merged:
            from agentsim.llm.vllm_backend import VLLMEngine

            engine = VLLMEngine(spec, log=self.log)
            self._engines[key] = engine

            # The engine is called on the loop's thread, the one that created it (on CPU, vLLM binds its OpenMP
            # threads to that thread; see VLLMBackend.generate).
            async def send(batch: list[LLMRequest]) -> list[LLMResult]:
                return engine.generate(batch)

            self._merged[key] = MergedBackend("vllm", send, self._active)
        return self._merged[key]

    def _openai(self, alias: str, spec: ModelSpec) -> MergedBackend:
        key = "openai:" + spec.engine_key()
        if key not in self._merged:
            from agentsim.llm.openai_backend import OpenAIBackend

            backend = OpenAIBackend({alias: spec})
            self._engines[key] = backend

            async def send(batch: list[LLMRequest]) -> list[LLMResult]:
                # The shared client knows the spec under the alias it was built with; requests keep their own.
                return await backend.generate([_as_alias(r, alias) for r in batch])

            self._merged[key] = MergedBackend("openai", send, self._active)
        return self._merged[key]

    def router(self, models: dict[str, ModelSpec], scripted_policy: Any, replay_from: str | Path | None = None) -> BackendRouter:
        """A run's router: vLLM and openai aliases on the shared engines, scripted and replay per run."""
        from agentsim.llm.router import build_backend

        if not self.share:
            return build_backend(models, scripted_policy, replay_from=replay_from, log=self.log)
        own = {a: m for a, m in models.items() if m.backend in NON_LLM_BACKENDS}
        router = build_backend(own, scripted_policy, replay_from=replay_from, log=self.log) if own else BackendRouter({})
        backends: dict[str, Backend] = dict(router.backend_for_alias)
        for alias, m in models.items():
            if m.backend == "vllm":
                backends[alias] = self._vllm(m)
            elif m.backend == "openai":
                backends[alias] = self._openai(alias, m)
        return _RunRouter(backends)

    def model_path(self, spec: ModelSpec) -> str | None:
        engine = self._engines.get("vllm:" + spec.engine_key())
        return getattr(engine, "model_path", None)

    def stats(self) -> dict[str, Any]:
        out = {}
        for key, m in self._merged.items():
            s = m.stats
            out[key.split(":", 1)[0] + ":" + _short(key)] = {
                "calls": s.calls, "batches": s.batches, "requests": s.requests,
                "mean_runs_per_batch": round(sum(s.runs_per_batch) / max(len(s.runs_per_batch), 1), 3),
            }
        if self.ray_engines:
            import ray

            for key, replicas in self.ray_engines.items():
                stats = ray.get([r.stats.remote() for r in replicas])
                calls, batches = sum(x["calls"] for x in stats), sum(x["batches"] for x in stats)
                # A call is one shard's requests; several runs' shards share each batch.
                out["ray-vllm:" + _short(key)] = {"calls": calls, "batches": batches, "requests": None,
                                                  "mean_runs_per_batch": None, "mean_calls_per_batch": round(calls / max(batches, 1), 3)}
        return out

    def close(self) -> None:
        for e in self._engines.values():
            close = getattr(e, "close", None)
            if close is not None:
                close()
        self._engines.clear()
        self._merged.clear()


class _RunRouter(BackendRouter):
    """A run's router over shared backends: closing it leaves the pool's engines running."""

    def close(self) -> None:
        for b in {id(b): b for b in self.backend_for_alias.values()}.values():
            if not isinstance(b, MergedBackend):
                b.close()


def _as_alias(r: LLMRequest, alias: str) -> LLMRequest:
    if r.alias == alias:
        return r
    from dataclasses import replace

    return replace(r, alias=alias)


def _short(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()[:8]
