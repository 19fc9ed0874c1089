"""Human seats (`backend: human`): a person answers an agent's requests through the run directory's queue
(agentsim/llm/human.py), a page (agentsim/view/seat.py) or the terminal (`agentsim run ... --human Red`).

The person is played by a thread answering the queue files, by piped stdin, or by Chromium filling the page."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agentsim
from agentsim.llm.human import HUMAN_TIMEOUT, TIMEOUT_ERROR, SeatQueue, answer_text
from agentsim.spec.errors import SpecError
from agentsim.spec.loader import load_scenario

from conftest import screenshot, write_scenario

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}

WAIT = {"reasoning": "hold", "actions": [{"action_name": "Wait", "target_nation": "{agent}"}]}


def human_scenario(tmp_path: Path, steps: int = 3, **human: Any) -> Path:
    """The neutral wargame, every nation scripted but Red, which a person plays (alias `me`)."""
    return write_scenario(tmp_path, **{
        "models": {"default": {"backend": "scripted"}, "me": {"backend": "human", "timeout_s": 60, **human}},
        "population.overrides": {"Red": "me"}, "steps": steps, "runtime": {"checkpoint_every": 1},
    })


def red_answer(request: dict[str, Any]) -> dict[str, Any]:
    """What the test's person answers: depends only on the day, so two runs given the same questions match."""
    day = request["step"] + 1
    return {"reasoning": f"day {day}", "actions": [{"action_name": "Increase cyber capacities", "target_nation": "Red"}],
            "messages": [{"target_nation": "Blue", "content": f"Red to Blue on day {day}"}]}


class Person:
    """A thread playing a seat through its queue: answers each request with `answer(request)`, first sending
    `wrong` (when given) to see it refused. Keeps every request it saw."""

    def __init__(self, run_dir: Path, seat: str = "Red", answer: Callable[[dict[str, Any]], Any] = red_answer,
                 wrong: Any = None, steps: set[int] | None = None):
        self.queue = SeatQueue(run_dir, seat)
        self.answer, self.wrong = answer, wrong
        self.steps = steps  # answer only the requests of these steps (None: all)
        self.seen: dict[str, dict[str, Any]] = {}
        self.refusals: list[str] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Person:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(5)

    def _loop(self) -> None:
        answered: dict[str, int] = {}
        while not self._stop.is_set():
            for req in self.queue.pending():
                rid, n = req["request_id"], len(req["refused"])
                if answered.get(rid) == n or (self.steps is not None and req["step"] not in self.steps):
                    continue  # sent and the backend has not decided yet, or not one to answer
                self.seen[rid] = req
                if n:
                    self.refusals.append(req["refused"][-1]["reason"])
                self.queue.answer(req, self.wrong if self.wrong is not None and n == 0 else self.answer(req))
                answered[rid] = n
            time.sleep(0.02)


def events(run_dir: Path) -> list[dict[str, Any]]:
    """The run's events as rows, missing values as None (NaN != NaN would make equal logs differ)."""
    ev = agentsim.load_run(run_dir).events.drop(columns=["run_id"], errors="ignore")
    return ev.astype(object).where(ev.notna(), None).to_dict("records")


