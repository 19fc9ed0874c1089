"""What the viewer's pages read: one run's log as small DataFrames, through DuckDB over one consistent snapshot.

A `RunData` holds a `RunLog` (agentsim/logs/reader.py): its snapshot pins the Parquet parts the writer had committed
and the last step every table holds, and `RunLog.duckdb()` gives one view per table over exactly those parts and
steps. `refresh()` takes a new snapshot; `version` goes up when it differs, so each page session notices (several
sessions share one RunData). Every query aggregates or caps its rows in DuckDB (`MAX_ROWS`, `MAX_TIMELINE`): a
million-user run's tables never reach pandas whole.

Errors: `ViewError` (a ValueError) names the path for a directory that is neither a run, an experiment nor a folder
of runs; a damaged log raises agentsim.logs.reader.LogError as every reader does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from agentsim.logs.reader import LogError, RunLog, find_runs

#: The most rows any table sent to a page has (a cut table says how many more there are).
MAX_ROWS = 500
#: The most LLM calls an agent's timeline shows (the latest up to the scrubbed step).
MAX_TIMELINE = 50
#: The most characters of one prompt or answer shown in a timeline.
MAX_TEXT = 4000

#: Per-step counts the runtime writes into `metrics` (agentsim/runtime/local.py LocalRuntime._step), in page order.
STEP_METRICS = ("llm_calls", "prompt_tokens", "completion_tokens", "invalid", "prefix_cache_hit_rate")


class ViewError(ValueError):
    """A path the viewer cannot open, with the path in the message."""


@dataclass(frozen=True)
class Status:
    """A run's status as of the snapshot: run.json's status, the steps every table holds and the scenario's steps."""

    run_id: str
    kind: str
    scenario: str
    status: str
    steps_done: int
    steps_total: int | None
    backends: str

    @property
    def fraction(self) -> float:
        return min(self.steps_done / self.steps_total, 1.0) if self.steps_total else 0.0


@dataclass(frozen=True)
class Target:
    """What `agentsim view PATH` opens: one run, or the runs of an experiment / a folder of runs (name -> dir)."""

    path: Path
    kind: str  # "run" | "experiment" | "runs"
    runs: dict[str, Path]


def open_target(path: str | Path) -> Target:
    """A run directory, an experiment directory (experiment.json) or a directory of runs. Raises ViewError naming
    the path when it is none of them (or is missing)."""
    from agentsim.experiments.manifest import ManifestError, is_experiment_dir

    p = Path(path)
    if not p.exists():
        raise ViewError(f"{p}: no such directory")
    if not p.is_dir():
        raise ViewError(f"{p}: not a directory (give a run directory, an experiment directory or a folder of runs)")
    if is_experiment_dir(p):
        from agentsim.experiments import load_experiment

        try:
            exp = load_experiment(p)
        except ManifestError as e:
            raise ViewError(str(e)) from None
        # Cells not started yet have no directory: listed by the page as waiting, opened once they exist.
        runs = {Path(d).name: Path(d) for d in exp.cells["run_dir"]}
        return Target(p, "experiment", runs)
    try:
        found = find_runs(p)
    except LogError as e:
        raise ViewError(f"{p}: neither a run directory, an experiment directory (experiment.json) nor a folder of runs") from e
    if found == [p]:
        return Target(p, "run", {p.name: p})
    return Target(p, "runs", {r.name: r for r in found})


