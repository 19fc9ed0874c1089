"""Names are data (README "Names"): any Unicode text, NFC-normalised, never a reserved id, never twice; and
`validate` accepts exactly the names that `run` accepts, which then reach the log and the analyses verbatim."""

from __future__ import annotations

import csv
import json
import os
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from agentsim.cli import app
from agentsim.core.registry import get_family
from agentsim.core.types import Decision
from agentsim.core.world import StepContext
from agentsim.logs.reader import RunLog
from agentsim.spec.loader import load_scenario

from conftest import SCENARIOS

RUNNER = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    r = RUNNER.invoke(app, list(args))
    assert not isinstance(r.exception, Exception) or isinstance(r.exception, SystemExit), (
        f"agentsim {' '.join(args)} raised {r.exception!r}:\n{r.output}")
    return r.exit_code, r.output


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


# -- scenario builders: each puts `names` where its family reads names, and returns the scenario file ----------------
def tournament_live(d: Path, names: list[str]) -> Path:
    # No `default` alias and no population section: every participant names its model (issue 12 §3.6).
    return write_yaml(d / "live.yaml", {
        "kind": "tournament", "name": "live", "steps": 1, "models": {"m": {"backend": "scripted"}},
        "world": {"mode": "live", "participants": [{"name": n, "model": "m"} for n in names], "live": {"match": "ipd", "ipd_turns": 1}},
        "logging": {"dir": str(d / "runs")}})


def tournament_csd(d: Path, names: list[str]) -> Path:
    write_csv(d / "scores.csv", ["model", "a", "b"], [[n, str(i), str(3 - i)] for i, n in enumerate(names)])
    return write_yaml(d / "csd.yaml", {
        "kind": "tournament", "name": "csd", "steps": 1, "models": {"default": {"backend": "scripted"}},
        "world": {"mode": "csd", "csd": {"scores_file": "scores.csv", "n_tournaments": 200, "sensitivity": [0], "sensitivity_tournaments": 100}},
        "logging": {"dir": str(d / "runs")}})


def wargame(d: Path, names: list[str]) -> Path:
    write_yaml(d / "nations.yaml", {"nations": [
        {"name": n, "static": {"governance": "Democratic", "aggression": 3}, "dynamic": {"gdp": 10, "territory": 5}} for n in names]})
    return write_yaml(d / "wargame.yaml", {
        "kind": "wargame", "name": "wargame", "steps": 1, "models": {"default": {"backend": "scripted"}},
        "world": {"nations_file": "nations.yaml", "max_actions_per_day": 1, "max_messages_per_day": 1}, "logging": {"dir": str(d / "runs")}})


def social(d: Path, names: list[str]) -> Path:
    write_csv(d / "users.csv", ["user_id", "name", "bio"], [[n, n, f"I am {n}"] for n in names])
    return write_yaml(d / "social.yaml", {
        "kind": "social", "name": "social", "steps": 2, "models": {"default": {"backend": "scripted"}},
        "world": {"users": {"file": "users.csv"}, "network": {"generator": "none"}, "seed_posts": {"count": 3},
                  "time": {"activity": {"probability": 1.0}}},
        "logging": {"dir": str(d / "runs")}})


def drift(d: Path, names: list[str]) -> Path:
    data = yaml.safe_load((SCENARIOS / "drift" / "rewrite.yaml").read_text())
    data.update(steps=1, models={"default": {"backend": "scripted"}}, logging={"dir": str(d / "runs")})
    data["world"].update(arms=[{"name": n} for n in names], conversations_per_arm=1, measure_kl=False)
    return write_yaml(d / "drift.yaml", data)


# (builder, family, whether the names are agent ids (reserved ids apply) or labels, where the log shows them)
CASES: dict[str, tuple[Callable[[Path, list[str]], Path], str, bool, str]] = {
    "tournament-live": (tournament_live, "tournament", True, "agent_id"),
    "tournament-csd": (tournament_csd, "tournament", True, "agent_id"),
    "wargame-nations": (wargame, "wargame", True, "agent_id"),
    "social-users": (social, "social", True, "agent_id"),
    "drift-arms": (drift, "drift", False, "group"),
}


