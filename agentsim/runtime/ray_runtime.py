"""The Ray runtime: agent shards as Ray actors, vLLM engines as Ray actors, the same log as the local runtime.

Each agent belongs to one shard (by a hash of its id). A shard holds its agents' personas (its rows of the Arrow
agents table, put once in the object store) and memories, and, for a family with a mind, builds their prompts.
Each step phase, the driver's world builds the observations in one batch; the runtime sends each shard the
block of its agents' observations in **one call per shard** (never one per agent). A shard builds the prompts,
turns them into requests, asks the backend, parses and validates answers and re-asks invalid ones, exactly as the
local runtime does, then updates its agents' memories. Scripted and replay backends run inside the shards; vLLM engines run in engine
actors (one per model and replica, placed with placement groups, tensor parallelism = GPUs per engine), and
shards route requests to them with prefix affinity: requests whose prompts share a system prompt go to the same
replica so its prefix cache hits.

Determinism: request seeds depend only on (run seed, step, phase, agent, attempt) and call rows are merged in
(attempt, observation) order, so a Ray run and a local run with the same seed write the same log.
"""

from __future__ import annotations

import asyncio
import hashlib
import resource
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from agentsim.core.mind import AgentStateLost, Mind
from agentsim.core.policy import CallLog, LLMPolicy
from agentsim.core.types import Decision, Observation
from agentsim.llm.router import BackendRouter
from agentsim.llm.types import BackendError, LLMRequest, LLMResult, fan_out
from agentsim.spec.models import LoggingSpec, ModelSpec, PolicySpec


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:  # pragma: no cover
        raise BackendError("the ray runtime needs ray: pip install 'ray[default]'") from e
    return ray


class EngineClient:
    """A backend inside a shard that forwards vLLM requests to engine actors, with prefix-affinity routing."""

    name = "vllm"

    def __init__(self, engines: dict[str, list[Any]]):
        self.engines = engines  # alias -> engine actor replicas
        self.in_flight: dict[int, int] = {}

    def _replica(self, r: LLMRequest, assigned: dict[int, int]) -> Any:
        """Prefix affinity for prompts that open with a system message (they share a cached prefix on that
        replica); otherwise the replica with the fewest requests in flight or already assigned in this batch."""
        replicas = self.engines[r.alias]
        if len(replicas) == 1:
            return replicas[0]
        if r.messages and r.messages[0].get("role") == "system":
            head = r.messages[0]["content"]
            return replicas[int(hashlib.blake2b(head.encode(), digest_size=4).hexdigest(), 16) % len(replicas)]
        best = min(replicas, key=lambda a: self.in_flight.get(id(a), 0) + assigned.get(id(a), 0))
        assigned[id(best)] = assigned.get(id(best), 0) + 1
        return best

    async def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        async def call(actor: Any, batch: list[LLMRequest]) -> list[LLMResult]:
            for r in batch:
                r.context = None  # the engine does not need the structured observation
                r.check = None  # nor the answer check (a closure over the observation's action model)
            self.in_flight[id(actor)] = self.in_flight.get(id(actor), 0) + len(batch)
            try:
                return await actor.generate.remote(batch)
            finally:
                self.in_flight[id(actor)] -= len(batch)

        assigned: dict[int, int] = {}
        return await fan_out(requests, lambda r: self._replica(r, assigned), call)

    def close(self) -> None:
        pass


def shard_of(agent_id: str, shards: int) -> int:
    """The shard that owns an agent: stable across runs, restarts and machines (unlike Python's str hash)."""
    return zlib.crc32(agent_id.encode()) % shards


