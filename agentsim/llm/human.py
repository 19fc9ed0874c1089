"""The human backend: a person answers an agent's requests, through files in the run directory.

A model alias with `backend: human` sits in any seat a model could (scenario YAML: `models.me: {backend: human}`,
then `population.overrides: {Red: me}`, a tournament participant's `model: me`, drift's `world.user.model: me`).
Each agent playing on such an alias is a *seat*; its requests go to a queue in the run directory, so a page in
another thread or process, a console, or a test can answer them, and a resumed run finds what was answered:

    <run>/humans/<seat>/pending/<request id>.json    a request waiting for its person (written by the backend)
    <run>/humans/<seat>/answers/<request id>.json    the person's answer (written atomically by whoever answers);
                                                     once accepted, rewritten by the backend as the record
    <run>/humans/<seat>/refused/<request id>-<n>.json  answers refused, with the reason (the pending file lists them)

(`<seat>` and `<request id>` stand for `file_stem` of the agent id and the request id: the id itself where it is a
short, file-safe name, else a safe prefix and a hash; names are any Unicode text, e.g. drift's `none-0000/user`.)

A pending file holds `request_id`, `agent_id`, `alias`, `step`, `attempt`, `request_hash`, `messages` (exactly the
agent's prompt: what that agent may observe, so a family's privacy rules hold for people by construction),
`response_format` (`kind` and the `json_schema` guided decoding uses), `created_at`, `deadline` (epoch seconds or
null) and `refused` ([{answer, reason, at}]). An answer file is `{"answer": <JSON value or text>, "request_hash":
<copied from the pending file, optional>}`; `SeatQueue.answer` writes one.

An answer is checked by the same parse and pydantic validation as a model's (`LLMRequest.check`, from
core/policy.py: parse_answer); a refused one is moved to `refused/` with its reason and the person can answer
again. Request ids are deterministic (`s<step>-<phase>-<agent>-a<attempt>`, core/policy.py: LLMPolicy.request),
so after a kill the resumed run finds the accepted answer of a request it asks again and uses it without asking;
an answer recorded for another prompt under the same id (a resumed run whose other seats answered differently) is
moved to `stale/` and the person is asked again.

A person who does not answer within the alias's `timeout_s` gets its `fallback` answer (validated like any
answer), or none (an invalid answer); `finish_reason` is "human_timeout" either way, so the run log says so. The
accepted text is what `llm_calls.completion_text` records, so `--backend replay` replays a human game exactly.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentsim.llm.scripted import word_count
from agentsim.llm.types import BackendError, LLMRequest, LLMResult
from agentsim.spec.models import ModelSpec

HUMANS_DIR = "humans"
#: llm_calls.finish_reason of a request whose person did not answer within timeout_s.
HUMAN_TIMEOUT = "human_timeout"
#: The error of such a request when the alias has no fallback (the replay backend gives the same, see replay.py).
TIMEOUT_ERROR = "the person did not answer within timeout_s and the alias has no fallback"
NO_SCORING = "a person cannot score a continuation (log-probabilities); scoring needs the vllm backend"

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


#: Longest file name stem kept as it is; longer (or unsafe) ids get a shortened safe form with a hash. Well under
#: the 255 bytes most file systems allow, leaving room for suffixes ("-<n>.json", "-<ns>.json").
MAX_STEM = 100


def file_stem(text: str) -> str:
    """A file (or folder) name for an id that may hold any Unicode text (README "Names": agent ids, so request ids,
    may contain '/', spaces, non-ASCII letters, and be of any length): the id itself where it is short and made of
    [A-Za-z0-9_.-] only (not '.' or '..'), else a safe prefix and a hash of the whole id, so two ids never share a
    name. The files keep the real id inside them."""
    safe = _SAFE.sub("_", text)
    if safe == text and text not in (".", "..") and len(text) <= MAX_STEM:
        return text
    import hashlib

    return f"{safe[:40]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def seat_name(agent_id: str) -> str:
    """The folder name of an agent's seat (`file_stem` of its id)."""
    return file_stem(agent_id)


