"""The openai backend against a real vLLM OpenAI-compatible server on 127.0.0.1 (tiny model), plus retries."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agentsim.llm.openai_backend import OpenAIBackend
from agentsim.llm.types import LLMRequest
from agentsim.logs.reader import RunLog
from agentsim.spec.models import ModelSpec, SamplingSpec

from conftest import SCENARIOS, write_scenario
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
