"""The openai backend against a real vLLM OpenAI-compatible server on 127.0.0.1 (tiny model), plus retries, and
against a fake server on 127.0.0.1 that answers in every shape a server can send."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agentsim.llm.openai_backend import OpenAIBackend
from agentsim.llm.types import LLMRequest, LLMResult
from agentsim.logs.reader import RunLog
from agentsim.spec.models import ModelSpec, SamplingSpec

from conftest import SCENARIOS, write_scenario
from test_backend_faults import Reply, completion, good, ipd_scenario, serve
from test_backend_faults import cli as fault_cli
from test_runs import agentsim_cli

pytestmark = pytest.mark.vllm
SECRET = "sk-agentsim-test-secret-7f3a"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server(tiny_model: Path):
    port = _free_port()
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_model), "--host", "127.0.0.1",
           "--port", str(port), "--enforce-eager", "--max-model-len", "4096", "--structured-outputs-config.backend", "xgrammar",
           # seeded requests with chunked prefill crash vLLM 0.32's CPU sampler; prefill whole prompts
           "--no-enable-chunked-prefill", "--max-num-batched-tokens", "4096"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 300
    import urllib.request

    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"vLLM server exited: {proc.stderr.read()[-3000:]}")
        try:
            urllib.request.urlopen(f"{url}/models", timeout=2)
            break
        except OSError:
            time.sleep(1)
    else:
        proc.kill()
        pytest.fail("vLLM server did not become ready in 300 s")
    yield url, str(tiny_model)
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _models(url: str, model: str, **sampling) -> dict:
    return {"default": {"backend": "openai", "model": model, "base_url": url, "api_key_env": "AGENTSIM_TEST_KEY",
                        "sampling": {"temperature": 1.0, "max_tokens": 24, **sampling}, "max_concurrency": 8}}


def test_tournament_through_a_vllm_server(vllm_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, model = vllm_server
    monkeypatch.setenv("AGENTSIM_TEST_KEY", SECRET)
    f = write_scenario(tmp_path, SCENARIOS / "tournament" / "live_ipd.yaml", steps=2, models=_models(url, model, logprobs=1),
                       **{"world.live.ipd_turns": 2})
    env_run = subprocess.run([sys.executable, "-m", "agentsim", "run", str(f), "--run-dir", str(tmp_path / "o"), "--quiet"],
                             capture_output=True, text=True, env={**os.environ, "AGENTSIM_TEST_KEY": SECRET}, timeout=600)
    assert env_run.returncode == 0, env_run.stderr[-3000:]
    log = RunLog(tmp_path / "o")
    calls = log.llm_calls
    assert len(calls) >= 2 * 2 * 4 and (calls["backend"] == "openai").all()
    assert (calls["prompt_tokens"] > 0).all() and (calls["completion_tokens"] > 0).all()
    moves = log.events[log.events["action"] == "move"]
    assert len(moves) == 2 * 2 * 4 and set(json.loads(p)["move"] for p in moves["payload"]) <= {"C", "D"}
    assert calls["valid"].mean() > 0.9  # the server constrains decoding to the JSON schema
    lp = calls["logprobs"].dropna()
    assert len(lp) and all(len(x) > 0 for x in lp)
    # the key is read from the environment and never written anywhere in the run directory
    for path in (tmp_path / "o").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert "AGENTSIM_TEST_KEY" in (tmp_path / "o" / "run.json").read_text()


def test_scoring_is_refused_clearly(vllm_server) -> None:
    url, model = vllm_server
    b = OpenAIBackend({"m": ModelSpec(backend="openai", model=model, base_url=url)})
    req = LLMRequest("r", "a", "m", model, [{"role": "user", "content": "hi"}], SamplingSpec(), seed=1, continuation="hello", score_top_k=5)
    res = asyncio.run(b.generate([req]))[0]
    assert res.error and "cannot score" in res.error and not res.retryable


def test_missing_api_key_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTSIM_TEST_KEY", raising=False)
    f = write_scenario(tmp_path, SCENARIOS / "tournament" / "live_ipd.yaml", models=_models("http://127.0.0.1:9/v1", "m"))
    r = agentsim_cli("run", str(f))
    assert r.returncode == 3 and "AGENTSIM_TEST_KEY is not set" in r.stderr


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503, then 429, then a completion: a server under load, to exercise the retries."""

    hits = 0

    def do_POST(self) -> None:  # noqa: N802
        type(self).hits += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if type(self).hits <= 2:
            self.send_response(503 if type(self).hits == 1 else 429)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": json.dumps({"move": "C"})}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_retries_with_backoff_on_429_and_5xx() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        b = OpenAIBackend({"m": ModelSpec(backend="openai", model="m", base_url=url, max_retries=3, timeout_s=10)})
        req = LLMRequest("r", "a", "m", "m", [{"role": "user", "content": "hi"}], SamplingSpec(), seed=1)
        res = asyncio.run(b.generate([req]))[0]
        assert res.error is None and json.loads(res.text) == {"move": "C"} and _Flaky.hits == 3
        assert (res.prompt_tokens, res.completion_tokens) == (5, 3)
    finally:
        server.shutdown()