@dataclass
class ObservationBlock:
    """One shard's observations of a phase, in columns: ids as Arrow, numbers as numpy, each distinct action model
    once. Ray would otherwise pickle a list of observations object by object (a tenth of the driver's step)."""

    positions: np.ndarray  # int64: where each observation sits in the phase's batch
    agent_id: pa.Array
    model: pa.Array  # dictionary-encoded: a few aliases
    action_models: list[Any]
    action_code: np.ndarray  # int32 index into action_models
    max_words: np.ndarray  # int64, -1 = None
    score_top_k: np.ndarray
    messages: list[Any]  # None where the shard's mind builds them
    data: list[Any]
    validation_context: list[Any]
    tag: list[str]
    continuation: list[str | None]

    @classmethod
    def of(cls, positions: np.ndarray, obs: list[Observation]) -> ObservationBlock:
        models: dict[Any, int] = {}
        codes = np.fromiter((models.setdefault(o.action_model, len(models)) for o in obs), np.int32, len(obs))
        return cls(
            positions, pa.array([o.agent_id for o in obs], pa.string()),
            pa.array([o.model for o in obs], pa.string()).dictionary_encode(), list(models), codes,
            np.fromiter((-1 if o.max_words is None else o.max_words for o in obs), np.int64, len(obs)),
            np.fromiter((o.score_top_k for o in obs), np.int64, len(obs)),
            [o.messages for o in obs], [o.data for o in obs], [o.validation_context for o in obs],
            [o.tag for o in obs], [o.continuation for o in obs],
        )

    def observations(self) -> list[Observation]:
        am = self.action_models
        return [
            Observation(a, m, msg, am[c], d, vc, None if w < 0 else w, t, cont, k)
            for a, m, msg, c, d, vc, w, t, cont, k in zip(
                self.agent_id.to_pylist(), self.model.to_pylist(), self.messages, self.action_code.tolist(), self.data,
                self.validation_context, self.max_words.tolist(), self.tag, self.continuation, self.score_top_k.tolist(),
                strict=True)
        ]


@dataclass
class DecisionBlock:
    """A shard's answer to one `decide` call, in columns for the same reason."""

    agent_id: list[str]
    action: list[Any]
    raw_text: list[str]
    valid: np.ndarray
    request_id: list[str]
    attempts: np.ndarray
    error: list[str | None]
    calls: CallLog

    @classmethod
    def of(cls, ds: list[Decision], calls: CallLog) -> DecisionBlock:
        return cls([d.agent_id for d in ds], [d.action for d in ds], [d.raw_text for d in ds],
                   np.fromiter((d.valid for d in ds), bool, len(ds)), [d.request_id for d in ds],
                   np.fromiter((d.attempts for d in ds), np.int64, len(ds)), [d.error for d in ds], calls)

    def decisions(self) -> list[Decision]:
        return [Decision(*f) for f in zip(self.agent_id, self.action, self.raw_text, self.valid.tolist(), self.request_id,
                                          self.attempts.tolist(), self.error, strict=True)]


