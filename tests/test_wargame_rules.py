"""Wargame rules: data faithful to the study, effects, clamps, simultaneity, privacy and the daily cap."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from pydantic import ValidationError

from agentsim.core.seeding import make_rng
from agentsim.core.types import Decision
from agentsim.core.world import StepContext
from agentsim.scenarios.wargame.config import WargameConfig
from agentsim.scenarios.wargame.data import DYNAMIC_VARS, load_actions, load_nations
from agentsim.scenarios.wargame.world import WORLD_MODEL_ID, TakenAction, WargameWorld, resolve_effects

NAMES = [n.name for n in load_nations()]
INDEX = {n: i for i, n in enumerate(NAMES)}
DEFS = {a.name: a for a in load_actions()}
V = {v: i for i, v in enumerate(DYNAMIC_VARS)}


def test_nations_match_the_study_csv(study_data) -> None:
    rows = list(csv.DictReader((study_data / "nations_configs" / "nations_v5.csv").read_text(encoding="utf-8").splitlines()))
    nations = load_nations()
    assert [r["name_static"] for r in rows] == [n.name for n in nations]
    for r, n in zip(rows, nations, strict=True):
        for col, val in r.items():
            key = col.rsplit("_", 1)[0]
            if col.endswith("_dynamic"):
                assert n.dynamic[key] == pytest.approx(float(val)), (n.name, key)
            elif col.endswith("_static") and key != "name":
                got = n.static[key]
                assert (got == val) if isinstance(got, str) else got == pytest.approx(float(val)), (n.name, key)


def test_actions_match_the_study_csv(study_data) -> None:
    rows = list(csv.DictReader((study_data / "action_configs" / "actions_v8.csv").read_text(encoding="utf-8").splitlines()))
    assert len(rows) == 27 == len(DEFS)
    for r in rows:
        d = DEFS[r["name"]]
        assert d.description == r["description"].strip()
        effects = {(e.variable, e.op, e.on): e.delta for e in d.effects}
        for col, val in r.items():
            parts = col.rsplit("_", 2)
            if len(parts) == 3 and parts[1] in ("add", "mult"):
                assert effects.get(tuple(parts), 0.0) == pytest.approx(float(val)), (r["name"], col)
        expected = {"Private": "private", "Public": "public", "Public or Private": "target_dependent"}[r["privacy level"]]
        assert d.privacy == expected


def _start() -> np.ndarray:
    return np.array([[n.dynamic[v] for v in DYNAMIC_VARS] for n in load_nations()], dtype=float)


def test_add_and_mult_effects_on_self_and_other() -> None:
    s = _start()
    out = resolve_effects(s, [TakenAction(1, "Red", "Pink", "Execute targeted attack")], INDEX, DEFS)
    red, pink = INDEX["Red"], INDEX["Pink"]
    # military capacity_add_self -1, _add_other -2; gdp_mult_self -0.001, _mult_other -0.05; territory +1 / -1
    assert out[red, V["military capacity"]] == s[red, V["military capacity"]] - 1
    assert out[pink, V["military capacity"]] == s[pink, V["military capacity"]] - 2
    assert out[red, V["gdp"]] == pytest.approx(s[red, V["gdp"]] * (1 - 0.001))
    assert out[pink, V["gdp"]] == pytest.approx(s[pink, V["gdp"]] * (1 - 0.05))
    assert out[red, V["territory"]] == s[red, V["territory"]] + 1
    assert out[pink, V["territory"]] == s[pink, V["territory"]] - 1
    untouched = [i for i in range(len(NAMES)) if i not in (red, pink)]
    assert np.array_equal(out[untouched], s[untouched])


def test_floor_at_zero_and_nuclear_clamp() -> None:
    s = _start()
    pink = INDEX["Pink"]  # nuclear 0, soft power 8
    acts = [TakenAction(1, "Pink", "Pink", "Acquire or develop nuclear option")] * 3
    out = resolve_effects(s, acts, INDEX, DEFS)
    assert out[pink, V["nuclear"]] == 10  # 0 + 30 clamped to 10
    blue = INDEX["Blue"]
    hits = [TakenAction(1, "Orange", "Blue", "Execute full on invasion")] * 5
    out = resolve_effects(s, hits, INDEX, DEFS)
    assert out[blue, V["military capacity"]] == 0  # 10 - 25 floored at 0
    disarm = resolve_effects(s, [TakenAction(1, "Red", "Red", "Do nuclear disarmament")] * 2, INDEX, DEFS)
    assert disarm[INDEX["Red"], V["nuclear"]] == 0


def test_resolution_is_simultaneous() -> None:
    s = _start()
    a = [TakenAction(1, "Red", "Blue", "Execute targeted attack"), TakenAction(1, "Blue", "Red", "Impose trade restrictions"),
         TakenAction(1, "Red", "Red", "Increase military capacities")]
    one = resolve_effects(s, a, INDEX, DEFS)
    other = resolve_effects(s, list(reversed(a)), INDEX, DEFS)
    assert np.array_equal(one, other)


def _world(**cfg) -> WargameWorld:
    return WargameWorld(WargameConfig(**cfg), steps=14, default_model="default", model_for={"Red": "other"})


def _decide(world: WargameWorld, agent: str, actions: list[tuple[str, str]], messages: list[tuple[str, str]] = ()) -> Decision:
    turn = world.turn_model.model_validate({
        "reasoning": "r",
        "actions": [{"action_name": a, "target_nation": t} for a, t in actions],
        "messages": [{"target_nation": t, "content": c} for t, c in messages],
    })
    return Decision(agent, turn, "", True, f"s0-nations-{agent}-a0", 1)


def test_privacy_is_enforced_in_observations() -> None:
    w = _world()
    ctx = StepContext(0, 1.0, make_rng(0, "w"), 0)
    ctx.phase = "nations"
    decisions = [
        _decide(w, "Red", [("Execute cybersecurity attack", "Blue"), ("Form an alliance", "Orange")], [("Orange", "secret plan"), ("World", "we want peace")]),
        _decide(w, "Pink", [("Share intelligence on threats with other nation", "Blue"), ("Wait", "Pink")]),
    ]
    w.apply(ctx, "nations", decisions)
    ctx2 = StepContext(1, 2.0, ctx.rng, ctx.next_event_id)
    obs = {o.agent_id: o.messages[1]["content"] for o in w.observe(ctx2, "nations")}
    private = ["Red -> Blue : Execute cybersecurity attack", 'Red -> Orange : Message "secret plan"',
               "Pink -> Blue : Share intelligence on threats with other nation", "Pink -> Pink : Wait"]
    public = ["Red -> Orange : Form an alliance", 'Red -> World : Message "we want peace"']
    for line in public:
        assert all(line in text for text in obs.values()), line
    assert private[0] in obs["Red"] and private[0] in obs["Blue"] and private[0] not in obs["Green"]
    assert private[1] in obs["Orange"] and private[1] not in obs["Blue"]
    assert private[2] in obs["Blue"] and private[2] not in obs["Red"]
    assert private[3] in obs["Pink"] and private[3] not in obs["Purple"]
    wm = w.observe(ctx2, "world_model")[0]
    assert wm.agent_id == WORLD_MODEL_ID and all(line in wm.messages[1]["content"] for line in private + public)
    # the events carry who could see them
    payloads = {(e.agent_id, e.action, e.target): e.payload for e in ctx.events}
    assert '"private"' in payloads[("Red", "Execute cybersecurity attack", "Blue")]
    assert '"public"' in payloads[("Red", "Message", "World")]


def test_cap_of_three_actions_is_part_of_the_schema() -> None:
    w = _world()
    schema = w.turn_model.model_json_schema()
    assert schema["properties"]["actions"]["maxItems"] == 3
    four = [{"action_name": "Wait", "target_nation": "Red"}] * 4
    with pytest.raises(ValidationError, match="at most 3"):
        w.turn_model.model_validate({"reasoning": "", "actions": four})
    with pytest.raises(ValidationError):
        w.turn_model.model_validate({"reasoning": "", "actions": [{"action_name": "Nuke everyone", "target_nation": "Red"}]})
    with pytest.raises(ValidationError):
        w.turn_model.model_validate({"reasoning": "", "actions": [{"action_name": "Message", "target_nation": "Red"}]})
    assert w.turn_model.model_validate({"reasoning": "", "actions": four[:3]})


def test_mixed_models_and_history_window() -> None:
    w = _world(history_days=1)
    obs = w.observe(StepContext(0, 1.0, make_rng(0, "w"), 0), "nations")
    assert {o.agent_id: o.model for o in obs}["Red"] == "other"
    assert {o.model for o in obs if o.agent_id != "Red"} == {"default"}
    ctx = StepContext(0, 1.0, make_rng(0, "w"), 0)
    ctx.phase = "nations"
    w.apply(ctx, "nations", [_decide(w, "Blue", [("Form an alliance", "White")])])
    w.apply(ctx, "world_model", [Decision(WORLD_MODEL_ID, "Blue and White grew closer.", "", True, "r", 1)])
    ctx.step = 1
    w.apply(ctx, "nations", [_decide(w, "Blue", [("Send surveillance drone", "Red")])])
    text = w.observe(StepContext(2, 3.0, ctx.rng, 0), "nations")[0].messages[1]["content"]
    assert "Send surveillance drone" in text and "Form an alliance" not in text  # only the last day is shown


def test_state_round_trip() -> None:
    w = _world()
    ctx = StepContext(0, 1.0, make_rng(0, "w"), 0)
    ctx.phase = "nations"
    w.apply(ctx, "nations", [_decide(w, "Orange", [("Execute full on invasion", "Purple")], [("World", "hi")])])
    w2 = _world()
    w2.set_state(w.get_state())
    assert np.array_equal(w.state, w2.state) and w.history == w2.history


def test_invalid_decisions_change_nothing() -> None:
    w = _world()
    before = w.state.copy()
    ctx = StepContext(0, 1.0, make_rng(0, "w"), 0)
    ctx.phase = "nations"
    w.apply(ctx, "nations", [Decision("Red", None, "garbage", False, "r", 3, "not JSON")])
    assert np.array_equal(before, w.state) and ctx.events == []