def _write_json(path: Path, data: Any) -> None:
    """Atomic: a reader sees the old file or the new one, never half of one (temporary name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    """The file's JSON, or None when it is missing or not (yet) whole JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def answer_text(answer: Any) -> str:
    """The text a model would have written for `answer`: a string as it is (a text answer, or JSON typed as
    text), anything else as JSON."""
    return answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)


def fill_agent(value: Any, agent_id: str) -> Any:
    """`value` with every '{agent}' inside its strings replaced by `agent_id` (a fallback serving every seat)."""
    if isinstance(value, str):
        return value.replace("{agent}", agent_id)
    if isinstance(value, dict):
        return {k: fill_agent(v, agent_id) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_agent(v, agent_id) for v in value]
    return value


class SeatQueue:
    """One seat's folder of the run directory: the requests waiting for its person, and their answers."""

    def __init__(self, run_dir: str | Path, agent_id: str):
        self.agent_id = agent_id
        self.dir = Path(run_dir) / HUMANS_DIR / seat_name(agent_id)
        self.pending_dir = self.dir / "pending"
        self.answers_dir = self.dir / "answers"
        self.refused_dir = self.dir / "refused"

    def pending_path(self, request_id: str) -> Path:
        return self.pending_dir / f"{file_stem(request_id)}.json"

    def answer_path(self, request_id: str) -> Path:
        return self.answers_dir / f"{file_stem(request_id)}.json"

    def refused_path(self, request_id: str, n: int) -> Path:
        return self.refused_dir / f"{file_stem(request_id)}-{n}.json"

    def stale_path(self, request_id: str) -> Path:
        return self.dir / "stale" / f"{file_stem(request_id)}-{time.time_ns()}.json"

    @staticmethod
    def seats(run_dir: str | Path) -> list[str]:
        """The agent ids of the seats that have a folder in `run_dir` (read from their pending and answer files)."""
        root = Path(run_dir) / HUMANS_DIR
        out = []
        for d in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []:
            meta = _read_json(d / "seat.json")
            if isinstance(meta, dict) and isinstance(meta.get("agent_id"), str):
                out.append(meta["agent_id"])
        return out

    @property
    def link_file(self) -> Path:
        """Where the run writes the seat page's URL (token included) while it serves it; the viewer links to it.
        Readable by the owner only: the token is the seat's key."""
        return self.dir / "link"

    def publish_link(self, url: str | None) -> None:
        """Write (or, with None, remove) the seat page's URL in `link_file`."""
        if url is None:
            self.link_file.unlink(missing_ok=True)
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".link.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(url + "\n")
        os.replace(tmp, self.link_file)

    def close(self) -> None:
        """Say that nobody answers at this seat any more (its console's input ended)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / CLOSED).touch()

    def closed(self) -> bool:
        return (self.dir / CLOSED).exists()

    def link(self) -> str | None:
        """The seat page's URL while the run serves it, else None."""
        try:
            return self.link_file.read_text().strip() or None
        except OSError:
            return None

    def pending(self) -> list[dict[str, Any]]:
        """The requests waiting for an answer, oldest first."""
        out = []
        for p in self.pending_dir.glob("*.json") if self.pending_dir.is_dir() else []:
            data = _read_json(p)
            if isinstance(data, dict):
                out.append(data)
        return sorted(out, key=lambda d: (d.get("created_at", 0), d.get("request_id", "")))

    def get(self, request_id: str) -> dict[str, Any] | None:
        """The pending request `request_id` (None once it is answered or gone)."""
        data = _read_json(self.pending_path(request_id))
        return data if isinstance(data, dict) else None

    def answer(self, request: dict[str, Any] | str, answer: Any) -> Path:
        """Answer a pending request (its dict from `pending()`, or its id): `answer` is the JSON value or the text
        the model would have written. The backend checks it; a refused one appears in the request's `refused`."""
        rid = request if isinstance(request, str) else request["request_id"]
        data: dict[str, Any] = {"answer": answer}
        if isinstance(request, dict) and request.get("request_hash"):
            data["request_hash"] = request["request_hash"]
        path = self.answer_path(rid)
        _write_json(path, data)
        return path

    def record(self, request_id: str) -> dict[str, Any] | None:
        """The backend's record of an accepted answer (None: none yet)."""
        data = _read_json(self.answer_path(request_id))
        return data if isinstance(data, dict) and data.get("accepted") else None