def documented_rule(name: str) -> bool:
    """README "Names", written out independently of agentsim/core/names.py."""
    n = nfc(name)
    return (n != "" and not n[0].isspace() and not n[-1].isspace()
            and all(unicodedata.category(c) not in ("Cc", "Cs", "Zl", "Zp") for c in n))


def acceptable(names: list[str], family: str, ids: bool) -> bool:
    normal = [nfc(n) for n in names]
    reserved = {r.casefold() for r in get_family(family).reserved_ids} if ids else set()
    return all(map(documented_rule, names)) and len(set(normal)) == len(normal) and not any(n.casefold() in reserved for n in normal)


SPECIAL = ["Judge", "judge", "JUDGE", "World", "worldmodel", "", " ", " lead", "trail ", "tab\there", "line\nbreak", "nul\x00",
           "e\u0301", "é", "NA", "null", "007", "1e3", "x,y", '"q"', "#c", "[/b]x", "@at", "josé", "محمد", "李雷", "👩‍🔬", "a\u2028b",
           "\ufeffbom", "zero\u200bwidth", "{x}", "a/b", "-"]
# Any text, the special cases above, and (mostly) text the rule accepts, so that both sides are exercised.
PLAIN = st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp", "Zs")), min_size=1, max_size=6)
NAME = st.integers(0, 9).flatmap(lambda i: PLAIN if i < 7 else st.one_of(st.text(max_size=6), st.sampled_from(SPECIAL)))
# Lists of distinct names (hypothesis likes repeating list elements), and any lists.
NAMES = st.one_of(st.lists(NAME, min_size=2, max_size=3, unique_by=lambda s: nfc(s).casefold()), st.lists(NAME, min_size=2, max_size=3))
EXAMPLES = int(os.environ.get("AGENTSIM_NAME_EXAMPLES", "20"))


@pytest.mark.parametrize("case", list(CASES))
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(names=NAMES)
def test_validate_accepts_exactly_what_run_accepts_and_logs(case: str, names: list[str], tmp_path_factory: pytest.TempPathFactory) -> None:
    build, family, ids, column = CASES[case]
    d = tmp_path_factory.mktemp("names")
    path = build(d, names)
    text = path.read_text(encoding="utf-8")
    assume(yaml.safe_load(text) is not None)  # the YAML writer round-trips every str; this only guards the builder
    ok = acceptable(names, family, ids)
    event("accepted" if ok else "refused")
    code, out = cli("validate", str(path))
    assert code == (0 if ok else 2), f"validate said {code} for {names!r}:\n{out}"
    run_code, run_out = cli("run", str(path), "--backend", "scripted", "--run-dir", str(d / "run"), "--quiet")
    assert run_code == code, f"validate said {code}, run said {run_code} for {names!r}:\n{run_out}"
    if not ok:
        assert "Traceback" not in out + run_out
        assert not (d / "run").exists() or not any((d / "run").iterdir())
        return
    log = RunLog(d / "run")
    shown = set(log.agents[column])
    assert {nfc(n) for n in names} <= shown, (names, shown)
    if ids:
        assert {nfc(n) for n in names} <= set(log.events["agent_id"]) | set(log.metrics["agent_id"].dropna())
    summary = get_family(family).summary(log)  # the analyses behind the run summary
    assert summary
    if family == "tournament":
        table = summary.get("Tournament: standings")
        players = table["player"] if table is not None else summary["Tournament: expected_scores"]["model"]
        assert set(players) == {nfc(n) for n in names}, summary