class ShardActor:
    """Holds a block of agents (personas, memories) and their policy; one `decide` call per phase."""

    def __init__(self, models: dict[str, ModelSpec], scripted_policy: Any, replay_from: str | None, seed: int,
                 policy: PolicySpec, logging: LoggingSpec, engines: dict[str, list[Any]]):
        from agentsim.llm.router import build_backend

        local_models = {a: m for a, m in models.items() if m.backend != "vllm"}
        router = build_backend(local_models, scripted_policy, replay_from=replay_from, log=lambda m: None) if local_models else BackendRouter({})
        backends = dict(router.backend_for_alias)
        if engines:
            client = EngineClient(engines)
            backends.update(dict.fromkeys(engines, client))
        self.router = BackendRouter(backends)
        self.rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.policy = LLMPolicy(self.router, models, seed, policy.max_retries, logging, backend_name=self.router.backend_name,
                                reask_with_reason=policy.reask_with_reason)

    def attach(self, agents: Any, mind: Mind | None, index: int, shards: int) -> int:
        """Take the personas of the agents this shard owns (rows of the agents table) and start their memories
        empty. Returns how many agents it holds."""
        self.policy.attach(agents, mind, owned=lambda a: shard_of(a, shards) == index)
        return len(self.policy.minds.row) if self.policy.minds is not None else 0

    def memories(self) -> dict[str, Any]:
        return self.policy.memories()

    def set_memories(self, memories: dict[str, Any]) -> None:
        self.policy.set_memories(memories)

    async def decide(self, step: int, phase: str, block: ObservationBlock, minds: bool) -> DecisionBlock:
        if minds and self.policy.minds is None:
            # A restarted actor comes back without its agents; only the last checkpoint has their memories.
            raise AgentStateLost("a shard actor was restarted and lost its agents' memories")
        calls = CallLog()
        decisions = await self.policy.decide(step, phase, block.observations(), calls)
        pos = block.positions
        for r in calls.rows:
            r["_obs"] = int(pos[r["_obs"]])  # position in the whole phase batch, for the merge
        return DecisionBlock.of(decisions, calls)

    def peak_rss(self) -> tuple[int, int]:
        """(peak RSS when the shard was created, peak RSS now), bytes: what its agents cost is the difference."""
        return self.rss0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def ping(self) -> str:
        """node id:pid (two nodes on one host share a hostname, not a node id)."""
        import os

        import ray

        return f"{ray.get_runtime_context().get_node_id()}:{os.getpid()}"


class EngineActor:
    """One vLLM engine (tensor parallel over the GPUs of its placement-group bundle), shared by all shards.

    An async actor: calls from different shards that arrive while the engine is busy are merged into the next
    engine batch, so vLLM's continuous batching sees every shard's requests together instead of one shard at a
    time. The engine is created lazily on the event-loop thread, the thread that then calls it (on CPU, vLLM
    binds its OpenMP threads to the creating thread; calling from another thread costs a third of the speed).
    """

    def __init__(self, spec: ModelSpec, record: bool = False, mode: str = "auto"):
        self.spec = spec
        if mode == "auto":
            from agentsim.llm.vllm_backend import is_cpu_platform

            mode = "batch" if is_cpu_platform() else "async"
        self.mode = mode
        self.engine: Any = None
        self.raw_engine: Any = None
        self.queue: list[tuple[list[LLMRequest], asyncio.Future[list[LLMResult]]]] = []
        self.draining = False
        self.calls = 0
        self.batches = 0
        self.record = record
        self.recorded: list[list[LLMRequest]] = []

    def _ensure(self) -> Any:
        if self.engine is None:
            from agentsim.llm.vllm_backend import AsyncVLLMEngine, VLLMEngine

            self.engine = (AsyncVLLMEngine if self.mode == "async" else VLLMEngine)(self.spec, log=lambda m: None)
        return self.engine

    async def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        if self.mode == "async":  # straight into the running engine: vLLM batches continuously
            self.calls += 1
            self.batches += 1
            if self.record:
                self.recorded.append(list(requests))
            return await self._ensure().agenerate(requests)
        self.calls += 1
        fut: asyncio.Future[list[LLMResult]] = asyncio.get_running_loop().create_future()
        self.queue.append((requests, fut))
        if not self.draining:
            self.draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        try:
            while self.queue:
                await asyncio.sleep(0.005)  # let calls that are arriving join this batch
                batch, self.queue = self.queue, []
                merged = [r for reqs, _ in batch for r in reqs]
                if self.record:
                    self.recorded.append(merged)
                self.batches += 1
                try:
                    results = self._ensure().generate(merged)
                except Exception as e:  # fail the waiting calls, not the actor
                    for _, fut in batch:
                        fut.set_exception(e)
                    continue
                i = 0
                for reqs, fut in batch:
                    fut.set_result(results[i : i + len(reqs)])
                    i += len(reqs)
        finally:
            self.draining = False

    async def warm(self) -> str:
        return self._ensure().model_path

    async def stats(self) -> dict[str, Any]:
        return {"calls": self.calls, "batches": self.batches, "mode": self.mode}

    async def reset_stats(self) -> None:
        """Forget counts and recorded batches (after a benchmark's warm-up run)."""
        self.calls = self.batches = 0
        self.recorded = []

    async def raw_replay(self) -> tuple[int, float]:
        """The recorded engine batches again, straight to LLM.generate: (tokens, seconds). An async-mode actor
        starts an in-process `LLM` for this (benchmarks only)."""
        if self.mode != "async":
            return self._ensure().raw_generate(self.recorded)
        if self.raw_engine is None:
            from agentsim.llm.vllm_backend import VLLMEngine

            self.raw_engine = VLLMEngine(self.spec, log=lambda m: None)
        return self.raw_engine.raw_generate(self.recorded)

    async def reset_cache(self) -> None:
        engine = self._ensure()
        if self.mode == "async":
            await engine.engine.reset_prefix_cache()
        else:
            engine.llm.reset_prefix_cache()


