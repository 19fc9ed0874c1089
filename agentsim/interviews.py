"""Interviews: ask a run's agent a question, as it stood at a step, through its own model.

What the agent saw is rebuilt from the run, in this order (`source="auto"`):

1. `llm_calls`: the last prompt the agent was sent at or before the step (the last attempt of its last request,
   as stored when the run had `logging.record_prompts: true`), and the answer it gave (`completion_text`).
2. a checkpoint: the world, RNG and agents' memories saved at the start of a step (`checkpoints/step-N.json`
   when the run kept them, or the last `checkpoint.json`). The world is restored and observed again, the family's
   mind builds the agent's prompt from its persona and memory, exactly as the runtime does
   (agentsim/runtime/local.py: LocalRuntime._step); phases before the agent's are replayed from the run's recorded
   answers. The rebuilt request is checked against the request hash the run recorded (`verified`).

The conversation sent is that prompt, the agent's recorded answer (an assistant turn, when recorded) and the question
(a user turn). It goes to the agent's own model alias as the run's spec names it (--backend / --set change it), through
the backend building the run uses (agentsim/llm/router.py: build_backend), in free text with the alias's sampling.
A scripted backend answers with agentsim.llm.scripted.interview_answer; a replay backend cannot answer a question
no run asked, so it is refused.

Every answer is appended to the run's `interviews` table (schema.INTERVIEWS), a file of its own per call; the run's
own tables are never changed. `ask` is what the CLI, the viewer's "ask this agent" box and experiment surveys call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from agentsim.llm.types import BackendError, LLMRequest, LLMResult, ResponseFormat
from agentsim.logs.reader import LogError, RunLog

Source = Literal["auto", "llm_calls", "checkpoint"]

#: Backends that cannot answer a new question.
CANNOT_ANSWER = {"replay": "a replay backend answers only the requests a run recorded, and no run asked this question",
                 "human": "a person played this seat (backend: human); ask them, or put the question to a model"}


class InterviewError(Exception):
    """An interview that cannot be made from what the user gave or what the run holds; the message says why and
    what to do. `exit_code`: the CLI's (2: bad input)."""

    exit_code = 2


@dataclass(frozen=True)
class Seen:
    """What an agent was shown at a step: the chat prompt, the answer it gave (None: not recorded), where both came
    from, and the run's request they belong to."""

    agent_id: str
    alias: str
    step: int
    phase: str
    messages: list[dict[str, str]]
    answer: str | None
    source: Literal["llm_calls", "checkpoint"]
    request_id: str | None = None
    #: checkpoint: whether the rebuilt request hashes as the recorded one did (None: no recorded request to compare).
    verified: bool | None = None


@dataclass(frozen=True)
class Interview:
    """One question and its answer; `row()` is its row of the `interviews` table."""

    interview_id: str
    run_id: str
    seen: Seen
    question: str
    answer: str
    model: str
    backend: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    finish_reason: str
    created_at: str
    asked_step: int | None = None
    messages: list[dict[str, str]] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        s = self.seen
        return {"interview_id": self.interview_id, "run_id": self.run_id, "agent_id": s.agent_id, "at_step": s.step,
                "asked_step": self.asked_step, "question": self.question, "answer": self.answer, "alias": s.alias,
                "model": self.model, "backend": self.backend, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "latency_s": self.latency_s,
                "finish_reason": self.finish_reason, "created_at": self.created_at, "source": s.source,
                "request_id": s.request_id, "verified": s.verified,
                "messages": json.dumps(self.messages, ensure_ascii=False)}


def run_sync(coro: Any) -> Any:
    """Run a coroutine to its end from synchronous code, also where this thread's event loop is already running (a
    notebook cell, a viewer's callback): then in a new loop on a worker thread, as LocalRuntime.run does."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="agentsim-interview") as pool:
        return pool.submit(asyncio.run, coro).result()


# -- opening a run ----------------------------------------------------------------------------------------------------
def open_run(run: str | Path | RunLog) -> RunLog:
    if isinstance(run, RunLog):
        return run
    try:
        log = RunLog(run)
    except LogError as e:
        raise InterviewError(str(e)) from None
    if not isinstance(log.meta.get("spec"), dict):
        raise InterviewError(f"{log.run_dir}: run.json holds no scenario spec; was it written by `agentsim run`?")
    return log


def _agents(log: RunLog) -> dict[str, str]:
    """agent id -> model alias, from the run's agents table."""
    t = log.table("agents", ["agent_id", "model"])
    return dict(zip(t.column("agent_id").to_pylist(), t.column("model").to_pylist(), strict=True))