# -- Unicode ids in a social platform's prompts and actions -------------------------------------------------------
@pytest.fixture
def unicode_platform(tmp_path: Path) -> Any:
    write_csv(tmp_path / "users.csv", ["user_id", "bio"], [
        ["anna", "I read the news"], ["jose\u0301", "I bike to work"], ["محمد", "I cook bread"], ["李雷", "I write code"]])
    write_csv(tmp_path / "posts.csv", ["author", "content"], [
        ["josé", "bike lanes now"], ["محمد", "fresh bread today"], ["李雷", "code review done"]])
    f = write_yaml(tmp_path / "s.yaml", {
        "kind": "social", "name": "unicode", "steps": 3, "models": {"default": {"backend": "scripted"}},
        "world": {"users": {"file": "users.csv"}, "network": {"generator": "none"}, "seed_posts": {"file": "posts.csv"},
                  "time": {"activity": {"probability": 1.0}}, "recommender": {"sources": [{"kind": "random", "slots": 1}]}}})
    sc = load_scenario(f)
    return sc, sc.family.create_world(sc.spec, sc.world), sc.family.create_mind(sc.spec, sc.world)


@pytest.mark.parametrize("ask", [{"action": "search_user", "query": "bike bread code"}, {"action": "search_posts", "query": "bike bread code"},
                                 {"action": "trend"}])
def test_unicode_ids_round_trip_through_search_prompts_and_follows(unicode_platform: Any, ask: dict[str, str]) -> None:
    """Users found by a search or in trends are offered by id and can be followed, whatever their script."""
    sc, world, mind = unicode_platform
    rng = np.random.default_rng(0)

    def step(s: int, answers: dict[str, dict[str, str]]) -> list[Any]:
        ctx = StepContext(s, world.sim_time(s), rng, 1000 * s)
        for phase in world.phases:
            ctx.phase = phase
            obs = world.observe(ctx, phase)
            decisions = [Decision(o.agent_id, o.action_model.model_validate(answers[o.agent_id], context=o.validation_context), "", True, f"r{s}", 1)
                         for o in obs if o.agent_id in answers]
            world.apply(ctx, phase, decisions)
            if phase == "users":
                seen = obs
        return seen

    step(0, {"anna": ask})
    anna = next(o for o in step(1, {}) if o.agent_id == "anna")
    assert set(anna.validation_context["users"]) == {"josé", "محمد", "李雷"}  # was {'jos'}: an ASCII-only "@name" pattern
    line = next(x for x in mind.messages({}, None, anna)[1]["content"].splitlines() if x.startswith("Users you can name"))
    assert json.loads(line.split(": ", 1)[1].rstrip(".")) == sorted(["josé", "محمد", "李雷"])
    for who in ("jose\u0301", "محمد", "李雷"):  # NFD from the model is the same user
        act = anna.action_model.model_validate({"action": "follow", "user_id": who}, context=anna.validation_context)
        assert act.root.user_id == nfc(who)
    ctx = StepContext(2, world.sim_time(2), rng, 5000)
    ctx.phase = "users"
    world.apply(ctx, "users", [Decision("anna", anna.action_model.model_validate({"action": "follow", "user_id": "李雷"},
                                                                                   context=anna.validation_context), "", True, "r2", 1)])
    assert [(e.agent_id, e.action, e.target) for e in ctx.events] == [("anna", "follow", "李雷")]


def test_mentions_survive_a_checkpoint(unicode_platform: Any) -> None:
    sc, world, _ = unicode_platform
    ctx = StepContext(0, world.sim_time(0), np.random.default_rng(0), 0)
    for phase in world.phases:
        ctx.phase = phase
        obs = world.observe(ctx, phase)
        world.apply(ctx, phase, [Decision(o.agent_id, o.action_model.model_validate({"action": "trend"}), "", True, "r", 1)
                                 for o in obs if o.agent_id == "anna"])
    state = json.loads(json.dumps({k: v for k, v in world.get_state().items() if k == "info"}))
    fresh = sc.family.create_world(sc.spec, sc.world)
    fresh.set_state({**world.get_state(), **state})
    assert fresh.info == world.info and set(next(iter(fresh.info.values()))[1]) == {"josé", "محمد", "李雷"}