def clear_pending(run_dir: str | Path) -> int:
    """Remove the requests a previous process of this run left waiting (a run killed while its person had not
    answered leaves its pending files behind). Nobody waits on them any more: shown on a resumed run's page or
    console, they would be answered before the run asks (with a dead deadline), and a resumed run that asks
    differently would find that answer stale. The resumed run writes its own request when it gets there; answers
    and records are kept, so what a person did answer is still used. Returns how many were removed."""
    root = Path(run_dir) / HUMANS_DIR
    n = 0
    for p in root.glob("*/pending/*.json") if root.is_dir() else []:
        p.unlink(missing_ok=True)
        n += 1
    for p in root.glob(f"*/{CLOSED}") if root.is_dir() else []:  # the console that closed was the last process's
        p.unlink(missing_ok=True)
    return n


#: A seat's marker that its console's input ended: nobody will answer there any more.
CLOSED = "closed"
#: LLMResult.outage of a request whose seat has nobody to answer it and no timeout to end the wait.
NOBODY = "nobody to answer"


@dataclass(slots=True)
class _Posted:
    """A request written to its seat's queue, waiting for its person."""

    queue: SeatQueue
    request: dict[str, Any]
    pending: Path
    answer_path: Path


async def _done(result: LLMResult) -> LLMResult:
    return result


