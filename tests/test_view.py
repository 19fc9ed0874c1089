"""`agentsim view`: the data layer on real run logs, the CLI's refusals, and the pages in a real headless Chromium
against a real `agentsim view` server on 127.0.0.1 (screenshots under build/screenshots/)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import agentsim
from agentsim.analysis.display import format_number
from agentsim.analysis.escalation import escalation_tables
from agentsim.cli import app
from agentsim.logs.reader import RunLog
from agentsim.view.data import STEP_METRICS, RunData, ViewError, open_target

from conftest import REPO, SCENARIOS, screenshot, write_run_log

URL = re.compile(r"http://127\.0\.0\.1:(\d+)/")


def scripted(tmp_path: Path, scenario: str, steps: int, **overrides: Any) -> RunLog:
    return agentsim.run(scenario, backend="scripted", steps=steps, out=tmp_path / "runs", quiet=True, **overrides)


@pytest.fixture(scope="module")
def wargame_run(tmp_path_factory: pytest.TempPathFactory) -> RunLog:
    return scripted(tmp_path_factory.mktemp("wargame"), "wargame/neutral.yaml", 4)


# -- the data layer ---------------------------------------------------------------------------------------------------
def test_per_step_counts_are_the_calls_and_invalid_events(wargame_run: RunLog) -> None:
    """The page's per-step counts equal llm_calls and events counted independently, step by step."""
    per_step = RunData(wargame_run.run_dir).per_step()
    calls, events = wargame_run.llm_calls, wargame_run.events
    assert list(per_step["step"]) == [0, 1, 2, 3]
    assert list(per_step["llm_calls"]) == calls.groupby("step").size().tolist()
    assert list(per_step["prompt_tokens"]) == calls.groupby("step")["prompt_tokens"].sum().tolist()
    assert list(per_step["completion_tokens"]) == calls.groupby("step")["completion_tokens"].sum().tolist()
    invalid = events[events["action"] == "invalid"].groupby("step").size().reindex(range(4), fill_value=0)
    assert list(per_step["invalid"]) == invalid.tolist()


@pytest.mark.parametrize("with_metrics", [True, False], ids=["runtime-metrics", "older-log-without-them"])
def test_per_step_counts_with_and_without_the_runtime_metrics(tmp_path: Path, with_metrics: bool) -> None:
    """A log written before the runtime's per-step metrics gets the same counts from llm_calls and events."""
    from agentsim.logs.writer import RunLogWriter, atomic_write_json

    calls = [{"request_id": f"s{s}-{a}", "step": s, "phase": "nations", "agent_id": a, "alias": "m", "model": "m",
              "backend": "vllm", "attempt": 0, "seed": 0, "request_hash": "h", "prompt_tokens": 10 * (s + 1),
              "completion_tokens": 3, "cached_tokens": 5 * s, "latency_s": 0.1, "finish_reason": "stop", "valid": a != "B" or s != 1,
              "error": None, "prompt": None, "completion_text": "{}", "logprobs": None} for s in range(3) for a in "AB"]
    events = [{"event_id": 0, "step": 1, "sim_time": 2.0, "phase": "nations", "agent_id": "B", "action": "invalid", "target": None,
               "payload": json.dumps({"error": "bad"}), "parent_event_id": None, "request_id": "s1-B"}]
    metrics = [{"step": s, "metric": m, "value": v, "agent_id": None} for s in range(3) for m, v in
               zip(STEP_METRICS, (2, 20 * (s + 1), 6, int(s == 1), (10 * s) / (20 * (s + 1))), strict=True)]
    w = RunLogWriter(tmp_path / "r")
    for s in range(3):
        w.append("llm_calls", [c for c in calls if c["step"] == s])
        w.append("events", [e for e in events if e["step"] == s])
        if with_metrics:
            w.append("metrics", [m for m in metrics if m["step"] == s])
        w.end_step(s, flush=True)
    w.flush()
    atomic_write_json(tmp_path / "r" / "run.json", {"run_id": "r", "status": "completed", "steps_completed": 3,
                                                    "spec": {"steps": 3}, "log": w.summary()})
    df = RunData(tmp_path / "r").per_step()
    assert df["llm_calls"].tolist() == [2, 2, 2]
    assert df["prompt_tokens"].tolist() == [20, 40, 60]
    assert df["invalid"].tolist() == [0, 1, 0]
    assert df["prefix_cache_hit_rate"].round(6).tolist() == [0.0, round(10 / 40, 6), round(20 / 60, 6)]