# -- reserved ids, repeats, empty ids and unknown groups: refused by validate and run, with where -------------------
def _participants(d: Path, names: list[str]) -> Path:
    return tournament_live(d, names)


def _judge_tournament(d: Path, names: list[str]) -> Path:
    data = yaml.safe_load(tournament_live(d, names).read_text())
    data["world"]["live"] = {"match": "judge", "judge": "m", "items": [{"question": "Why?"}]}
    return write_yaml(d / "judge.yaml", data)


def _users(d: Path, names: list[str]) -> Path:
    return social(d, names)


def _voter(d: Path, names: list[str]) -> Path:
    data = yaml.safe_load(social(d, ["anna", "bob"]).read_text())
    data["world"]["interventions"] = [{"kind": "herd_votes", "voter": names[0]}, {"kind": "inject_post", "step": 0, "author": names[1], "content": "hi"}]
    return write_yaml(d / "voter.yaml", data)


REFUSED = [
    # (builder, names, where the message points, what it says)
    pytest.param(_judge_tournament, ["Judge", "b"], r"world\.participants\.0\.name", "'Judge' is reserved", id="participant-Judge"),
    pytest.param(_participants, ["a", "judge"], r"world\.participants\.1\.name", "'judge' is reserved", id="participant-judge-any-case"),
    pytest.param(_participants, ["a", "a"], r"world\.participants\.1\.name", "'a' is used twice; first at world.participants.0.name", id="participant-twice"),
    pytest.param(_participants, ["é", "e\u0301"], r"world\.participants\.1\.name", "'é' is used twice", id="participant-twice-after-NFC"),
    pytest.param(_participants, ["a", ""], r"world\.participants\.1\.name", "must not be empty", id="participant-empty"),
    pytest.param(tournament_csd, ["a", "JUDGE"], r"world\.csd\.scores_file", r"scores\.csv row 2 \(id 'JUDGE'\): field model: 'JUDGE' is reserved", id="scores-Judge"),
    pytest.param(tournament_csd, ["a", "a"], r"world\.csd\.scores_file", r"scores\.csv row 2 \(id 'a'\): field model: 'a' is used twice; first at .*scores\.csv row 1", id="scores-twice"),
    pytest.param(tournament_csd, ["a", ""], r"world\.csd\.scores_file", r"scores\.csv row 2: field model: must not be empty", id="scores-empty"),
    pytest.param(wargame, ["Red", "World"], r"world\.nations_file", r"nations\.yaml row 2 \(id 'World'\): field name: 'World' is reserved", id="nation-World"),
    pytest.param(wargame, ["worldmodel", "Red"], r"world\.nations_file", r"nations\.yaml row 1 \(id 'worldmodel'\): field name: 'worldmodel' is reserved", id="nation-WorldModel"),
    pytest.param(wargame, ["Red", "Red"], r"world\.nations_file", r"nations\.yaml row 2 \(id 'Red'\): field name: 'Red' is used twice", id="nation-twice"),
    pytest.param(wargame, ["Red", " "], r"world\.nations_file", r"nations\.yaml row 2 \(line \d+, id ' '\): field name: ' ' has white space", id="nation-blank"),
    pytest.param(_users, ["anna", "Judge"], r"world\.users\.file", r"users\.csv row 2 \(id 'Judge'\): field user_id: 'Judge' is reserved", id="user-Judge"),
    pytest.param(_users, ["anna", "bob", "anna"], r"world\.users\.file", r"users\.csv row 3 \(id 'anna'\): field user_id: 'anna' is used twice; first at .*users\.csv row 1", id="user-twice"),
    pytest.param(_users, ["anna", ""], r"world\.users\.file", r"users\.csv row 2: field user_id: must not be empty", id="user-empty"),
    pytest.param(_voter, ["judge", "x"], r"world\.interventions\.0\.voter", "'judge' is reserved", id="voter-judge"),
    pytest.param(_voter, ["bot", "JUDGE"], r"world\.interventions\.1\.author", "'JUDGE' is reserved", id="injected-author-judge"),
]