class ShardedPolicy:
    """Stands in for LLMPolicy in the runtime: sends each shard actor its agents' observations."""

    def __init__(self, shards: list[Any]):
        self.shards = shards
        self.minds = False
        self.held: list[int] = []  # agents held by each shard

    def attach(self, agents: Any, mind: Mind | None) -> None:
        """Give every shard the personas of the agents it owns: the agents table goes into the object store once
        and each shard keeps its own rows."""
        self.minds = mind is not None
        if not self.minds:
            return
        ray = _ray()
        ref = ray.put(agents)
        self.held = ray.get([s.attach.remote(ref, mind, i, len(self.shards)) for i, s in enumerate(self.shards)])

    def memories(self) -> dict[str, Any]:
        if not self.minds:
            return {}
        merged: dict[str, Any] = {}
        for part in _ray().get([s.memories.remote() for s in self.shards]):
            merged.update(part)
        return dict(sorted(merged.items()))

    def set_memories(self, memories: dict[str, Any]) -> None:
        if not self.minds:
            return
        n = len(self.shards)
        parts: list[dict[str, Any]] = [{} for _ in range(n)]
        for a, m in memories.items():
            parts[shard_of(a, n)][a] = m
        _ray().get([s.set_memories.remote(p) for s, p in zip(self.shards, parts, strict=True)])

    async def decide(self, step: int, phase: str, observations: list[Observation], calls: CallLog | None = None) -> list[Decision]:
        n = len(self.shards)
        owner = np.fromiter((shard_of(o.agent_id, n) for o in observations), np.int64, len(observations))
        order = np.argsort(owner, kind="stable")
        bounds = np.searchsorted(owner[order], np.arange(n + 1))
        blocks = [order[bounds[i] : bounds[i + 1]] for i in range(n)]
        sent = [(pos, shard.decide.remote(step, phase, ObservationBlock.of(pos, [observations[j] for j in pos.tolist()]), self.minds))
                for shard, pos in zip(self.shards, blocks, strict=True) if pos.size]
        try:
            results = await asyncio.gather(*(ref for _, ref in sent))
        except Exception as e:
            if isinstance(e, AgentStateLost) or isinstance(getattr(e, "cause", None), AgentStateLost):
                raise AgentStateLost(str(getattr(e, "cause", e))) from None
            cause = getattr(e, "cause", None)
            if isinstance(cause, BackendError):  # a shard's backend that cannot serve: the same error as locally
                raise cause from None
            raise
        slots: list[Decision | None] = [None] * len(observations)
        rows: list[dict[str, Any]] = []
        for (pos, _), answer in zip(sent, results, strict=True):
            log = answer.calls
            for j, d in zip(pos.tolist(), answer.decisions(), strict=True):
                slots[j] = d
            rows.extend(log.rows)
            if calls is not None:
                calls.prompt_tokens += log.prompt_tokens
                calls.completion_tokens += log.completion_tokens
                calls.cached_tokens += log.cached_tokens
        rows.sort(key=lambda r: (r["attempt"], r["_obs"]))
        if calls is not None:
            calls.rows.extend(rows)
        return [d for d in slots if d is not None]