def test_timeline_has_the_answer_reasoning_and_what_was_applied(wargame_run: RunLog) -> None:
    data = RunData(wargame_run.run_dir)
    calls = wargame_run.llm_calls
    red = calls[(calls["agent_id"] == "Red") & (calls["step"] <= 2)].sort_values("step", ascending=False)
    line = data.timeline("Red", 2)
    assert [c["step"] for c in line] == red["step"].tolist()
    assert line[0]["answer"] == red["completion_text"].iloc[0]
    assert line[0]["reasoning"] == json.loads(red["completion_text"].iloc[0])["reasoning"]
    ev = wargame_run.events
    applied = ev[(ev["request_id"] == red["request_id"].iloc[0])]
    assert [(a["action"], a["target"]) for a in line[0]["actions"]] == list(zip(applied["action"], applied["target"], strict=True))


def test_refresh_sees_new_steps_only_when_the_writer_commits(tmp_path: Path) -> None:
    """A snapshot holds until the log changes; then `version` goes up once."""
    run = write_run_log(tmp_path / "r", events=[{"step": 0, "agent_id": "A", "action": "Wait"}], steps=1, status="running")
    data = RunData(run)
    assert not data.refresh() and data.version == 0
    write_run_log(tmp_path / "r2", events=[{"step": s, "agent_id": "A", "action": "Wait"} for s in range(3)], status="completed")
    for part in ("events", "metrics", "agents", "llm_calls", "timings"):
        for f in (tmp_path / "r" / part).glob("*"):
            f.unlink()
    for f in (tmp_path / "r2").rglob("*"):
        if f.is_file():
            dest = tmp_path / "r" / f.relative_to(tmp_path / "r2")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(f.read_bytes())
    assert data.refresh() and data.version == 1 and data.status().steps_done == 3
    assert not data.refresh() and data.version == 1


# -- the command line -------------------------------------------------------------------------------------------------
def _busy_port() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s, s.getsockname()[1]


@pytest.mark.parametrize("case", ["missing", "a-file", "not-a-run", "empty-folder-of-runs", "broken-run-json",
                                  "bad-experiment", "port-out-of-range", "port-in-use"])
def test_bad_inputs_exit_2_with_one_line(tmp_path: Path, case: str, wargame_run: RunLog) -> None:
    args: list[str] = []
    busy = None
    if case == "missing":
        args, expect = [str(tmp_path / "nope")], "no such directory"
    elif case == "a-file":
        (tmp_path / "f.txt").write_text("x")
        args, expect = [str(tmp_path / "f.txt")], "not a directory"
    elif case == "not-a-run":
        (tmp_path / "d" / "sub").mkdir(parents=True)
        args, expect = [str(tmp_path / "d")], "neither a run directory"
    elif case == "empty-folder-of-runs":
        (tmp_path / "e").mkdir()
        args, expect = [str(tmp_path / "e")], "neither a run directory"
    elif case == "broken-run-json":
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "run.json").write_text("{not json")
        args, expect = [str(tmp_path / "b")], "run.json: not valid JSON"
    elif case == "bad-experiment":
        (tmp_path / "x").mkdir()
        (tmp_path / "x" / "experiment.json").write_text("[]")
        args, expect = [str(tmp_path / "x")], "experiment.json"
    elif case == "port-out-of-range":
        args, expect = [str(wargame_run.run_dir), "--port", "70000"], "65535"
    else:
        busy, port = _busy_port()
        args, expect = [str(wargame_run.run_dir), "--port", str(port)], f"cannot serve on 127.0.0.1:{port}"
    try:
        r = CliRunner().invoke(app, ["view", *args])
    finally:
        if busy is not None:
            busy.close()
    assert r.exit_code == 2, r.output
    assert expect in r.output
    assert "Traceback" not in r.output


