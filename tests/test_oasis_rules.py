"""OASIS's platform rules (agentsim/scenarios/social/rules.py): a refused action changes no state and is logged as a
`refused` event with its reason; one rule per case, and random action streams that never break them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentsim.core.types import Decision
from agentsim.core.world import StepContext
from agentsim.scenarios.social.actions import action_model
from agentsim.scenarios.social.config import ACTIONS
from agentsim.scenarios.social.rules import REASONS, original
from agentsim.scenarios.social.store import POST, QUOTE, REPOST
from agentsim.spec.loader import load_scenario

from conftest import SCENARIOS, write_scenario

MODEL = action_model(tuple(ACTIONS))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rules")
    f = write_scenario(tmp, SCENARIOS / "social" / "x_information_spread.yaml", **{
        "world.users.count": 6, "world.network.generator": "none", "world.seed_posts.count": 0, "world.interventions": []})
    return load_scenario(f)


def fresh(scenario):
    """A world of users u0..u5 without follows, with one original post p0 by u0."""
    w = scenario.family.create_world(scenario.spec, scenario.world)
    ctx = StepContext(0, w.sim_time(0), np.random.default_rng(0), 0)
    w._add_posts(ctx, [0], [POST], [-1], ["the source post"], ["create_post"], [None])
    return w, ctx.next_event_id


def act(w, step: int, next_id: int, *answers: tuple[str, dict]) -> tuple[StepContext, int]:
    """Apply one step in which each (agent, action fields) answer is given; returns the step's context."""
    ctx = StepContext(step, w.sim_time(step), np.random.default_rng(step), next_id)
    ctx.phase = "users"
    decisions = [Decision(agent, MODEL.model_validate(fields), "", True, f"r{step}-{i}", 1) for i, (agent, fields) in enumerate(answers)]
    w.apply(ctx, "users", decisions)
    return ctx, ctx.next_event_id


def state(w) -> tuple:
    return (len(w.posts), w.posts.likes.tolist(), w.posts.dislikes.tolist(), w.follows.keys.tolist(), w.mutes.keys.tolist(),
            w.likes.keys.tolist(), w.dislikes.keys.tolist(), w.shares.keys.tolist())


# (name, setup answers, each a step; the refused answer; OASIS's reason). p0 is u0's post; p1 is the first new post.
CASES = [
    ("repost twice", [("u1", {"action": "repost", "post_id": 0})], ("u1", {"action": "repost", "post_id": 0}), "repost_again"),
    ("repost of a repost counts against the post it shares",
     [("u1", {"action": "repost", "post_id": 0}), ("u2", {"action": "repost", "post_id": 1})],
     ("u1", {"action": "repost", "post_id": 2}), "repost_again"),
    ("repost after quoting the post", [("u1", {"action": "quote_post", "post_id": 0, "content": "look"})],
     ("u1", {"action": "repost", "post_id": 0}), "repost_again"),
    ("repost by the root's author, twice", [("u0", {"action": "repost", "post_id": 0})], ("u0", {"action": "repost", "post_id": 0}), "repost_again"),
    ("like twice", [("u1", {"action": "like_post", "post_id": 0})], ("u1", {"action": "like_post", "post_id": 0}), "like_again"),
    ("like the original after liking a repost of it",
     [("u2", {"action": "repost", "post_id": 0}), ("u1", {"action": "like_post", "post_id": 1})],
     ("u1", {"action": "like_post", "post_id": 0}), "like_again"),
    ("dislike twice", [("u1", {"action": "dislike_post", "post_id": 0})], ("u1", {"action": "dislike_post", "post_id": 0}), "dislike_again"),
    ("unlike without a like", [], ("u1", {"action": "unlike_post", "post_id": 0}), "unlike_none"),
    ("undo a dislike never given", [], ("u1", {"action": "undo_dislike_post", "post_id": 0}), "undislike_none"),
    ("like a comment twice", [("u2", {"action": "create_comment", "post_id": 0, "content": "hi"}), ("u1", {"action": "like_comment", "post_id": 1})],
     ("u1", {"action": "like_comment", "post_id": 1}), "comment_like_again"),
    ("dislike a comment twice", [("u2", {"action": "create_comment", "post_id": 0, "content": "hi"}), ("u1", {"action": "dislike_comment", "post_id": 1})],
     ("u1", {"action": "dislike_comment", "post_id": 1}), "comment_dislike_again"),
    ("follow twice", [("u1", {"action": "follow", "user_id": "u2"})], ("u1", {"action": "follow", "user_id": "u2"}), "follow_again"),
    ("follow oneself", [], ("u1", {"action": "follow", "user_id": "u1"}), "follow_self"),
    ("unfollow a non-followee", [], ("u1", {"action": "unfollow", "user_id": "u2"}), "unfollow_none"),
    ("mute twice", [("u1", {"action": "mute", "user_id": "u2"})], ("u1", {"action": "mute", "user_id": "u2"}), "mute_again"),
    ("mute oneself", [], ("u1", {"action": "mute", "user_id": "u1"}), "mute_self"),
    ("unmute a user never muted", [], ("u1", {"action": "unmute", "user_id": "u2"}), "unmute_none"),
    ("follow an unknown user", [], ("u1", {"action": "follow", "user_id": "nobody"}), "unknown_user"),
]