class RunData:
    """One run for the viewer (see the module docstring). Thread-safe: one lock around the snapshot and DuckDB."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self._lock = threading.RLock()
        self.log = RunLog(self.run_dir)
        self.version = 0
        self._key = self._snapshot_key()
        self._con: Any = None
        self._memo: dict[Any, Any] = {}
        self._lasting: dict[Any, Any] = {}

    # -- the snapshot ---------------------------------------------------------------------------------------------
    def _snapshot_key(self) -> tuple[Any, ...]:
        meta = self.log.meta
        return (self.log.complete_steps, meta.get("status"), meta.get("steps_completed"), meta.get("finished_at"))

    def refresh(self) -> bool:
        """Take a new snapshot of the log; True (and `version` + 1) when it differs from the last one."""
        with self._lock:
            self.log.refresh()
            key = self._snapshot_key()
            if key == self._key:
                return False
            self._key = key
            self._con = None
            self._memo.clear()
            self.version += 1
            return True

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """`compute()` once per snapshot and key (analysis tables are read by every session and every scrub)."""
        with self._lock:
            if key not in self._memo:
                self._memo[key] = compute()
            return self._memo[key]

    def lasting(self, key: Any, compute: Callable[[], Any], keep: Callable[[Any], bool] = lambda v: True) -> Any:
        """`compute()` once for the run's life, as soon as `keep(result)` (e.g. "not empty": a table the writer
        writes once, such as agents, is computed again only until it has been written)."""
        with self._lock:
            if key in self._lasting:
                return self._lasting[key]
            value = compute()
            if keep(value):
                self._lasting[key] = value
            return value

    def sql(self, query: str, params: list[Any] | tuple[Any, ...] = ()) -> pd.DataFrame:
        """A query over the snapshot's tables (events, llm_calls, agents, metrics, timings) as a DataFrame. Queries
        must aggregate or LIMIT what they return."""
        with self._lock:
            if self._con is None:
                self._con = self.log.duckdb()
            return self._con.execute(query, list(params)).df()

    # -- what every run has ---------------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return str(self.log.spec.get("kind") or "")

    def status(self) -> Status:
        meta = self.log.meta
        spec = self.log.spec
        steps = spec.get("steps")
        backends = sorted({str(m.get("backend")) for m in (meta.get("models") or {}).values() if isinstance(m, dict)})
        scenario = (meta.get("world") or {}).get("scenario") or spec.get("name") or ""
        return Status(self.log.run_id, self.kind or "?", str(scenario), str(meta.get("status") or "unknown"),
                      self.log.complete_steps, steps if isinstance(steps, int) else None, ", ".join(backends))

    def per_step(self) -> pd.DataFrame:
        """One row per completed step: step, llm_calls, prompt_tokens, completion_tokens, invalid (agents' answers
        refused after retries), prefix_cache_hit_rate (cached / prompt tokens). The runtime's own per-step metrics
        (STEP_METRICS); a log without them is counted from llm_calls and events the same way."""
        return self.memo("per_step", self._per_step)

    def _per_step(self) -> pd.DataFrame:
        names = ", ".join(f"'{m}'" for m in STEP_METRICS)
        m = self.sql(f"SELECT step, metric, sum(value) AS value FROM metrics WHERE agent_id IS NULL AND metric IN ({names}) "
                     "GROUP BY 1, 2")
        if not m.empty:
            wide = m.pivot_table(index="step", columns="metric", values="value", aggfunc="sum")
            wide = wide.reindex(columns=list(STEP_METRICS))
        else:  # a log from before these metrics: the same counts, from the calls and the events
            wide = self.sql(
                "SELECT c.step, c.llm_calls, c.prompt_tokens, c.completion_tokens, coalesce(i.invalid, 0) AS invalid, "
                "CASE WHEN c.prompt_tokens > 0 THEN c.cached / c.prompt_tokens ELSE 0 END AS prefix_cache_hit_rate FROM "
                "(SELECT step, count(*) AS llm_calls, sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens, "
                " sum(coalesce(cached_tokens, 0))::DOUBLE AS cached FROM llm_calls GROUP BY step) c "
                "LEFT JOIN (SELECT step, count(*) AS invalid FROM events WHERE action = 'invalid' GROUP BY step) i USING (step)"
            ).set_index("step")
        wide = wide.sort_index()
        for c in STEP_METRICS[:-1]:
            wide[c] = wide[c].fillna(0).astype("int64")
        wide["prefix_cache_hit_rate"] = wide["prefix_cache_hit_rate"].astype(float)
        return wide.reset_index()

    def agents(self, limit: int = MAX_ROWS) -> pd.DataFrame:
        """Up to `limit` agents, those with the most LLM calls first: agent_id, kind, group, calls. Agents that only
        appear in llm_calls (a judge, a world model a family does not list) are included."""
        return self.memo(("agents", limit), lambda: self.sql(
            "WITH c AS (SELECT agent_id, count(*) AS calls FROM llm_calls GROUP BY 1) "
            'SELECT coalesce(a.agent_id, c.agent_id) AS agent_id, a.kind, a."group", coalesce(c.calls, 0) AS calls '
            "FROM agents a FULL OUTER JOIN c ON a.agent_id = c.agent_id "
            "ORDER BY calls DESC, agent_id LIMIT ?", [int(limit)]))

    def agent_count(self) -> int:
        return int(self.memo("agent_count", lambda: self.sql("SELECT count(*) AS n FROM agents")["n"].iloc[0]))

    def has_agent(self, agent_id: str) -> bool:
        q = "SELECT (SELECT count(*) FROM agents WHERE agent_id = ?) + (SELECT count(*) FROM llm_calls WHERE agent_id = ?) AS n"
        return bool(self.sql(q, [agent_id, agent_id])["n"].iloc[0])

    def timeline(self, agent_id: str, through_step: int, limit: int = MAX_TIMELINE) -> list[dict[str, Any]]:
        """The agent's latest `limit` LLM calls up to `through_step`, newest first, each a dict: step, phase,
        attempt, valid, error, backend, prompt_tokens, completion_tokens, observation (the prompt's last message,
        when logging.record_prompts kept prompts; else None), prompt (all messages as text), answer (the raw
        completion text), reasoning (the answer's `reasoning` field where the family's answers have one), actions
        (the events this call's answer led to: action, target, payload) and invalid (the `invalid` event's reason,
        when the answer was refused after retries). Texts are cut to MAX_TEXT characters."""
        calls = self.sql(
            "SELECT request_id, step, phase, attempt, valid, error, backend, prompt_tokens, completion_tokens, prompt, "
            "completion_text FROM llm_calls WHERE agent_id = ? AND step <= ? "
            "ORDER BY step DESC, request_id DESC, attempt DESC LIMIT ?", [agent_id, int(through_step), int(limit)])
        if calls.empty:
            return []
        lo = int(calls["step"].min())
        events = self.sql(
            "SELECT request_id, action, target, payload FROM events WHERE agent_id = ? AND step BETWEEN ? AND ? "
            "ORDER BY event_id LIMIT ?", [agent_id, lo, int(through_step), MAX_ROWS * 4])
        by_request: dict[str, list[dict[str, Any]]] = {}
        for r in events.itertuples(index=False):
            by_request.setdefault(str(r.request_id), []).append({"action": r.action, "target": r.target, "payload": r.payload})
        out = []
        for r in calls.itertuples(index=False):
            evs = by_request.get(str(r.request_id), [])
            invalid = next((_payload(e["payload"]).get("error") for e in evs if e["action"] == "invalid"), None)
            observation, prompt = _prompt_texts(r.prompt)
            out.append({
                "request_id": r.request_id, "step": int(r.step), "phase": r.phase, "attempt": int(r.attempt),
                "valid": bool(r.valid), "error": r.error, "backend": r.backend, "prompt_tokens": int(r.prompt_tokens),
                "completion_tokens": int(r.completion_tokens), "observation": observation, "prompt": prompt,
                "answer": _cut(r.completion_text), "reasoning": reasoning_of(r.completion_text),
                # The last attempt of a request carries its events (the answer that was applied or refused).
                "actions": [e for e in evs if e["action"] not in ("invalid", "unscored")],
                "invalid": invalid,
            })
        # Events belong to the request, shown once: on its last attempt (the first in this newest-first order).
        seen: set[str] = set()
        for c in out:
            if c["request_id"] in seen:
                c["actions"], c["invalid"] = [], None
            seen.add(c["request_id"])
        return out

    def human_seats(self) -> list[str]:
        """The human seats of the run (entries of `<run>/humans/`, written by `backend: human`), sorted; [] when the
        run has none. The page lists them in its links area (the seat pages are agentsim.view.seat's)."""
        from agentsim.llm.human import SeatQueue

        return sorted(SeatQueue.seats(self.run_dir))


def _payload(text: Any) -> dict[str, Any]:
    if not isinstance(text, str) or not text:
        return {}
    try:
        d = json.loads(text)
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


def _cut(text: Any, limit: int = MAX_TEXT) -> str | None:
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return None
    s = str(text)
    return s if len(s) <= limit else s[:limit] + f" … ({len(s) - limit} more characters)"


def reasoning_of(completion: Any) -> str | None:
    """The `reasoning` field of a JSON answer (the wargame's private reasoning, agentsim/scenarios/wargame/actions.py),
    read as the policies read answers: the text itself, else its outermost {...}; None when there is none."""
    if not isinstance(completion, str):
        return None
    for cand in (completion.strip(), completion[completion.find("{"): completion.rfind("}") + 1]):
        d = _payload(cand)
        if isinstance(d.get("reasoning"), str):
            return _cut(d["reasoning"])
    return None


def _prompt_texts(prompt: Any) -> tuple[str | None, str | None]:
    """(the last message's content, every message as `role: content`) of a logged prompt (JSON messages)."""
    if not isinstance(prompt, str) or not prompt:
        return None, None
    try:
        messages = json.loads(prompt)
    except ValueError:
        return _cut(prompt), _cut(prompt)
    if not isinstance(messages, list) or not messages:
        return _cut(prompt), _cut(prompt)
    parts = [f"{m.get('role', '?')}: {m.get('content', '')}" if isinstance(m, dict) else str(m) for m in messages]
    last = messages[-1]
    return _cut(last.get("content") if isinstance(last, dict) else str(last)), _cut("\n\n".join(parts))