def test_a_person_plays_red_through_the_queue_and_the_game_replays_exactly(tmp_path: Path) -> None:
    sc = human_scenario(tmp_path)
    nuke = {"reasoning": "x", "actions": [{"action_name": "Execute full nuclear attack", "target_nation": "Red"}]}
    with Person(tmp_path / "run", wrong=nuke) as person:
        log = agentsim.run(sc, run_dir=tmp_path / "run")
    assert log.meta["status"] == "completed"
    assert sorted(person.seen) == ["s0-nations-Red-a0", "s1-nations-Red-a0", "s2-nations-Red-a0"]
    # The wrong answer was refused with the pydantic model's reason, and the person answered again.
    assert len(person.refusals) == 3 and all("Red cannot aim 'Execute full nuclear attack' at itself" in r for r in person.refusals)
    calls = log.llm_calls
    red = calls[calls.agent_id == "Red"]
    assert set(red.backend) == {"human"} and set(red.finish_reason) == {"stop"} and red.valid.all()
    assert [json.loads(t)["reasoning"] for t in red.completion_text] == ["day 1", "day 2", "day 3"]
    assert log.meta["models"]["me"]["label"] == "human"
    ev = log.events
    said = ev[(ev.agent_id == "Red") & (ev.action == "Message")]
    assert list(said.target) == ["Blue"] * 3
    # Nothing waits any more, and the accepted answers stay as the seat's record.
    assert SeatQueue(tmp_path / "run", "Red").pending() == []
    assert SeatQueue(tmp_path / "run", "Red").record("s2-nations-Red-a0")["text"] == red.completion_text.iloc[2]

    replayed = agentsim.run(sc, backend="replay", replay_from=tmp_path / "run", run_dir=tmp_path / "replay")
    assert replayed.meta["status"] == "completed"
    assert events(tmp_path / "replay") == events(tmp_path / "run")
    assert not (tmp_path / "replay" / "humans").exists()  # nobody was asked
    # An interview of the person's seat is refused (a person answers for themselves); a model's seat answers.
    from agentsim.interviews import InterviewError

    with pytest.raises(InterviewError, match="a person played this seat"):
        agentsim.interview(tmp_path / "run", "Red", "Why?")
    assert "scripted" in agentsim.interview(tmp_path / "run", "Blue", "Why?")


def test_red_is_asked_only_what_red_may_observe(tmp_path: Path) -> None:
    """The wargame's privacy rules hold for a person: Red's requests carry its own prompt, so private messages
    between other nations never reach Red's seat, while those sent to Red or to World do."""
    sc = human_scenario(tmp_path, steps=4)
    with Person(tmp_path / "run") as person:
        log = agentsim.run(sc, run_dir=tmp_path / "run")
    ev = log.events
    msgs = ev[ev.action == "Message"]
    contents = [(r.agent_id, r.target, json.loads(r.payload)["content"]) for r in msgs.itertuples() if r.step < 3]
    seen = " ".join(json.dumps(req["messages"]) for req in person.seen.values())
    private = [c for a, t, c in contents if "Red" not in (a, t) and t != "World"]
    visible = [c for a, t, c in contents if t in ("Red", "World") and a != "Red"]
    assert private, "the scripted nations sent no private message: the test would prove nothing"
    assert visible, "nothing was addressed to Red or World: the test would prove nothing"
    assert not [c for c in private if json.dumps(c)[1:-1] in seen]
    assert all(json.dumps(c)[1:-1] in seen for c in visible)


@pytest.mark.parametrize(
    ("fallback", "valid", "error"),
    [
        (WAIT, True, None),  # the configured fallback: Red waits ('{agent}' made 'Red')
        (None, False, TIMEOUT_ERROR),  # no fallback: an invalid answer, saying why
        ({"reasoning": "x", "actions": [{"action_name": "Nap", "target_nation": "{agent}"}]}, False, "actions.0"),  # a fallback that does not validate
    ],
    ids=["fallback", "no-fallback", "invalid-fallback"],
)
def test_a_person_who_does_not_answer_gets_the_fallback_logged_as_such(tmp_path: Path, fallback: Any, valid: bool,
                                                                        error: str | None) -> None:
    sc = human_scenario(tmp_path, steps=2, timeout_s=0.3, fallback=fallback)
    log = agentsim.run(sc, run_dir=tmp_path / "run")
    calls = log.llm_calls
    red = calls[calls.agent_id == "Red"]
    assert list(red.finish_reason) == [HUMAN_TIMEOUT] * 2 and list(red.valid) == [valid] * 2
    assert list(red.attempt) == [0, 0]  # a timeout is final: not asked again
    ev = log.events
    if valid:
        waits = ev[(ev.agent_id == "Red") & (ev.action == "Wait")]
        assert list(waits.target) == ["Red", "Red"]
    else:
        bad = ev[(ev.agent_id == "Red") & (ev.action == "invalid")]
        assert len(bad) == 2 and all(error in json.loads(p)["error"] for p in bad.payload)
    replayed = agentsim.run(sc, backend="replay", replay_from=tmp_path / "run", run_dir=tmp_path / "replay")
    assert events(tmp_path / "replay") == events(tmp_path / "run")
    assert replayed.meta["status"] == "completed"
    # the end-of-run summary does not say a person answered
    from agentsim.runtime.summary import human_line

    assert human_line(calls) == ("human seats: a person answered 0 of 2 requests; 2 timed out (answered by the seat's "
                                 "fallback, or invalid without one)")