@pytest.mark.parametrize(("setup", "answer", "rule"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_rule_refuses_without_changing_state(scenario, setup, answer, rule) -> None:
    w, nxt = fresh(scenario)
    for step, a in enumerate(setup):
        ctx, nxt = act(w, step, nxt, a)
        assert not [e for e in ctx.events if e.action == "refused"], f"setup answer {a} was refused"
    before = state(w)
    ctx, _ = act(w, len(setup), nxt, answer)
    assert state(w) == before  # a refused action changes nothing
    (ev,) = ctx.events
    assert ev.action == "refused" and ev.agent_id == answer[0]
    payload = json.loads(ev.payload)
    assert payload["wanted"] == answer[1]["action"] and payload["reason"] == REASONS[rule]
    assert {m.metric: m.value for m in ctx.metrics}[f"refused/{answer[1]['action']}"] == 1


def test_quotes_are_never_refused_and_a_quote_of_a_quote_counts_against_the_root(scenario) -> None:
    # Platform.quote_post: "Allow quote a post more than once because the quote content may be different".
    w, nxt = fresh(scenario)
    ctx, nxt = act(w, 0, nxt, ("u1", {"action": "quote_post", "post_id": 0, "content": "one"}))
    ctx, nxt = act(w, 1, nxt, ("u1", {"action": "quote_post", "post_id": 0, "content": "two"}))
    ctx, nxt = act(w, 2, nxt, ("u2", {"action": "quote_post", "post_id": 1, "content": "three"}))
    assert not [e for e in ctx.events if e.action == "refused"]
    assert w.posts.kind.tolist() == [POST, QUOTE, QUOTE, QUOTE]
    # u2 quoted a quote of p0: its repost of p0 is refused; its repost of the quote p1 is not (a quote is a post).
    ctx, nxt = act(w, 3, nxt, ("u2", {"action": "repost", "post_id": 0}))
    assert [e.action for e in ctx.events] == ["refused"]
    ctx, nxt = act(w, 4, nxt, ("u2", {"action": "repost", "post_id": 1}))
    assert [e.action for e in ctx.events] == ["repost"]


def test_a_vote_and_a_comment_on_a_repost_go_to_the_post_it_shares(scenario) -> None:
    w, nxt = fresh(scenario)
    ctx, nxt = act(w, 0, nxt, ("u1", {"action": "repost", "post_id": 0}))
    ctx, nxt = act(w, 1, nxt, ("u2", {"action": "like_post", "post_id": 1}), ("u3", {"action": "create_comment", "post_id": 1, "content": "c"}))
    assert w.posts.likes.tolist()[:2] == [1, 0]
    assert int(w.posts.parent[2]) == 0
    like = next(e for e in ctx.events if e.action == "like_post")
    assert like.target == "p0"


def test_two_reposts_of_one_post_in_the_same_step_are_one(scenario) -> None:
    """Answers of a step are applied together: the second of two reposts by one user (a user acting twice, as a
    replayed or merged batch can give) is refused like one in a later step."""
    w, nxt = fresh(scenario)
    ctx, _ = act(w, 0, nxt, ("u1", {"action": "repost", "post_id": 0}), ("u1", {"action": "repost", "post_id": 0}))
    assert [e.action for e in ctx.events] == ["refused", "repost"] or [e.action for e in ctx.events] == ["repost", "refused"]
    assert int((w.posts.kind == REPOST).sum()) == 1


def test_the_feed_says_what_one_has_already_shared(scenario) -> None:
    w, nxt = fresh(scenario)
    act(w, 0, nxt, ("u1", {"action": "repost", "post_id": 0}))
    ctx = StepContext(1, w.sim_time(1), np.random.default_rng(1), 99)
    w.activity[:] = 1.0
    obs = {o.agent_id: o.data for o in w.observe(ctx, "users")}
    p0_in_feed = [o for o in obs.values() if any(it.post_id == 0 for it in o.feed)]
    assert all((0 in o.reposted) == (o.user_id == "u1") for o in p0_in_feed)


# -- random action streams ------------------------------------------------------------------------------------
USERS = [f"u{i}" for i in range(6)]
answer = st.one_of(
    st.tuples(st.sampled_from(USERS), st.sampled_from(["repost", "like_post", "unlike_post", "dislike_post", "undo_dislike_post"]),
              st.integers(0, 40)),
    st.tuples(st.sampled_from(USERS), st.just("quote_post"), st.integers(0, 40)),
    st.tuples(st.sampled_from(USERS), st.sampled_from(["follow", "unfollow", "mute", "unmute"]), st.sampled_from(USERS)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(answer, min_size=1, max_size=6), min_size=1, max_size=12))
def test_random_action_streams_keep_oasis_rules(scenario, steps) -> None:
    w, nxt = fresh(scenario)
    for step, batch in enumerate(steps):
        answers = []
        for user, action, target in batch:
            if action in ("follow", "unfollow", "mute", "unmute"):
                answers.append((user, {"action": action, "user_id": target}))
                continue
            pid = int(target) % len(w.posts)
            if w.posts.kind[pid] == 3:  # a comment: not something these actions take
                continue
            fields = {"action": action, "post_id": pid}
            if action == "quote_post":
                fields["content"] = "q"
            answers.append((user, fields))
        ctx, nxt = act(w, step, nxt, *answers)
        for e in ctx.events:
            if e.action == "refused":
                assert json.loads(e.payload)["reason"] in REASONS.values()
    reposts = np.flatnonzero(w.posts.kind == REPOST)
    keys = list(zip(w.posts.author[reposts].tolist(), original(w.posts, w.posts.parent[reposts]).tolist(), strict=True))
    assert len(keys) == len(set(keys)), "a user holds two reposts of one post"
    # Counters agree with the records, and nobody follows or mutes themself.
    likes = Counter((int(k) & 0xFFFFFFFF) for k in w.likes.keys.tolist())
    dislikes = Counter((int(k) & 0xFFFFFFFF) for k in w.dislikes.keys.tolist())
    assert w.posts.likes.tolist() == [likes.get(p, 0) for p in range(len(w.posts))]
    assert w.posts.dislikes.tolist() == [dislikes.get(p, 0) for p in range(len(w.posts))]
    assert not any((int(k) >> 32) == (int(k) & 0xFFFFFFFF) for k in w.follows.keys.tolist() + w.mutes.keys.tolist())
    # No vote ever sits on a repost (it goes to the post the repost shares).
    assert not (w.posts.kind[w.posts.likes > 0] == REPOST).any()


def test_a_scripted_run_has_no_user_reposting_a_post_twice(tmp_path: Path) -> None:
    """The 111-user case of the issue: a whole scripted run, read back from its log."""
    from agentsim.logs.reader import RunLog

    from test_runs import run_ok

    f = write_scenario(tmp_path, SCENARIOS / "social" / "x_information_spread.yaml", steps=8,
                       **{"world.users.count": 111, "world.time.activity": {"probability": 0.6}})
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "run"), "--quiet")
    ev = RunLog(tmp_path / "run").events
    shares = ev[ev["action"] == "repost"]
    assert len(shares)
    by_id = ev.set_index("event_id")
    parents = shares["parent_event_id"].astype(int)
    # A repost of a repost counts against what that repost shares: walk parent links while they are reposts.
    targets = []
    for pe in parents:
        while by_id.loc[pe, "action"] == "repost":
            pe = int(by_id.loc[pe, "parent_event_id"])
        targets.append(pe)
    pairs = list(zip(shares["agent_id"], targets, strict=True))
    assert len(pairs) == len(set(pairs))