@pytest.mark.parametrize(("build", "names", "where", "what"), REFUSED)
def test_bad_ids_are_refused_by_validate_and_run_with_where(build: Any, names: list[str], where: str, what: str, tmp_path: Path) -> None:
    f = build(tmp_path, names)
    code, out = cli("validate", str(f))
    assert code == 2, out
    assert_matches(out, where, what)
    code, out = cli("run", str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "run"), "--quiet")
    assert code == 2, out
    assert_matches(out, where, what)


def assert_matches(out: str, where: str, what: str) -> None:
    import re

    flat = " ".join(out.split())
    assert re.search(where, flat) and re.search(what, flat), out


def test_users_with_an_unknown_group_are_refused(tmp_path: Path) -> None:
    write_csv(tmp_path / "users.csv", ["user_id", "group"], [["anna", "greens"], ["bob", "reds"], ["cleo", ""]])
    f = write_yaml(tmp_path / "s.yaml", {"kind": "social", "name": "g", "steps": 1, "models": {"default": {"backend": "scripted"}},
                                         "world": {"users": {"file": "users.csv", "groups": [{"name": "greens"}]}}})
    code, out = cli("validate", str(f))
    assert code == 2
    assert_matches(out, r"world\.users\.file", r"users\.csv row 2 \(id 'bob'\): field group: 'reds' is not a group of this scenario; world\.users\.groups are \['greens'\]")
    assert "row 1" not in out and "row 3" not in out  # a known group, and an empty cell (the first group)


def test_every_id_a_family_makes_for_itself_is_reserved(tmp_path: Path) -> None:
    """The agents a world adds beside the scenario's own (judges, the world model) are in Family.reserved_ids, and so
    is the wargame's message target; so no scenario can define an agent that collides with one."""
    from agentsim.scenarios.wargame.actions import WORLD

    scenarios = [SCENARIOS / "tournament" / "live_judge.yaml", SCENARIOS / "wargame" / "neutral.yaml", SCENARIOS / "social" / "examples" / "from_files.yaml"]
    judged = yaml.safe_load(scenarios[2].read_text())
    judged["world"].update(judge={"enabled": True}, interventions=[{"kind": "herd_votes"}])
    judged["world"]["users"]["file"] = str(scenarios[2].parent / "users.csv")
    judged["world"]["network"]["follows_file"] = str(scenarios[2].parent / "follows.csv")
    judged["world"]["seed_posts"]["file"] = str(scenarios[2].parent / "posts.csv")
    scenarios[2] = write_yaml(tmp_path / "judged.yaml", judged)
    for path in scenarios:
        sc = load_scenario(path)
        world = sc.family.create_world(sc.spec, sc.world)
        defined = {n.id for n in sc.family.names(sc.spec, sc.world)}
        own = {a.agent_id for a in world.agents()} - defined
        reserved = {r.casefold() for r in sc.family.reserved_ids}
        assert own and {a.casefold() for a in own} <= reserved, (path, own, reserved)
    assert WORLD.casefold() in {r.casefold() for r in get_family("wargame").reserved_ids}


def test_the_forbidden_characters_are_exactly_the_documented_categories() -> None:
    """core/names.py finds forbidden characters with one character class; it must be Cc, Cs, Zl and Zp, exactly."""
    from agentsim.core.names import _FORBIDDEN

    by_regex = {cp for cp in range(0x110000) if _FORBIDDEN.match(chr(cp))}
    by_category = {cp for cp in range(0x110000) if unicodedata.category(chr(cp)) in ("Cc", "Cs", "Zl", "Zp")}
    assert by_regex == by_category
