"""Classical information-spread baselines under the scripted backend, configured per group: independent cascade
and linear threshold (world.users.groups[].scripted), against known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agentsim.core.world import StepContext
from agentsim.logs.reader import RunLog
from agentsim.scenarios.social.actions import action_model, fields
from agentsim.scenarios.social.config import DEFAULT_ACTIONS, ScriptedSpec
from agentsim.scenarios.social.scripted import independent_cascade, linear_threshold, user_threshold
from agentsim.scenarios.social.store import POST, REPOST
from agentsim.scenarios.social.world import FeedItem, UserView
from agentsim.spec.errors import SpecError
from agentsim.spec.loader import load_scenario

from conftest import SCENARIOS, write_scenario
from test_runs import run_ok

X = SCENARIOS / "social" / "x_information_spread.yaml"
MODEL = action_model(DEFAULT_ACTIONS["x"])


def view(n_items: int, reposted: frozenset[int] = frozenset(), exposures: tuple[int, ...] = (), n_following: int = 0,
         scripted: ScriptedSpec | None = None, user: str = "u1") -> UserView:
    feed = tuple(FeedItem(p, "u0", "post", f"post {p}", 0, 0, ()) for p in range(n_items))
    return UserView(user, "g", 0.0, ("news",), DEFAULT_ACTIONS["x"], feed, frozenset(), "t", 280, None, MODEL, "", 0.0,
                    reposted, scripted, exposures, n_following)


@pytest.mark.parametrize(("p", "k"), [(0.1, 1), (0.1, 5), (0.3, 3), (0.0, 4), (1.0, 2)])
def test_independent_cascade_reposts_with_one_minus_one_minus_p_to_the_k(p: float, k: int) -> None:
    """k exposures, each firing with probability p: P(repost) = 1 - (1 - p)^k."""
    n = 4000
    reposts = sum(fields(independent_cascade(view(k), np.random.default_rng(i), p)).action == "repost" for i in range(n))
    expected = 1 - (1 - p) ** k
    sd = max(np.sqrt(expected * (1 - expected) / n), 1e-9)
    assert abs(reposts / n - expected) <= 4 * sd + 1e-12, (reposts / n, expected)


def test_independent_cascade_never_reposts_what_was_already_shared() -> None:
    for i in range(200):
        a = fields(independent_cascade(view(3, reposted=frozenset({0, 1, 2})), np.random.default_rng(i), 1.0))
        assert a.action == "do_nothing"


@pytest.mark.parametrize(("threshold", "exposures", "following", "adopts"), [
    (0.5, (2,), 4, True),   # 2 of 4 followees joined: 0.5 >= 0.5
    (0.6, (2,), 4, False),
    (0.25, (0, 1), 4, True),  # the best item (1 of 4) reaches 0.25
    (0.0, (0,), 4, False),  # nobody it follows joined: no influence, no adoption
    (0.5, (3,), 0, False),  # follows nobody
])
def test_linear_threshold_by_hand(threshold: float, exposures: tuple[int, ...], following: int, adopts: bool) -> None:
    v = view(len(exposures), exposures=exposures, n_following=following, scripted=ScriptedSpec(policy="linear_threshold", threshold=threshold))
    a = fields(linear_threshold(v, np.random.default_rng(0), v.scripted))
    assert (a.action == "repost") == adopts
    if adopts:
        assert a.post_id == int(np.argmax(exposures))


def test_uniform_thresholds_are_fixed_by_the_user_and_spread_over_0_1() -> None:
    spec = ScriptedSpec(policy="linear_threshold")
    th = [user_threshold(f"user{i}", spec) for i in range(2000)]
    assert th == [user_threshold(f"user{i}", spec) for i in range(2000)]
    assert 0.45 < np.mean(th) < 0.55 and min(th) >= 0 and max(th) < 1


def test_the_world_counts_followees_who_joined_each_cascade(tmp_path: Path) -> None:
    follows = tmp_path / "follows.csv"
    follows.write_text("follower,followee\nu5,u0\nu5,u1\nu5,u2\nu5,u3\n")
    f = write_scenario(tmp_path, X, **{"world.users.count": 6, "world.network": {"follows_file": str(follows)},
                                       "world.seed_posts.count": 0, "world.interventions": [],
                                       "world.users.groups": [{"name": "lt", "scripted": {"policy": "linear_threshold", "threshold": 0.5}}],
                                       "world.recommender.sources": [{"kind": "random", "slots": 10}]})
    sc = load_scenario(f)
    w = sc.family.create_world(sc.spec, sc.world)
    ctx = StepContext(0, w.sim_time(0), np.random.default_rng(0), 0)
    w._add_posts(ctx, [4], [POST], [-1], ["the source"], ["create_post"], [None])  # u4, not followed by u5
    w._add_posts(ctx, [0, 1], [REPOST, REPOST], [0, 0], ["the source"] * 2, ["repost"] * 2, [None] * 2)
    w.activity[:] = 1.0
    obs = {o.agent_id: o.data for o in w.observe(StepContext(1, w.sim_time(1), np.random.default_rng(1), 9), "users")}
    v = obs["u5"]
    assert v.n_following == 4 and v.feed and set(v.exposures) == {2}  # u0 and u1 of its 4 followees joined
    assert fields(linear_threshold(v, np.random.default_rng(0), v.scripted)).action == "repost"


def test_groups_run_different_baselines_side_by_side(tmp_path: Path) -> None:
    f = write_scenario(tmp_path, X, steps=4, **{
        "world.users.count": 60, "world.time.activity": {"probability": 1.0}, "world.seed_posts.count": 10,
        "world.users.groups": [{"name": "cascade", "share": 1, "scripted": {"policy": "independent_cascade", "p": 0.2}},
                               {"name": "threshold", "share": 1, "scripted": {"policy": "linear_threshold", "threshold": 0.2}},
                               {"name": "stance", "share": 1, "stance": 0.5}]})
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "run"), "--quiet")
    log = RunLog(tmp_path / "run")
    group = log.agents.set_index("agent_id")["group"]
    ev = log.events[log.events["request_id"].notna()]  # the users' own answers (seed posts are the platform's)
    acts = ev.assign(group=ev["agent_id"].map(group))
    for g in ("cascade", "threshold"):
        assert set(acts.loc[acts["group"] == g, "action"]) <= {"repost", "do_nothing"}, g
    assert set(acts.loc[acts["group"] == "stance", "action"]) - {"repost", "do_nothing"}  # likes, posts, comments
    assert (acts.loc[acts["group"] == "cascade", "action"] == "repost").any()


@pytest.mark.parametrize(("scripted", "message"), [
    ({"policy": "independent_cascade", "p": 1.5}, "world.users.groups.0.scripted.p"),
    ({"policy": "linear_threshold", "threshold": 2}, "a threshold is a share of followees, 0..1"),
    ({"policy": "voter_model"}, "'voter_model' is not allowed"),
])
def test_bad_baseline_settings_are_named(tmp_path: Path, scripted: dict, message: str) -> None:
    f = write_scenario(tmp_path, X, **{"world.users.groups": [{"name": "g", "scripted": scripted}]})
    with pytest.raises(SpecError) as e:
        load_scenario(f)
    assert message in str(e.value)