def _known_list(ids: list[str], limit: int = 20) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")


def check_agent(log: RunLog, agent: str) -> str:
    """The agent's model alias; InterviewError naming the known agents for an unknown one, or for an agent no model
    plays (a controlled account)."""
    agents = _agents(log)
    if agent not in agents:
        raise InterviewError(f"{log.run_dir}: no agent {agent!r} in this run; agents: {_known_list(sorted(agents))}")
    alias = agents[agent]
    if not alias:
        raise InterviewError(f"{log.run_dir}: {agent!r} is not played by a model (no model alias in the agents table); "
                             f"agents with one: {_known_list(sorted(a for a, m in agents.items() if m))}")
    return alias


def check_step(log: RunLog, at: int | None) -> int | None:
    """`at` checked against the steps the run holds (0-based, as the log's `step` column), or the step after its
    last one (the agents as they stand after it, rebuilt from the run's last checkpoint: what the latest interview
    asks without `at`); InterviewError beyond."""
    if at is None:
        return None
    done = log.complete_steps
    if at < 0:
        raise InterviewError(f"--at {at}: steps are counted from 0 (the log's `step` column)")
    if at > done or not done:
        held = f"steps 0..{done - 1}, and --at {done} asks the agents as they stand after them" if done else "no complete step yet"
        raise InterviewError(f"--at {at}: beyond the run {log.run_dir.name}, which holds {held}")
    return at


# -- source 1: the stored prompt --------------------------------------------------------------------------------------
def _from_llm_calls(log: RunLog, agent: str, at: int) -> tuple[Seen | None, str]:
    """The agent's last stored prompt at or before `at`, or (None, why not)."""
    t = log.table("llm_calls", ["step", "phase", "agent_id", "alias", "request_id", "prompt", "completion_text"])
    mask = pc.and_(pc.equal(t.column("agent_id"), agent), pc.less_equal(t.column("step"), at))
    mine = t.filter(mask)
    if mine.num_rows == 0:
        return None, f"the run logged no request of {agent!r} at or before step {at}"
    last_step = pc.max(mine.column("step")).as_py()
    rows = mine.filter(pc.equal(mine.column("step"), last_step)).to_pylist()
    row = rows[-1]  # rows are in the order they were asked: the last attempt of the last request
    if row["prompt"] is None:
        return None, "the run stored no prompt texts (logging.record_prompts: false)"
    try:
        messages = json.loads(row["prompt"])
    except json.JSONDecodeError as e:
        raise InterviewError(f"{log.run_dir}/llm_calls: the prompt of {row['request_id']} is not valid JSON ({e})") from None
    return Seen(agent, row["alias"], last_step, row["phase"], messages, row["completion_text"], "llm_calls",
                row["request_id"]), ""


# -- source 2: a checkpoint -------------------------------------------------------------------------------------------
def _checkpoints(run_dir: Path) -> dict[int, Path | None]:
    """Step -> the checkpoint holding the state at its start: kept ones, the last one, and step 0's (None: the world
    as the scenario builds it, which is where every run starts)."""
    from agentsim.runtime.branch import CHECKPOINT, kept_path, kept_steps

    out: dict[int, Path | None] = {0: None}
    out.update({s: kept_path(run_dir, s) for s in kept_steps(run_dir)})
    last = run_dir / CHECKPOINT
    if last.is_file():
        # A damaged last checkpoint is skipped: the kept ones may still serve (resume reports the damage).
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            out.setdefault(int(json.loads(last.read_text())["next_step"]), last)
    return out


def _from_checkpoint(log: RunLog, agent: str, at: int | None, sc: Any) -> tuple[Seen | None, str]:
    """The agent's prompt rebuilt from the latest checkpoint at or before `at` (None: any, the run's end included)
    at which it acts, or (None, why not)."""
    steps_total = int(log.spec.get("steps", 0))
    cks = _checkpoints(log.run_dir)
    usable = sorted((s for s in cks if (s <= at if at is not None else s <= steps_total)), reverse=True)
    if not usable:
        kept = ", ".join(map(str, sorted(cks))) or "none"
        return None, f"no checkpoint at or before step {at} (checkpoints at steps: {kept})"
    why = ""
    for step in usable[:3]:  # each try builds the world: a few, latest first
        seen, why = _rebuild(log, agent, step, cks[step], sc)
        if seen is not None:
            return seen, ""
    return None, why


