"""What a run does when its backend fails: servers that cannot be reached or refuse, a server that comes back,
a server that echoes the API key, replay sources that cannot match, scoring requests that get no scores, a Ray
address with nothing behind it, and backends or validators that raise. Real runs through the CLI against real
HTTP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel, model_validator

from agentsim.core.policy import LLMPolicy
from agentsim.core.types import Observation
from agentsim.llm.redact import REDACTED, Redactor
from agentsim.llm.types import LLMRequest, LLMResult
from agentsim.logs.reader import RunLog
from agentsim.spec.models import LoggingSpec, ModelSpec

from conftest import SCENARIOS, write_scenario

IPD = SCENARIOS / "tournament" / "live_ipd.yaml"
SECRET = "sk-agentsim-fault-test-5c1d9e0b77"
KEY_ENV = "AGENTSIM_FAULT_KEY"


# -- a fake OpenAI-compatible server ------------------------------------------------------------------------------
@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict | list = b""
    content_type: str = "application/json"
    #: Send only this many bytes of a body announced whole, then close: a truncated answer.
    cut_at: int | None = None
    #: Seconds to wait before answering (a server too slow for the client's timeout).
    delay: float = 0.0


def completion(content: Any = '{"move": "C"}', finish: str | None = "stop", usage: bool = True, **message: Any) -> dict:
    """A chat completion of the OpenAI shape."""
    out: dict[str, Any] = {"id": "cmpl-1", "object": "chat.completion", "created": 0, "model": "m",
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": content, **message},
                                        "finish_reason": finish}]}
    if usage:
        out["usage"] = {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}
    return out


class FakeServer:
    """A chat-completions server on 127.0.0.1 whose answer to each request `answer(request_json, headers)`
    decides (header names in lower case). `close_after`: stop listening once that many requests were answered (a server that goes down)."""

    def __init__(self, answer: Callable[[dict, dict], Reply], port: int = 0, close_after: int | None = None):
        self.answer, self.close_after = answer, close_after
        self.hits = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.hits += 1
                    last = outer.close_after is not None and outer.hits >= outer.close_after
                reply = outer.answer(json.loads(raw), {k.lower(): v for k, v in self.headers.items()})
                if last:  # stop listening before answering, so the next request finds the port closed
                    outer.stop()
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body if isinstance(reply.body, bytes) else (
                    reply.body.encode() if isinstance(reply.body, str) else json.dumps(reply.body).encode())
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body if reply.cut_at is None else body[: reply.cut_at])
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        self._stopped = False

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self.server.shutdown()
            self.server.server_close()


@contextlib.contextmanager
def serve(answer: Callable[[dict, dict], Reply], **kw: Any) -> Iterator[FakeServer]:
    s = FakeServer(answer, **kw)
    try:
        yield s
    finally:
        s.stop()


def good(req: dict, headers: dict) -> Reply:
    return Reply(body=completion())


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openai_models(url: str, **spec: Any) -> dict:
    return {"default": {"backend": "openai", "model": "m", "base_url": url, "api_key_env": KEY_ENV,
                        "sampling": {"temperature": 1.0, "max_tokens": 16}, "max_retries": 0, "timeout_s": 10, **spec}}


def ipd_scenario(tmp_path: Path, url: str, steps: int = 1, **changes: Any) -> Path:
    """The shipped live IPD tournament (4 players), one move per match, on an openai alias at `url`."""
    return write_scenario(tmp_path, IPD, steps=steps, models=openai_models(url, **changes.pop("spec", {})),
                          **{"world.live.ipd_turns": 1, "policy.max_retries": 1, **changes})


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agentsim", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, KEY_ENV: SECRET})


def meta(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


# -- a backend that cannot serve stops the run, resumably -----------------------------------------------------------
def _answer_with(status: int, text: str = "") -> Callable[[dict, dict], Reply]:
    return lambda req, headers: Reply(status=status, body={"error": {"message": text or f"error {status}"}})


UNSERVED = [
    # id, server (None: nothing listening), base_url override, spec changes, outage, words in the error
    ("connection-refused", None, None, {}, "unreachable", "cannot connect"),
    ("unknown-host", None, "http://agentsim-no-such-host.invalid/v1", {}, "unreachable", "cannot connect"),
    ("timeout", lambda req, h: Reply(body=completion(), delay=3), None, {"timeout_s": 0.5}, "unreachable", "timeout_s"),
    ("key-refused", _answer_with(401, "invalid api key"), None, {}, "refused", "401"),
    ("forbidden", _answer_with(403), None, {}, "refused", "403"),
    ("unknown-model", _answer_with(404, "The model `m` does not exist."), None, {}, "not_found", "404"),
    ("unavailable", _answer_with(503), None, {}, "unavailable", "503"),
    ("bad-gateway", _answer_with(502), None, {}, "unavailable", "502"),
]


@pytest.mark.parametrize(("server", "url", "spec", "outage", "words"), [u[1:] for u in UNSERVED], ids=[u[0] for u in UNSERVED])
def test_a_backend_that_serves_no_request_of_a_phase_stops_the_run(server, url, spec, outage, words, tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        if server is not None:
            url = stack.enter_context(serve(server)).url
        url = url or f"http://127.0.0.1:{closed_port()}/v1"
        f = ipd_scenario(tmp_path, url, steps=2, spec=spec)
        t0 = time.perf_counter()
        r = cli("run", str(f), "--run-dir", str(tmp_path / "o"), "--quiet")
        took = time.perf_counter() - t0
    assert r.returncode == 3, r.stderr[-3000:]
    assert "Traceback" not in r.stderr and "'default'" in r.stderr and url in r.stderr and words in r.stderr
    assert "agentsim resume" in r.stderr
    m = meta(tmp_path / "o")
    assert m["status"] == "backend_unavailable" and m["steps_completed"] == 0
    err = m["error"]
    assert (err["alias"], err["backend"], err["where"], err["outage"]) == ("default", "openai", url, outage)
    assert (err["step"], err["phase"], err["requests"]) == (0, "move1", 4)
    assert took < 60
    # nothing of the failed step is in the log
    assert RunLog(tmp_path / "o").llm_calls.empty


def test_a_server_that_goes_down_stops_the_run_and_resume_continues_when_it_is_back(tmp_path: Path) -> None:
    """4 requests per step: the server answers steps 0 and 1, then stops listening; step 2 finds the port closed.
    The run stops there (exit 3), keeps steps 0 and 1 (checkpointed), and `agentsim resume` finishes it on a new
    server on the same port, asking only step 2's requests."""
    steps = 3
    with serve(good, close_after=8) as first:
        f = ipd_scenario(tmp_path, first.url, steps=steps, **{"runtime.checkpoint_every": 1})
        r = cli("run", str(f), "--run-dir", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 3, r.stderr[-3000:]
    assert "checkpoint at step 3" in r.stderr and f"agentsim resume {tmp_path / 'o'}" in r.stderr
    m = meta(tmp_path / "o")
    assert m["status"] == "backend_unavailable" and m["steps_completed"] == 2
    assert m["error"]["step"] == 2 and m["error"]["outage"] == "unreachable" and m["error"]["resume_at_step"] == 2
    before = RunLog(tmp_path / "o").llm_calls
    assert sorted(set(before["step"])) == [0, 1] and before["valid"].all()

    with serve(good, port=first.port) as second:
        r = cli("resume", str(tmp_path / "o"), "--quiet")
        hits = second.hits
    assert r.returncode == 0, r.stderr[-3000:]
    m = meta(tmp_path / "o")
    assert m["status"] == "completed" and m["steps_completed"] == steps and "error" not in m
    after = RunLog(tmp_path / "o").llm_calls
    assert hits == 4 and after.groupby("step").size().tolist() == [4, 4, 4]
    cols = ["request_id", "seed", "completion_text"]
    assert after[after["step"] < 2][cols].reset_index(drop=True).equals(before[cols].reset_index(drop=True))
    ev = RunLog(tmp_path / "o").events
    assert ev["event_id"].tolist() == list(range(len(ev))) and sorted(set(ev["step"])) == [0, 1, 2]


def test_a_server_that_answers_but_never_usably_runs_to_the_end_without_calling_itself_completed(tmp_path: Path) -> None:
    """Not an outage (the server answers): every step runs, every answer is invalid, status no_valid_answers."""
    with serve(lambda req, h: Reply(body="<html>maintenance</html>", content_type="text/html")) as s:
        f = ipd_scenario(tmp_path, s.url, steps=2)
        r = cli("run", str(f), "--run-dir", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 4, r.stderr[-3000:]
    assert "No valid answer" in r.stderr and "Traceback" not in r.stderr
    m = meta(tmp_path / "o")
    assert m["status"] == "no_valid_answers" and m["steps_completed"] == 2 and m["error"]["kind"] == "no_valid_answers"
    assert m["totals"]["invalid"] == m["totals"]["answers"] == 8
    calls = RunLog(tmp_path / "o").llm_calls
    assert len(calls) == 16 and not calls["valid"].any() and calls["error"].str.contains("not JSON").all()


# -- the API key never reaches the log or the terminal ---------------------------------------------------------------
def _echo_key(req: dict, headers: dict) -> Reply:
    """Echoes the Authorization header back, in a different place for each player."""
    auth = headers["authorization"]
    text = json.dumps(req["messages"])
    if "long-term cooperation" in text:  # a 400 whose error body repeats the request headers
        return Reply(status=400, body={"error": {"message": f"bad request; headers: {{'Authorization': '{auth}'}}"}})
    if "own payoff" in text:  # a 200 HTML page that repeats them
        return Reply(body=f"<html><pre>Authorization: {auth}</pre></html>", content_type="text/html")
    if "did to you" in text:  # a valid answer with the key beside it
        return Reply(body=completion(f'{{"move": "D"}} (your key: {auth.removeprefix("Bearer ")})'))
    return Reply(body=completion(json.dumps({"move": auth})))  # an invalid answer that is the header itself


def _assert_no_secret(run_dir: Path, *texts: str) -> int:
    """Neither the texts (stdout, stderr) nor any byte of any file under `run_dir` holds the key; Parquet parts
    are compressed, so every value of every row is read too. Returns how many Parquet parts were read."""
    for t in texts:
        assert SECRET not in t
    parts = 0
    for path in run_dir.rglob("*"):
        if not path.is_file():
            continue
        assert SECRET.encode() not in path.read_bytes(), path
        if path.suffix == ".parquet":
            for row in pq.read_table(path).to_pylist():
                for v in row.values():
                    assert SECRET not in str(v), (path, row)
            parts += 1
    return parts


def test_the_api_key_echoed_by_a_server_never_reaches_the_log_or_the_terminal(tmp_path: Path) -> None:
    with serve(_echo_key) as s:
        f = ipd_scenario(tmp_path, s.url, steps=2)
        r = cli("run", str(f), "--run-dir", str(tmp_path / "o"))  # not quiet: the summary is printed too
    assert r.returncode == 0, r.stderr[-3000:]
    assert _assert_no_secret(tmp_path / "o", r.stdout, r.stderr) >= 4  # agents, events, llm_calls, metrics, ...
    log = RunLog(tmp_path / "o")
    calls, ev = log.llm_calls, log.events
    # the echoes did arrive, redacted, where they arrived
    assert calls["error"].str.contains(f"'Authorization': 'Bearer {REDACTED}'", regex=False).any()  # the 400's body
    assert calls["error"].str.contains(f"Authorization: Bearer {REDACTED}", regex=False).any()  # the HTML page
    assert calls["completion_text"].str.contains(f"your key: {REDACTED}", regex=False).any()
    inv = ev[ev["action"] == "invalid"]
    assert len(inv) and inv["payload"].str.contains(REDACTED, regex=False).all()


def test_the_api_key_echoed_by_a_server_that_refuses_it_never_reaches_the_terminal(tmp_path: Path) -> None:
    def refuse(req: dict, headers: dict) -> Reply:
        return Reply(status=401, body={"error": {"message": f"bad key in header Authorization: {headers['authorization']}"}})

    with serve(refuse) as s:
        f = ipd_scenario(tmp_path, s.url)
        r = cli("run", str(f), "--run-dir", str(tmp_path / "o"))
    assert r.returncode == 3 and "401" in r.stderr and REDACTED in r.stderr
    _assert_no_secret(tmp_path / "o", r.stdout, r.stderr)
    assert meta(tmp_path / "o")["error"]["outage"] == "refused" and REDACTED in meta(tmp_path / "o")["error"]["message"]


REDACTIONS = [
    ("Authorization: Bearer abcdefgh12345678", f"Authorization: {REDACTED}"),
    ('{"authorization": "Bearer abcdefgh12345678"}', f'{{"authorization": "{REDACTED}"}}'),
    ("{'Authorization': 'Basic dXNlcjpwYXNzd29yZA=='}", f"{{'Authorization': '{REDACTED}'}}"),
    ("token was Bearer eyJhbGciOi.J9xyz", f"token was Bearer {REDACTED}"),
    ("key sk-proj-abcdefghijklmnop in text", f"key {REDACTED} in text"),
    (f"plain {SECRET[3:]} value", f"plain {REDACTED} value"),  # the configured key's value, in any context
    ("the bearer of bad news", "the bearer of bad news"),  # prose stays
    ('{"move": "C"}', '{"move": "C"}'),
]


@pytest.mark.parametrize(("text", "expected"), REDACTIONS)
def test_redaction(text: str, expected: str) -> None:
    assert Redactor([SECRET[3:]]).clean(text) == expected


# -- replay sources that cannot match ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ipd_scripted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("ipd")
    f = write_scenario(tmp, IPD, steps=2)
    r = cli("run", str(f), "--backend", "scripted", "--run-dir", str(tmp / "rec"), "--quiet")
    assert r.returncode == 0, r.stderr
    return tmp / "rec"


@pytest.mark.parametrize(("scenario", "args", "words"), [
    (SCENARIOS / "wargame" / "neutral.yaml", [], ["a tournament run", "wargame"]),
    (IPD, ["--seed", "1"], ["seed 0", "--seed 0"]),
], ids=["another-family", "another-seed"])
def test_a_replay_source_that_cannot_match_is_refused_at_the_start(ipd_scripted: Path, tmp_path: Path, scenario: Path,
                                                                   args: list[str], words: list[str]) -> None:
    f = write_scenario(tmp_path, scenario, steps=2)
    r = cli("run", str(f), "--backend", "replay", "--replay-from", str(ipd_scripted), "--run-dir", str(tmp_path / "o"), *args)
    assert r.returncode == 2, r.stderr[-3000:]
    assert "Traceback" not in r.stderr and all(w in r.stderr for w in words) and str(ipd_scripted) in r.stderr
    assert not (tmp_path / "o").exists()


def _players_with_first_changed(rec: Path) -> list[dict]:
    players = RunLog(rec).meta["spec"]["world"]["participants"]
    players[0]["system"] = "You always cooperate."
    return players


@pytest.mark.parametrize("change", ["every-prompt", "one-player"])
def test_a_replay_of_a_changed_scenario(ipd_scripted: Path, tmp_path: Path, change: str) -> None:
    """A change that enters every prompt (the payoffs) leaves the first phase without a single recorded answer:
    the run stops there and names the differing fields. A change to one player's prompt leaves that player's
    requests unrecorded: the run stops there too (a replay that logged invalid answers the recorded run never gave
    would not be a replay), naming that one request of the phase's."""
    if change == "every-prompt":
        f = write_scenario(tmp_path, IPD, steps=2, **{"world.live.payoffs": {"T": 6, "R": 3, "P": 1, "S": 0}})
    else:
        f = write_scenario(tmp_path, IPD, steps=2, **{"world.participants": _players_with_first_changed(ipd_scripted)})
    r = cli("run", str(f), "--backend", "replay", "--replay-from", str(ipd_scripted), "--run-dir", str(tmp_path / "o"))
    assert "Traceback" not in r.stderr
    m = meta(tmp_path / "o")
    if change == "every-prompt":
        assert r.returncode == 3, r.stderr[-3000:]
        assert m["status"] == "backend_unavailable" and m["error"]["outage"] == "unrecorded"
        assert m["error"]["where"] == str(ipd_scripted.resolve()) and (m["error"]["step"], m["error"]["requests"]) == (0, 4)
        assert "no recorded answer" in r.stderr and "world.live.payoffs.T" in r.stderr
        return
    assert r.returncode == 3 and m["status"] == "backend_unavailable", r.stderr[-3000:]
    assert m["error"]["outage"] == "unrecorded" and (m["error"]["step"], m["error"]["requests"]) == (0, 1)
    assert "1 of the 4 requests of step 0" in r.stderr and "differs in world.participants" in r.stderr


# -- scoring requests are not agents' answers ---------------------------------------------------------------------------
def test_scoring_requests_without_scores_are_unscored_not_invalid(tmp_path: Path) -> None:
    f = write_scenario(tmp_path, SCENARIOS / "drift" / "rewrite.yaml", steps=2)
    r = cli("run", str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr[-3000:]
    log = RunLog(tmp_path / "o")
    ev, totals = log.events, log.meta["totals"]
    scoring = log.llm_calls[log.llm_calls["request_id"].str.contains("#")]  # the q/p scoring requests
    assert len(scoring) and not scoring["valid"].any()
    assert totals["invalid"] == 0 and totals["unscored"] == len(scoring) == int((ev["action"] == "unscored").sum())
    assert (ev["action"] != "invalid").all()
    assert f"invalid answers 0 of {totals['answers']}, unscored {len(scoring)}" in " ".join(r.stdout.split())
    m = log.metrics
    assert m[m["metric"] == "unscored"]["value"].sum() == len(scoring) and m[m["metric"] == "invalid"]["value"].sum() == 0


# -- a Ray address with nothing behind it ------------------------------------------------------------------------------
def test_a_ray_address_with_no_cluster_is_a_clear_error_within_seconds(tmp_path: Path) -> None:
    f = write_scenario(tmp_path, IPD, steps=1)
    port = closed_port()
    t0 = time.perf_counter()
    r = cli("run", str(f), "--backend", "scripted", "--address", f"127.0.0.1:{port}", "--run-dir", str(tmp_path / "o"),
            timeout=120)
    took = time.perf_counter() - t0
    assert r.returncode == 3, r.stderr[-3000:]
    assert f"127.0.0.1:{port}" in r.stderr and "no Ray cluster answers" in r.stderr and "Traceback" not in r.stderr
    assert took < 30


# -- last resorts in the policy: a backend or a validator that raises ---------------------------------------------------
class _Choice(BaseModel):
    pick: str

    @model_validator(mode="after")
    def _known(self, info: Any) -> _Choice:
        info.context["options"][self.pick]  # a family validator that raises KeyError on an unknown option
        return self


class _Echo:
    """Answers every request with the text of its first user message (a re-ask adds the refusal after it)."""

    name = "echo"

    async def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        return [LLMResult(r.request_id, next(m["content"] for m in r.messages if m["role"] == "user"), 1, 1, "stop", 0.0)
                for r in requests]

    def close(self) -> None:
        pass


class _Raises(_Echo):
    async def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        raise TypeError("'NoneType' object is not subscriptable")


class _Short(_Echo):
    async def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        return (await super().generate(requests))[:-1]


def _decide(backend: Any, texts: list[str]) -> tuple[list[Any], list[dict]]:
    from agentsim.core.policy import CallLog

    models = {"m": ModelSpec(backend="scripted", model="m")}
    policy = LLMPolicy(backend, models, seed=0, max_retries=1, logging=LoggingSpec(), backend_name=lambda a: "echo")
    obs = [Observation(f"a{i}", "m", [{"role": "user", "content": t}], _Choice, validation_context={"options": {"x": 1}})
           for i, t in enumerate(texts)]
    calls = CallLog()
    return asyncio.run(policy.decide(0, "p", obs, calls)), calls.rows


@pytest.mark.parametrize(("backend", "why", "retried"), [
    (_Raises(), "the backend failed on this batch (TypeError", False),
    (_Short(), "the backend failed on this batch (ValueError: 1 results for 2 requests", False),
    (_Echo(), "the answer could not be checked (KeyError", True),
], ids=["backend-raises", "too-few-results", "validator-raises"])
def test_a_backend_or_validator_that_raises_is_the_requests_error_not_the_runs(backend: Any, why: str, retried: bool) -> None:
    decisions, rows = _decide(backend, ['{"pick": "y"}', '{"pick": "z"}'])
    assert [d.valid for d in decisions] == [False, False]
    assert all(d.error.startswith(why) for d in decisions)
    assert len(rows) == (4 if retried else 2) and all(r["error"].startswith(why) for r in rows)
    if not retried:  # the backend itself failed: an outage, for the runtime to judge
        assert all(r["_outage"] == "crashed" for r in rows)
    ok, _ = _decide(_Echo(), ['{"pick": "x"}'])
    assert ok[0].valid