def test_open_target_lists_an_experiments_or_a_folders_runs(tmp_path: Path, wargame_run: RunLog) -> None:
    assert open_target(wargame_run.run_dir).kind == "run"
    folder = open_target(wargame_run.run_dir.parent)
    assert folder.kind == "runs" and list(folder.runs) == [wargame_run.run_dir.name]
    with pytest.raises(ViewError, match="no such directory"):
        open_target(tmp_path / "none")


# -- the browser ------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def view_server(path: Path, timeout: float = 60) -> Iterator[str]:
    """`agentsim view PATH --port 0` as a real process; yields the URL it prints, stops it after."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "agentsim", "view", str(path), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + timeout
        url = None
        seen = []
        while time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
            seen.append(line)
            m = URL.search(line)
            if m and "agentsim view" in line:
                url = m.group(0)
                break
        assert url, f"no URL printed: {''.join(seen)}"
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Page:
    """A browser page that records console errors, page errors and requests that leave the viewer's server."""

    def __init__(self, chromium: Any, url: str):
        self.url = url
        self.page = chromium.new_page(viewport={"width": 1300, "height": 1000})
        self.errors: list[str] = []
        self.offsite: list[str] = []
        host = url.split("/")[2]
        self.page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.offsite.append(r.url)
                     if r.url.startswith("http") and r.url.split("/")[2] != host else None)

    def open(self, url: str | None = None) -> Any:
        self.page.goto(url or self.url)
        self.page.wait_for_selector(".agentsim-status", timeout=30_000)
        return self.page

    def tab(self, name: str) -> None:
        self.page.locator(".bk-tab", has_text=name).click()

    def steps_done(self) -> int:
        return int(self.page.locator(".agentsim-status").get_attribute("data-steps-done"))

    def texts(self, table: str, col: str) -> list[str]:
        return self.page.locator(f'table[data-name="{table}"] td[data-col="{col}"]').all_inner_texts()

    def wait_rows(self, table: str, n: int, timeout: float = 15) -> None:
        loc = self.page.locator(f'table[data-name="{table}"] tbody tr')
        deadline = time.monotonic() + timeout
        while loc.count() != n and time.monotonic() < deadline:
            time.sleep(0.2)
        assert loc.count() == n

    def close(self) -> None:
        assert not self.errors, self.errors
        assert not self.offsite, f"requests left the local server (the page must work offline): {self.offsite[:5]}"
        self.page.close()


@pytest.mark.browser
def test_wargame_page_numbers_scrubber_and_timeline(chromium: Any, wargame_run: RunLog) -> None:
    expected = escalation_tables(wargame_run)["per_day"]
    calls = wargame_run.llm_calls
    with view_server(wargame_run.run_dir) as url:
        p = Page(chromium, url)
        page = p.open()
        assert p.steps_done() == 4
        assert page.locator(".agentsim-status").get_attribute("data-status") == "completed"
        assert p.texts("per-step", "llm_calls") == [str(n) for n in calls.groupby("step").size()]
        p.tab("Wargame")
        p.wait_rows("escalation-per-day", 4)
        assert p.texts("escalation-per-day", "day") == [str(d) for d in expected["day"]]
        assert p.texts("escalation-per-day", "es") == [format_number(v) for v in expected["es"]]
        assert p.texts("escalation-per-day", "total") == [str(v) for v in expected["total"]]
        screenshot(page, "view_wargame")
        # The scrubber: back to the first step (day 1), then one to the right (day 2).
        handle = page.locator(".agentsim-scrubber .noUi-handle")
        handle.focus()
        page.keyboard.press("Home")
        p.wait_rows("escalation-per-day", 1)
        page.keyboard.press("ArrowRight")
        p.wait_rows("escalation-per-day", 2)
        assert p.texts("escalation-per-day", "es") == [format_number(v) for v in expected["es"][:2]]
        screenshot(page, "view_wargame_day2")
        # The agents' timelines follow the scrubber: Red's newest call shown is its answer of step 1.
        p.tab("Agents")
        page.locator("select").first.select_option("Red")
        red = calls[(calls["agent_id"] == "Red") & (calls["step"] == 1)]
        answer = red["completion_text"].iloc[0]
        first = page.locator('.agentsim-timeline[data-agent="Red"] details.agentsim-call').first
        first.wait_for(timeout=15_000)
        assert first.get_attribute("data-step") == "1"
        assert first.locator("pre.answer").inner_text() == answer
        assert first.locator("pre.reasoning").inner_text() == json.loads(answer)["reasoning"]
        screenshot(page, "view_wargame_agent")
        # "ask this agent": an interview of Red as it stood at the scrubbed step, answered by its own (scripted) model
        before = len(wargame_run.interviews)
        page.locator(".agentsim-ask-q input").fill("Why did you act as you did?")
        page.locator(".agentsim-ask-go button").click()
        done = page.locator(".agentsim-ask-answer .ask-done")
        done.wait_for(timeout=60_000)
        # the state it is rebuilt from is at or before the scrubbed step (the latest checkpoint or stored prompt there)
        assert int(done.get_attribute("data-step")) <= 1 and "scripted" in done.inner_text()
        asked = RunLog(wargame_run.run_dir).interviews
        assert len(asked) == before + 1
        row = asked.iloc[-1]
        assert (row["agent_id"], row["question"]) == ("Red", "Why did you act as you did?") and row["answer"] in done.inner_text()
        screenshot(page, "view_wargame_ask")
        p.close()