#: Seconds to wait for a TCP connection to a Ray cluster's GCS before saying it cannot be reached.
CONNECT_TIMEOUT_S = 10.0


def probe_address(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise BackendError, within `timeout` seconds, when nothing accepts connections at a `host:port` Ray address.

    Needed because `ray.init(address=...)` keeps retrying a dead address for many minutes (Ray 2.60,
    ray/_private/node.py `Node._init_gcs_client`: NUM_REDIS_GET_RETRIES=20 tries, each GcsClient waiting about
    40 s for the GCS; the C++ settings that shorten each wait, `RAY_gcs_rpc_server_connect_timeout_s` and
    `RAY_py_gcs_connect_timeout_s`, are read when `ray` is imported, too late for a process that has imported it
    already). A port that accepts connections but is no Ray GCS is left to Ray. "auto" is resolved the way Ray
    resolves it (RAY_ADDRESS, then the address file of a cluster started on this machine); `ray://` client
    addresses are left to Ray."""
    import socket

    if address in ("local", "") or address.startswith("ray://"):
        return
    target = address
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address

            target = canonicalize_bootstrap_address("auto") or ""
        except Exception:  # a private helper: if it moved, leave "auto" to ray.init
            return
        if not target:
            raise BackendError("runtime.address auto: no running Ray cluster found on this machine (start one with "
                               "`ray start --head`, set RAY_ADDRESS, or leave runtime.address unset for a local instance)")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise BackendError(f"runtime.address {address!r}: expected host:port (e.g. 10.0.0.5:6379), auto, or ray://host:port")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as e:
        why = "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise BackendError(
            f"runtime.address {address}: no Ray cluster answers at {host}:{port} ({why} after at most {timeout:g} s). "
            "Start one there (`ray start --head --port PORT`), fix --address, or leave it unset for a local instance."
        ) from None


def start_ray(address: str | None, log: Any = print, cpus_needed: float = 0.0) -> Any:
    """Join `address`, or start a local Ray instance. A local instance advertises at least the CPUs the run's
    actors reserve: on a laptop, 4 shards and an engine may share 2 cores rather than wait forever.

    Raises BackendError when `address` cannot be reached (see `probe_address`) or Ray refuses to connect."""
    import math
    import os

    ray = _ray()
    if not ray.is_initialized():
        if address:
            probe_address(address)
        extra = {} if address else {"num_cpus": max(os.cpu_count() or 1, math.ceil(cpus_needed))}
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                     runtime_env={"env_vars": {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}}, **extra)
        except ConnectionError as e:  # e.g. "auto" with no cluster, or a port that is not a Ray GCS
            raise BackendError(f"runtime.address {address}: Ray could not connect ({e})") from None
        log(f"Ray: {'joined ' + address if address else 'started a local instance'}; "
            f"{int(ray.cluster_resources().get('CPU', 0))} CPUs, {len(ray.nodes())} node(s)")
    return ray


def engine_placement(ray: Any, gpus: int, cpus: float, timeout: float = 600) -> dict[str, Any]:
    """Actor options placing one engine on `gpus` GPUs of one node: a placement group with a single bundle of all
    of them (STRICT_PACK), so vLLM's tensor-parallel workers, which it starts as processes of the engine actor
    (the `mp` executor, see engine_kwargs), see every GPU of the group through the actor's CUDA_VISIBLE_DEVICES."""
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    pg = placement_group([{"GPU": gpus, "CPU": cpus}], strategy="STRICT_PACK")
    try:
        ray.get(pg.ready(), timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        remove_placement_group(pg)
        raise BackendError(
            f"no node could give an engine {gpus} GPU(s) and {cpus:g} CPU(s) within {timeout:.0f} s (the cluster has "
            f"{ray.cluster_resources().get('GPU', 0):g} GPUs): lower tensor_parallel_size or runtime.engines, or add GPU nodes"
        ) from None
    return {"num_cpus": cpus, "num_gpus": gpus,
            "scheduling_strategy": PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=0, placement_group_capture_child_tasks=True)}


def make_shards(spec: Any, scripted_policy: Any, replay_from: str | None, log: Any = print, record: bool = False,
                engines_by_key: dict[str, list[Any]] | None = None) -> tuple[list[Any], dict[str, list[Any]]]:
    """Engine actors for the vLLM aliases (one per distinct engine, `engines` replicas each), then the shards.

    `engines_by_key` (engine key -> replicas) is an experiment's pool: engines already in it are reused, new ones
    are added to it, so concurrent runs send their requests to the same engine actors, which merge them into one
    batch (EngineActor._drain)."""
    rt = spec.runtime
    by_key: dict[str, list[Any]] = engines_by_key if engines_by_key is not None else {}
    n_engines = len({m.engine_key() for m in spec.models.values() if m.backend == "vllm"} - set(by_key)) * rt.engines
    cpus = rt.shards * rt.cpus_per_shard + n_engines * rt.cpus_per_engine
    if replay_from is not None:  # refuse a recorded run that cannot match before starting any actor
        from agentsim.llm.replay import check_source

        check_source(replay_from, spec.model_dump(mode="json"))
    ray = start_ray(rt.address, log, cpus_needed=cpus)

    def placed(refs: list[Any], what: str, timeout: float) -> list[Any]:
        try:
            return ray.get(refs, timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            have = ray.available_resources()
            raise BackendError(
                f"Ray could not start the {what} within {timeout:.0f} s: {rt.shards} shards and {n_engines} engine(s) "
                f"reserve {cpus:g} CPUs; the cluster has {ray.cluster_resources().get('CPU', 0):g} ({have.get('CPU', 0):g} free). "
                "Lower runtime.shards or runtime.cpus_per_shard, or add nodes."
            ) from None

    engines: dict[str, list[Any]] = {}
    Engine = ray.remote(EngineActor)
    for alias, m in spec.models.items():
        if m.backend != "vllm":
            continue
        key = m.engine_key()
        if key not in by_key:
            replicas = []
            for _ in range(rt.engines):
                opts: dict[str, Any] = {"num_cpus": rt.cpus_per_engine}
                if rt.gpus_per_engine:
                    opts = engine_placement(ray, m.tensor_parallel_size, rt.cpus_per_engine)
                replicas.append(Engine.options(max_restarts=3, max_task_retries=3, **opts).remote(m, record, rt.engine_mode))
            placed([r.warm.remote() for r in replicas], "vLLM engine actors", 900)  # load weights before the clock starts
            by_key[key] = replicas
        engines[alias] = by_key[key]
    Shard = ray.remote(ShardActor)
    shards = [
        # A shard that dies is restarted by Ray and its call re-run with the same seeds, so nothing is lost or
        # duplicated in the log. Without a mind a shard keeps no state between calls and that is all; with one, the
        # restarted shard has lost its agents' memories, says so (AgentStateLost), and the run goes back to its
        # last checkpoint.
        Shard.options(num_cpus=rt.cpus_per_shard, scheduling_strategy="SPREAD", max_restarts=-1, max_task_retries=-1).remote(
            spec.models, scripted_policy, replay_from, spec.seed, spec.policy, spec.logging, engines)
        for _ in range(rt.shards)
    ]
    where = placed([s.ping.remote() for s in shards], "shard actors", 300)
    log(f"Ray: {len(shards)} shards on {len({w.split(':')[0] for w in where})} node(s), {sum(len(v) for v in by_key.values())} engine actor(s)")
    return shards, engines
