"""The local runtime: one process drives the world step by step; the backend answers each phase in one batch.

Each step's rows are appended to the log only once the step is complete, so the log always ends on a whole
step: a run killed mid-step loses only that step, never what was flushed before.

How a run ends (run.json `status`): `completed`; `interrupted` (Ctrl-C, or SIGTERM: `stopped_by`); `backend_unavailable` (a phase in which
no request of some model alias could be served: the server is down, refuses the key, does not know the model, or
the replay source has none of the answers; run.json `error` says which, and `agentsim resume` continues from the
last checkpoint); `no_valid_answers` (every step ran but not one agent's answer was valid); `failed` (anything
else, with run.json `error`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agentsim.core.mind import AgentStateLost
from agentsim.core.policy import CallLog, LLMPolicy, unserved
from agentsim.core.seeding import make_rng, restore_rng, rng_state
from agentsim.core.state import join_arrays, split_arrays
from agentsim.core.types import Metric
from agentsim.core.world import StepContext, World, agents_table
from agentsim.llm.redact import Redactor
from agentsim.llm.router import BackendRouter
from agentsim.llm.types import BackendUnavailable
from agentsim.logs.writer import RunLogWriter, atomic_write_json, atomic_write_npz
from agentsim.runtime.branch import keep_checkpoint
from agentsim.runtime.meta import model_entry, new_meta, now
from agentsim.runtime.progress import RunProgress
from agentsim.spec.loader import Scenario
from agentsim.spec.models import NON_LLM_BACKENDS

CHECKPOINT = "checkpoint.json"


@dataclass
class RunResult:
    run_dir: Path
    status: str
    steps_completed: int
    wall_s: float
    totals: dict[str, Any] = field(default_factory=dict)


class LocalRuntime:
    def __init__(
        self,
        scenario: Scenario,
        backend: BackendRouter | None,
        run_dir: Path,
        progress: RunProgress | None = None,
        model_paths: dict[str, str] | None = None,
        resume: bool = False,
        extra_meta: dict[str, Any] | None = None,
        policy: Any = None,
    ):
        self.scenario = scenario
        self.spec = scenario.spec
        self.backend = backend
        self.run_dir = run_dir
        self.progress = progress or RunProgress(enabled=False)
        backend_name = backend.backend_name if backend is not None else (lambda alias: self.spec.models[alias].backend)
        # The Ray runtime passes a sharded policy; the local runtime answers in this process.
        self.policy = policy or LLMPolicy(
            backend, self.spec.models, self.spec.seed, self.spec.policy.max_retries, self.spec.logging, backend_name=backend_name,
            reask_with_reason=self.spec.policy.reask_with_reason,
        )
        self.writer = RunLogWriter(run_dir, flush_rows=self.spec.logging.flush_rows)
        self.mind = scenario.family.create_mind(self.spec, scenario.world) if scenario.family.create_mind else None
        self.agents: Any = None
        self._start_fresh()
        self.stop_requested = False
        self._t0 = time.perf_counter()
        self._finished: RunResult | None = None

        def models(replay_from: str | None) -> dict[str, Any]:
            return {a: model_entry(a, backend_name(a), m.model, (model_paths or {}).get(a), scenario.family.name, replay_from)
                    for a, m in self.spec.models.items()}

        if resume:
            self._restore(models)
        else:
            self.meta = new_meta(
                run_dir.name,
                self.spec.model_dump(mode="json"),
                scenario.world.model_dump(mode="json"),
                str(scenario.source.resolve()) if scenario.source else None,
                models((extra_meta or {}).get("replay_from")),
            )
            self.meta.update(extra_meta or {})
            if scenario.notes:
                self.meta["world_notes"] = list(scenario.notes)

    def _start_fresh(self) -> None:
        """A new world at step 0, the policy holding its agents with empty memories, counters at zero."""
        self.world: World = self.scenario.family.create_world(self.spec, self.scenario.world)
        self.rng = make_rng(self.spec.seed, "world")
        if self.agents is None:  # the same agents every time: build the table once
            self.agents = agents_table(self.world)
        self.policy.attach(self.agents, self.mind)
        self.next_event_id = 0
        self.totals: Counter[str] = Counter()
        self.tokens_by_model: dict[str, Counter[str]] = {}
        self.step_wall: list[float] = []
        self.start_step = 0

    # -- checkpoints ----------------------------------------------------------------------------------------------
    def _checkpoint(self, next_step: int) -> None:
        """Everything needed to continue exactly after `next_step - 1`: world state, RNG state, event counter,
        totals, and the log position (parts per table; the writer was flushed, so parts end on this step)."""
        self.writer.flush()
        # Large worlds keep their state in numpy arrays: those go to a .npz beside the JSON. It is named by step
        # and written first, so checkpoint.json only ever names a complete array file.
        world, arrays = split_arrays(self.world.get_state())
        array_file = None
        if arrays:
            array_file = f"checkpoint-{next_step:06d}.npz"
            atomic_write_npz(self.run_dir / array_file, arrays)
        atomic_write_json(self.run_dir / CHECKPOINT, {
            "format": 1,
            "next_step": next_step,
            "world": world,
            "world_arrays": array_file,
            "rng": rng_state(self.rng),
            "memories": self.policy.memories(),
            "next_event_id": self.next_event_id,
            "parts": self.writer.positions(),
            "totals": dict(self.totals),
            "tokens_by_model": {k: dict(v) for k, v in self.tokens_by_model.items()},
            "step_wall": self.step_wall,
        })
        for old in self.run_dir.glob("checkpoint-*.npz"):
            if old.name != array_file:
                old.unlink(missing_ok=True)
        if self.spec.runtime.keep_checkpoints:
            keep_checkpoint(self.run_dir, next_step)

    def _restore(self, models: Callable[[str | None], dict[str, Any]]) -> None:
        self.meta = json.loads((self.run_dir / "run.json").read_text())
        self._load_checkpoint()
        self.meta.update(status="running", steps_completed=self.start_step, models=models(self.meta.get("replay_from")))
        stopped = self.meta.pop("stopped_by", None)  # that stop is over; `resumed` keeps it
        self.meta.setdefault("resumed", []).append({"at": now(), "from_step": self.start_step,
                                                    **({"stopped_by": stopped} if stopped else {})})
        # parts.jsonl now records only the parts kept: say so in run.json before anything reads them together.
        self._save_meta()

    def _load_checkpoint(self) -> None:
        """World, RNG, memories, counters and log position from the last checkpoint (nothing: from step 0)."""
        ck_path = self.run_dir / CHECKPOINT
        if ck_path.exists():
            ck = json.loads(ck_path.read_text())
            arrays: dict[str, Any] = {}
            if ck.get("world_arrays"):
                with np.load(self.run_dir / ck["world_arrays"], allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
            self.world.set_state(join_arrays(ck["world"], arrays))
            restore_rng(self.rng, ck["rng"])
            self.policy.set_memories(ck.get("memories", {}))
            self.next_event_id = ck["next_event_id"]
            self.totals = Counter(ck["totals"])
            self.tokens_by_model = {k: Counter(v) for k, v in ck["tokens_by_model"].items()}
            self.step_wall = list(ck["step_wall"])
            self.start_step = ck["next_step"]
            parts = ck["parts"]
        else:
            parts = {}  # killed before the first checkpoint: start again from step 0
        # Rows written after the checkpoint belong to steps that will run again; temporary files of the killed
        # writer go too.
        self.writer.truncate_to(parts, self.start_step)

    def _save_meta(self) -> None:
        self.meta["log"] = self.writer.summary()
        atomic_write_json(self.run_dir / "run.json", self.meta)

    async def _step(self, step: int) -> None:
        ctx = StepContext(step, self.world.sim_time(step), self.rng, self.next_event_id)
        calls = CallLog()
        timings = []
        answers = 0
        t_step = time.perf_counter()
        for phase in self.world.phases:
            ctx.phase = phase
            t0 = time.perf_counter()
            observations = self.world.observe(ctx, phase)
            n_before = len(calls.rows)
            t_llm = time.perf_counter()
            self.progress.sent(len(observations))
            decisions = await self.policy.decide(step, phase, observations, calls) if observations else []
            self._stop_if_unserved(step, phase, calls.rows[n_before:])
            self.progress.answered(len(observations), len({d.agent_id for d in decisions if d.valid}))
            llm_s = time.perf_counter() - t_llm
            for o, d in zip(observations, decisions, strict=True):
                # A scoring request (a continuation to score, no answer to give) that failed is `unscored`: it
                # says nothing about the agents' answers, which `invalid` counts.
                scoring = o.continuation is not None
                answers += not scoring
                if not d.valid:
                    ctx.emit(d.agent_id, "unscored" if scoring else "invalid", None,
                             {"error": d.error, "raw_text": d.raw_text, "attempts": d.attempts}, request_id=d.request_id)
            self.world.apply(ctx, phase, decisions)
            new_calls = calls.rows[n_before:]
            by_llm = [r for r in new_calls if r.get("backend") not in NON_LLM_BACKENDS]
            self.progress.advance_calls(len(new_calls), sum(r["completion_tokens"] for r in by_llm), len(by_llm))
            timings.append({"step": step, "phase": phase, "wall_s": time.perf_counter() - t0, "llm_s": llm_s, "requests": len(new_calls)})
        invalid = sum(1 for e in ctx.events if e.action == "invalid")
        unscored = sum(1 for e in ctx.events if e.action == "unscored")
        if unscored:
            ctx.metrics.append(Metric(step, "unscored", unscored))
        ctx.metrics.extend(
            [
                Metric(step, "llm_calls", len(calls.rows)),
                Metric(step, "prompt_tokens", calls.prompt_tokens),
                Metric(step, "completion_tokens", calls.completion_tokens),
                Metric(step, "invalid", invalid),
                # Share of prompt tokens the engines served from their prefix cache (0 for backends without one).
                Metric(step, "prefix_cache_hit_rate", calls.cached_tokens / calls.prompt_tokens if calls.prompt_tokens else 0.0),
            ]
        )
        for r in calls.rows:
            c = self.tokens_by_model.setdefault(r["alias"], Counter())
            c["prompt_tokens"] += r["prompt_tokens"]
            c["completion_tokens"] += r["completion_tokens"]
            c["calls"] += 1
        self.writer.append("events", ctx.events)
        self.writer.append("llm_calls", calls.rows)
        self.writer.append("metrics", ctx.metrics)
        self.writer.append("timings", timings)
        self.writer.end_step(step, flush=self.spec.logging.flush_every_step)
        self.next_event_id = ctx.next_event_id
        self.totals.update(events=len(ctx.events), llm_calls=len(calls.rows), answers=answers, invalid=invalid,
                           unscored=unscored, prompt_tokens=calls.prompt_tokens, completion_tokens=calls.completion_tokens)
        self.step_wall.append(time.perf_counter() - t_step)
        every = self.spec.runtime.checkpoint_every
        if every and ((step + 1) % every == 0 or step + 1 == self.spec.steps):
            self._checkpoint(step + 1)
        self.meta["steps_completed"] = step + 1
        self._save_meta()

    def _stop_if_unserved(self, step: int, phase: str, rows: list[dict[str, Any]]) -> None:
        """Stop the run (BackendUnavailable) when no request of some alias in this phase could be served: a
        dead server or a replay source that does not match gives nothing but invalid answers from here on."""
        for alias, outage, n, example, total in unserved(rows):
            m = self.spec.models[alias]
            where = m.base_url if m.backend == "openai" else self.meta.get("replay_from") if m.backend == "replay" else None
            raise BackendUnavailable(alias, m.backend, where, outage, step, phase, n, example, total)

    async def _run(self) -> None:
        if self.start_step == 0:
            self._write_agents()
        self._save_meta()
        step = self.start_step
        while step < self.spec.steps:
            if self.stop_requested:
                raise KeyboardInterrupt
            self.progress.start_step(step)
            try:
                await self._step(step)
            except AgentStateLost as e:
                self._rollback(str(e))
                step = self.start_step
                continue
            self.progress.end_step(step)
            step += 1

    def _rollback(self, why: str) -> None:
        """Agents' memories were lost mid-run (a shard actor died): go back to the last checkpoint, exactly as
        `agentsim resume` would, and run the steps after it again."""
        self.progress.note(f"{why}; going back to the last checkpoint")
        self._start_fresh()
        self._load_checkpoint()
        if self.start_step == 0:
            self._write_agents()
        self.meta.setdefault("rollbacks", []).append({"at": now(), "to_step": self.start_step, "why": why})

    def _write_agents(self) -> None:
        self.writer.append_table("agents", self.agents)
        self.writer.flush()

    def _on_sigterm(self, signum: int, frame: object) -> None:
        """SIGTERM (`kill`, a scheduler's preemption, `docker stop`): stop now, as a second Ctrl-C does, since a
        grace period may not outlast a step; the log ends on the last whole step and run.json says `interrupted`."""
        self.stop_requested = True
        self.meta["stopped_by"] = "SIGTERM"
        raise KeyboardInterrupt

    def _on_sigint(self, signum: int, frame: object) -> None:
        """First Ctrl-C: finish and flush the current step, then stop. Second: stop now (the unfinished step is
        dropped; the log still ends on a whole step)."""
        if self.stop_requested:
            raise KeyboardInterrupt
        self.stop_requested = True
        self.progress.note("Ctrl-C: stopping after this step (press Ctrl-C again to stop now)")

    def run(self) -> RunResult:
        """Run to the end in this thread's own event loop; Ctrl-C stops after the current step (see `_on_sigint`).
        Where this thread's event loop is already running (a Jupyter kernel: `agentsim.run` in a notebook cell),
        in a new loop on a worker thread (`_run_beside_loop`)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            return self._run_beside_loop()
        try:
            with stop_signals(self._on_sigint, self._on_sigterm):
                return asyncio.run(self.arun())
        except KeyboardInterrupt:  # a second Ctrl-C (or SIGTERM) that landed outside the run's own coroutine
            return self._finish("interrupted")

    def _run_beside_loop(self) -> RunResult:
        """`arun` in its own event loop on a worker thread, this thread waiting (asyncio.run refuses to start inside
        a running loop). An interrupt while waiting (the kernel's Ctrl-C) stops the run after the current step, as
        Ctrl-C does in a terminal; the log still ends on a whole step."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="agentsim-run") as pool:
            done = pool.submit(asyncio.run, self.arun())
            while True:
                try:
                    return done.result()
                except KeyboardInterrupt:
                    self.stop_requested = True
                    self.progress.note("interrupted: stopping after this step")

    async def arun(self) -> RunResult:
        """Run to the end inside a running event loop, beside other runs (an experiment runs several at once
        through shared engines). Installs no signal handler: set `stop_requested` to stop after the current step.

        Ends `completed`, `interrupted`, `no_valid_answers` (every agent answer of the run was invalid),
        `backend_unavailable` (raised again: a phase none of whose requests could be served; resumable) or
        `failed` (raised again); run.json's `error` says why."""
        self._t0 = time.perf_counter()
        self.meta.pop("error", None)
        try:
            with self.progress:
                await self._run()
        except (KeyboardInterrupt, asyncio.CancelledError):  # a stop request, or a task cancelled on the way out
            return self._finish("interrupted")
        except BackendUnavailable as e:
            ck = self.run_dir / CHECKPOINT
            self.meta["error"] = {**e.to_json(), "resume_at_step": json.loads(ck.read_text())["next_step"] if ck.exists() else 0}
            self._finish("backend_unavailable")
            raise
        except BaseException as e:
            self.meta["error"] = {"kind": type(e).__name__, "message": Redactor.for_models(self.spec.models).clean(str(e))[:2000]}
            self._finish("failed")
            raise
        t = self.totals
        if t["answers"] and t["invalid"] == t["answers"]:
            self.meta["error"] = {"kind": "no_valid_answers", "message": f"all {t['answers']} agent answers of the run were invalid"}
            return self._finish("no_valid_answers")
        return self._finish("completed")

    def _finish(self, status: str) -> RunResult:
        """Flush the log and write the run's end state into run.json (once)."""
        if self._finished is not None:
            return self._finished
        self.writer.flush()
        # A stop that landed between a step's end in the log and its count here (SIGTERM or a second Ctrl-C raise
        # wherever the run is): the log is the truth, since it committed that step whole.
        self.meta["steps_completed"] = max(int(self.meta.get("steps_completed", 0)), self.writer.step_done + 1)
        wall = time.perf_counter() - self._t0
        self.meta.update(
            status=status,
            finished_at=now(),
            wall_s=round(wall, 3),
            totals=dict(self.totals),
            tokens_by_model={k: dict(v) for k, v in self.tokens_by_model.items()},
            step_latency_s=_percentiles(self.step_wall),
        )
        self._save_meta()
        self.writer.release()  # written through: another process may resume or branch it now
        self._finished = RunResult(self.run_dir, status, self.meta["steps_completed"], wall, dict(self.totals))
        return self._finished


@contextlib.contextmanager
def stop_signals(on_sigint: Callable[[int, Any], None], on_sigterm: Callable[[int, Any], None]) -> Iterator[None]:
    """While inside: SIGINT and SIGTERM go to these handlers (in the main thread only: Python delivers signals
    there, and elsewhere `signal.signal` refuses). The previous handlers come back on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    previous = {sig: signal.signal(sig, handler) for sig, handler in ((signal.SIGINT, on_sigint), (signal.SIGTERM, on_sigterm))}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else defaults[sig])


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    a = np.asarray(values)
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)), "mean": float(a.mean())}