def _rebuild(log: RunLog, agent: str, step: int, ck_path: Path | None, sc: Any) -> tuple[Seen | None, str]:
    """Restore the world of `ck_path` (the state at the start of `step`; None: a new world, step 0) and observe its
    phases until `agent` is asked, as LocalRuntime._step does; earlier phases of the step are answered from the
    run's recorded answers."""
    import numpy as np

    from agentsim.core.policy import LLMPolicy
    from agentsim.core.seeding import make_rng, restore_rng
    from agentsim.core.state import join_arrays
    from agentsim.core.world import StepContext
    from agentsim.spec.errors import SpecError
    from agentsim.spec.loader import world_errors

    spec = sc.spec
    where = ck_path or log.run_dir / "run.json"
    try:
        with world_errors(str(sc.source or spec.name), None):
            world = sc.family.create_world(spec, sc.world)
        rng = make_rng(spec.seed, "world")
        ck: dict[str, Any] = {}
        if ck_path is not None:
            ck = json.loads(ck_path.read_text())
            arrays: dict[str, Any] = {}
            if ck.get("world_arrays"):
                with np.load(ck_path.parent / ck["world_arrays"], allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
            world.set_state(join_arrays(ck["world"], arrays))
            restore_rng(rng, ck["rng"])
    except SpecError as e:
        raise InterviewError(f"{where}: the run's world cannot be built again: {e.render()}") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InterviewError(f"{where}: the checkpoint cannot be restored ({type(e).__name__}: {e})") from None
    replay: list[Any] = []

    def backend() -> Any:  # the run's own answers, for phases before the agent's; built only when needed
        if not replay:
            from agentsim.llm.replay import ReplayBackend

            try:
                replay.append(ReplayBackend(log.run_dir))
            except BackendError as e:
                raise InterviewError(f"{where}: {agent!r} acts after other phases of step {step}, which need the "
                                     f"run's recorded answers: {e}") from None
        return replay[0]

    class _Lazy:
        name = "replay"

        async def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
            return await backend().generate(requests)

        def close(self) -> None:
            pass

    policy = LLMPolicy(_Lazy(), spec.models, spec.seed, spec.policy.max_retries, spec.logging,
                       reask_with_reason=spec.policy.reask_with_reason)
    mind = sc.family.create_mind(spec, sc.world) if sc.family.create_mind else None
    policy.attach(log.table("agents"), mind)
    policy.set_memories(ck.get("memories", {}))
    ctx = StepContext(step, world.sim_time(step), rng, int(ck.get("next_event_id", 0)))
    for phase in world.phases:
        ctx.phase = phase
        observations = world.observe(ctx, phase)
        mine = [o for o in observations if o.agent_id == agent and o.continuation is None]
        if mine:
            obs = mine[0]
            if obs.messages is None and policy.minds is not None:
                policy.minds.prompt([obs])
            if obs.messages is None:
                return None, f"the world gave {agent!r} no prompt at step {step}"
            req = policy.request(step, phase, obs, 0)
            verified, answer = _recorded(log, req)
            return Seen(agent, obs.model, step, phase, list(obs.messages), answer, "checkpoint", req.request_id, verified), ""
        decisions = run_sync(policy.decide(step, phase, observations)) if observations else []
        world.apply(ctx, phase, decisions)
    return None, f"{agent!r} is not asked anything at step {step} (the world observes it in no phase)"


def _recorded(log: RunLog, req: LLMRequest) -> tuple[bool | None, str | None]:
    """(whether the run recorded this request with the same content hash, the answer of its last attempt)."""
    t = log.table("llm_calls", ["request_id", "request_hash", "completion_text"])
    first = t.filter(pc.equal(t.column("request_id"), req.request_id)).to_pylist()
    if not first:
        return None, None
    stem = req.request_id.rsplit("-a", 1)[0] + "-a"
    attempts = t.filter(pc.starts_with(t.column("request_id"), stem)).to_pylist()
    return first[0]["request_hash"] == req.content_hash(), (attempts[-1] if attempts else first[0])["completion_text"]


# -- the scenario as the interview runs it ----------------------------------------------------------------------------
def run_scenario(log: RunLog, backend: str | None = None, sets: dict[str, Any] | None = None) -> Any:
    """The run's scenario (run.json's spec, overrides applied) with `backend` / `sets` (dotted paths) applied:
    which model answers. Raises InterviewError for a change that does not validate."""
    from agentsim.spec.errors import SpecError
    from agentsim.spec.loader import apply_overrides, parse_scenario

    source = log.meta.get("source")
    try:
        data = apply_overrides(log.spec, backend=backend, **(sets or {}))
        return parse_scenario(data, source or str(log.run_dir / "run.json"), base_dir=Path(source).parent if source else None)
    except SpecError as e:
        raise InterviewError(e.render()) from None


def what_it_saw(run: str | Path | RunLog, agent: str, at: int | None = None, source: Source = "auto") -> Seen:
    """What `agent` was shown at step `at` (None: its latest), from the stored prompt or a checkpoint (module
    docstring). Raises InterviewError saying what is missing and how a run keeps it."""
    log = open_run(run)
    alias = check_agent(log, agent)
    at = check_step(log, at)
    if log.complete_steps == 0:
        raise InterviewError(f"{log.run_dir}: the run holds no complete step yet; nothing was asked of {agent!r}")
    why: list[str] = []
    if source in ("auto", "llm_calls") and at == log.complete_steps:
        why.append(f"llm_calls: step {at} did not run (the run holds steps 0..{at - 1}): only a checkpoint has it")
    elif source in ("auto", "llm_calls"):
        seen, reason = _from_llm_calls(log, agent, log.complete_steps - 1 if at is None else at)
        if seen is not None:
            return seen
        why.append(f"llm_calls: {reason}")
    if source in ("auto", "checkpoint"):
        # The run's own scenario, not the interview's changes: the prompt must be the one the run built.
        seen, reason = _from_checkpoint(log, agent, at, run_scenario(log))
        if seen is not None:
            return seen
        why.append(f"checkpoints: {reason}")
    where = f"at or before step {at}" if at is not None else "in this run"
    raise InterviewError(
        f"{log.run_dir}: cannot rebuild what {agent!r} (model alias {alias!r}) saw {where}: {'; '.join(why)}. "
        "A run keeps it with --set logging.record_prompts=true (the prompts in llm_calls), or with --set "
        "runtime.keep_checkpoints=true --set runtime.checkpoint_every=1 (the state at every step)")


def conversation(seen: Seen, question: str) -> list[dict[str, str]]:
    """The messages an interview sends: what the agent saw, its answer (when recorded), the question."""
    answer = [{"role": "assistant", "content": seen.answer}] if seen.answer else []
    return [*seen.messages, *answer, {"role": "user", "content": question}]


# -- asking -----------------------------------------------------------------------------------------------------------
@dataclass
class _Pending:
    log: RunLog
    seen: Seen
    question: str
    asked_step: int | None
    request: LLMRequest
    model: str
    backend: str


def _prepare(log: RunLog, agent: str, question: str, at: int | None, sc: Any, source: Source) -> _Pending:
    from agentsim.core.seeding import derive_seed

    if not question.strip():
        raise InterviewError("the question is empty")
    seen = what_it_saw(log, agent, at, source)
    models = sc.spec.models
    if seen.alias not in models:
        raise InterviewError(f"{log.run_dir}: {agent!r} was played by model alias {seen.alias!r}, which the run's spec "
                             f"does not define (aliases: {', '.join(sorted(models))})")
    m = models[seen.alias]
    if m.backend in CANNOT_ANSWER:
        recorded = (log.meta.get("models") or {}).get(seen.alias, {})
        label = recorded.get("label") if isinstance(recorded, dict) else None
        raise InterviewError(f"model alias {seen.alias!r} uses the {m.backend} backend: {CANNOT_ANSWER[m.backend]}. "
                             f"Ask a model with --backend vllm (or openai, or scripted)"
                             + (f"; the recorded answers came from {label}" if label else ""))
    iid = uuid.uuid4().hex
    messages = conversation(seen, question)
    req = LLMRequest(request_id=f"interview-{iid}", agent_id=agent, alias=seen.alias, model=m.model, messages=messages,
                     sampling=m.sampling, seed=derive_seed(sc.spec.seed, "interview", seen.step, agent, question),
                     response_format=ResponseFormat("text"), step=seen.step, purpose="interview")
    return _Pending(log, seen, question, at, req, m.model, m.backend)


def _answer(pending: list[_Pending], models: dict[str, Any], family: Any, log_line: Any = None) -> list[Interview]:
    """The answers, in the order of `pending`."""
    # Every pending question goes in one batch to one backend router built for the aliases they use.
    from agentsim.llm.redact import Redactor
    from agentsim.llm.router import build_backend

    if not pending:
        return []
    used = {p.request.alias: models[p.request.alias] for p in pending}
    try:
        router = build_backend(used, family.scripted_policy, log=log_line or (lambda m: None))
    except BackendError as e:
        raise BackendError(f"the interview's backend cannot start: {e}") from e
    try:
        t0 = time.perf_counter()
        results = run_sync(router.generate([p.request for p in pending]))
        wall = time.perf_counter() - t0
    finally:
        router.close()
    clean = Redactor.for_models(models).clean
    out = []
    for p, res in zip(pending, results, strict=True):
        if res.error:
            raise BackendError(f"model alias {p.request.alias!r} ({p.backend}) could not answer: {clean(res.error)}")
        out.append(Interview(
            interview_id=p.request.request_id.removeprefix("interview-"), run_id=p.log.run_id, seen=p.seen,
            question=p.question, answer=clean(res.text).strip(), model=p.model, backend=p.backend,
            prompt_tokens=res.prompt_tokens, completion_tokens=res.completion_tokens,
            latency_s=res.latency_s or wall, finish_reason=res.finish_reason,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"), asked_step=p.asked_step,
            messages=p.request.messages))
    return out


def record(run_dir: Path, interviews: list[Interview]) -> Path | None:
    """Append interviews to the run's `interviews` table (one new file; the run's own tables are untouched)."""
    from agentsim.logs.writer import append_side_table

    if not interviews:
        return None
    return append_side_table(run_dir, "interviews", [i.row() for i in interviews])


def ask(run: str | Path | RunLog, agent: str, question: str, at: int | None = None, *, backend: str | None = None,
        sets: dict[str, Any] | None = None, source: Source = "auto", save: bool = True,
        log: Any = None) -> Interview:
    """Ask `agent` of run `run` a question as it stood at step `at` (0-based, as the log's `step`; None: its latest),
    through its own model alias (`backend`: another backend for every alias, as `--backend`; `sets`: dotted-path
    changes, as `--set models.default.model=...`). Appends the answer to the run's `interviews` table unless
    `save=False`; returns it (`.answer` is the text).

    Raises InterviewError for what the user or the run must change (unknown agent, step beyond the run, nothing
    stored to rebuild the prompt from, a replay backend) and BackendError for a model that cannot start or answer."""
    rl = open_run(run)
    sc = run_scenario(rl, backend, sets)
    p = _prepare(rl, agent, question, at, sc, source)
    [iv] = _answer([p], sc.spec.models, sc.family, log)
    if save:
        record(rl.run_dir, [iv])
    return iv


def interview(run_dir: str | Path, agent: str, question: str, at: int | None = None, backend: str | None = None,
              **kwargs: Any) -> str:
    """`agentsim.interview(run_dir, agent, question, at=None, backend=None)`: the answer's text (see `ask`)."""
    return ask(run_dir, agent, question, at, backend=backend, **kwargs).answer


def ask_many(runs: list[tuple[RunLog, list[str]]], question: str, at: int | None = None, *, backend: str | None = None,
             sets: dict[str, Any] | None = None, source: Source = "auto", save: bool = True,
             log: Any = None) -> list[Interview]:
    """One question to many agents of many runs: runs whose model aliases are configured alike share one backend
    (one engine per model, one batch for all their questions). Each run's answers are appended to its own table."""
    groups: dict[str, tuple[Any, list[_Pending]]] = {}
    for rl, agents in runs:
        sc = run_scenario(rl, backend, sets)
        key = json.dumps([sc.spec.kind, {a: m.model_dump(mode="json") for a, m in sc.spec.models.items()}], sort_keys=True)
        group = groups.setdefault(key, (sc, []))
        group[1].extend(_prepare(rl, a, question, at, sc, source) for a in agents)
    out: list[Interview] = []
    by_run: dict[Path, list[Interview]] = {}
    for sc, pending in groups.values():
        answers = _answer(pending, sc.spec.models, sc.family, log)
        for p, iv in zip(pending, answers, strict=True):
            by_run.setdefault(p.log.run_dir, []).append(iv)
        out += answers
    if save:
        for run_dir, ivs in by_run.items():
            record(run_dir, ivs)
    return out


def interviews_table(interviews: list[Interview]) -> pa.Table:
    from agentsim.logs.schema import INTERVIEWS

    return pa.Table.from_pylist([i.row() for i in interviews], schema=INTERVIEWS)