class HumanBackend:
    """Answers each request with its seat's person (see the module docstring). All seats wait at once, and the
    router sends the other aliases' requests of the same phase to their engines concurrently (llm/types.py:
    fan_out), so a person's turn holds up only what depends on it."""

    name = "human"

    def __init__(self, models: dict[str, ModelSpec], run_dir: str | Path, poll_s: float = 0.1):
        self.models = models
        self.run_dir = Path(run_dir)
        self.poll_s = poll_s
        self._seats: set[str] = set()
        clear_pending(self.run_dir)  # one process runs a run directory: what waits there is a dead process's

    async def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        # Every request is posted (its pending file written) before the first await: a backend that holds the event
        # loop once it runs (vLLM in-process; llm/types.py: fan_out starts it last) must not keep people from
        # seeing their requests until its batch is done.
        posted = [self._post(r) for r in requests]
        return list(await asyncio.gather(*[self._wait(r, p) if isinstance(p, _Posted) else _done(p)
                                          for r, p in zip(requests, posted, strict=True)]))

    def _queue(self, agent_id: str) -> SeatQueue:
        q = SeatQueue(self.run_dir, agent_id)
        if agent_id not in self._seats:
            _write_json(q.dir / "seat.json", {"agent_id": agent_id})
            self._seats.add(agent_id)
        return q

    def _post(self, r: LLMRequest) -> LLMResult | _Posted:
        """Without waiting: the result where there is one already (a scoring request, an answer recorded for this
        very request by an earlier process of the run), else the request written to its seat's queue."""
        if r.continuation is not None:
            return LLMResult(r.request_id, "", 0, 0, "error", 0.0, error=NO_SCORING, retryable=False)
        q = self._queue(r.agent_id)
        h = r.content_hash()
        answer_path = q.answer_path(r.request_id)
        earlier = _read_json(answer_path)
        if isinstance(earlier, dict) and earlier.get("request_hash") not in (None, h):
            # Recorded for another prompt under the same id (a resumed run whose other seats answered differently).
            stale = q.stale_path(r.request_id)
            stale.parent.mkdir(parents=True, exist_ok=True)
            os.replace(answer_path, stale)
            earlier = None
        if isinstance(earlier, dict) and earlier.get("accepted"):
            return self._result(r, earlier["text"], earlier.get("finish_reason", "stop"), float(earlier.get("latency_s", 0.0)))
        spec = self.models[r.alias]
        t0 = time.time()
        request = {
            "request_id": r.request_id, "agent_id": r.agent_id, "alias": r.alias, "step": r.step, "attempt": r.attempt,
            "request_hash": h, "messages": r.messages,
            "response_format": {"kind": r.response_format.kind, "json_schema": r.response_format.json_schema,
                                "choices": list(r.response_format.choices or []) or None, "regex": r.response_format.regex},
            "created_at": t0, "deadline": t0 + spec.timeout_s if spec.timeout_s else None, "refused": [],
        }
        posted = _Posted(q, request, q.pending_path(r.request_id), answer_path)
        _write_json(posted.pending, request)
        return posted

    async def _wait(self, r: LLMRequest, posted: _Posted) -> LLMResult:
        """Until the person's answer is accepted (a refused one is recorded with its reason, and they are asked
        again) or the deadline passes."""
        q, request, pending, answer_path = posted.queue, posted.request, posted.pending, posted.answer_path
        h, t0, deadline = request["request_hash"], request["created_at"], request["deadline"]
        spec = self.models[r.alias]
        try:
            while True:
                given = _read_json(answer_path)
                if isinstance(given, dict) and "answer" in given and not given.get("accepted"):
                    if given.get("request_hash") not in (None, h):
                        reason = "this answer is for an earlier version of the request; answer the request shown now"
                    else:
                        text = answer_text(given["answer"])
                        reason = r.check(text) if r.check is not None else None
                        if reason is None:
                            latency = time.time() - t0
                            _write_json(answer_path, {"answer": given["answer"], "text": text, "request_hash": h, "accepted": True,
                                                      "source": "person", "finish_reason": "stop", "latency_s": latency})
                            return self._result(r, text, "stop", latency)
                    n = len(request["refused"])
                    _write_json(q.refused_path(r.request_id, n), {**given, "reason": reason})
                    answer_path.unlink(missing_ok=True)
                    request["refused"].append({"answer": given["answer"], "reason": reason, "at": time.time()})
                    _write_json(pending, request)
                if deadline is not None and time.time() >= deadline:
                    return self._timeout(r, spec, answer_path, h, time.time() - t0)
                if deadline is None and q.closed():
                    # No timeout would ever end this wait: the run stops here, resumable, instead of hanging.
                    return LLMResult(r.request_id, "", 0, 0, "error", time.time() - t0, retryable=False, outage=NOBODY,
                                     error=f"{r.agent_id}: the console's input ended and the alias has no timeout_s; "
                                           f"resume the run to answer it")
                await asyncio.sleep(self.poll_s)
        finally:
            pending.unlink(missing_ok=True)

    def _timeout(self, r: LLMRequest, spec: ModelSpec, answer_path: Path, h: str, latency: float) -> LLMResult:
        """The fallback answer (or none), recorded like an answer so that a resumed run gives the same."""
        text = "" if spec.fallback is None else answer_text(fill_agent(spec.fallback, r.agent_id))
        _write_json(answer_path, {"answer": None, "text": text, "request_hash": h, "accepted": True, "source": "timeout",
                                  "finish_reason": HUMAN_TIMEOUT, "latency_s": latency})
        return self._result(r, text, HUMAN_TIMEOUT, latency)

    @staticmethod
    def _result(r: LLMRequest, text: str, finish_reason: str, latency: float) -> LLMResult:
        """Word counts stand for tokens, as for the scripted backend. A timeout's answer is final (not retryable): the
        policy logs it as it is, and the replay backend gives the same (replay.py)."""
        timed_out = finish_reason == HUMAN_TIMEOUT
        prompt_words = sum(word_count(m.get("content", "")) for m in r.messages)
        return LLMResult(r.request_id, text, prompt_words, word_count(text), finish_reason, latency,
                         error=TIMEOUT_ERROR if timed_out and not text else None, retryable=not timed_out)

    def close(self) -> None:
        """Nothing waits any more: the pages stop showing requests."""
        for agent_id in self._seats:
            for p in SeatQueue(self.run_dir, agent_id).pending_dir.glob("*.json"):
                p.unlink(missing_ok=True)


def human_seats(models: dict[str, ModelSpec], agents: Iterable[tuple[str, str]]) -> list[str]:
    """The agent ids among `agents` ((agent id, model alias) pairs) whose alias is a human one."""
    return [a for a, alias in agents if alias in models and models[alias].backend == "human"]


def require_run_dir(run_dir: Path | None) -> Path:
    if run_dir is None:
        raise BackendError("the human backend needs a run directory for its seats' queues: run it with `agentsim run` or "
                           "agentsim.run(...), not in an experiment")
    return run_dir