@pytest.mark.browser
def test_live_run_grows_on_the_page(chromium: Any, tmp_path: Path) -> None:
    """A run in its own process, the viewer opened while it runs: the page's step count grows without a reload."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run_dir = tmp_path / "live"
    run = subprocess.Popen([sys.executable, "-m", "agentsim", "run", str(SCENARIOS / "social" / "x_information_spread.yaml"),
                            "--backend", "scripted", "--steps", "16", "--run-dir", str(run_dir), "--quiet",
                            "--set", "world.users.count=4000", "--set", "world.network.generator=random_follows"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (run_dir / "run.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (run_dir / "run.json").exists(), run.stderr.read() if run.poll() is not None else "no run.json"
        with view_server(run_dir) as url:
            p = Page(chromium, url)
            page = p.open()
            seen = [p.steps_done()]
            deadline = time.monotonic() + 60
            while seen[-1] < 16 and time.monotonic() < deadline:
                time.sleep(0.3)
                n = p.steps_done()
                if n != seen[-1]:
                    seen.append(n)
            assert seen == sorted(seen) and seen[-1] == 16, seen
            assert len(seen) >= 3, f"the page saw too few intermediate snapshots: {seen}"
            page.locator('.agentsim-status[data-status="completed"]').wait_for(timeout=15_000)
            screenshot(page, "view_live_social")
            p.close()
        assert run.wait(60) == 0
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


FAMILY_RUNS = [  # (scenario, steps, the family tab, a table its view shows)
    ("wargame/neutral.yaml", 2, "Wargame", "escalation-per-day"),
    ("social/x_information_spread.yaml", 3, "Social", "cascades"),
    ("social/reddit_herd_effect.yaml", 2, "Social", "feed-composition"),
    ("tournament/live_ipd.yaml", 3, "Tournament", "standings"),
    ("tournament/csd_example.yaml", 2, "Tournament", "expected-scores"),
    ("drift/rewrite.yaml", 2, "Drift", "satisfaction"),
]


@pytest.mark.browser
def test_every_family_page_renders_without_browser_errors(chromium: Any, tmp_path: Path) -> None:
    names = []
    for scenario, steps, _, _ in FAMILY_RUNS:
        names.append(scripted(tmp_path, scenario, steps).run_dir.name)
    with view_server(tmp_path / "runs") as url:
        p = Page(chromium, url)
        p.page.goto(url)
        listing = p.page.locator(".agentsim-runs")
        listing.wait_for(timeout=30_000)
        assert listing.get_attribute("data-runs") == str(len(FAMILY_RUNS))
        for name, (scenario, _, tab, table) in zip(names, FAMILY_RUNS, strict=True):
            page = p.open(f"{url}?run={name}")
            p.tab(tab)
            page.locator(f'table[data-name="{table}"]').first.wait_for(timeout=20_000)
            assert page.get_by_text("could not draw").count() == 0, scenario
            screenshot(page, f"view_{Path(scenario).stem}")
        p.close()
