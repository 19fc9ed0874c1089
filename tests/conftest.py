from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "scenarios"


def has_vllm() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Llama with a byte-level BPE tokenizer, built offline (about 5 s)."""
    from agentsim.llm.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def study_data() -> Path:
    """The EscalAItion study's data, found by agentsim's resolver (agentsim.data.locate). Tests that need it
    skip, naming `agentsim data fetch escalaition`, on a machine without it; an incomplete copy is an error."""
    from agentsim.data import DataNotFound, locate

    try:
        return locate("escalaition").path
    except DataNotFound as e:
        pytest.skip(str(e))


def write_scenario(tmp_path: Path, base: str | Path = SCENARIOS / "wargame" / "neutral.yaml", **changes: Any) -> Path:
    """Copy a shipped scenario with some fields changed (dotted keys), logging into tmp_path."""
    data = yaml.safe_load(Path(base).read_text())
    data.setdefault("logging", {})["dir"] = str(tmp_path / "runs")
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    out = tmp_path / f"scenario-{len(list(tmp_path.glob('scenario-*.yaml')))}.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def tiny_models(model_dir: Path, **sampling: Any) -> dict[str, Any]:
    return {
        "default": {
            "backend": "vllm",
            "model": str(model_dir),
            "sampling": {"temperature": 1.0, "max_tokens": 160, **sampling},
            "max_model_len": 16384,
            "kv_cache_gib": 1,
        }
    }


def write_run_log(run_dir: Path, *, events: Any = (), agents: Any = (), metrics: Any = (), calls: Any = (),
                  steps: int | None = None, **meta: Any) -> Path:
    """A real run directory written by agentsim's own log writer, from rows given by hand (tests of analyses on
    known answers, in milliseconds instead of a scripted run). Rows are dicts with the schema's columns; the
    usual defaults are filled in (event_id in order, sim_time = step + 1, phase "nations", no target/payload).
    `steps` (default: one past the last step of any row) steps are written and committed one by one; run.json
    gets `status: completed`, `steps_completed`, a spec naming `steps`, and the writer's summary, updated by
    `meta` (e.g. `models=...`, `overrides=...`, `status="running"`). `calls` are llm_calls rows (defaults: phase
    "nations", agent "a", alias "m", backend "vllm", attempt 0, seed 0, a hash, finish "stop", valid)."""
    from agentsim.logs.writer import RunLogWriter, atomic_write_json

    ev = [{"event_id": i, "sim_time": float(e["step"] + 1), "phase": "nations", "target": None, "payload": None,
           "parent_event_id": None, "request_id": None, **e} for i, e in enumerate(events)]
    ms = [{"agent_id": None, **m} for m in metrics]
    ag = [{"kind": "nation", "model": "default", "group": "", "persona": None, **a} for a in agents]
    cs = [{"phase": "nations", "agent_id": "a", "alias": "m", "model": "x", "backend": "vllm", "attempt": 0, "seed": 0,
           "request_hash": f"h{i}", "prompt_tokens": 0, "completion_tokens": 0, "latency_s": 0.0, "finish_reason": "stop",
           "valid": True, **c} for i, c in enumerate(calls)]
    last = max([r["step"] for r in ev + ms + cs], default=-1)
    n_steps = last + 1 if steps is None else steps
    w = RunLogWriter(run_dir)
    w.append("agents", ag)
    for step in range(n_steps):
        w.append("events", [e for e in ev if e["step"] == step])
        w.append("metrics", [m for m in ms if m["step"] == step])
        w.append("llm_calls", [c for c in cs if c["step"] == step])
        w.end_step(step, flush=True)
    w.flush()
    run = {"run_id": run_dir.name, "status": "completed", "steps_completed": n_steps, "spec": {"steps": n_steps},
           "log": w.summary()}
    run.update(meta)
    atomic_write_json(run_dir / "run.json", run)
    return run_dir


os.environ.setdefault("AGENTSIM_TEST", "1")


@pytest.fixture(scope="module")
def server():
    """A local HTTP server (http_archive.Server) on 127.0.0.1 for this test module."""
    import threading

    from http_archive import Server

    s = Server()
    threading.Thread(target=s.httpd.serve_forever, daemon=True).start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture()
def data_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user cache of this test's own; no $AGENTSIM_DATA and no dataset URL override from the environment."""
    from agentsim.data import DATASETS

    root = tmp_path / "cache"
    monkeypatch.setenv("AGENTSIM_CACHE", str(root))
    monkeypatch.delenv("AGENTSIM_DATA", raising=False)
    for ds in DATASETS.values():
        monkeypatch.delenv(ds.url_env, raising=False)
    return root


# -- the browser (agentsim view's tests; others use it too) ---------------------------------------------------------
SCREENSHOTS = REPO / "build" / "screenshots"


@pytest.fixture
def chromium():
    """Headless Chromium from the OS packages (Debian's `chromium`), driven by playwright; skips without it.
    One per test, not per session: playwright's sync API keeps an asyncio loop marked running on this thread while
    it is open, and every later test that calls asyncio.run (a run, a sweep) would fail."""
    import shutil

    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("no browser: install Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        yield browser
        browser.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot to build/screenshots/<name>.png and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