# -- every shape of answer a server can send is that request's error, never the run's --------------------------------
# (id, the server's reply, what llm_calls.error says; None: the answer is usable)
SHAPES = [
    ("empty-choices", Reply(body={**completion(), "choices": []}), "choices: List should have at least 1 item"),
    ("missing-message", Reply(body={**completion(), "choices": [{"index": 0, "finish_reason": "stop"}]}),
     "choices.0.message: Field required"),
    ("tool-calls", Reply(body=completion(None, "tool_calls", tool_calls=[
        {"id": "t", "type": "function", "function": {"name": "play", "arguments": '{"move": "C"}'}}])),
     "called tools (play) instead of answering with text"),
    ("refusal", Reply(body=completion(None, refusal="I cannot help with that.")), "the model refused: I cannot help"),
    ("content-null", Reply(body=completion(None)), "empty answer"),
    ("content-filter", Reply(body=completion("", "content_filter")), "content filter withheld the answer"),
    ("length", Reply(body=completion('{"move": ', "length")), "cut off at max_tokens (16)"),
    ("html", Reply(body="<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html"),
     "unusable answer from the server (HTTP 200, text/html): not JSON"),
    ("not-json", Reply(body="{'choices': oops"), "(HTTP 200, application/json): not JSON"),
    ("empty-body", Reply(body=b""), "not JSON"),
    ("truncated", Reply(body=completion(), cut_at=40), "the connection failed during the answer"),
    ("json-array", Reply(body=[completion()]), "not a chat completion"),
    ("choices-not-a-list", Reply(body={**completion(), "choices": "C"}), "choices: Input should be a valid array"),
    ("content-a-number", Reply(body=completion(42)), "choices.0.message.content: Input should be a valid string"),
    ("usage-wrong-type", Reply(body={**completion(), "usage": "lots"}), "usage: Input should be an object"),
    ("no-usage", Reply(body=completion(usage=False)), None),
    ("unknown-fields", Reply(body={**completion(), "x_server": {"gpu": 3}, "choices": [
        {**completion()["choices"][0], "stop_reason": None, "extra": [1, 2]}]}), None),
]


def _shape_server(reply: Reply) -> Callable[[dict, dict], Reply]:
    """The defector always gets `reply`; the other players get it the first time they send a prompt and a good
    answer when they ask again (the policy's retry)."""
    seen: set[str] = set()

    def answer(req: dict, headers: dict) -> Reply:
        prompt = json.dumps(req["messages"], sort_keys=True)
        if "own payoff" in prompt or prompt not in seen:
            seen.add(prompt)
            return reply
        return good(req, headers)

    return answer


@pytest.mark.parametrize(("reply", "reason"), [s[1:] for s in SHAPES], ids=[s[0] for s in SHAPES])
def test_every_answer_shape_is_that_requests_error_and_the_run_goes_on(reply: Reply, reason: str | None, tmp_path: Path) -> None:
    with serve(_shape_server(reply)) as server:
        f = ipd_scenario(tmp_path, server.url, steps=1)
        r = fault_cli("run", str(f), "--run-dir", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    log = RunLog(tmp_path / "o")
    assert log.meta["status"] == "completed" and log.meta["steps_completed"] == 1
    calls, ev = log.llm_calls, log.events
    players = ["cooperator", "defector", "reciprocator", "random"]
    if reason is None:  # a usable answer: asked once each, all valid
        assert len(calls) == 4 and calls["valid"].all() and (ev["action"] == "move").sum() == 4
        assert "invalid" not in set(ev["action"])
        if reply.body.get("usage") is None:
            assert (calls["prompt_tokens"] == 0).all() and (calls["completion_tokens"] == 0).all()
        return
    # each player's first answer was the bad one, with the reason; the policy asked again (max_retries 1)
    first = calls[calls["attempt"] == 0].set_index("agent_id")
    assert sorted(first.index) == sorted(players) and not first["valid"].any()
    assert first["error"].str.contains(reason, regex=False).all(), first["error"].tolist()
    retry = calls[calls["attempt"] == 1].set_index("agent_id")
    assert sorted(retry.index) == sorted(players)
    assert retry.drop(index="defector")["valid"].all()
    # the defector got the bad shape again: after max_retries + 1 attempts it is an invalid event with the reason
    assert not retry.loc["defector", "valid"] and reason in retry.loc["defector", "error"]
    inv = ev[ev["action"] == "invalid"]
    assert inv["agent_id"].tolist() == ["defector"]
    payload = json.loads(inv["payload"].item())
    assert reason in payload["error"] and payload["attempts"] == 2
    assert log.meta["totals"]["invalid"] == 1


def test_requests_queued_for_a_server_that_refuses_connections_fail_at_once() -> None:
    """Once a request of a batch could not connect, the ones still queued behind the concurrency limit are not
    sent (each would spend the client's retries and backoff on a dead address); the next batch tries again."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    b = OpenAIBackend({"m": ModelSpec(backend="openai", model="m", base_url=url, max_retries=0, max_concurrency=1)})
    reqs = [LLMRequest(f"r{i}", "a", "m", "m", [{"role": "user", "content": "hi"}], SamplingSpec(), seed=i) for i in range(4)]

    async def two_batches() -> list[list[LLMResult]]:
        return [await b.generate(reqs), await b.generate(reqs)]

    for res in asyncio.run(two_batches()):  # each batch starts by trying the server
        assert all(r.outage == "unreachable" and not r.retryable for r in res)
        assert res[0].error.startswith(f"cannot connect to {url}")
        assert all(r.error.startswith(f"not sent: cannot connect to {url}") for r in res[1:])