def test_resume_after_sigkill_keeps_what_the_person_answered(tmp_path: Path) -> None:
    """Killed while Red's day-2 request waits, after day 1 was answered but before any checkpoint: the resumed run
    plays day 1 again and uses the recorded answer without asking, and asks day 2 itself (the dead run's waiting
    request is not shown); the log equals an uninterrupted game's."""
    sc = write_scenario(tmp_path, human_scenario(tmp_path), **{"runtime.checkpoint_every": 10})
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "agentsim", "run", str(sc), "--run-dir", str(run), "--quiet",
                             "--no-seat-pages"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    queue = SeatQueue(run, "Red")
    try:
        with Person(run, steps={0}) as first:  # day 1 only: day 2's request is left waiting
            deadline = time.monotonic() + 60
            while queue.get("s1-nations-Red-a0") is None:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else "timeout"
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = time.time()
    assert "s0-nations-Red-a0" in first.seen
    assert not (run / "checkpoint.json").exists()
    assert [r["request_id"] for r in queue.pending()] == ["s1-nations-Red-a0"]  # the dead run's request, left behind
    resumed = subprocess.Popen([sys.executable, "-m", "agentsim", "resume", str(run), "--quiet", "--no-seat-pages"], env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert resumed.stderr is not None
        for line in resumed.stderr:  # the seats are announced once they are ready to be answered
            if line.startswith("Human seats Red: answer through the files"):
                break
        with Person(run) as second:
            assert resumed.wait(120) == 0, resumed.stderr.read()
    finally:
        if resumed.poll() is None:
            resumed.kill()
    assert "s0-nations-Red-a0" not in second.seen and "s1-nations-Red-a0" in second.seen
    # The person was asked by the resumed run, not shown the dead run's leftover request.
    assert second.seen["s1-nations-Red-a0"]["created_at"] > killed_at
    with Person(tmp_path / "whole"):
        agentsim.run(sc, run_dir=tmp_path / "whole")
    assert events(run) == events(tmp_path / "whole")


def test_terminal_fallback_with_piped_stdin(tmp_path: Path) -> None:
    """`--human Red`: the console shows Red's prompt, refuses a wrong answer with the reason, takes JSON on one line,
    and (on an empty line) asks field by field with numbered menus."""
    sc = write_scenario(tmp_path, steps=2)
    wrong = json.dumps({"reasoning": "x", "actions": [{"action_name": "Send surveillance drone", "target_nation": "Red"}]})
    right = json.dumps({"reasoning": "calm", "actions": [{"action_name": "Wait", "target_nation": "Red"}]})
    # Day 2, field by field: reasoning; 1 action: the menu numbers of Wait and Blue; 1 message to Blue. The menus
    # list the choices of Red's answer schema, in its order.
    from agentsim.llm.human_form import form_of
    from agentsim.runtime.entry import prepare

    world = prepare(sc, backend="scripted").family.create_world.peek()
    answer = {f.name: f for f in form_of(world.turn_models["Red"].model_json_schema()).fields}
    action = {f.name: f for f in answer["actions"].item.fields}
    message = {f.name: f for f in answer["messages"].item.fields}
    guided = ["", "thinking", "1", str(action["action_name"].choices.index("Wait") + 1),
              str(action["target_nation"].choices.index("Blue") + 1), "1", str(message["target_nation"].choices.index("Blue") + 1),
              "hello Blue"]
    stdin = "\n".join([wrong, right, *guided]) + "\n"
    r = subprocess.run([sys.executable, "-m", "agentsim", "run", str(sc), "--backend", "scripted", "--human", "Red",
                        "--run-dir", str(tmp_path / "run")], env=ENV, input=stdin, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "=== Red: request s0-nations-Red-a0 ===" in r.stdout and "You are the agent of nation Red" in r.stdout
    refusal = r.stdout.split("Red: answer refused: ", 1)[1].split("\n", 1)[0]
    assert "Red cannot aim 'Send surveillance drone' at itself" in refusal
    assert "  1) " in r.stdout  # a numbered menu
    assert "human seats: a person answered 2 of 2 requests\n" in r.stdout  # the refused answer was not a request of its own
    log = agentsim.load_run(tmp_path / "run")
    red = log.llm_calls[log.llm_calls.agent_id == "Red"]
    assert set(red.backend) == {"human"}
    assert [json.loads(t) for t in red.completion_text] == [
        json.loads(right),
        {"reasoning": "thinking", "actions": [{"action_name": "Wait", "target_nation": "Blue"}],
         "messages": [{"target_nation": "Blue", "content": "hello Blue"}]},
    ]
    assert log.meta["models"]["human-Red"]["backend"] == "human"
    assert {m["backend"] for a, m in log.meta["models"].items() if a != "human-Red"} == {"scripted"}


@pytest.mark.parametrize(
    ("models", "where", "says"),
    [
        ({"backend": "human", "timeout_s": -1}, "models.me.timeout_s", "greater than 0"),
        ({"backend": "human", "timeout_s": True}, "models.me.timeout_s", "a boolean, not a number"),
        ({"backend": "human", "fallback": 3}, "models.me.fallback", ""),
        ({"backend": "humans"}, "models.me.backend", "human"),
        ({"backend": "human", "fallbak": "Wait"}, "models.me.fallbak", ""),
    ],
    ids=["negative-timeout", "boolean-timeout", "numeric-fallback", "backend-typo", "unknown-option"],
)
def test_bad_human_options_name_the_field(tmp_path: Path, models: dict[str, Any], where: str, says: str) -> None:
    sc = write_scenario(tmp_path, **{"models": {"default": {"backend": "scripted"}, "me": models},
                                     "population.overrides": {"Red": "me"}})
    with pytest.raises(SpecError) as e:
        load_scenario(sc)
    text = e.value.render()
    assert where in text and says in text, text


def test_human_seats_need_the_local_runtime(tmp_path: Path) -> None:
    sc = write_scenario(tmp_path, **{"models": {"default": {"backend": "scripted"}, "me": {"backend": "human"}},
                                     "population.overrides": {"Red": "me"}, "runtime": {"kind": "ray"}})
    with pytest.raises(SpecError) as e:
        load_scenario(sc)
    assert "models.me.backend: 'human' needs runtime.kind: local" in e.value.render()


@pytest.mark.parametrize(
    ("name", "says", "backends", "seats"),
    [
        ("Mauve", "'Mauve' is neither an agent nor a model alias", None, None),
        # The wargame takes its world model's alias from world.world_model.model, not population.overrides.
        ("WorldModel", "--human: 'WorldModel': this family does not take WorldModel's model from population.overrides; "
                       "WorldModel plays on model alias 'default': --human default", None, None),
        ("Red", None, {"default": "scripted", "human-Red": "human"}, ["Red"]),
        # Every agent on the alias is a seat, and --backend leaves the alias human.
        ("default", None, {"default": "human"}, ["Purple", "White", "Pink", "Red", "Yellow", "Blue", "Green", "Orange", "WorldModel"]),
    ],
)
def test_human_flag_takes_an_agent_or_an_alias(tmp_path: Path, name: str, says: str | None, backends: Any, seats: Any) -> None:
    from agentsim.runtime.entry import prepare_with_humans

    sc = write_scenario(tmp_path, steps=1)
    if says is not None:
        with pytest.raises(SpecError) as e:
            prepare_with_humans(sc, [name], backend="scripted")
        assert says in e.value.render(), e.value.render()
        return
    prepared, made = prepare_with_humans(sc, [name], backend="scripted")
    assert {a: m.backend for a, m in prepared.spec.models.items()} == backends
    assert made == seats


@pytest.mark.browser
def test_a_person_plays_red_in_the_browser(tmp_path: Path, chromium) -> None:
    """`agentsim run` prints Red's link; Chromium opens it, sees Red's prompt, sends a wrong answer and is shown
    the reason, then fills the form (reasoning, an action and its target) and the run goes on to day 2."""
    from playwright.sync_api import expect

    sc = human_scenario(tmp_path, steps=2)
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "agentsim", "run", str(sc), "--run-dir", str(run), "--quiet"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        link = None
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.strip().startswith("Red: http://127.0.0.1:"):
                link = line.split(": ", 1)[1].strip()
                break
        assert link and "token=" in link
        # published for `agentsim view` while the run serves the seat, readable by its owner only
        link_file = run / "humans" / "Red" / "link"
        assert link_file.read_text().strip() == link and (link_file.stat().st_mode & 0o077) == 0
        from agentsim.view.data import RunData
        from agentsim.view.panels import seat_link

        assert RunData(run).human_seats() == ["Red"] and seat_link(run, "Red") == link
        page = chromium.new_page()
        page.goto(link.split("token=")[0] + "token=wrong")
        page.get_by_text("This link is not a seat of this run").wait_for(timeout=15000)
        page.goto(link)
        page.locator(".seat-send button:not([disabled])").wait_for(timeout=15000)
        page.get_by_text("It is day 1 of 2. You are the agent of nation Red.").wait_for()
        # A wrong answer (Red cannot aim an 'other' action at itself) comes back with the reason.
        page.locator(".field-reasoning textarea").fill("probe")
        page.locator(".field-actions-0-action_name select").select_option(label="Send surveillance drone")
        page.locator(".field-actions-0-target_nation select").select_option(label="Red")
        page.locator(".seat-send button").click()
        page.get_by_text("Red cannot aim 'Send surveillance drone' at itself").wait_for(timeout=15000)
        screenshot(page, "test_human_seat_refused")
        page.locator(".field-actions-0-target_nation select").select_option(label="Blue")
        page.locator(".field-messages-0-target_nation select").select_option(label="World")
        page.locator(".field-messages-0-content input").fill("Red watches")
        page.locator(".seat-send button").click()
        page.get_by_text("It is day 2 of 2. You are the agent of nation Red.").wait_for(timeout=15000)
        page.get_by_text("Red -> Blue : Send surveillance drone").wait_for()
        expect(page.locator(".field-reasoning textarea")).to_have_value("")  # day 2's own, empty form
        screenshot(page, "test_human_seat_day2")
        page.locator(".field-reasoning textarea").fill("done")
        page.locator(".seat-send button").click()
        assert proc.wait(60) == 0  # the last answer was accepted: the run ends (and its server with it)
        assert not link_file.exists() and seat_link(run, "Red") is None
        page.close()
    finally:
        if proc.poll() is None:
            proc.kill()
    log = agentsim.load_run(run)
    red = log.llm_calls[log.llm_calls.agent_id == "Red"]
    assert [json.loads(t)["reasoning"] for t in red.completion_text] == ["probe", "done"]
    ev = log.events
    assert ((ev.agent_id == "Red") & (ev.action == "Send surveillance drone") & (ev.target == "Blue")).sum() == 1


# -- the other families: a tournament participant and a drift user simulator played by a person ----------------------
def ipd_scenario(tmp_path: Path, seat: str = "cooperator") -> Path:
    """The live IPD tournament, scripted, with participant `seat` on the human alias `me` (a participant names its
    model alias in world.participants[i].model: agentsim/scenarios/tournament/config.py: Participant)."""
    import yaml

    from conftest import SCENARIOS

    base = SCENARIOS / "tournament" / "live_ipd.yaml"
    parts = yaml.safe_load(base.read_text())["world"]["participants"]
    for p in parts:
        if p["name"] == seat:
            p["model"] = "me"
    return write_scenario(tmp_path, base, **{"models": {"default": {"backend": "scripted"}, "me": {"backend": "human", "timeout_s": 60}},
                                             "world.participants": parts, "steps": 2, "world.live.ipd_turns": 2})


def ipd_move(request: dict[str, Any]) -> dict[str, Any]:
    """Cooperate on move 1, defect on move 2 (from the request's phase: the same in a replayed game)."""
    return {"move": "C" if request["request_id"].split("-")[1] == "move1" else "D"}


DRIFT_USER = "none-0000/user"  # drift's user simulator of the first conversation of arm `none`: an id with a '/'


def drift_scenario(tmp_path: Path, **changes: Any) -> Path:
    """The drift rewrite scenario, scripted, one conversation, its user simulator on the human alias `me`
    (world.user.model: agentsim/scenarios/drift/config.py: UserSpec). No KL scoring: the scripted backend has no
    log-probabilities (and this test is about the user's seat)."""
    from conftest import SCENARIOS

    return write_scenario(tmp_path, SCENARIOS / "drift" / "rewrite.yaml", **{
        "models": {"default": {"backend": "scripted"}, "me": {"backend": "human", "timeout_s": 60}}, "world.user.model": "me",
        "steps": 2, "world.conversations_per_arm": 1, "world.arms": [{"name": "none"}], "world.measure_kl": False, **changes})


def drift_message(request: dict[str, Any]) -> str:
    """Free text (the user simulator's request has no JSON schema), depending only on the turn."""
    return f"Turn {request['step'] + 1}: keep it short, please."


@pytest.mark.parametrize(
    ("family", "scenario", "seat", "answer", "expect_requests", "kind"),
    [
        ("tournament", ipd_scenario, "cooperator", ipd_move,
         ["s0-move1-cooperator-a0", "s0-move2-cooperator-a0", "s1-move1-cooperator-a0", "s1-move2-cooperator-a0"], "json"),
        ("drift", drift_scenario, DRIFT_USER, drift_message, [f"s0-user-{DRIFT_USER}-a0", f"s1-user-{DRIFT_USER}-a0"], "text"),
    ],
    ids=["tournament-participant", "drift-user-simulator"],
)
def test_a_person_plays_a_seat_of_the_other_families_and_the_game_replays_exactly(
        tmp_path: Path, family: str, scenario: Callable[[Path], Path], seat: str, answer: Callable[[dict[str, Any]], Any],
        expect_requests: list[str], kind: str) -> None:
    sc = scenario(tmp_path)
    with Person(tmp_path / "run", seat=seat, answer=answer) as person:
        log = agentsim.run(sc, run_dir=tmp_path / "run", quiet=True)
    assert log.meta["status"] == "completed"
    assert sorted(person.seen) == expect_requests
    assert {r["response_format"]["kind"] for r in person.seen.values()} == {kind}
    calls = log.llm_calls
    mine = calls[calls.agent_id == seat]
    assert set(mine.backend) == {"human"} and mine.valid.all() and set(mine.finish_reason) == {"stop"}
    assert list(mine.completion_text) == [answer_text(answer(person.seen[rid])) for rid in expect_requests]
    assert set(calls[calls.agent_id != seat].backend) == {"scripted"}
    ev = log.events
    if family == "tournament":
        moves = ev[(ev.agent_id == seat) & (ev.action == "move")]
        assert [json.loads(p)["move"] for p in moves.payload] == ["C", "D", "C", "D"]
    else:
        said = ev[(ev.agent_id == seat) & (ev.action == "message")]
        assert [json.loads(p)["text"] for p in said.payload] == [drift_message({"step": s}) for s in (0, 1)]
    assert SeatQueue(tmp_path / "run", seat).pending() == []
    replayed = agentsim.run(sc, backend="replay", replay_from=tmp_path / "run", run_dir=tmp_path / "replay", quiet=True)
    assert replayed.meta["status"] == "completed"
    assert events(tmp_path / "replay") == events(tmp_path / "run")
    assert not (tmp_path / "replay" / "humans").exists()  # nobody was asked


def test_terminal_fallback_answers_a_free_text_seat(tmp_path: Path) -> None:
    """`--human` on drift's user simulator (a request with no JSON schema, an agent id with a '/'): the console asks
    for one line of text and takes it as it is."""
    sc = drift_scenario(tmp_path)
    stdin = "Please rewrite this, and keep it casual.\nNow make it longer!\n"
    r = subprocess.run([sys.executable, "-m", "agentsim", "run", str(sc), "--human", DRIFT_USER, "--run-dir", str(tmp_path / "run")],
                       env=ENV, input=stdin, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"=== {DRIFT_USER}: request s0-user-{DRIFT_USER}-a0 ===" in r.stdout and "Your answer (one line):" in r.stdout
    log = agentsim.load_run(tmp_path / "run")
    user = log.llm_calls[log.llm_calls.agent_id == DRIFT_USER]
    assert set(user.backend) == {"human"}
    assert list(user.completion_text) == ["Please rewrite this, and keep it casual.", "Now make it longer!"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(agent=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300))
def test_any_agent_id_gets_a_seat_whose_requests_can_be_answered(tmp_path: Path, agent: str) -> None:
    """Agent ids (so request ids, `s<step>-<phase>-<agent>-a<n>`) are any Unicode text of any length (README "Names"):
    '/', '..', spaces, accents, 300 characters. Each seat's queue finds its pending request, takes an answer and
    keeps the record under that id, and two ids never share a file."""
    import asyncio

    from agentsim.llm.human import HumanBackend, file_stem
    from agentsim.llm.types import LLMRequest
    from agentsim.spec.models import ModelSpec

    run = tmp_path / f"r{time.monotonic_ns()}"
    backend = HumanBackend({"me": ModelSpec(backend="human", timeout_s=20)}, run, poll_s=0.01)
    rid = f"s0-nations-{agent}-a0"
    req = LLMRequest(rid, agent, "me", "human", [{"role": "user", "content": "say hi"}], ModelSpec(backend="human").sampling, 0)

    def person() -> None:
        q = SeatQueue(run, agent)
        deadline = time.monotonic() + 20
        while q.get(rid) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        pending = q.pending()
        assert [p["request_id"] for p in pending] == [rid]
        q.answer(pending[0], "hi")

    from concurrent.futures import ThreadPoolExecutor

    # The backend on a thread of its own: the session's Chromium (playwright's sync API) may hold this thread's loop.
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(asyncio.run, backend.generate([req]))
        person()
        [result] = waiting.result(30)
    assert result.text == "hi" and result.finish_reason == "stop"
    assert SeatQueue(run, agent).record(rid)["text"] == "hi"
    assert SeatQueue.seats(run) == [agent]
    for name in (file_stem(agent), file_stem(rid)):
        assert "/" not in name and name not in (".", "..") and len(name.encode()) <= 100
    assert file_stem(agent + "x") != file_stem(agent)


def seat_link(proc: subprocess.Popen, seat: str, timeout: float = 120) -> str:
    """The link `agentsim run` prints for `seat` on its stderr ("  <seat>: http://...")."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.strip().startswith(f"{seat}: http://"):
            return line.split(": ", 1)[1].strip()
        assert time.monotonic() < deadline, "".join(seen)
    raise AssertionError(f"no link for {seat}: {''.join(seen)[-3000:]}")


@pytest.mark.browser
def test_the_seat_page_answers_a_free_text_request(tmp_path: Path, chromium) -> None:
    """Drift's user simulator in the browser: its request has no JSON schema, so the page shows one text box; what
    the person types is the user's message."""
    from playwright.sync_api import expect

    sc = drift_scenario(tmp_path, steps=1)
    proc = subprocess.Popen([sys.executable, "-m", "agentsim", "run", str(sc), "--run-dir", str(tmp_path / "run"), "--quiet"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        link = seat_link(proc, DRIFT_USER)
        page = chromium.new_page()
        page.goto(link)
        page.locator(".seat-send button:not([disabled])").wait_for(timeout=30000)
        page.get_by_text("You play a user talking to an AI assistant.").first.wait_for()
        page.locator(".field-answer textarea").fill("Please rewrite it, but keep it friendly.")
        expect(page.locator(".seat-raw")).to_be_hidden()  # no "answer as JSON" box for a text request
        screenshot(page, "test_human_seat_free_text")
        page.locator(".seat-send button").click()
        assert proc.wait(60) == 0
        page.close()
    finally:
        if proc.poll() is None:
            proc.kill()
    log = agentsim.load_run(tmp_path / "run")
    user = log.llm_calls[log.llm_calls.agent_id == DRIFT_USER]
    assert list(user.backend) == ["human"] and list(user.completion_text) == ["Please rewrite it, but keep it friendly."]


class LoopHolder:
    """A backend that, like the in-process vLLM backend (llm/vllm_backend.py: VLLMBackend.generate), computes on the
    event loop's thread and returns only when its batch is done. Notes which requests were waiting for people when
    it started."""

    name = "holder"
    holds_loop = True

    def __init__(self, run_dir: Path, seats: list[str]):
        self.queues = [SeatQueue(run_dir, s) for s in seats]
        self.pending_at_start: list[str] = []

    async def generate(self, requests: list[Any]) -> list[Any]:
        from agentsim.llm.types import LLMResult

        self.pending_at_start = sorted(r["request_id"] for q in self.queues for r in q.pending())
        time.sleep(0.5)  # holds the loop, as an engine's forward passes do
        return [LLMResult(r.request_id, "model", 1, 1, "stop", 0.5) for r in requests]

    def close(self) -> None:
        pass


@pytest.mark.parametrize("order", ["models-first", "people-first"])
def test_people_see_their_requests_while_a_loop_holding_engine_computes(tmp_path: Path, order: str) -> None:
    """The router sends one phase's requests to every backend at once; the person must be asked before an engine
    that holds the event loop starts its batch, whatever the requests' order, so that person and model work at the
    same time instead of one after the other."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from agentsim.llm.human import HumanBackend
    from agentsim.llm.router import BackendRouter
    from agentsim.llm.types import LLMRequest
    from agentsim.spec.models import ModelSpec

    run = tmp_path / "run"
    people = ["Red", "Blue"]
    human = HumanBackend({"me": ModelSpec(backend="human", timeout_s=20)}, run, poll_s=0.01)
    holder = LoopHolder(run, people)
    router = BackendRouter({"me": human, "model": holder})
    sampling = ModelSpec(backend="human").sampling
    reqs = [LLMRequest(f"s0-nations-{a}-a0", a, "me" if a in people else "model", "m", [{"role": "user", "content": a}], sampling, 0)
            for a in ["Green", "Pink", "Red", "Blue"]]
    if order == "people-first":
        reqs.reverse()
    with ThreadPoolExecutor(1) as pool, Person(run, "Red", answer=lambda r: "red"), Person(run, "Blue", answer=lambda r: "blue"):
        out = pool.submit(asyncio.run, router.generate(reqs)).result(30)
    assert holder.pending_at_start == ["s0-nations-Blue-a0", "s0-nations-Red-a0"]
    assert {r.request_id: r.text for r in out} == {"s0-nations-Green-a0": "model", "s0-nations-Pink-a0": "model",
                                                   "s0-nations-Red-a0": "red", "s0-nations-Blue-a0": "blue"}
    assert [r.request_id for r in out] == [r.request_id for r in reqs]


@pytest.mark.parametrize("options", [
    ["models.human-Red.timeout_s=1"],
    ["models.human-Red.timeout_s=1", "models.human-Red.fallback={reasoning: away, actions: [{action_name: Wait, target_nation: Red}]}"],
])
def test_human_flag_uses_the_seat_alias_the_user_configured(tmp_path: Path, options: list[str]) -> None:
    """`--human Red --set models.human-Red.timeout_s=1` (the alias the README names): the seat sits on that alias,
    made human with its options, not on a second alias without them (which waited for ever)."""
    from agentsim.runtime.entry import prepare_with_humans

    sc = write_scenario(tmp_path, steps=1)
    prepared, made = prepare_with_humans(sc, ["Red"], options, backend="scripted")
    models = prepared.spec.models
    assert made == ["Red"] and sorted(models) == ["default", "human-Red"]
    assert models["human-Red"].backend == "human" and models["human-Red"].timeout_s == 1
    assert prepared.spec.population.overrides["Red"] == "human-Red" and models["default"].backend == "scripted"


def test_a_console_that_closes_stops_the_run_instead_of_waiting_for_ever(tmp_path: Path) -> None:
    """`--human Red` with input that ends before the game does and no timeout_s: the run stops at the unanswered
    request (exit 3, resumable) instead of waiting for a person who cannot answer; a resume with input finishes it,
    keeping the day already answered."""
    sc = write_scenario(tmp_path, steps=2)
    day1 = json.dumps({"reasoning": "calm", "actions": [{"action_name": "Wait", "target_nation": "Red"}]})
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "agentsim", "run", str(sc), "--backend", "scripted", "--human", "Red",
                        "--run-dir", str(run)], env=ENV, input=day1 + "\n", capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stdout[-2000:] + r.stderr[-2000:]
    assert "input closed" in r.stdout and "nobody to answer" in r.stderr and "Traceback" not in r.stderr
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "backend_unavailable" and meta["steps_completed"] == 1
    day2 = json.dumps({"reasoning": "still calm", "actions": [{"action_name": "Wait", "target_nation": "Red"}]})
    r = subprocess.run([sys.executable, "-m", "agentsim", "resume", str(run), "--human", "Red"], env=ENV,
                       input=day2 + "\n", capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    red = agentsim.load_run(run).llm_calls.query("agent_id == 'Red'")
    assert [json.loads(t)["reasoning"] for t in red.completion_text] == ["calm", "still calm"]
