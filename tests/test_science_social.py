"""The social platform and its analyses against independent computations: a plain-Python platform (sets and
lists) replaying random actions step by step, feeds assembled by hand from reference recommenders, exposure
intervals from a step-by-step reference, the power-law xmin by a brute-force KS scan, cascades by hand (OASIS's
definitions: a cascade is a post and every repost or quote that descends from it). Fast: the mutation run
executes these many times."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentsim.analysis.cascades import (
    CascadeError,
    cascade_growth,
    cascade_metrics,
    cascade_nodes,
    compare_growth,
    fit_power_law,
    nrmse,
)
from agentsim.analysis.social import (
    activity_table,
    adoption_table,
    cascade_table,
    exposure_intervals,
    follow_graph,
    herd_from_events,
    herd_trajectory,
    plot_herd_trajectory,
    plot_stance_distributions,
    polarization_curve,
    polarization_table,
    post_stances,
    power_law_table,
    role_features,
    roles_table,
    saturation_test,
    social_tables,
    time_dependent_concordance,
)
from agentsim.analysis.tables import TableError, notes_of
from agentsim.core.types import Decision
from agentsim.core.world import StepContext
from agentsim.logs.reader import RunLog
from agentsim.scenarios.social import recommend, rules
from agentsim.scenarios.social.actions import action_model
from agentsim.scenarios.social.store import COMMENT, POST, QUOTE, REPOST, Column, EdgeSet, Posts, pair_keys
from agentsim.spec.loader import load_scenario

from conftest import SCENARIOS, write_run_log, write_scenario

ALL_ACTIONS = ("create_post", "repost", "quote_post", "create_comment", "like_post", "unlike_post", "dislike_post",
               "undo_dislike_post", "like_comment", "dislike_comment", "follow", "unfollow", "mute", "unmute",
               "search_posts", "search_user", "trend", "refresh", "do_nothing")
ANSWER = action_model(ALL_ACTIONS)


def _world(tmp_path: Path, users: int = 6, **changes):
    base = {"world.users.count": users, "world.network.generator": "none", "world.seed_posts.count": 0,
            "world.interventions": [], "world.actions": list(ALL_ACTIONS), "world.max_post_chars": 40}
    sc = load_scenario(write_scenario(tmp_path, SCENARIOS / "social" / "x_information_spread.yaml", **{**base, **changes}))
    return sc.family.create_world(sc.spec, sc.world)


def _ctx(w, step: int, seed: int = 0, next_id: int = 0) -> StepContext:
    ctx = StepContext(step, w.sim_time(step), np.random.default_rng(seed), next_id)
    ctx.phase = "users"
    return ctx


# -- the platform against a plain-Python one -------------------------------------------------------------------------
# OASIS's refusal texts (camel-ai/oasis, oasis/social_platform/platform.py, class Platform), written out again here
# so that a changed text in rules.REASONS is noticed.
OASIS_REASONS = {
    "repost": "Repost record already exists.",
    "like_post": "Like record already exists.", "dislike_post": "Dislike record already exists.",
    "like_comment": "Comment like record already exists.", "dislike_comment": "Comment dislike record already exists.",
    "unlike_post": "Like record does not exist.", "undo_dislike_post": "Dislike record does not exist.",
    "follow": "Follow record already exists.", "unfollow": "Follow record does not exist.",
    "mute": "Mute record already exists.", "unmute": "No mute record exists.",
}


class RefPlatform:
    """OASIS's platform rules with Python sets: a step's actions see the step's earlier ones; posts appear at the
    step's end, in the order asked. A vote, comment or repost on a repost is about the post the repost shares
    (climbing repost chains); one repost per (user, post), and a quote counts against a later repost of the root it
    quotes; no second like/dislike/follow/mute, no undo of nothing, no self-follow or self-mute, no unknown user.
    A refused action changes nothing and is a `refused` event with the wanted action and the reason."""

    def __init__(self, ids: list[str], posts: list[dict]):
        self.ids = ids
        self.follows: set[tuple[int, int]] = set()
        self.mutes: set[tuple[int, int]] = set()
        self.likes: set[tuple[int, int]] = set()
        self.dislikes: set[tuple[int, int]] = set()
        self.shares: set[tuple[int, int]] = set()
        self.posts = [dict(p) for p in posts]

    def original(self, pid: int) -> int:
        while self.posts[pid]["kind"] == REPOST:
            pid = self.posts[pid]["parent"]
        return pid

    def step(self, decisions: list[tuple[str, dict]], cap: int) -> tuple[list[tuple], dict[str, int]]:
        events, new, counts = [], [], {}
        for agent, a in decisions:
            if agent not in self.ids:
                continue
            u = self.ids.index(agent)
            act = a["action"]
            reason, target, about = None, None, {}
            if act in ("create_post", "repost", "quote_post", "create_comment"):
                pid = a.get("post_id", -1)
                kind = {"create_post": POST, "repost": REPOST, "quote_post": QUOTE, "create_comment": COMMENT}[act]
                if act in ("repost", "quote_post"):
                    against = self.original(pid) if act == "repost" else self.posts[pid]["root"]
                    if act == "repost" and (u, against) in self.shares:
                        reason, target, about = OASIS_REASONS["repost"], f"p{pid}", {"post_id": pid}
                    self.shares.add((u, against))
                if act == "create_comment":
                    pid = self.original(pid)
                if reason is None:
                    root = self.posts[pid]["root"] if pid >= 0 else None
                    text = self.posts[root]["text"] if act == "repost" else a["content"].strip()[:cap]
                    new.append({"author": u, "kind": kind, "parent": pid, "root": root, "text": text, "action": act})
            elif act in ("like_post", "like_comment", "unlike_post", "dislike_post", "dislike_comment", "undo_dislike_post"):
                pid = self.original(a["post_id"])
                edges, col = (self.likes, "likes") if act in ("like_post", "like_comment", "unlike_post") else (self.dislikes, "dislikes")
                undo = act in ("unlike_post", "undo_dislike_post")
                if undo and (u, pid) in edges:
                    edges.discard((u, pid))
                    self.posts[pid][col] -= 1
                elif not undo and (u, pid) not in edges:
                    edges.add((u, pid))
                    self.posts[pid][col] += 1
                else:
                    reason, target, about = OASIS_REASONS[act], f"p{pid}", {"post_id": pid}
                if reason is None:
                    events.append((agent, act, f"p{pid}", {"post_id": pid}, self.posts[pid]["event_id"]))
            elif act in ("follow", "unfollow", "mute", "unmute"):
                uid = a["user_id"]
                target, about = uid, {"user_id": uid}
                if uid not in self.ids:
                    reason = "unknown user"
                elif uid == agent and act in ("follow", "mute"):
                    reason = f"cannot {act} yourself"
                else:
                    v = self.ids.index(uid)
                    edges = self.follows if act in ("follow", "unfollow") else self.mutes
                    undo = act.startswith("un")
                    if undo and (u, v) in edges:
                        edges.discard((u, v))
                    elif not undo and (u, v) not in edges:
                        edges.add((u, v))
                    else:
                        reason = OASIS_REASONS[act]
                    if reason is None:
                        events.append((agent, act, uid, None, None))
            elif act in ("search_posts", "search_user"):
                pass  # their events come after the step's posts
            else:
                events.append((agent, act, None, None, None))
            if reason is not None:
                events.append((agent, "refused", target, {"wanted": act, "reason": reason, **about}, None))
                counts[f"refused/{act}"] = counts.get(f"refused/{act}", 0) + 1
                act = "refused"
            counts[act] = counts.get(act, 0) + 1
        for p in new:
            pid = len(self.posts)
            payload = {"post_id": pid, "kind": ["post", "repost", "quote", "comment"][p["kind"]]}
            if p["kind"] != REPOST:
                payload["content"] = p["text"]
            parent_eid = self.posts[p["parent"]]["event_id"] if p["parent"] >= 0 else None
            if p["parent"] >= 0:
                payload["root"] = p["root"]
            events.append((self.ids[p["author"]], p["action"], f"p{p['parent']}" if p["parent"] >= 0 else None, payload, parent_eid))
            self.posts.append({"author": p["author"], "kind": p["kind"], "parent": p["parent"],
                               "root": p["root"] if p["root"] is not None else pid, "text": p["text"], "likes": 0,
                               "dislikes": 0, "event_id": None})
        return events, counts


def _edges(es: EdgeSet) -> set[tuple[int, int]]:
    return {(int(k >> 32), int(k & 0xFFFFFFFF)) for k in es.keys.tolist()}


@st.composite
def steps_of_actions(draw, n_users: int):
    out = []
    n_posts = 3
    for _ in range(draw(st.integers(1, 3))):
        decisions = []
        for _ in range(draw(st.integers(0, 10))):
            agent = draw(st.integers(0, n_users))  # n_users: an agent that is no user
            act = draw(st.sampled_from(ALL_ACTIONS))
            a: dict = {"action": act}
            if act in ("repost", "quote_post", "create_comment", "like_post", "unlike_post", "dislike_post",
                       "undo_dislike_post", "like_comment", "dislike_comment"):
                a["post_id"] = draw(st.integers(0, n_posts - 1))
            if act in ("follow", "unfollow", "mute", "unmute"):
                a["user_id"] = draw(st.integers(0, n_users))  # n_users: a name nobody has
            if act in ("create_post", "quote_post", "create_comment"):
                a["content"] = draw(st.sampled_from(["  hello ", "x" * 50, "bikes!"]))
            if act in ("search_posts", "search_user"):
                a["query"] = "bikes"
            decisions.append((agent, a))
        n_posts += sum(1 for agent, a in decisions if agent < n_users and a["action"] in ("create_post", "repost", "quote_post", "create_comment"))
        out.append(decisions)
    return out


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    return _world(tmp_path_factory.mktemp("platform"))


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_the_platform_agrees_with_a_plain_python_one(platform, data) -> None:
    import copy

    w = copy.deepcopy(platform)
    ids = list(w.pop.ids)
    ctx0 = _ctx(w, 0)
    w._add_posts(ctx0, [0, 1, 2], [POST] * 3, [-1] * 3, ["bikes now", "cars now", "trams now"], ["create_post"] * 3, [None] * 3)
    ref = RefPlatform(ids, [{"author": i, "kind": POST, "parent": -1, "root": i, "text": t, "likes": 0, "dislikes": 0,
                             "event_id": i} for i, t in enumerate(["bikes now", "cars now", "trams now"])])
    next_id = 3
    for step, decisions in enumerate(data.draw(steps_of_actions(len(ids))), start=1):
        named = []
        for agent, a in decisions:
            a = dict(a)
            if "post_id" in a:  # a refused repost made fewer posts than the strategy counted
                a["post_id"] %= len(ref.posts)
            if "user_id" in a:
                a["user_id"] = ids[a["user_id"]] if a["user_id"] < len(ids) else "nobody"
            named.append(("ghost" if agent == len(ids) else ids[agent], a))
        ctx = _ctx(w, step, next_id=next_id)
        ds = [Decision(agent, ANSWER.model_validate(a), "", True, f"r{i}", 1) for i, (agent, a) in enumerate(named)]
        ds.append(Decision(ids[0], None, "junk", False, "bad", 2, "not JSON"))  # an invalid answer changes nothing
        w._apply_users(ctx, ds)
        events, counts = ref.step(named, cap=40)
        got = [(e.agent_id, e.action, e.target, json.loads(e.payload) if e.payload else None, e.parent_event_id)
               for e in ctx.events if e.action not in ("search_posts", "search_user")]
        want = [(a, act, t, p, pe) for a, act, t, p, pe in events]
        # event ids of the posts created this step are known only now
        for e, r in zip(got, want, strict=True):
            assert e[:4] == r[:4]
            if r[4] is not None:
                assert e[4] == r[4]
        assert len(got) == len(want)
        created = [e for e in ctx.events if e.action in ("create_post", "repost", "quote_post", "create_comment")]
        for e in created:
            ref.posts[json.loads(e.payload)["post_id"]]["event_id"] = e.event_id
        searches = [e for e in ctx.events if e.action in ("search_posts", "search_user")]
        assert [(e.agent_id, e.action) for e in searches] == [(a, x["action"]) for a, x in named
                                                                if a in ids and x["action"] in ("search_posts", "search_user")]
        assert _edges(w.follows) == ref.follows and _edges(w.mutes) == ref.mutes
        assert _edges(w.likes) == ref.likes and _edges(w.dislikes) == ref.dislikes
        assert len(w.posts) == len(ref.posts)
        for i, p in enumerate(ref.posts):
            assert (int(w.posts.author[i]), int(w.posts.kind[i]), int(w.posts.parent[i]), int(w.posts.root[i]), w.posts.text[i],
                    int(w.posts.likes[i]), int(w.posts.dislikes[i])) == (
                p["author"], p["kind"], p["parent"], p["root"], p["text"], p["likes"], p["dislikes"]), i
        m = {x.metric: x.value for x in ctx.metrics}
        assert {k.removeprefix("actions/"): v for k, v in m.items() if k.startswith(("actions/", "refused/"))} == counts
        assert m["posts_total"] == len(ref.posts) and m["follows_total"] == len(ref.follows)
        latest = {}
        for i, p in enumerate(ref.posts):
            latest[p["author"]] = i
        assert {u: int(x) for u, x in enumerate(w.latest_post.tolist()) if x >= 0} == latest
        next_id = ctx.next_event_id


def test_new_posts_by_hand(tmp_path: Path) -> None:
    w = _world(tmp_path)
    ids = w.pop.ids
    ctx = _ctx(w, 2)
    w._add_posts(ctx, [0], [POST], [-1], ["root text"], ["create_post"], ["r0"])
    ds = [Decision(ids[1], ANSWER.model_validate({"action": "repost", "post_id": 0}), "", True, "r1", 1),
          Decision(ids[2], ANSWER.model_validate({"action": "quote_post", "post_id": 0, "content": "  mine  "}), "", True, "r2", 1)]
    w._apply_users(ctx, ds)
    ds = [Decision(ids[3], ANSWER.model_validate({"action": "repost", "post_id": 1}), "", True, "r3", 1),
          Decision(ids[4], ANSWER.model_validate({"action": "create_comment", "post_id": 2, "content": "c"}), "", True, "r4", 1)]
    w._apply_users(ctx, ds)
    p = w.posts
    assert p.kind.tolist() == [POST, REPOST, QUOTE, REPOST, COMMENT]
    assert p.parent.tolist() == [-1, 0, 0, 1, 2] and p.root.tolist() == [0, 0, 0, 0, 0]
    assert p.text == ["root text", "root text", "mine", "root text", "c"]
    assert p.step.tolist() == [2] * 5 and p.time.tolist() == [w.sim_time(2)] * 5
    ev = [(e.agent_id, e.action, e.target, json.loads(e.payload), e.parent_event_id, e.request_id) for e in ctx.events]
    assert ev == [
        (ids[0], "create_post", None, {"post_id": 0, "kind": "post", "content": "root text"}, None, "r0"),
        (ids[1], "repost", "p0", {"post_id": 1, "kind": "repost", "root": 0}, 0, "r1"),
        (ids[2], "quote_post", "p0", {"post_id": 2, "kind": "quote", "content": "mine", "root": 0}, 0, "r2"),
        (ids[3], "repost", "p1", {"post_id": 3, "kind": "repost", "root": 0}, 1, "r3"),
        (ids[4], "create_comment", "p2", {"post_id": 4, "kind": "comment", "content": "c", "root": 0}, 2, "r4"),
    ]
    assert p.event_id.tolist() == [0, 1, 2, 3, 4]
    assert w.latest_post[:5].tolist() == [0, 1, 2, 3, 4]


# -- stores --------------------------------------------------------------------------------------------------------
def test_edge_set_by_hand() -> None:
    es = EdgeSet.from_pairs(np.array([2, 0, 1, 1, 3]), np.array([1, 1, 1, 0, 0]))  # (1, 1) is a self-loop: dropped
    assert _edges(es) == {(2, 1), (0, 1), (1, 0), (3, 0)} and len(es) == 4
    assert es.contains(np.array([2, 1, 1, 9]), np.array([1, 1, 0, 9])).tolist() == [True, False, True, False]
    assert es.neighbours(1).tolist() == [0] and es.neighbours(5).tolist() == []
    rows, nb = es.gather(np.array([3, 0, 2]))
    assert rows.tolist() == [0, 1, 2] and nb.tolist() == [0, 1, 1]
    assert es.out_degree(5).tolist() == [1, 1, 1, 1, 0] and es.in_degree(5).tolist() == [2, 2, 0, 0, 0]
    es.add(pair_keys(np.array([0, 0, 4]), np.array([1, 2, 4])))
    assert _edges(es) == {(2, 1), (0, 1), (1, 0), (3, 0), (0, 2), (4, 4)}
    es.remove(pair_keys(np.array([0, 7]), np.array([1, 7])))
    assert _edges(es) == {(2, 1), (1, 0), (3, 0), (0, 2), (4, 4)}
    empty = EdgeSet()
    assert len(empty) == 0 and not empty.contains(1, 2) and empty.contains(np.array([1, 2]), np.array([2, 1])).tolist() == [False, False]
    empty.remove(pair_keys(1, 2)[None])
    empty.add(np.zeros(0, np.int64))
    assert len(empty) == 0
    big = pair_keys(2**31 - 2, 2**32 - 1)  # near the largest pair a key holds
    es.add(np.array([big]))
    assert es.contains(2**31 - 2, 2**32 - 1) and (2**31 - 2, 2**32 - 1) in _edges(es) and es.neighbours(2**31 - 2).tolist() == [2**32 - 1]


def test_columns_and_posts_grow_and_round_trip() -> None:
    c = Column(np.int64)
    for i in range(5):
        c.extend(np.arange(i * 300, (i + 1) * 300))
    assert c.n == 1500 and c.a.tolist() == list(range(1500))
    wide = Column(np.float32, width=3)
    wide.extend(np.ones((2, 3)))
    assert wide.a.shape == (2, 3)
    posts = Posts(dim=2)
    first = posts.add(np.array([5, 6]), np.array([POST, POST]), np.array([-1, -1]), 3, 10.0, np.array([7, 8]), ["a", "b"],
                      np.array([[1, 0], [0, 1]], np.float32))
    second = posts.add(np.array([7]), np.array([REPOST]), np.array([1]), 4, 20.0, np.array([9]), ["b"], np.zeros((1, 2), np.float32))
    assert first.tolist() == [0, 1] and second.tolist() == [2] and len(posts) == 3
    assert posts.root.tolist() == [0, 1, 1] and posts.step.tolist() == [3, 3, 4] and posts.time.tolist() == [10.0, 10.0, 20.0]
    posts.vote(1, "likes", 2)
    posts.vote(1, "dislikes", 1)
    posts.vote(1, "likes", -1)
    assert posts.likes.tolist() == [0, 1, 0] and posts.dislikes.tolist() == [0, 1, 0]
    state = posts.get_state()
    again = Posts(dim=2)
    again.set_state(state)
    for k in Posts.COLUMNS:
        assert getattr(again, k).tolist() == getattr(posts, k).tolist(), k
    assert again.emb.a.tolist() == posts.emb.a.tolist() and again.text == ["a", "b", "b"]
    with pytest.raises(AttributeError):
        _ = posts.nothing


# -- recommenders against references ---------------------------------------------------------------------------------
REDDIT_EPOCH, HOT_SECONDS = 1134028003, 45000


def _posts(rows: list[tuple[int, float, int, int]], dim: int = 4, seed: int = 0) -> Posts:
    """(author, time, likes, dislikes) per post, random unit embeddings."""
    rng = np.random.default_rng(seed)
    p = Posts(dim)
    for a, t, lk, dk in rows:
        e = rng.normal(size=(1, dim)).astype(np.float32)
        i = p.add(np.array([a]), np.array([POST]), np.array([-1]), 0, t, np.array([0]), ["x"], e / np.linalg.norm(e))[0]
        p.vote(int(i), "likes", lk)
        p.vote(int(i), "dislikes", dk)
    return p


post_rows = st.lists(st.tuples(st.integers(0, 4), st.floats(1.7e9, 1.7e9 + 86400), st.integers(0, 20), st.integers(0, 20)),
                     min_size=1, max_size=12)


@settings(max_examples=40, deadline=None)
@given(rows=post_rows, width=st.integers(1, 6))
def test_hot_ranks_by_the_reddit_formula(rows, width: int) -> None:
    posts = _posts(rows)
    pool = np.arange(len(rows))
    def score(i: int) -> float:
        s = rows[i][2] - rows[i][3]
        return (1 if s > 0 else -1 if s < 0 else 0) * math.log10(max(abs(s), 1)) + (rows[i][1] - REDDIT_EPOCH) / HOT_SECONDS
    want = sorted(pool.tolist(), key=lambda i: (-score(i), i))[:width]
    got = recommend.hot(np.array([0, 3]), pool, posts, width)
    assert got.shape == (2, width)
    assert got[0].tolist() == want + [-1] * (width - len(want)) and got[1].tolist() == got[0].tolist()
    assert recommend.hot_score(np.array([rows[0][2]]), np.array([rows[0][3]]), np.array([rows[0][1]]))[0] == pytest.approx(score(0))


@settings(max_examples=40, deadline=None)
@given(rows=post_rows, follows=st.sets(st.tuples(st.integers(0, 4), st.integers(0, 4))), width=st.integers(1, 6))
def test_follow_feed_is_the_followees_posts_by_likes_then_newest(rows, follows, width: int) -> None:
    posts = _posts(rows)
    es = EdgeSet()
    es.add(np.array([int(pair_keys(a, b)) for a, b in follows], np.int64))
    pool = np.arange(len(rows))[1:]  # post 0 is outside the window
    users = np.array([0, 1, 2, 3, 4])
    got = recommend.follow(users, pool, posts, es, width)
    for r, u in enumerate(users.tolist()):
        mine = [i for i in pool.tolist() if (u, rows[i][0]) in follows]
        want = sorted(mine, key=lambda i: (-rows[i][2], -rows[i][1], -i))[:width]
        assert got[r].tolist() == want + [-1] * (width - len(want)), (u, mine)


@settings(max_examples=40, deadline=None)
@given(rows=post_rows, width=st.integers(1, 6), half_life=st.sampled_from([600.0, 3600.0, 86400.0]))
def test_interest_feed_is_similarity_times_recency(rows, width: int, half_life: float) -> None:
    posts = _posts(rows)
    now = 1.7e9 + 86400
    pool = np.arange(len(rows))
    vec = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    got = recommend.interest(np.arange(3), vec, pool, posts, now, half_life, 100, width, np.random.default_rng(0))
    emb = posts.emb.a
    for r in range(3):
        score = {i: float(vec[r] @ emb[i]) * 2.0 ** (-(now - rows[i][1]) / half_life) for i in pool.tolist()}
        want = sorted(score, key=lambda i: -score[i])[:width]
        assert got[r].tolist()[: len(want)] == want and got[r].tolist()[len(want):] == [-1] * (width - len(want))
    # the same post, one old and one new: the newer ranks first
    two = Posts(2)
    e = np.array([[1.0, 0.0]], np.float32)
    for t in (now - 7200, now):
        two.add(np.array([0]), np.array([POST]), np.array([-1]), 0, t, np.array([0]), ["x"], e)
    assert recommend.interest(np.array([0]), e, np.arange(2), two, now, 3600.0, 100, 2, np.random.default_rng(0))[0].tolist() == [1, 0]


def test_interest_samples_candidates_and_random_feed_draws_from_the_pool() -> None:
    posts = _posts([(0, 1.7e9, 0, 0)] * 30)
    pool = np.arange(5, 30)
    vec = np.ones((2, 4), np.float32)
    got = recommend.interest(np.arange(2), vec, pool, posts, 1.7e9, 3600.0, 10, 4, np.random.default_rng(3))
    cand = np.sort(np.random.default_rng(3).choice(pool, size=10, replace=False))
    assert set(got.ravel().tolist()) <= set(cand.tolist())
    r = recommend.random_feed(np.arange(3), pool, 4, np.random.default_rng(9))
    assert r.tolist() == pool[np.random.default_rng(9).integers(0, pool.size, size=(3, 4))].tolist()
    none = np.zeros(0, np.int64)
    for m in (recommend.hot(np.arange(2), none, posts, 3), recommend.random_feed(np.arange(2), none, 3, np.random.default_rng(0)),
              recommend.follow(np.arange(2), none, posts, EdgeSet.from_pairs(np.array([0]), np.array([1])), 3),
              recommend.interest(np.arange(2), vec, none, posts, 0.0, 1.0, 10, 3, np.random.default_rng(0))):
        assert m.tolist() == [[-1, -1, -1], [-1, -1, -1]]


def test_feeds_are_assembled_in_source_order_without_own_muted_or_repeated_posts(tmp_path: Path) -> None:
    w = _world(tmp_path, **{"world.recommender.sources": [{"kind": "follow", "slots": 2}, {"kind": "hot", "slots": 3}],
                           "world.recommender.window_minutes": 60})
    ctx = _ctx(w, 1)
    now = ctx.sim_time
    # posts by authors 0..4; one too old for the window, one comment (never a candidate)
    specs = [(1, now - 7200, 50), (1, now, 5), (2, now, 9), (3, now, 1), (4, now, 30), (0, now, 40), (2, now, 2)]
    for a, t, likes in specs:
        i = w._add_posts(ctx, [a], [POST], [-1], [f"post by {a}"], ["create_post"], [None], time=t)[0]
        w.posts.vote(int(i), "likes", likes)
    c = w._add_posts(ctx, [3], [COMMENT], [2], ["a comment"], ["create_comment"], [None], time=now)[0]
    w.posts.vote(int(c), "likes", 100)
    w.follows.add(pair_keys(np.array([0, 0, 0]), np.array([1, 2, 4])))
    w.mutes.add(pair_keys(np.array([0]), np.array([3])))
    assert w._pool(now).tolist() == [1, 2, 3, 4, 5, 6]
    [feed] = w.feeds(np.array([0]), ctx)
    # follow (likes order): 4 (30), 2 (9), 1 (5) -> two slots: 4, 2; hot (likes): 5 is own, 4 and 2 taken, 1, 3 muted, 6
    assert feed == [4, 2, 1, 6]
    [other] = w.feeds(np.array([5]), ctx)
    assert other == [5, 4, 2]  # follows nobody; hot only


def test_observations_name_what_a_user_may_act_on(tmp_path: Path) -> None:
    w = _world(tmp_path, **{"world.time.activity": {"probability": 1.0}, "world.recommender.comments_per_post": 1,
                           "world.recommender.sources": [{"kind": "hot", "slots": 5}]})
    ids = w.pop.ids
    ctx = _ctx(w, 0)
    w._add_posts(ctx, [1], [POST], [-1], ["original"], ["create_post"], [None])
    w._add_posts(ctx, [2, 3], [REPOST, QUOTE], [0, 0], ["original", "my take"], ["repost", "quote_post"], [None, None])
    w._add_posts(ctx, [4, 5], [COMMENT, COMMENT], [0, 0], ["first", "second"], ["create_comment"] * 2, [None, None])
    w.follows.add(pair_keys(np.array([0]), np.array([5])))
    w.mutes.add(pair_keys(np.array([0]), np.array([4])))
    w.info[0] = ("Results of your search", (ids[3],))
    obs = {o.agent_id: o for o in w._observe_users(_ctx(w, 0))}
    assert set(obs) == set(ids)
    o = obs[ids[0]]
    v = o.data
    assert [it.post_id for it in v.feed] == [0, 1, 2]
    assert v.feed[0].comments == ((4, ids[5], "second"),)  # the newest comment only
    assert v.feed[1].text == f"(repost of @{ids[1]}) original" and v.feed[1].kind == "repost"
    assert v.feed[2].text == 'my take (quoting: "original")'
    assert o.validation_context == {"posts": {0, 1, 2}, "comments": {4},
                                    "users": {ids[1], ids[2], ids[3], ids[5], ids[4]}}
    assert v.following == frozenset({ids[5]}) and v.info == "Results of your search" and 0 not in w.info
    assert v.allowed == ALL_ACTIONS and v.max_chars == 40 and v.user_id == ids[0]
    assert o.model == w.aliases[int(w.alias[0])]
    metrics = _ctx(w, 0)
    w._observe_users(metrics)
    assert [(m.metric, m.value) for m in metrics.metrics] == [("active_users", len(ids))]


# -- exposure intervals against a step-by-step reference ------------------------------------------------------------
def ref_exposure(adoptions: list[tuple[str, str, int]], edges: list[tuple[str, str]], end_step: int) -> list[list[tuple]]:
    """Per (cascade, user) with an adopting followee: walk the steps from the first exposure; exposure at t counts
    the followees who adopted before t; the user's adoption at A ends the spell with an event in [A, A + 1); users
    who never adopt are censored at end_step + 1; spells of constant exposure become one row each."""
    first: dict[tuple[str, str], int] = {}
    for user, cascade, step in adoptions:
        first[(cascade, user)] = min(step, first.get((cascade, user), step))
    out = []
    for cascade in sorted({c for c, _ in first}, key=str):
        for user in sorted({f for f, _ in edges}, key=str):
            own = first.get((cascade, user))
            times = [first[(cascade, fe)] + 1 for f, fe in edges if f == user and (cascade, fe) in first]
            if own is not None:
                times = [t for t in times if t <= own]
            if not times:
                continue
            t0 = min(times)
            end = own + 1 if own is not None else end_step + 1
            rows: list[tuple] = []
            for t in range(t0, end):
                x = sum(1 for s in times if s <= t)
                if rows and rows[-1][2] == x:
                    rows[-1] = (rows[-1][0], t + 1 - t0, x, 0)
                else:
                    rows.append((t - t0, t + 1 - t0, x, 0))
            if rows and own is not None:
                rows[-1] = (*rows[-1][:3], 1)
            if rows:
                out.append(rows)
    return out


USERS = list("abcdef")


@settings(max_examples=80, deadline=None)
@given(adoptions=st.lists(st.tuples(st.sampled_from(USERS), st.sampled_from([1, 2]), st.integers(0, 6)), max_size=12),
       edges=st.sets(st.tuples(st.sampled_from(USERS), st.sampled_from(USERS)).filter(lambda e: e[0] != e[1]), max_size=14),
       end=st.integers(6, 9))
def test_exposure_intervals_agree_with_a_step_by_step_reference(adoptions, edges, end: int) -> None:
    ad = pd.DataFrame(adoptions, columns=["agent_id", "cascade", "step"])
    ed = pd.DataFrame(sorted(edges), columns=["follower", "followee"])
    got = exposure_intervals(ad, ed, end)
    want = ref_exposure(adoptions, sorted(edges), end)
    spells = [[tuple(int(x) for x in r) for r in g[["start", "stop", "exposure", "event"]].to_numpy().tolist()]
              for _, g in got.groupby("id", sort=False)]
    assert sorted(spells) == sorted(want)
    assert got["id"].nunique() == len(want)
    if len(got):
        assert (got.groupby("id")["start"].min() == 0).all()


def test_an_exposure_in_the_adoption_step_counts() -> None:
    # u follows a and b; a adopts at 1, b at 4, u at 5: b's adoption exposes u at 5, the step u adopts in
    edges = pd.DataFrame({"follower": ["u", "u"], "followee": ["a", "b"]})
    adoptions = pd.DataFrame({"agent_id": ["a", "b", "u"], "cascade": ["c"] * 3, "step": [1, 4, 5]})
    iv = exposure_intervals(adoptions, edges, end_step=9)
    assert iv[["start", "stop", "exposure", "event"]].to_numpy().tolist() == [[0, 3, 1, 0], [3, 4, 2, 1]]
    # b adopting in the same step as u (5) exposes u only from 6: too late
    late = exposure_intervals(adoptions.assign(step=[1, 5, 5]), edges, end_step=9)
    assert late[["start", "stop", "exposure", "event"]].to_numpy().tolist() == [[0, 4, 1, 1]]
    # adopted before any exposure: not at risk at all
    early = exposure_intervals(adoptions.assign(step=[3, 4, 2]), edges, end_step=9)
    assert early.empty and list(early.columns) == ["id", "start", "stop", "exposure", "event"]


def _hazard_intervals(seed: int = 0, n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for sid in range(n):
        t, x = 0.0, 1
        for stop in [*np.sort(rng.uniform(0, 20, rng.integers(0, 3))).tolist(), 20.0]:
            wait = rng.exponential(1 / (0.05 * 1.8**x))
            if t + wait < stop:
                rows.append((sid, t, t + wait, x, 1))
                break
            rows.append((sid, t, stop, x, 0))
            t, x = stop, x + 1
    return pd.DataFrame(rows, columns=["id", "start", "stop", "exposure", "event"])


def ref_concordance(iv: pd.DataFrame, beta: float) -> float:
    """Harrell's C with time-varying risk, by a double loop over adoptions and intervals."""
    conc = total = 0.0
    rows = iv.to_dict("records")
    for e in rows:
        if e["event"] != 1:
            continue
        t = e["stop"]
        for r in rows:
            if r["id"] == e["id"] or not (r["start"] < t <= r["stop"]):
                continue
            if r["stop"] == t and r["event"] == 1:
                continue
            total += 1
            d = beta * e["exposure"] - beta * r["exposure"]
            conc += 1.0 if d > 0 else 0.5 if d == 0 else 0.0
    return conc / total if total else float("nan")


@pytest.mark.parametrize("beta", [0.7, -0.3, 0.0])
def test_time_dependent_concordance_by_a_double_loop(beta: float) -> None:
    iv = _hazard_intervals(n=80)
    iv.loc[iv.index[:3], "stop"] = iv.loc[iv.index[:3], "stop"].round()  # some ties in time
    assert time_dependent_concordance(iv, beta) == pytest.approx(ref_concordance(iv, beta))
    assert math.isnan(time_dependent_concordance(iv.assign(event=0), beta))


def test_saturation_test_by_hand() -> None:
    import statsmodels.api as sm

    iv = _hazard_intervals(seed=2, n=400)
    res = saturation_test(iv)
    X = sm.add_constant(pd.DataFrame({"exposure": iv["exposure"].astype(float), "e2": iv["exposure"].astype(float) ** 2}))
    fit = sm.Logit(iv["event"].astype(float), X).fit(disp=0)
    assert res["coef_exposure"] == pytest.approx(fit.params["exposure"]) and res["coef_exposure2"] == pytest.approx(fit.params["e2"])
    assert res["p_exposure2"] == pytest.approx(fit.pvalues["e2"])
    assert res["saturating"] == bool(fit.params["e2"] < 0 and fit.pvalues["e2"] < 0.05)
    with pytest.raises(TableError, match="start < stop"):
        saturation_test(iv.assign(stop=iv["start"]))


# -- the power law ------------------------------------------------------------------------------------------------------
def ref_power_law(x: np.ndarray) -> tuple[float, float]:
    """(xmin, alpha) by brute force: for every candidate xmin, the discrete power-law MLE of alpha on x >= xmin
    (Hurwitz zeta normalisation) and the KS distance between the tail's empirical CDF and the fitted one; the xmin
    with the smallest distance wins (Clauset, Shalizi & Newman 2009)."""
    from scipy import optimize, special

    best = (math.inf, 0.0, 0.0)
    for xmin in np.unique(x)[:-1]:
        tail = x[x >= xmin]
        if tail.size < 2:
            continue
        def nll(a: float, logs: float = np.log(tail).sum(), n: int = tail.size, lo: float = xmin) -> float:
            return a * logs + n * math.log(special.zeta(a, lo))

        alpha = optimize.minimize_scalar(nll, bounds=(1.0001, 6.0), method="bounded").x
        support = np.arange(xmin, tail.max() + 1)
        pmf = support ** -alpha / special.zeta(alpha, xmin)
        cdf = np.cumsum(pmf)
        emp = np.searchsorted(np.sort(tail), support, side="right") / tail.size
        d = np.abs(emp - cdf).max()
        if d < best[0]:
            best = (d, float(xmin), float(alpha))
    return best[1], best[2]


def test_power_law_xmin_is_chosen_by_the_ks_distance() -> None:
    """A power-law tail (alpha 2.5 above 8) over a body that is not one: the KS scan puts xmin in the tail, where
    alpha is right; xmin fixed at the smallest size would fit the body and get alpha far off."""
    rng = np.random.default_rng(4)
    u = rng.random(3000)
    tail = np.floor(8 * (1 - u) ** (-1 / 1.5))  # continuous Pareto(alpha 2.5) above 8, floored
    body = rng.integers(1, 8, 3000)
    x = np.concatenate([tail, body]).astype(float)
    res, fit = fit_power_law(x)
    xmin, alpha = ref_power_law(x)
    assert res["xmin"] == xmin and res["xmin"] >= 6
    assert res["alpha"] == pytest.approx(alpha, abs=0.02) and abs(res["alpha"] - 2.5) < 0.15
    assert res["n"] == x.size and res["n_tail"] == int((x >= res["xmin"]).sum())
    assert res["ks_distance"] == pytest.approx(float(fit.power_law.D))
    fixed, _ = fit_power_law(x, xmin=1)
    assert fixed["xmin"] == 1 and abs(fixed["alpha"] - 2.5) > 0.3


def test_power_law_input_errors_and_table() -> None:
    with pytest.raises(ValueError, match="at least 3 distinct"):
        fit_power_law(np.array([1, 2, 2, 0, -4]))
    with pytest.raises(ValueError, match="xmin = 50"):
        fit_power_law(np.array([1.0, 2.0, 3.0, 4.0]), xmin=50)
    t = power_law_table(pd.DataFrame({"size": [1, 1, 2]}))
    assert t.empty and notes_of(t) == ["no power-law fit: a power-law fit needs at least 3 distinct sizes; got [1.0, 2.0]"]
    sizes = np.floor(np.random.default_rng(0).pareto(1.5, 500) + 1)
    row = power_law_table(pd.DataFrame({"size": sizes}))
    res, _ = fit_power_law(sizes)
    assert row.iloc[0].to_dict() == {k: v for k, v in res.items() if k != "notes"}


# -- cascades by hand (OASIS: a cascade is a post and every repost or quote descending from it) ----------------------
def _ev(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["event_id", "parent_event_id", "action", "step", "agent_id"]).astype({"parent_event_id": "Int64"})


def test_cascade_nodes_and_metrics_by_hand() -> None:
    #  10 post(a) <- 11 repost(b) <- 13 quote(c); 10 <- 12 repost(b, again); 20 post(d); 30 repost of an unknown 99;
    #  40 like of 10 and 41 comment on 10 are no part of a cascade
    ev = _ev([(13, 11, "quote_post", 3, "c"), (10, None, "create_post", 0, "a"), (11, 10, "repost", 1, "b"),
              (12, 10, "repost", 2, "b"), (20, None, "create_post", 1, "d"), (30, 99, "repost", 2, "e"),
              (40, 10, "like_post", 1, "f"), (41, 10, "create_comment", 1, "g"), (50, None, "repost", 4, "h")])
    nodes = cascade_nodes(ev)
    assert nodes[["event_id", "parent", "root", "depth"]].to_numpy().tolist() == [
        [10, -1, 10, 0], [11, 10, 10, 1], [12, 10, 10, 1], [13, 11, 10, 2], [20, -1, 20, 0], [30, -1, 30, 0]]
    assert notes_of(nodes) == ["1 share(s) whose parent is not a post or share in this table count as roots (event ids 30)"]
    m = cascade_metrics(nodes).set_index("root")
    assert m.loc[10].to_dict() == {"author": "a", "size": 4, "depth": 2, "max_breadth": 2,
                                   "structural_virality": pytest.approx((1 + 1 + 2 + 2 + 1 + 3) / 6), "users": 3,
                                   "start_step": 0, "last_step": 3}
    assert m.loc[20, "size"] == 1 and math.isnan(m.loc[20, "structural_virality"]) and m.loc[30, "author"] == "e"
    g = cascade_growth(nodes, roots=[10])
    assert g.to_dict("list") == {"root": [10] * 4, "t": [0, 1, 2, 3], "size": [1, 2, 3, 4], "scale": [1, 2, 2, 3],
                                 "depth": [0, 1, 1, 2], "max_breadth": [1, 1, 2, 2]}
    top = cascade_growth(nodes, top=1)
    assert set(top["root"]) == {10}
    assert cascade_metrics(cascade_nodes(ev.iloc[:0])).empty


@pytest.mark.parametrize(("rows", "names"), [
    ([(1, 1, "repost", 0, "a")], "their own parent: 1"),
    ([(1, None, "create_post", 0, "a"), (2, 3, "repost", 1, "b"), (3, 2, "repost", 1, "c")], "2 -> 3 -> 2"),
])
def test_parent_loops_are_named(rows, names: str) -> None:
    with pytest.raises(CascadeError, match=names):
        cascade_nodes(_ev(rows))


def test_nrmse_and_growth_comparison_by_hand() -> None:
    assert nrmse(np.array([1.0, 3.0]), np.array([2.0, 2.0])) == pytest.approx(1.0 / 2.0)  # range 0: by the mean
    assert nrmse(np.array([1.0, 1.0, 9.0]), np.array([0.0, 2.0])) == pytest.approx(1.0 / 2.0)  # the common length
    assert nrmse(np.zeros(2), np.zeros(2)) == 0.0 and math.isnan(nrmse(np.zeros(0), np.zeros(3)))
    sim = pd.DataFrame({"t": [0, 0, 1, 1, 2], "scale": [1, 3, 2, 4, 9], "depth": [0, 0, 1, 1, 1], "max_breadth": [1, 1, 1, 1, 1]})
    ref = pd.DataFrame({"t": [1, 0, 5], "scale": [3, 2, 0], "depth": [1, 0, 0], "max_breadth": [1, 1, 1]})
    c = compare_growth(sim, ref).set_index("metric")
    # every t of the reference: t=5 compares the simulated curve carried from its last point, t=2 (9, 1, 1)
    assert c["points"].tolist() == [3, 3, 3]
    assert c["nrmse"].tolist() == pytest.approx([math.sqrt((0 + 0 + 9**2) / 3) / 3, math.sqrt((0 + 0 + 1) / 3) / 1, 0.0])
    same_end = compare_growth(sim, ref.assign(t=[1, 0, 2], scale=[3, 2, 9], depth=[1, 0, 1])).set_index("metric")
    assert same_end["nrmse"].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(TableError, match="reference growth"):
        compare_growth(sim, ref.assign(t=[0, 0, 1]))


# -- analyses of a run written by hand --------------------------------------------------------------------------------------
def _social_run(tmp_path: Path, events: list[dict], agents: list[dict] | None = None, **meta) -> RunLog:
    agents = agents if agents is not None else [
        {"agent_id": "a", "kind": "user", "group": "g1", "persona": json.dumps({"followees": ["b"]})},
        {"agent_id": "b", "kind": "user", "group": "g2", "persona": json.dumps({"followees": []})},
        {"agent_id": "c", "kind": "user", "group": "g1", "persona": json.dumps({"followees": ["a", "b"]})},
        {"agent_id": "bot", "kind": "controlled", "group": "", "persona": None}]
    return RunLog(write_run_log(tmp_path / "run", events=[{"phase": "users", **e} for e in events], agents=agents, **meta))


def test_follow_graph_with_and_without_the_events(tmp_path: Path) -> None:
    log = _social_run(tmp_path, [{"step": 0, "agent_id": "a", "action": "follow", "target": "c"},
                                 {"step": 1, "agent_id": "c", "action": "unfollow", "target": "b"},
                                 {"step": 1, "agent_id": "a", "action": "unfollow", "target": "c"},
                                 {"step": 2, "agent_id": "b", "action": "follow", "target": "a"}])
    assert follow_graph(log).to_numpy().tolist() == [["a", "b"], ["c", "a"], ["c", "b"]]
    assert follow_graph(log, initial_only=False).to_numpy().tolist() == [["a", "b"], ["b", "a"], ["c", "a"]]


def test_activity_and_cascade_tables_of_a_run(tmp_path: Path) -> None:
    events = [{"step": 0, "agent_id": "a", "action": "create_post", "payload": json.dumps({"post_id": 0, "content": "x"})},
              {"step": 1, "agent_id": "b", "action": "repost", "parent_event_id": 0, "payload": json.dumps({"post_id": 1})},
              {"step": 1, "agent_id": "c", "action": "repost", "parent_event_id": 1, "payload": json.dumps({"post_id": 2})}]
    metrics = [{"step": 0, "metric": "active_users", "value": 3.0}, {"step": 0, "metric": "actions/create_post", "value": 1.0},
               {"step": 1, "metric": "actions/repost", "value": 2.0}, {"step": 1, "metric": "active_users", "value": 2.0},
               {"step": 1, "metric": "posts_total", "value": 3.0}]
    log = _social_run(tmp_path, events, metrics=metrics)
    act = activity_table(log)
    assert act.to_dict("list") == {"step": [0, 1], "active_users": [3.0, 2.0], "create_post": [1.0, 0.0], "repost": [0.0, 2.0]}
    casc = cascade_table(log)
    assert casc[["root", "size", "depth", "users"]].to_numpy().tolist() == [[0, 3, 2, 3]]


def test_adoption_table_of_a_run_by_hand(tmp_path: Path) -> None:
    # x posts; a shares it unexposed (not at risk); b (follows a) shares at 3; c (follows a and b) at 5; d (follows
    # a) never does. Intervals: b [0, 2) exposure 1, event; c [0, 2) 1, [2, 4) 2, event; d [0, 4) 1, censored.
    agents = [{"agent_id": u, "kind": "user", "persona": json.dumps({"followees": f})}
              for u, f in (("x", []), ("a", []), ("b", ["a"]), ("c", ["a", "b"]), ("d", ["a"]))]
    events = [{"step": 0, "agent_id": "x", "action": "create_post"},
              {"step": 1, "agent_id": "a", "action": "repost", "parent_event_id": 0},
              {"step": 3, "agent_id": "b", "action": "repost", "parent_event_id": 1},
              {"step": 5, "agent_id": "c", "action": "quote_post", "parent_event_id": 0},
              {"step": 5, "agent_id": "d", "action": "like_post", "parent_event_id": 0}]
    log = _social_run(tmp_path, events, agents=agents)
    t = adoption_table(log)
    assert t.columns.tolist() == ["hazard_ratio", "hr_low", "hr_high", "p", "concordance", "subjects", "events",
                                  "coef_exposure", "coef_exposure2", "p_exposure2", "saturating"]
    assert t["events"].tolist() == [2] and t["subjects"].tolist() == [3]
    from agentsim.analysis.social import fit_exposure_hazard

    iv = pd.DataFrame([(0, 0, 2, 1, 1), (1, 0, 2, 1, 0), (1, 2, 4, 2, 1), (2, 0, 4, 1, 0)],
                      columns=["id", "start", "stop", "exposure", "event"])
    fit = fit_exposure_hazard(iv)
    for col in ("hazard_ratio", "hr_low", "hr_high", "p", "concordance"):
        assert t[col].item() == pytest.approx(fit[col]), col
    assert 0.0 < fit["p"] < 1.0 and fit["hr_low"] < fit["hazard_ratio"] < fit["hr_high"]
    few = adoption_table(_social_run(tmp_path / "few", events[:3], agents=agents))
    assert few.empty and notes_of(few)[0].startswith("no hazard model: 1 adoption(s) after exposure, at 1 exposure level(s)")
    none = adoption_table(_social_run(tmp_path / "none", events[:1], agents=agents))
    assert none.empty and notes_of(none)[0] == "no hazard model: no reposts or quotes in this run"


def _two_mirrored_cascades() -> tuple[list[dict], list[dict]]:
    """Two cascades with the same shape (the by-hand one above), each source followed by one non-adopter (d)."""
    agents, events = [], []
    for k in ("", "2"):
        x, a, b, c, d = (f"{u}{k}" for u in ("x", "a", "b", "c", "d"))
        agents += [{"agent_id": u, "kind": "user", "persona": json.dumps({"followees": f})}
                   for u, f in ((x, []), (a, []), (b, [a]), (c, [a, b]), (d, [a, x]))]
        root = len(events)
        events += [{"step": 0, "agent_id": x, "action": "create_post"},
                   {"step": 1, "agent_id": a, "action": "repost", "parent_event_id": root},
                   {"step": 3, "agent_id": b, "action": "repost", "parent_event_id": root + 1},
                   {"step": 5, "agent_id": c, "action": "quote_post", "parent_event_id": root}]
    return agents, events


def test_the_source_exposure_cap_samples_whole_cascades_and_keeps_only_their_adoptions(tmp_path: Path, monkeypatch) -> None:
    from agentsim.analysis import social

    agents, events = _two_mirrored_cascades()
    both = adoption_table(_social_run(tmp_path / "both", events, agents=agents))
    one = adoption_table(_social_run(tmp_path / "one", events[:4], agents=agents))
    assert both["events"].item() == 2 * one["events"].item() == 4
    assert both["subjects"].item() == 2 * one["subjects"].item()
    # Each source has one follower (d): a cap of one source-exposure row keeps exactly one whole cascade, and only
    # that cascade's adoptions; the two are mirror images, so the fit is the one-cascade fit.
    monkeypatch.setattr(social, "MAX_SOURCE_EXPOSURES", 1)
    capped = adoption_table(_social_run(tmp_path / "capped", events, agents=agents))
    for col in ("events", "subjects", "hazard_ratio", "hr_low", "hr_high", "p", "concordance"):
        assert capped[col].item() == pytest.approx(one[col].item()), col
    assert any("seeded sample of 1 of 2 cascades" in n and "1 source-exposure rows" in n for n in notes_of(capped))
    assert not any("seeded sample" in n for n in notes_of(one))


@pytest.mark.parametrize("cap", [0, 1, 2, 3, 5, 6, 100])
def test_exposure_sources_keep_whole_cascades_under_the_cap(cap: int, monkeypatch) -> None:
    from agentsim.analysis import social

    monkeypatch.setattr(social, "MAX_SOURCE_EXPOSURES", cap)
    # Five platform posts (no request: seen from their own step) and one user post (seen from the next step);
    # their authors have 1, 2, 0, 3, 1 and 2 followers: 9 source-exposure rows in all.
    authors = ["p", "q", "r", "s", "t", "u"]
    followers = {"p": 1, "q": 2, "r": 0, "s": 3, "t": 1, "u": 2}
    ev = pd.DataFrame({"event_id": range(6), "step": [0, 0, 2, 3, 4, 4], "agent_id": authors,
                       "action": ["create_post"] * 6, "parent_event_id": [np.nan] * 6,
                       "request_id": [None, None, None, None, None, "r5"]})
    edges = pd.DataFrame([(f"f{i}{a}", a) for a in authors for i in range(followers[a])], columns=["follower", "followee"])
    nodes = cascade_nodes(ev)
    src, note = social.exposure_sources(nodes, ev, edges, seed=3)
    weight = src["agent_id"].map(followers)
    if cap >= 9:
        assert note == "" and src["cascade"].tolist() == list(range(6))
    else:
        assert weight.sum() <= cap and f"seeded sample of {len(src)} of 6 cascades" in note
        # the sample is a prefix of one seeded order: no cascade left out would still fit
        order = np.random.default_rng(3).permutation(6)
        expect = sorted(order[np.cumsum([followers[authors[i]] for i in order]) <= cap].tolist())
        assert src["cascade"].tolist() == expect
        again, _ = social.exposure_sources(nodes, ev, edges, seed=3)
        assert again.equals(src)
    steps = dict(zip(src["cascade"], src["step"], strict=True))
    assert all(steps[c] == [0, 0, 2, 3, 4, 5][c] for c in steps)  # the user's post (r5) is seen from step 5


def test_herd_effect_by_hand() -> None:
    tr = lambda post, arm: {"agent_id": "bot", "action": "treatment", "target": post, "payload": json.dumps({"treatment": arm})}  # noqa: E731
    vote = lambda who, action, post: {"agent_id": who, "action": action, "target": post, "payload": None}  # noqa: E731
    ev = pd.DataFrame([
        tr("p1", "up"), vote("bot", "like_post", "p1"), vote("u", "like_post", "p1"), vote("v", "like_post", "p1"),
        tr("p2", "up"), vote("bot", "like_post", "p2"), vote("u", "dislike_post", "p2"),
        tr("p3", "down"), vote("bot", "dislike_post", "p3"), vote("u", "dislike_post", "p3"), vote("u", "undo_dislike_post", "p3"),
        tr("p4", "control"), vote("u", "like_post", "p4"), vote("u", "unlike_post", "p4"), vote("v", "like_post", "p9"),
        tr("p5", "control"),
    ])
    t = herd_from_events(ev).set_index("treatment")
    assert t.index.tolist() == ["up", "control", "down"]
    assert t.loc["up", "posts"] == 2 and t.loc["up", "mean_score"] == (3 + 0) / 2 and t.loc["up", "mean_others"] == (2 - 1) / 2
    assert t.loc["down", "mean_score"] == -1 and t.loc["down", "mean_others"] == 0 and math.isnan(t.loc["down", "low"])
    assert t.loc["control", "mean_score"] == 0 and t.loc["control", "low"] == t.loc["control", "high"] == 0
    from scipy import stats

    lo, hi = stats.t.interval(0.95, 1, loc=1.5, scale=stats.sem([3, 0]))
    assert t.loc["up", "low"] == pytest.approx(lo) and t.loc["up", "high"] == pytest.approx(hi)
    none = herd_from_events(ev[ev["action"] != "treatment"])
    assert none.empty and notes_of(none) == ["no herd-effect experiment in this run (no 'treatment' events)"]
    with pytest.raises(TableError, match="treated twice|unique"):
        herd_from_events(pd.concat([ev, pd.DataFrame([tr("p1", "down")])], ignore_index=True))
    with pytest.raises(TableError, match="row 0"):
        herd_from_events(pd.DataFrame([{**tr("p1", "up"), "payload": "{}"}]))


def test_herd_trajectory_by_hand() -> None:
    """Scores at the end of each step: p1 (up, treated at step 1) gets +1 at 1 and +1 at 3; p2 (up, treated at 2)
    gets -1 at 2; p3 (down, treated at 1) gets -1 at 1 and +1 (an undo) at 2. Step 0 has no treated post."""
    def ev(step: int, who: str, action: str, post: str, arm: str | None = None) -> dict[str, object]:
        return {"step": step, "agent_id": who, "action": action, "target": post,
                "payload": json.dumps({"treatment": arm}) if arm else None}

    events = pd.DataFrame([
        ev(0, "u", "create_post", "p0"),
        ev(1, "bot", "treatment", "p1", "up"), ev(1, "bot", "like_post", "p1"), ev(1, "bot", "treatment", "p3", "down"),
        ev(1, "bot", "dislike_post", "p3"), ev(2, "bot", "treatment", "p2", "up"), ev(2, "u", "dislike_post", "p2"),
        ev(2, "u", "undo_dislike_post", "p3"), ev(3, "v", "like_post", "p1"), ev(3, "v", "like_post", "p0"),
    ])
    t = herd_trajectory(events)
    rows = {(r.treatment, r.step): (r.posts, r.mean_score) for r in t.itertuples()}
    assert rows == {("up", 1): (1, 1.0), ("up", 2): (2, 0.0), ("up", 3): (2, 0.5),
                    ("down", 1): (1, -1.0), ("down", 2): (1, 0.0), ("down", 3): (1, 0.0)}
    from scipy import stats

    up3 = t[(t["treatment"] == "up") & (t["step"] == 3)].iloc[0]
    lo, hi = stats.t.interval(0.95, 1, loc=0.5, scale=stats.sem([2, -1]))
    assert (up3["low"], up3["high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert math.isnan(t[(t["treatment"] == "down") & (t["step"] == 1)]["low"].iloc[0])  # one post: no interval
    ax = plot_herd_trajectory(t).axes[0]
    up = next(x for x in ax.get_lines() if x.get_label().startswith("up"))
    assert list(up.get_xdata()) == [1, 2, 3] and list(up.get_ydata()) == [1.0, 0.0, 0.5] and "n=1-2 per point" in up.get_label()
    # a vote before the treatment (p1 liked at step 0, treated at 1) counts, as in the final score of herd_from_events
    early = pd.concat([events, pd.DataFrame([ev(0, "w", "like_post", "p1")])], ignore_index=True)
    later = herd_trajectory(early)
    assert later[(later["treatment"] == "up")]["mean_score"].tolist() == [2.0, 0.5, 1.0]
    final = herd_from_events(early).set_index("treatment")["mean_score"]
    last = later[later["step"] == 3].set_index("treatment")["mean_score"]
    assert last.to_dict() == final.to_dict()  # the trajectory ends where the final-score figure stands
    none = herd_trajectory(events[events["action"] != "treatment"])
    assert none.empty and notes_of(none) == ["no herd-effect experiment in this run (no 'treatment' events)"]


def _stance_run(tmp_path: Path, judged: bool) -> RunLog:
    texts = {0: (0, "a", "good great"), 1: (0, "c", "bad"), 2: (1, "b", "good bad"), 3: (3, "a", "great"),
             4: (3, "b", "terrible bad"), 5: (3, "c", "yes")}
    events = [{"step": s, "agent_id": who, "action": "create_post", "payload": json.dumps({"post_id": p, "content": t})}
              for p, (s, who, t) in texts.items()]
    events.append({"step": 3, "agent_id": "bot", "action": "create_post", "payload": json.dumps({"post_id": 6, "content": "hate"})})
    if judged:
        events += [{"step": 3, "agent_id": "judge", "action": "judge_stance", "payload": json.dumps({"post_id": p, "stance": s})}
                   for p, s in ((0, 5), (1, -5), (2, 0), (3, 4), (4, -2))]
    return _social_run(tmp_path, events, world={"stance": {"positive": ["good", "great", "yes"], "negative": ["bad", "terrible"],
                                                            "intensifiers": []}})


def test_post_stances_from_the_judge_or_the_lexicon(tmp_path: Path) -> None:
    judged = post_stances(_stance_run(tmp_path / "j", judged=True))
    assert judged[["agent_id", "group", "stance", "extremity", "source"]].to_numpy().tolist() == [
        ["a", "g1", 1.0, 1.0, "judge"], ["c", "g1", -1.0, 1.0, "judge"], ["b", "g2", 0.0, 0.0, "judge"],
        ["a", "g1", 0.8, 0.8, "judge"], ["b", "g2", -0.4, 0.4, "judge"]]  # post 5 was not judged; the bot is no user
    lex = post_stances(_stance_run(tmp_path / "l", judged=False))
    assert lex["source"].unique().tolist() == ["lexicon"] and len(lex) == 6
    # mean polarity x 0.5 (no intensifiers): "good great" 0.5, "bad" -0.5, "good bad" 0, ...
    assert lex.set_index("event_id")["stance"].tolist() == [0.5, -0.5, 0.0, 0.5, -0.5, 0.5]


def test_polarization_by_hand(tmp_path: Path) -> None:
    log = _stance_run(tmp_path, judged=True)
    t = polarization_table(log, window=1, n_resamples=200).set_index("group")
    # g1: first window (step 0): a 1.0, c -1.0; last (step 3): a 0.8. g2: b 0.0 at step 1 is in neither window
    assert t.loc["g1", ["posts_first", "posts_last"]].tolist() == [2, 1]
    assert t.loc["g1", "stance_first"] == 0.0 and t.loc["g1", "stance_last"] == pytest.approx(0.8)
    assert t.loc["g1", "extremity_first"] == 1.0 and t.loc["g1", "change"] == pytest.approx(-0.2)
    assert "g2" not in t.index
    assert any("no change for group(s) g2" in n for n in notes_of(polarization_table(log, window=1, n_resamples=200)))
    curve = polarization_curve(log, n_resamples=200).set_index(["group", "step"])
    assert curve.loc[("g1", 0), "posts"] == 2 and curve.loc[("g1", 0), "stance"] == 0.0 and curve.loc[("g1", 0), "extremity"] == 1.0
    assert curve.loc[("g2", 3), "extremity"] == pytest.approx(0.4)
    default = polarization_table(log, n_resamples=200)  # a quarter of 4 steps: window 1
    pd.testing.assert_frame_equal(default, polarization_table(log, window=1, n_resamples=200))
    wide = polarization_table(log, window=2, n_resamples=200).set_index("group")
    assert wide.loc["g2", ["posts_first", "posts_last", "change"]].tolist() == [1, 1, pytest.approx(0.4)]
    # the signed-stance figure draws the same windows: g1 first (step 0) 1.0 and -1.0, last (step 3) 0.8
    fig = plot_stance_distributions(log, window=1, bins=4)
    g1 = next(ax for ax in fig.axes if ax.get_title() == "g1")
    first, last = g1.patches  # step histograms, bins of width 0.5 over -1..1
    assert [t.get_text() for t in g1.get_legend().get_texts()] == ["first 1 step(s) (n=2, mean +0.00)", "last 1 step(s) (n=1, mean +0.80)"]
    heights = lambda patch: sorted({round(float(y), 6) for y in patch.get_xy()[:, 1]})  # noqa: E731
    assert heights(first) == [0.0, 0.5] and heights(last) == [0.0, 1.0]  # shares of the window's posts
    assert [ln.get_xdata()[0] for ln in g1.get_lines()] == [0.0, pytest.approx(0.8)]  # the windows' means


# -- interventions, search, trends, the judge, state -------------------------------------------------------------------
def test_injected_posts_and_herd_votes_by_hand(tmp_path: Path) -> None:
    w = _world(tmp_path, **{"world.interventions": [
        {"kind": "inject_post", "step": 1, "author": "citynews", "content": "breaking"},
        {"kind": "inject_post", "step": 2, "author": "u3", "content": "from a user"},
        {"kind": "herd_votes", "from_step": 0, "to_step": 1, "arms": ["up", "down", "control"], "voter": "bot"}]})
    assert w.controlled == {"citynews": 6, "bot": 7} and w.user_index("bot") == 7 and w.user_id(6) == "citynews"
    assert w.user_index("u2") == 2 and w.user_index("nobody") is None and w.user_id(2) == "u2"
    ids = w.pop.ids
    ctx0 = _ctx(w, 0)
    w._platform(ctx0)
    assert w.seeded and len(w.posts) == 0 and ctx0.events == []
    w._apply_users(ctx0, [Decision(ids[i], ANSWER.model_validate({"action": "create_post", "content": f"p{i}"}), "", True, "r", 1)
                          for i in range(6)])
    ctx1 = _ctx(w, 1, seed=4, next_id=ctx0.next_event_id)
    w._platform(ctx1)
    [inj] = [e for e in ctx1.events if e.action == "create_post"]
    assert inj.agent_id == "citynews" and json.loads(inj.payload) == {"post_id": 6, "kind": "post", "content": "breaking"}
    assert int(w.posts.author[6]) == 6 and w.latest_post[:6].tolist() == [0, 1, 2, 3, 4, 5]  # not a user's post
    treated = [(e.target, json.loads(e.payload)) for e in ctx1.events if e.action == "treatment"]
    assert [t for t, _ in treated] == [f"p{i}" for i in range(6)]  # every post of step 0 (share 1), not the injected one
    arms = {p["post_id"]: p["treatment"] for _, p in treated}
    votes = {(e.action, e.target) for e in ctx1.events if e.action in ("like_post", "dislike_post")}
    assert votes == {("like_post", f"p{p}") for p, a in arms.items() if a == "up"} | {("dislike_post", f"p{p}") for p, a in arms.items() if a == "down"}
    for p, a in arms.items():
        assert (int(w.posts.likes[p]), int(w.posts.dislikes[p])) == {"up": (1, 0), "down": (0, 1), "control": (0, 0)}[a]
        assert bool(w.likes.contains(7, p)) == (a == "up") and bool(w.dislikes.contains(7, p)) == (a == "down")
    ev = {e.event_id: e for e in ctx1.events}
    assert all(e.parent_event_id == int(w.posts.event_id[json.loads(e.payload)["post_id"]]) for e in ev.values() if e.action == "treatment")
    ctx2 = _ctx(w, 2, next_id=ctx1.next_event_id)
    w._platform(ctx2)
    assert [e.agent_id for e in ctx2.events if e.action == "create_post"] == ["u3"] and w.latest_post[3] == 7
    assert [e.target for e in ctx2.events if e.action == "treatment"] == ["p6"]  # step 1's post
    ctx4 = _ctx(w, 4, next_id=ctx2.next_event_id)
    w._platform(ctx4)
    assert ctx4.events == []  # past to_step


def test_search_and_trends_are_shown_next_time(tmp_path: Path) -> None:
    w = _world(tmp_path, **{"world.recommender.window_minutes": 120})
    ids = w.pop.ids
    ctx = _ctx(w, 3)
    old = w._add_posts(ctx, [5], [POST], [-1], ["ancient cycling"], ["create_post"], [None], time=ctx.sim_time - 10_000)[0]
    texts = ["cycling lanes everywhere", "tax debate", "more cycling lanes", "football"]
    new = w._add_posts(ctx, [1, 2, 3, 4], [POST] * 4, [-1] * 4, texts, ["create_post"] * 4, [None] * 4)
    for p, n in zip(new.tolist(), [2, 9, 5, 1], strict=True):
        w.posts.vote(p, "likes", n)
    w.posts.vote(int(old), "likes", 50)
    ctx = _ctx(w, 3, next_id=10)
    w._apply_users(ctx, [
        Decision(ids[0], ANSWER.model_validate({"action": "search_posts", "query": "  cycling lanes "}), "", True, "q1", 1),
        Decision(ids[5], ANSWER.model_validate({"action": "trend"}), "", True, "q2", 1),
        Decision(ids[2], ANSWER.model_validate({"action": "search_user", "query": ids[3]}), "", True, "q3", 1)])
    text, named = w.info[0]
    assert text.startswith('Results of your search "cycling lanes":\n[post ')
    hits = [int(line.split("]")[0].removeprefix("[post ")) for line in text.splitlines()[1:]]
    q = w.embed(["cycling lanes"])[0]
    pool = [int(p) for p in new]
    assert hits == sorted(pool, key=lambda p: -float(w.posts.emb.a[p] @ q))[:3] and int(old) not in hits
    assert named == tuple(ids[int(w.posts.author[p])] for p in hits)
    trend, authors = w.info[5]
    assert trend == (f"Trending posts:\n[post {new[1]}] @{ids[2]} (9 likes): tax debate\n"
                     f"[post {new[2]}] @{ids[3]} (5 likes): more cycling lanes\n[post {new[0]}] @{ids[1]} (2 likes): cycling lanes everywhere")
    assert authors == (ids[2], ids[3], ids[1])
    users_text, users_named = w.info[2]
    assert users_text.startswith(f'Results of your search "{ids[3]}":\n@') and ids[2] not in users_named and len(users_named) <= 3
    ev = [(e.agent_id, e.action, json.loads(e.payload) if e.payload else None, e.request_id) for e in ctx.events]
    assert (ids[5], "trend", None, "q2") in ev and (ids[0], "search_posts", {"query": "cycling lanes", "results": 3}, "q1") in ev
    assert any(a == ids[2] and act == "search_user" and p["results"] == len(users_named) for a, act, p, _ in ev)
    (tmp_path / "e").mkdir()
    empty = _world(tmp_path / "e")
    assert empty._trend(_ctx(empty, 0)) == ("Trending posts:\n(none)", ())


def test_the_judge_rates_new_posts_but_not_reposts(tmp_path: Path) -> None:
    from agentsim.scenarios.social.world import JUDGE_ID, StanceRating

    w = _world(tmp_path, **{"world.judge": {"enabled": True, "every": 2, "sample": 3, "topic": "bikes"}})
    assert w.phases == ("platform", "users", "judge")
    ctx = _ctx(w, 0)
    w._add_posts(ctx, [0], [POST], [-1], ["a"], ["create_post"], [None])
    w._add_posts(ctx, [1, 2], [REPOST, COMMENT], [0, 0], ["a", "c"], ["repost", "create_comment"], [None] * 2)
    obs = w._observe_judge(_ctx(w, 0))
    assert [o.tag for o in obs] == ["-p0", "-p2"] and obs[0].agent_id == JUDGE_ID and obs[0].model == w.judge_alias
    assert "stance of social media posts on bikes" in obs[0].messages[0]["content"] and obs[1].messages[1]["content"] == "Post: c"
    assert obs[0].data.post_id == 0 and obs[0].action_model is StanceRating
    jctx = _ctx(w, 0, next_id=3)
    w._apply_judge(jctx, [Decision(JUDGE_ID, StanceRating(stance=-3), "", True, "j0", 1), Decision(JUDGE_ID, None, "x", False, "j1", 2)])
    assert [(e.target, json.loads(e.payload), e.parent_event_id) for e in jctx.events] == [("p0", {"post_id": 0, "stance": -3}, 0)]
    assert w._observe_judge(_ctx(w, 1)) == []  # every 2 steps
    assert w._observe_judge(_ctx(w, 2)) == []  # nothing new since
    w._add_posts(ctx, [3] * 5, [POST] * 5, [-1] * 5, list("vwxyz"), ["create_post"] * 5, [None] * 5)
    picked = [int(o.tag[2:]) for o in w._observe_judge(_ctx(w, 4, seed=1))]
    assert len(picked) == 3 and picked == sorted(picked) and set(picked) <= set(range(3, 8))


def test_state_round_trip_and_older_checkpoints(tmp_path: Path) -> None:
    w = _world(tmp_path)
    ids = w.pop.ids
    ctx = _ctx(w, 0)
    w._add_posts(ctx, [0, 1], [POST, POST], [-1, -1], ["a", "b"], ["create_post"] * 2, [None] * 2)
    w._apply_users(ctx, [Decision(ids[2], ANSWER.model_validate(a), "", True, "r", 1) for a in (
        {"action": "follow", "user_id": ids[0]}, {"action": "like_post", "post_id": 1}, {"action": "trend"})])
    w._apply_users(ctx, [Decision(ids[3], ANSWER.model_validate(a), "", True, "r", 1) for a in (
        {"action": "mute", "user_id": ids[1]}, {"action": "dislike_post", "post_id": 0})])
    w.judged_upto, w.seeded = 2, True
    import copy

    state = copy.deepcopy(w.get_state())
    (tmp_path / "2").mkdir()
    w2 = _world(tmp_path / "2")
    w2.set_state(state)
    assert same_world(w, w2)
    state["info"] = {"2": "old text only"}
    w2.set_state(state)
    assert w2.info == {2: ("old text only", ())} and w2.judged_upto == 2 and w2.seeded is True


def same_world(a, b) -> bool:
    from agentsim.core.state import same_state

    return same_state(a.get_state(), b.get_state())


def test_agents_of_the_platform(tmp_path: Path) -> None:
    w = _world(tmp_path, **{"world.judge": {"enabled": True}, "world.interventions": [
        {"kind": "herd_votes", "voter": "bot"}], "world.network": {"generator": "none"}})
    w.follows.add(pair_keys(np.array([0, 0]), np.array([3, 1])))
    t = w.agent_table().to_pylist()
    assert [r["agent_id"] for r in t] == list(w.pop.ids) + ["bot", "judge"]
    assert [r["kind"] for r in t] == ["user"] * 6 + ["controlled", "judge"]
    assert t[-1]["model"] == w.judge_alias and t[-2]["model"] == "" and t[-2]["persona"] is None and t[-2]["group"] == ""
    p = json.loads(t[0]["persona"])
    assert p["followees"] == ["u1", "u3"] and p["name"] == "u0" and p["stance"] == round(float(w.pop.stance[0]), 3)
    assert p["interests"] == w.pop.interest_names(0) and p["bio"] == w.pop.bio(0)
    assert t[0]["group"] == w.pop.groups[int(w.pop.group[0])].name and t[0]["model"] == "default"
    agents = w.agents()
    assert agents[0].persona == p and agents[-1].persona == {} and agents[-1].kind == "judge"
    assert w.sim_time(0) == w.config.time.start_epoch and w.sim_time(3) == w.config.time.start_epoch + 3 * 3600.0


def test_who_acts_follows_the_hour_of_the_simulated_day(tmp_path: Path) -> None:
    hourly = [0.0] * 24
    hourly[10] = 1.0
    hourly[11] = 0.5
    w = _world(tmp_path, **{"world.time.start": "2024-01-01T09:30:00Z", "world.time.minutes_per_step": 30,
                           "world.time.activity": {"hourly": hourly}})
    assert [w.active_users(_ctx(w, s)).size for s in (0, 1, 2)] == [0, 6, 6]  # 09:30, 10:00, 10:30
    rng = np.random.default_rng(5)
    expected = np.flatnonzero(rng.random(6) < 0.5)
    assert w.active_users(_ctx(w, 3, seed=5)).tolist() == expected.tolist()
    assert w.active_users(_ctx(w, 5 + 48, seed=0)).size == 0  # 12:00 the next day


# -- network roles and the whole set of tables -------------------------------------------------------------------------
def test_role_features_are_networkx_measures() -> None:
    import networkx as nx

    edges = pd.DataFrame({"follower": ["a", "a", "b", "c", "d", "e", "e"], "followee": ["b", "c", "c", "a", "a", "a", "d"]})
    f = role_features(edges).set_index("agent_id")
    g = nx.DiGraph(list(zip(edges["follower"], edges["followee"], strict=True)))
    assert f["in_degree"].to_dict() == dict(g.in_degree()) and f["out_degree"].to_dict() == dict(g.out_degree())
    assert f["betweenness"].to_dict() == pytest.approx(nx.betweenness_centrality(g))
    assert f["clustering"].to_dict() == pytest.approx(nx.clustering(g.to_undirected())) and f["pagerank"].to_dict() == pytest.approx(nx.pagerank(g))
    assert f.columns.tolist() == ["in_degree", "out_degree", "betweenness", "clustering", "pagerank"]
    sampled = role_features(edges, betweenness_k=3, seed=1)
    assert sampled.set_index("agent_id")["betweenness"].to_dict() == pytest.approx(nx.betweenness_centrality(g, k=3, seed=1))


def test_roles_by_hand(tmp_path: Path) -> None:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    # two hubs followed by everyone else, plus a few mutual follows
    users = [f"u{i}" for i in range(9)]
    follows = {u: ["u0", "u1"] for u in users[2:]}
    follows["u0"], follows["u1"] = ["u1"], ["u0", "u2"]
    agents = [{"agent_id": u, "kind": "user", "persona": json.dumps({"followees": follows[u]})} for u in users]
    log = _social_run(tmp_path, [{"step": 0, "agent_id": "u3", "action": "follow", "target": "u4"}], agents=agents)
    r = roles_table(log)
    edges = follow_graph(log, initial_only=False)
    feats = role_features(edges)
    cols = ["in_degree", "out_degree", "betweenness", "clustering", "pagerank"]
    X = StandardScaler().fit_transform(np.log1p(feats[cols].to_numpy(float) * [1, 1, 1e3, 1, 1e3]))
    sil = {k: float(silhouette_score(X, KMeans(n_clusters=k, n_init=10, random_state=0).fit(X).labels_, random_state=0))
           for k in range(2, 7)}
    assert r["silhouette"]["k"].tolist() == [2, 3, 4, 5, 6]
    assert r["silhouette"]["silhouette"].tolist() == pytest.approx([sil[k] for k in range(2, 7)])
    best = max(sil, key=sil.get)
    assert r["roles"]["role"].nunique() == best and r["roles"]["users"].sum() == 9
    assert r["features"]["role"].nunique() == best and r["roles"].columns.tolist() == ["role", *cols, "users"]
    means = r["features"].groupby("role")[cols].mean()
    assert r["roles"].set_index("role")[cols].to_numpy() == pytest.approx(means.to_numpy())
    pair = [{"agent_id": u, "kind": "user", "persona": json.dumps({"followees": [v]})} for u, v in (("x", "y"), ("y", "x"))]
    few = _social_run(tmp_path / "few", [], agents=pair)
    out = roles_table(few)
    assert set(out) == {"silhouette"} and notes_of(out["silhouette"])[0].startswith("no roles: 2 users; roles need at least 3")
    small = roles_table(log, ks=range(12, 14))
    assert set(small) == {"silhouette"} and notes_of(small["silhouette"]) == ["no roles: 9 users are too few for k = 12 clusters"]


def test_social_tables_of_a_run(tmp_path: Path) -> None:
    events = [{"step": 0, "agent_id": "a", "action": "create_post", "payload": json.dumps({"post_id": i, "content": "good"})}
              for i in range(25)]
    events += [{"step": 1, "agent_id": "b", "action": "repost", "parent_event_id": i, "payload": json.dumps({"post_id": 25 + i})}
               for i in (3, 3, 7)]
    log = _social_run(tmp_path, events)
    t = social_tables(log, roles=False)
    assert list(t) == ["activity", "refusals", "cascades", "power_law", "adoption", "herd", "polarization"]
    assert t["refusals"].empty
    casc = t["cascades"]
    assert len(casc) == 25 and casc["root"].tolist()[:2] == [3, 7] and casc["size"].tolist()[:2] == [3, 2]
    assert casc["root"].tolist()[2:] == [i for i in range(25) if i not in (3, 7)]  # every cascade, not the 20 largest
    with_roles = social_tables(log)
    assert "roles_silhouette" in with_roles
    assert "roles" in with_roles  # every user with its features and role, the roles' sizes adding up
    users = with_roles["roles_users"]
    assert sorted(users["agent_id"]) == ["a", "b", "c"] and users["role"].notna().all()
    assert users["role"].value_counts().sort_index().tolist() == with_roles["roles"]["users"].tolist()
    empty = social_tables(_social_run(tmp_path / "e", []), roles=False)
    assert empty["cascades"].empty and "no posts or shares in this run" in notes_of(empty["cascades"])


@pytest.mark.parametrize(("follows", "note_part", "has_roles"), [
    # everyone follows everyone: one network-feature profile
    ({u: [v for v in "abcdef" if v != u] for u in "abcdef"}, "all 6 users have the same network features", False),
    # a directed ring: every user has one follower and one followee (and the same centralities)
    ({u: ["bcdefa"["abcdef".index(u)]] for u in "abcdef"}, "all 6 users have the same network features", False),
    # two profiles (a hub and its followers, isolated users): k = 2 only
    ({**{u: ["h"] for u in "abcde"}, "h": []}, "only 2 distinct network-feature profiles", True),
])
def test_roles_of_networks_with_few_distinct_users(follows: dict, note_part: str, has_roles: bool) -> None:
    """Regular networks give users identical features: roles say so instead of failing in scikit-learn
    ("Number of labels is 1"), and only k up to the number of distinct profiles is tried."""
    from agentsim.analysis.social import roles_from_edges

    edges = pd.DataFrame([(u, v) for u, vs in follows.items() for v in vs], columns=["follower", "followee"])
    out = roles_from_edges(edges, users=list(follows), engine="networkx")
    assert any(note_part in n for n in notes_of(out["silhouette"])), notes_of(out["silhouette"])
    assert ("roles" in out) == has_roles
    if has_roles:
        assert out["silhouette"]["k"].tolist() == [2] and out["roles"]["users"].sum() == len(follows)


def test_counterfactual_posts_by_hand(tmp_path: Path) -> None:
    """OASIS's counterfactual herd-effect posts (its reddit counterfactual_36.json): from `from_step` on, `per_step`
    items a step, in file order, posted by the controlled poster and voted once by the controlled voter as each
    item's pre-assigned arm says (up: like, down: dislike, control: none), each with its `treatment` event."""
    groups = ["up", "down", "control", "up", "down"]
    cf = tmp_path / "cf.json"
    cf.write_text(json.dumps([{"RS": {"title": "None", "selftext": f"c{i}"}, "RC_1": {"body": f"claim {i}", "group": g}}
                              for i, g in enumerate(groups)]))
    w = _world(tmp_path, **{"world.interventions": [
        {"kind": "counterfactual_posts", "file": str(cf), "per_step": 2, "from_step": 1}]})
    poster, voter = (w.user_index(n) for n in sorted(w.controlled, key=w.controlled.get))
    assert (poster, voter) == (6, 7)
    next_id, posted = 0, []
    for step, want in ((0, []), (1, [0, 1]), (2, [2, 3]), (3, [4]), (4, [])):
        ctx = _ctx(w, step, next_id=next_id)
        w._platform(ctx)
        next_id = ctx.next_event_id
        made = [json.loads(e.payload) for e in ctx.events if e.action == "create_post"]
        assert [m["content"] for m in made] == [f"claim {i}" for i in want], step
        assert all(e.agent_id == w.user_id(poster) for e in ctx.events if e.action == "create_post")
        treated = [json.loads(e.payload) for e in ctx.events if e.action == "treatment"]
        assert [t["treatment"] for t in treated] == [groups[i] for i in want]
        assert [t["post_id"] for t in treated] == [m["post_id"] for m in made]
        votes = sorted((e.action, e.target) for e in ctx.events if e.action in ("like_post", "dislike_post"))
        assert votes == sorted((("like_post" if groups[i] == "up" else "dislike_post"), f"p{m['post_id']}")
                               for i, m in zip(want, made, strict=True) if groups[i] != "control")
        assert all(e.agent_id == w.user_id(voter) for e in ctx.events if e.action in ("treatment", "like_post", "dislike_post"))
        posted += [(i, m["post_id"]) for i, m in zip(want, made, strict=True)]
    for i, p in posted:
        assert (int(w.posts.likes[p]), int(w.posts.dislikes[p])) == {"up": (1, 0), "down": (0, 1), "control": (0, 0)}[groups[i]]
        assert bool(w.likes.contains(voter, p)) == (groups[i] == "up") and bool(w.dislikes.contains(voter, p)) == (groups[i] == "down")
        assert int(w.posts.author[p]) == poster


def test_the_action_schema_offers_each_action_as_an_alternative() -> None:
    """The schema handed to guided decoding lists the actions under anyOf (disjoint branches: xgrammar represents
    anyOf exactly, oneOf only approximately), with no discriminator left over."""
    schema = ANSWER.model_json_schema()
    assert "oneOf" not in schema and "discriminator" not in schema
    assert len(schema["anyOf"]) == len(ALL_ACTIONS)


def test_who_acts_follows_each_group_s_activity_by_hour(tmp_path: Path) -> None:
    """A group's activity (flat, or one probability per hour of the simulated day) decides who acts in a step."""
    nine_only = [0.0] * 9 + [1.0] + [0.0] * 14
    w = _world(tmp_path, users=8, **{"world.users.groups": [
        {"name": "always", "share": 1, "interests": ["a"], "stance": 0.0, "activity": {"probability": 1.0}},
        {"name": "at_nine", "share": 1, "interests": ["b"], "stance": 0.0, "activity": {"hourly": nine_only}}]})
    names = [g.name for g in w.pop.groups]
    always = np.flatnonzero(w.pop.group == names.index("always"))
    at_nine = np.flatnonzero(w.pop.group == names.index("at_nine"))
    assert len(always) and len(at_nine)
    # the scenario starts at 08:00 with 60-minute steps: step 1 is 09:00, step 2 is 10:00
    assert w.active_users(_ctx(w, 0)).tolist() == always.tolist()
    assert w.active_users(_ctx(w, 1)).tolist() == sorted(always.tolist() + at_nine.tolist())
    assert w.active_users(_ctx(w, 2)).tolist() == always.tolist()
    assert w.active_users(_ctx(w, 25)).tolist() == sorted(always.tolist() + at_nine.tolist())  # 09:00 the next day


def test_comments_under_a_post_are_the_newest_k(tmp_path: Path) -> None:
    w = _world(tmp_path, **{"world.recommender.comments_per_post": 2})
    ctx = _ctx(w, 1)
    p, q = (int(i) for i in w._add_posts(ctx, [0, 1], [POST, POST], [-1, -1], ["p", "q"], ["create_post"] * 2, [None] * 2))
    cs = [int(w._add_posts(ctx, [a], [COMMENT], [parent], [f"c{i}"], ["create_comment"], [None])[0])
          for i, (a, parent) in enumerate([(2, p), (3, p), (4, q), (5, p)])]
    assert w._comments({p, q}) == {p: [cs[3], cs[1]], q: [cs[2]]}
    assert w._comments({q}) == {q: [cs[2]]} and w._comments(set()) == {}
    (tmp_path / "none").mkdir()
    w0 = _world(tmp_path / "none", **{"world.recommender.comments_per_post": 0})
    c0 = _ctx(w0, 1)
    p0 = int(w0._add_posts(c0, [0], [POST], [-1], ["p"], ["create_post"], [None])[0])
    w0._add_posts(c0, [1], [COMMENT], [p0], ["c"], ["create_comment"], [None])
    assert w0._comments({p0}) == {}


def test_herd_votes_stop_after_their_last_step_and_votes_point_at_their_post(tmp_path: Path) -> None:
    """herd_votes treats the posts of steps from_step..to_step, each in the next step; each vote's parent is the
    post's event."""
    w = _world(tmp_path, **{"world.interventions": [
        {"kind": "herd_votes", "from_step": 0, "to_step": 1, "arms": ["up", "down"], "voter": "bot"}]})
    ids, next_id = w.pop.ids, 0
    treated_by_step = {}
    for step in range(4):
        ctx = _ctx(w, step, seed=step, next_id=next_id)
        w._platform(ctx)
        treated_by_step[step] = [e.target for e in ctx.events if e.action == "treatment"]
        for e in ctx.events:
            if e.action in ("like_post", "dislike_post"):
                assert e.parent_event_id == int(w.posts.event_id[json.loads(e.payload)["post_id"]])
        w._apply_users(ctx, [Decision(ids[step], ANSWER.model_validate({"action": "create_post", "content": f"s{step}"}),
                                      "", True, "r", 1)])
        next_id = ctx.next_event_id
    assert treated_by_step == {0: [], 1: ["p0"], 2: ["p1"], 3: []}


def test_taking_a_vote_back_by_hand(tmp_path: Path) -> None:
    """A like (dislike) taken back removes the user's vote and one from the post's count, the same step or later;
    other posts and users keep theirs. An invalid answer changes nothing, whatever action it names."""
    w = _world(tmp_path)
    ids = w.pop.ids
    ctx0 = _ctx(w, 0)
    w._apply_users(ctx0, [Decision(ids[i], ANSWER.model_validate({"action": "create_post", "content": f"p{i}"}), "", True, "r", 1)
                          for i in range(2)])

    def act(step: int, *answers: tuple[int, str, int], valid: bool = True):
        ctx = _ctx(w, step, next_id=step * 100)
        w._apply_users(ctx, [Decision(ids[u], ANSWER.model_validate({"action": a, "post_id": p}), "", valid, "r", 1)
                             for u, a, p in answers])
        return [(e.agent_id, e.action) for e in ctx.events]

    act(1, (2, "like_post", 0), (3, "like_post", 0), (2, "dislike_post", 1), (4, "like_post", 1))
    assert (w.posts.likes[:2].tolist(), w.posts.dislikes[:2].tolist()) == ([2, 1], [0, 1])
    assert act(2, (2, "unlike_post", 0), (2, "undo_dislike_post", 1)) == [(ids[2], "unlike_post"), (ids[2], "undo_dislike_post")]
    assert (w.posts.likes[:2].tolist(), w.posts.dislikes[:2].tolist()) == ([1, 1], [0, 0])
    assert not w.likes.contains(2, 0) and w.likes.contains(3, 0) and w.likes.contains(4, 1) and not w.dislikes.contains(2, 1)
    act(3, (5, "like_post", 1), (5, "unlike_post", 1))  # within one step
    assert w.posts.likes[:2].tolist() == [1, 1] and not w.likes.contains(5, 1)
    assert act(4, (5, "like_post", 0), valid=False) == [] and w.posts.likes[:2].tolist() == [1, 1]


def test_seed_posts_from_a_file_and_drawn_by_hand(tmp_path: Path) -> None:
    """Seed posts of a file come first, in time order, at their timestamps (a minute before the start without one),
    as posts by their authors, their text as given; then `count` scripted posts, cut at max_post_chars."""
    long = "x" * 60
    (tmp_path / "posts.csv").write_text("author,content,timestamp\nu3,later,2024-03-04T07:30:00Z\n"
                                        f"u1,{long},2024-03-04T07:00:00Z\nu2,no time,\n")
    w = _world(tmp_path, **{"world.seed_posts": {"file": str(tmp_path / "posts.csv"), "count": 3}})
    start = w.config.time.start_epoch
    ctx = _ctx(w, 0)
    w._platform(ctx)
    made = [(e.agent_id, json.loads(e.payload)) for e in ctx.events if e.action == "create_post"]
    assert [(a, p["content"]) for a, p in made[:3]] == [("u1", long), ("u3", "later"), ("u2", "no time")]
    assert w.posts.time[:3].tolist() == [start - 3600.0, start - 1800.0, start - 60.0]
    assert [int(w.posts.author[i]) for i in range(3)] == [1, 3, 2]
    assert len(made) == 6 and all(p["kind"] == "post" for _, p in made)
    assert w.posts.kind[:6].tolist() == [POST] * 6 and w.posts.parent[:6].tolist() == [-1] * 6
    assert all(0 < len(w.posts.text[i]) <= 40 for i in range(3, 6))


def test_the_interest_feed_uses_profile_plus_latest_post(tmp_path: Path) -> None:
    """The interest source scores posts for the user's profile vector plus the embedding of the user's latest post
    (normalised), as OASIS's interest recommender does with a user's profile and recent posts; a user who never
    posted is scored by the profile alone. Checked against recommend.interest given that vector by hand."""
    w = _world(tmp_path, **{"world.recommender.sources": [{"kind": "interest", "slots": 3}],
                           "world.recommender.candidates": 1000, "world.recommender.window_minutes": 600})
    ids = w.pop.ids
    ctx0 = _ctx(w, 0)
    topics = ["bike lanes and cycling", "traffic jams downtown", "housing prices", "new jobs at the plant",
              "climate policy vote", "election news tonight"]
    w._apply_users(ctx0, [Decision(ids[i], ANSWER.model_validate({"action": "create_post", "content": topics[i]}), "", True, "r", 1)
                          for i in range(6)])
    ctx = _ctx(w, 1)
    users = np.arange(6)
    got = w.feeds(users, ctx)
    pool = w._pool(ctx.sim_time)
    rc = w.config.recommender
    for u in users.tolist():
        vec = w.pop.vec[u] + w.posts.emb.a[int(w.latest_post[u])]
        vec = (vec / np.linalg.norm(vec))[None, :]
        rows = recommend.interest(np.array([u]), vec, pool, w.posts, ctx.sim_time, rc.recency_half_life_minutes * 60.0,
                                  rc.candidates, 11, np.random.default_rng(0))[0].tolist()
        assert got[u] == [p for p in rows if p >= 0 and int(w.posts.author[p]) != u][:3], u
    # the random source: distinct posts of the pool, none of one's own, as many as its slots
    (tmp_path / "fresh").mkdir()
    fresh = _world(tmp_path / "fresh", **{"world.recommender.sources": [{"kind": "random", "slots": 2}]})
    c0 = _ctx(fresh, 0)
    fresh._apply_users(c0, [Decision(fresh.pop.ids[i], ANSWER.model_validate({"action": "create_post", "content": f"p{i}"}), "", True, "r", 1)
                            for i in range(4)])
    feeds = fresh.feeds(np.arange(6), _ctx(fresh, 1, seed=3))
    assert all(len(f) == 2 and len(set(f)) == 2 and all(0 <= p < 4 and int(fresh.posts.author[p]) != u for p in f)
               for u, f in enumerate(feeds))


def test_the_judge_rates_new_posts_but_not_reposts_and_its_ratings_point_at_them(tmp_path: Path) -> None:
    """Every `every` steps the judge sees the posts new since it last judged (reposts excluded: they repeat a
    post), is told the -5..5 scale, and each valid rating becomes a judge_stance event whose parent is the post's
    event and whose request id is the judge call's."""
    from agentsim.scenarios.social.world import JUDGE_ID, StanceRating

    w = _world(tmp_path, **{"world.judge": {"enabled": True, "every": 2, "sample": 100, "topic": "bikes"}})
    ids = w.pop.ids
    ctx0 = _ctx(w, 0)
    w._apply_users(ctx0, [Decision(ids[i], ANSWER.model_validate({"action": "create_post", "content": f"p{i}"}), "", True, "r", 1)
                          for i in range(3)])
    ctx1 = _ctx(w, 1)
    assert w._observe_judge(ctx1) == []  # not a judging step
    w._apply_users(ctx1, [Decision(ids[3], ANSWER.model_validate({"action": "repost", "post_id": 0}), "", True, "r", 1)])
    ctx2 = _ctx(w, 2)
    obs = w._observe_judge(ctx2)
    assert [o.data.post_id for o in obs] == [0, 1, 2] and all(o.agent_id == JUDGE_ID for o in obs)
    system = obs[0].messages[0]["content"]
    assert "bikes" in system and "-5 (strongly against)" in system and "5 (strongly in favour)" in system
    assert obs[1].messages[1]["content"] == "Post: p1"
    w._apply_judge(ctx2, [Decision(JUDGE_ID, StanceRating(stance=s), "", valid, f"req{i}", 1)
                          for i, (s, valid) in enumerate([(3, True), (-2, False), (-5, True)])])
    rated = [(e.target, json.loads(e.payload)["stance"], e.parent_event_id, e.request_id) for e in ctx2.events if e.action == "judge_stance"]
    assert rated == [("p0", 3, int(w.posts.event_id[0]), "req0"), ("p2", -5, int(w.posts.event_id[2]), "req2")]
    assert [o.data.post_id for o in w._observe_judge(_ctx(w, 4))] == []  # nothing new since


def test_a_user_may_name_followees_who_are_nowhere_in_the_feed(tmp_path: Path) -> None:
    """The users one may act on (follow, unfollow, mute, unmute) are the feed's authors and commenters, one's
    followees and muted users, and search results: each source adds users, none narrows the others."""
    w = _world(tmp_path, users=8, **{"world.time.activity": {"probability": 1.0}, "world.recommender.comments_per_post": 1,
                                     "world.recommender.sources": [{"kind": "hot", "slots": 5}]})
    ids = w.pop.ids
    ctx = _ctx(w, 0)
    w._add_posts(ctx, [1], [POST], [-1], ["original"], ["create_post"], [None])
    w._add_posts(ctx, [2], [COMMENT], [0], ["a comment"], ["create_comment"], [None])
    w.follows.add(pair_keys(np.array([0, 0]), np.array([6, 2])))
    w.mutes.add(pair_keys(np.array([0]), np.array([7])))
    w.info[0] = ("Results of your search", (ids[3],))
    obs = {o.agent_id: o for o in w._observe_users(_ctx(w, 0))}
    assert obs[ids[0]].validation_context["users"] == {ids[1], ids[2], ids[3], ids[6], ids[7]}
    assert obs[ids[5]].validation_context["users"] == {ids[1], ids[2]}


def test_a_user_search_among_fewer_than_three_users_lists_each_once(tmp_path: Path) -> None:
    w = _world(tmp_path, users=2)
    ctx = _ctx(w, 0)
    w._search(ctx, [(0, "search_user", "anyone", "r")])
    text, named = w.info[0]
    assert named == (w.pop.ids[1],) and text.count("@") == 1
    assert [json.loads(e.payload) for e in ctx.events] == [{"query": "anyone", "results": 1}]


def test_the_refusals_table_by_hand(tmp_path: Path) -> None:
    """Refused actions counted by wanted action and reason (OASIS's error texts), with how many users met each;
    most refused first, then by the wanted action's name."""
    from agentsim.analysis.social import refusals_table

    def refused(step: int, who: str, wanted: str, reason: str) -> dict:
        return {"step": step, "agent_id": who, "action": "refused", "payload": json.dumps({"wanted": wanted, "reason": reason})}

    again, like = "Repost record already exists.", "Like record already exists."
    log = _social_run(tmp_path, [refused(0, "a", "repost", again), refused(1, "a", "repost", again), refused(1, "b", "repost", again),
                                 refused(1, "c", "like_post", like), refused(2, "c", "follow", "cannot follow yourself"),
                                 {"step": 2, "agent_id": "a", "action": "repost", "payload": json.dumps({"post_id": 0})}])
    t = refusals_table(log)
    assert t.to_dict("records") == [
        {"wanted": "repost", "reason": again, "refused": 3, "users": 2},
        {"wanted": "follow", "reason": "cannot follow yourself", "refused": 1, "users": 1},
        {"wanted": "like_post", "reason": like, "refused": 1, "users": 1}]
    none = refusals_table(_social_run(tmp_path / "none", [{"step": 0, "agent_id": "a", "action": "repost", "payload": None}]))
    assert none.empty and list(none.columns) == ["wanted", "reason", "refused", "users"] and notes_of(none)


def test_concordance_counts_every_adoption_the_first_too() -> None:
    """Three subjects: a adopts first, at 1, with exposure 0 while b (1) and c (0.5) are at risk: two discordant
    pairs; c adopts at 2 (0.5) while b (0) is at risk: one concordant. C = 1 / 3 (without a's adoption it would
    be 1 / 1)."""
    iv = pd.DataFrame({"id": ["a", "b", "c", "b", "c"], "start": [0.0, 0.0, 0.0, 1.0, 1.0], "stop": [1.0, 1.0, 1.0, 3.0, 2.0],
                       "exposure": [0.0, 1.0, 0.5, 0.0, 0.5], "event": [1, 0, 0, 0, 1]})
    assert time_dependent_concordance(iv, 1.0) == pytest.approx(ref_concordance(iv, 1.0)) == pytest.approx(1 / 3)
    assert time_dependent_concordance(iv, -1.0) == pytest.approx(2 / 3)


def test_nrmse_divides_by_the_reference_s_max_by_default() -> None:
    from agentsim.analysis.alignment import nrmse

    ref, sim = np.array([2.0, 4.0, 6.0]), np.array([3.0, 4.0, 6.0])
    assert nrmse(sim, ref) == pytest.approx(math.sqrt(1 / 3) / 6.0) == nrmse(sim, ref, "max")


# -- kinds of fault the mutation run found unseen (issue 16) ---------------------------------------------------------
# Each test below names a kind of fault a study would not notice in its tables: a recommender ranking or recency
# wrong, search or trends returning the wrong posts, a feed built from the wrong sources, a user's view missing or
# leaking something, seed posts built wrong, counterfactual arms wrong, shares rebuilt against the wrong root after a
# resume. References are plain Python (sorted lists, sets, the random stream replayed) on small hand-made platforms.
def _unit(*xs: float, dim: int) -> np.ndarray:
    v = np.zeros(dim, np.float32)
    v[: len(xs)] = xs
    return v / np.linalg.norm(v)


def test_interest_ranks_the_true_top_k_for_every_user_of_a_large_step() -> None:
    """The top k by similarity x recency, best first, whatever the number of candidates (the best ones last in the
    window) and of users (more than two 4096-user blocks); a window no larger than the candidate budget is scored
    whole, drawing nothing from the step's random stream (the other recommenders and who acts draw from it too)."""
    rng = np.random.default_rng(11)
    n_posts, dim = 24, 4
    posts = Posts(dim)
    emb = rng.normal(size=(n_posts, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    times = 1.7e9 - np.arange(n_posts)[::-1] * 60.0
    for i in range(n_posts):
        posts.add(np.array([0]), np.array([POST]), np.array([-1]), 0, float(times[i]), np.array([i]), ["x"], emb[i : i + 1])
    now, half_life = 1.7e9, 3600.0
    users = rng.normal(size=(8300, dim)).astype(np.float32)
    score = (users.astype(np.float64) @ emb.T.astype(np.float64)) * 2.0 ** (-(now - times) / half_life)
    pool = np.arange(n_posts)
    for width in (1, 3):
        stream = np.random.default_rng(5)
        before = stream.bit_generator.state
        got = recommend.interest(np.arange(users.shape[0]), users, pool, posts, now, half_life, n_posts, width, stream)
        assert stream.bit_generator.state == before
        want = np.argsort(-score, axis=1, kind="stable")[:, :width]
        assert (got == want).all(), np.flatnonzero((got != want).any(axis=1))[:5]
    # one user whose best posts are the last of the window
    best_last = Posts(2)
    for i in range(30):
        best_last.add(np.array([0]), np.array([POST]), np.array([-1]), 0, now, np.array([i]), ["x"],
                      _unit(1.0, 3.0 - i / 10.0, dim=2)[None, :])
    me = _unit(1.0, 0.0, dim=2)[None, :]
    cos = [float(me[0] @ best_last.emb.a[i]) for i in range(30)]
    for width in (1, 2, 4):
        want = sorted(range(30), key=lambda i: -cos[i])[:width]
        assert recommend.interest(np.array([0]), me, np.arange(30), best_last, now, 3600.0, 100, width,
                                  np.random.default_rng(0))[0].tolist() == want
    # the single best of a thousand (np.argpartition's kth is k - 1: the k-th best itself)
    many = Posts(2)
    sims = np.random.default_rng(2).uniform(-1, 1, 1000)
    many.add(np.zeros(1000, np.int64), np.full(1000, POST), np.full(1000, -1), 0, now, np.arange(1000), ["x"] * 1000,
             np.stack([sims, np.sqrt(1 - sims**2)], axis=1).astype(np.float32))
    assert recommend.interest(np.array([0]), me, np.arange(1000), many, now, 3600.0, 1000, 1,
                              np.random.default_rng(0))[0].tolist() == [int(np.argmax(many.emb.a[:, 0]))]


def test_trends_and_post_search_list_equal_posts_oldest_first(tmp_path: Path) -> None:
    """OASIS's Platform.trend (camel-ai/oasis, oasis/social_platform/platform.py) orders by likes only and
    Platform.search_posts not at all, so posts that tie come back in the order they were stored; agentsim lists ties
    oldest first in both (for more than 16 candidates numpy's default sort would not keep that order)."""
    w = _world(tmp_path, **{"world.recommender.window_minutes": 600})
    ctx = _ctx(w, 2)
    texts = ["cycling lanes now", "football tonight"] * 10
    ids = w._add_posts(ctx, [i % 6 for i in range(20)], [POST] * 20, [-1] * 20, texts, ["create_post"] * 20, [None] * 20)
    for p in ids.tolist():
        w.posts.vote(p, "likes", 1 if p % 2 == 0 else 0)
    text, authors = w._trend(ctx)
    shown = [int(line.split("]")[0].removeprefix("[post ")) for line in text.splitlines()[1:]]
    assert shown == sorted(ids.tolist(), key=lambda p: (-int(w.posts.likes[p]), p))[:3] == [0, 2, 4]
    assert authors == tuple(w.pop.ids[int(w.posts.author[p])] for p in shown)
    w._search(ctx, [(1, "search_posts", "cycling lanes now", "q")])
    hits = [int(line.split("]")[0].removeprefix("[post ")) for line in w.info[1][0].splitlines()[1:]]
    q = w.embed(["cycling lanes now"])[0]
    sims = {p: float(w.posts.emb.a[p] @ q) for p in ids.tolist()}
    assert hits == sorted(sims, key=lambda p: (-sims[p], p))[:3] == [0, 2, 4]


def test_user_search_lists_the_three_closest_profiles_but_never_the_searcher(tmp_path: Path) -> None:
    """search_user: the three users whose profile vectors best match the query, best first, the searcher left out
    (so fewer than three when the searcher is among them); user 0 can be found. Post search on an empty window finds
    nothing and says so."""
    w = _world(tmp_path)
    dim = w.embed.dim
    q = w.embed(["who rides bikes"])[0].astype(np.float64)
    other = np.random.default_rng(0).normal(size=dim)
    other -= (other @ q) * q
    other /= np.linalg.norm(other)
    match = [1.0, 0.2, 0.5, 0.9, 0.7, -0.3]  # cosine of each user's profile with the query
    w.pop.vec = np.array([a * q + math.sqrt(1 - a * a) * other for a in match], np.float32)
    ctx = _ctx(w, 0)
    w._search(ctx, [(5, "search_user", "who rides bikes", "a"), (0, "search_user", "who rides bikes", "b"),
                    (2, "search_posts", "anything", "c")])
    ids = w.pop.ids
    assert w.info[5][1] == (ids[0], ids[3], ids[4])
    assert w.info[5][0] == 'Results of your search "who rides bikes":\n' + "\n".join(f"@{ids[i]}: {w.pop.bio(i)}" for i in (0, 3, 4))
    assert w.info[0][1] == (ids[3], ids[4])  # the searcher was among the three
    assert w.info[2] == ('Results of your search "anything":\n(nothing found)', ())
    assert [json.loads(e.payload)["results"] for e in ctx.events] == [3, 2, 0]


def _assemble(rows: list[list[int]], slots: int, me: int, authors: np.ndarray) -> list[int]:
    """A plain-Python feed assembler: a source's candidates in order, skipping padding, repeats and one's own posts."""
    out: list[int] = []
    for p in rows:
        if len(out) == slots:
            break
        if p >= 0 and p not in out and int(authors[p]) != me:
            out.append(p)
    return out


def test_the_random_source_draws_from_the_step_stream(tmp_path: Path) -> None:
    """A `random` source fills its slots with draws, with replacement, from the window (stream of the step), then
    the assembler skips repeats and one's own posts: replayed here draw for draw."""
    w = _world(tmp_path, **{"world.recommender.sources": [{"kind": "random", "slots": 2}]})
    ctx0 = _ctx(w, 0)
    w._add_posts(ctx0, [0, 1, 2, 3], [POST] * 4, [-1] * 4, ["a", "b", "c", "d"], ["create_post"] * 4, [None] * 4)
    users = np.arange(6)
    got = w.feeds(users, _ctx(w, 1, seed=3))
    pool = w._pool(w.sim_time(1))
    draws = pool[np.random.default_rng(3).integers(0, pool.size, size=(6, 2 + 8))]
    assert got == [_assemble(draws[u].tolist(), 2, u, w.posts.author) for u in users.tolist()]


def test_the_interest_source_scores_profile_plus_latest_post_with_the_configured_half_life(tmp_path: Path) -> None:
    """OASIS's interest recommender (oasis/social_platform/recsys.py, rec_sys_personalized_twh) scores a post by the
    cosine of the user's profile-and-recent-posts vector with the post, times a recency decay; agentsim: profile plus
    the latest post (post 0 counts), normalised, times 2^(-age / half-life). Hand-made vectors make the answer
    known: user 0 (latest post: post 0) and user 1 (no post, profile alone) get different rankings, and a post one
    half-life and a bit old, perfectly similar, loses to a fresh one half as similar."""
    w = _world(tmp_path, **{"world.recommender.sources": [{"kind": "interest", "slots": 3}],
                           "world.recommender.recency_half_life_minutes": 60, "world.recommender.window_minutes": 600,
                           "world.recommender.candidates": 1000})
    dim = w.embed.dim
    e = [_unit(*([0.0] * i + [1.0]), dim=dim) for i in range(4)]
    ctx = _ctx(w, 3)
    now = ctx.sim_time
    half = 3600.0
    # post 0: user 0's own (its latest); then posts by users 2..5
    specs = [(0, now, e[1]), (2, now, e[0]), (3, now, _unit(1, 2, dim=dim)), (4, now, _unit(1, 1, dim=dim)),
             (5, now, e[2]), (2, now - 1.008 * half, e[0]), (3, now, _unit(0.5, 0, math.sqrt(0.75), dim=dim))]
    for a, t, v in specs:
        p = int(w._add_posts(ctx, [a], [POST], [-1], [f"post by {a}"], ["create_post"], [None], time=t)[0])
        w.posts.emb._a[p] = v
    w.pop.vec = np.array([e[0]] * 6, np.float32)
    users = np.array([0, 1])
    got = w.feeds(users, ctx)
    for u, vec in ((0, _unit(1, 1, dim=dim)), (1, e[0])):
        score = {p: float(vec @ w.posts.emb.a[p]) * 2.0 ** (-(now - t) / half) for p, (a, t, _) in enumerate(specs) if a != u}
        assert got[u] == sorted(score, key=lambda p: -score[p])[:3], u
    assert got[1] == [1, 3, 6]  # post 6, fresh and half as similar, beats post 5, old and identical
    (tmp_path / "empty").mkdir()
    empty = _world(tmp_path / "empty", **{"world.recommender.sources": [{"kind": "interest", "slots": 3}]})
    assert empty.feeds(np.arange(6), _ctx(empty, 0)) == [[]] * 6
    sampled = _world(tmp_path / "empty", **{"world.recommender.sources": [{"kind": "interest", "slots": 3}],
                                             "world.recommender.candidates": 10})
    c = _ctx(sampled, 0, seed=4)
    sampled._add_posts(c, [i % 6 for i in range(30)], [POST] * 30, [-1] * 30, [f"post {i}" for i in range(30)],
                       ["create_post"] * 30, [None] * 30)
    cand = set(np.random.default_rng(4).choice(sampled._pool(c.sim_time), size=10, replace=False).tolist())
    assert all(set(f) <= cand for f in sampled.feeds(np.arange(6), _ctx(sampled, 0, seed=4)))


def test_the_window_starts_exactly_window_minutes_back(tmp_path: Path) -> None:
    w = _world(tmp_path, **{"world.recommender.window_minutes": 60})
    ctx = _ctx(w, 5)
    now = ctx.sim_time
    w._add_posts(ctx, [0, 1, 2], [POST] * 3, [-1] * 3, ["old", "edge", "new"], ["create_post"] * 3, [None] * 3)
    w.posts.cols["time"]._a[:3] = [now - 3600.0 - 30.0, now - 3600.0, now]
    assert w._pool(now).tolist() == [1, 2]


def test_a_view_shows_what_the_user_may_act_on_and_nothing_of_its_own(tmp_path: Path) -> None:
    """The view: the user's group and the topic; no pending search means no info text; exposure counts only for
    the linear-threshold baseline (empty otherwise); the users one may name never include oneself, even when one's
    own comment shows under a feed post."""
    w = _world(tmp_path, **{"world.time.activity": {"probability": 1.0}, "world.recommender.comments_per_post": 2,
                           "world.recommender.sources": [{"kind": "hot", "slots": 5}]})
    ids = w.pop.ids
    ctx = _ctx(w, 0)
    w._add_posts(ctx, [1], [POST], [-1], ["original"], ["create_post"], [None])
    w._add_posts(ctx, [0], [COMMENT], [0], ["my own comment"], ["create_comment"], [None])
    w.follows.add(pair_keys(np.array([0, 2]), np.array([1, 1])))
    obs = {o.agent_id: o for o in w._observe_users(_ctx(w, 0))}
    v = obs[ids[0]].data
    assert v.feed[0].comments == ((1, ids[0], "my own comment"),)
    assert ids[0] not in obs[ids[0]].validation_context["users"] and obs[ids[0]].validation_context["users"] == {ids[1]}
    for u in range(6):
        view = obs[ids[u]].data
        assert view.group == w.pop.groups[int(w.pop.group[u])].name and view.topic == w.config.topic
        assert view.info == "" and view.exposures == ()
    assert obs[ids[2]].data.n_following == 1 and obs[ids[2]].data.following == frozenset({ids[1]})


def test_a_view_lists_followees_only_below_two_hundred(tmp_path: Path) -> None:
    """A user following fewer than 200 users is shown them all (and may name them); from 200 on the list is left
    out of the view (it would swamp the prompt), the count still given."""
    w = _world(tmp_path, users=202, **{"world.time.activity": {"probability": 1.0}, "world.recommender.sources": [{"kind": "hot", "slots": 1}]})
    w.follows.add(pair_keys(np.zeros(200, np.int64), np.arange(2, 202)))
    w.follows.add(pair_keys(np.ones(199, np.int64), np.arange(2, 201)))
    obs = {o.agent_id: o.data for o in w._observe_users(_ctx(w, 0))}
    assert obs["u0"].following == frozenset() and obs["u0"].n_following == 200
    assert obs["u1"].following == frozenset(f"u{i}" for i in range(2, 201)) and obs["u1"].n_following == 199


def test_answers_after_an_invalid_one_apply_and_every_event_carries_its_request_id(tmp_path: Path) -> None:
    """An invalid answer is skipped, not the end of the step; each event an answer causes (votes, follows, trends,
    refusals) carries that answer's request id, so a log row leads back to its LLM call."""
    w = _world(tmp_path)
    ids = w.pop.ids
    w._add_posts(_ctx(w, 0), [0], [POST], [-1], ["p"], ["create_post"], [None])
    ctx = _ctx(w, 1, next_id=1)
    answers = [({"action": "like_post", "post_id": 0}, "r1"), ({"action": "follow", "user_id": ids[3]}, "r2"),
               ({"action": "trend"}, "r3"), ({"action": "refresh"}, "r4"), ({"action": "like_post", "post_id": 0}, "r5")]
    ds = [Decision(ids[1], None, "junk", False, "r0", 2, "not JSON")]
    ds += [Decision(ids[1], ANSWER.model_validate(a), "", True, rid, 1) for a, rid in answers]
    w._apply_users(ctx, ds)
    assert [(e.action, e.request_id) for e in ctx.events] == [("like_post", "r1"), ("follow", "r2"), ("trend", "r3"),
                                                              ("refresh", "r4"), ("refused", "r5")]


def test_unfollow_and_unmute_take_back_and_controlled_accounts_cannot_be_followed(tmp_path: Path) -> None:
    """Unfollow removes a follow (not a mute), unmute a mute (not a follow); the accounts that act only through
    interventions are no users: following one is refused as OASIS refuses an unknown user."""
    w = _world(tmp_path, **{"world.interventions": [{"kind": "herd_votes", "voter": "bot"}]})
    ids = w.pop.ids

    def step(s: int, *answers: dict) -> list[tuple[str, str | None]]:
        ctx = _ctx(w, s, next_id=100 * s)
        w._apply_users(ctx, [Decision(ids[0], ANSWER.model_validate(a), "", True, "r", 1) for a in answers])
        return [(e.action, e.target) for e in ctx.events]

    step(0, {"action": "follow", "user_id": ids[1]}, {"action": "mute", "user_id": ids[2]}, {"action": "follow", "user_id": ids[2]})
    assert _edges(w.follows) == {(0, 1), (0, 2)} and _edges(w.mutes) == {(0, 2)}
    assert step(1, {"action": "unfollow", "user_id": ids[2]}) == [("unfollow", ids[2])]
    assert _edges(w.follows) == {(0, 1)} and _edges(w.mutes) == {(0, 2)}
    assert step(2, {"action": "unmute", "user_id": ids[2]}) == [("unmute", ids[2])]
    assert _edges(w.follows) == {(0, 1)} and _edges(w.mutes) == set()
    assert step(3, {"action": "follow", "user_id": "bot"}) == [("refused", "bot")] and _edges(w.follows) == {(0, 1)}


def test_a_resumed_platform_counts_shares_against_the_same_roots(tmp_path: Path) -> None:
    """After a restore the shares (who may not repost what again) and the cascade participants are rebuilt from the
    posts: a repost, and a repost of a repost, count against the original; a quote, also of a quote or of a repost,
    against its root; comments join no cascade. The rebuilt sets equal the live ones and the hand-written ones, and
    the resumed platform refuses a second repost."""
    w = _world(tmp_path)
    ids = w.pop.ids

    def act(s: int, who: int, a: dict) -> list[str]:
        ctx = _ctx(w, s, next_id=100 * s)
        w._apply_users(ctx, [Decision(ids[who], ANSWER.model_validate(a), "", True, "r", 1)])
        return [e.action for e in ctx.events]

    act(0, 0, {"action": "create_post", "content": "p0"})  # 0
    act(0, 1, {"action": "create_post", "content": "p1"})  # 1
    act(1, 1, {"action": "repost", "post_id": 0})  # 2: against 0
    act(2, 2, {"action": "repost", "post_id": 2})  # 3: repost of a repost, against 0
    act(2, 3, {"action": "quote_post", "post_id": 2, "content": "q"})  # 4: quote of a repost, root 0
    act(3, 5, {"action": "quote_post", "post_id": 4, "content": "qq"})  # 5: quote of a quote, root 0
    act(3, 4, {"action": "create_comment", "post_id": 0, "content": "c"})  # 6: no cascade
    act(3, 0, {"action": "repost", "post_id": 1})  # 7: against 1
    shares = {(1, 0), (2, 0), (3, 0), (5, 0), (0, 1)}
    joined = {(0, 0), (1, 1), (1, 0), (2, 0), (3, 0), (5, 0), (0, 1)}
    assert _edges(w.shares) == shares and _edges(w.participants) == joined
    users, targets = rules.shares_of(w.posts)
    assert set(zip(users.tolist(), targets.tolist(), strict=True)) == shares
    assert users.dtype == np.int64 and targets.dtype == np.int64
    (tmp_path / "2").mkdir()
    resumed = _world(tmp_path / "2")
    resumed.set_state(w.get_state())
    assert _edges(resumed.shares) == shares and _edges(resumed.participants) == joined
    w = resumed
    assert act(4, 2, {"action": "repost", "post_id": 0}) == ["refused"]
    assert act(4, 5, {"action": "repost", "post_id": 0}) == ["refused"]  # its quote used up the repost
    assert act(4, 4, {"action": "repost", "post_id": 0}) == ["repost"]
    (tmp_path / "3").mkdir()
    quotes_only = _world(tmp_path / "3")
    w = quotes_only
    act(0, 0, {"action": "create_post", "content": "p0"})
    act(0, 1, {"action": "create_post", "content": "p1"})
    act(1, 3, {"action": "quote_post", "post_id": 1, "content": "q"})
    (tmp_path / "4").mkdir()
    resumed = _world(tmp_path / "4")
    resumed.set_state(quotes_only.get_state())
    assert _edges(resumed.shares) == {(3, 1)} and _edges(resumed.participants) == {(0, 0), (1, 1), (3, 1)}


def test_a_long_repost_chain_climbs_to_its_original() -> None:
    posts = Posts(1)
    posts.add(np.array([0]), np.array([POST]), np.array([-1]), 0, 0.0, np.array([0]), ["p"], np.ones((1, 1), np.float32))
    for i in range(1, 71):
        posts.add(np.array([i]), np.array([REPOST]), np.array([i - 1]), 0, 0.0, np.array([i]), ["p"], np.ones((1, 1), np.float32))
    assert rules.original(posts, 70).tolist() == 0 and rules.original(posts, np.array([70, 65, 3, 0])).tolist() == [0, 0, 0, 0]


def test_stores_keep_their_types_grow_by_doubling_and_take_posts_after_a_restore() -> None:
    """Columns have their declared types before any value (a checkpoint of an empty platform compares equal to a
    restored one only then); they grow by doubling from 1024 (memory at most twice the values, few copies) and take
    a batch larger than twice their size; a platform restored from a checkpoint takes new posts; `contains` answers
    with a boolean mask, also on an empty set."""
    posts = Posts(dim=3)
    assert {k: getattr(posts, k).dtype for k in Posts.COLUMNS} == {k: np.dtype(t) for k, t in Posts.COLUMNS.items()}
    assert posts.emb.a.dtype == np.float32 and posts.emb.a.shape == (0, 3)
    c, grown, last = Column(np.int64), 0, None
    for i in range(5000):
        c.extend(np.array([i]))
        grown += c._a is not last
        last = c._a
        assert c.n <= len(c._a) <= max(2 * c.n, 1024)
    assert c.a.tolist() == list(range(5000)) and grown == 4  # 1024, 2048, 4096, 8192
    big = Column(np.int64)
    big.extend(np.arange(10))
    big.extend(np.arange(3000))
    assert big.a.tolist() == list(range(10)) + list(range(3000))
    posts.add(np.array([0]), np.array([POST]), np.array([-1]), 0, 1.0, np.array([0]), ["p"], np.ones((1, 3), np.float32))
    again = Posts(dim=3)
    again.set_state(posts.get_state())
    again.add(np.array([1]), np.array([REPOST]), np.array([0]), 1, 2.0, np.array([1]), ["p"], np.full((1, 3), 2, np.float32))
    assert again.emb.a.tolist() == [[1, 1, 1], [2, 2, 2]] and again.root.tolist() == [0, 0]
    assert again.add(np.array([]), np.array([]), np.array([]), 2, 3.0, np.array([]), [], np.zeros((0, 3), np.float32)).tolist() == []
    assert len(again) == 2
    mask = EdgeSet().contains(np.array([1, 2]), np.array([2, 1]))
    assert mask.dtype == bool and np.array([7, 8])[mask].tolist() == []


def _twitter_users(path: Path) -> Path:
    """OASIS's Twitter users CSV, the columns agentsim reads: user0 with two earlier posts (one too long), user2 with
    one; activity counts for all but user1 (whose profile is then its group's)."""
    rows = [("user0", "['first of user0', '" + "y" * 60 + "']", str([4] * 24)), ("user1", "[]", ""),
            ("user2", "['only post of user2']", str([2] * 12 + [1] * 12))]
    lines = ["username,user_char,following_agentid_list,previous_tweets,activity_level_frequency"]
    lines += [f'{u},profile of {u},[],"{t}","{f}"' for u, t, f in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_earlier_posts_of_a_users_file_are_seeded_first_then_drawn_ones_and_every_original_is_its_own_root(tmp_path: Path) -> None:
    """OASIS's previous_tweets: each user's posts, in file order, a minute before the start, cut at max_post_chars,
    as create_post events of their authors (no LLM call: no request id); then `count` drawn posts (authors and texts
    replayed from the step's stream), also a minute before the start; then injected posts. Every original post -
    seeded, drawn, injected or counterfactual - has no parent and is its own root. The users file's hourly counts
    become OASIS's probabilities; a user without them acts by its group's profile."""
    from agentsim.scenarios.social.oasis import oasis_activity
    from agentsim.scenarios.social.scripted import compose_post

    cf = tmp_path / "cf.json"
    cf.write_text(json.dumps([{"RS": {"title": "t"}, "RC_1": {"body": "claim", "group": "up"}}]))
    w = _world(tmp_path, **{"world.users.count": None, "world.users.file": str(_twitter_users(tmp_path / "users.csv")),
                           "world.seed_posts": {"count": 3},
                           "world.interventions": [{"kind": "inject_post", "step": 0, "author": "news", "content": "breaking"},
                                                   {"kind": "counterfactual_posts", "file": str(cf), "per_step": 1, "from_step": 0}]})
    ids, start = w.pop.ids, w.config.time.start_epoch
    assert ids == ["user0", "user1", "user2"]
    ctx = _ctx(w, 0, seed=11)  # draws authors 0, 0, 2
    w._platform(ctx)
    made = [(e.agent_id, json.loads(e.payload)["content"], e.request_id) for e in ctx.events if e.action == "create_post"]
    stream = np.random.default_rng(11)
    authors = stream.integers(0, 3, size=3)
    drawn = [compose_post(float(w.pop.stance[a]), w.pop.interest_names(int(a)), w.config.stance, stream, 40) for a in authors]
    assert made == ([("user0", "first of user0", None), ("user0", "y" * 40, None), ("user2", "only post of user2", None)]
                    + [(ids[a], t, None) for a, t in zip(authors.tolist(), drawn, strict=True)]
                    + [("news", "breaking", None), ("post_bot", "claim", None)])
    assert w.posts.time.tolist() == [start - 60.0] * 6 + [ctx.sim_time] * 2
    latest = {0: 1, 2: 2} | {int(a): 3 + j for j, a in enumerate(authors.tolist())}
    assert w.latest_post.tolist() == [latest.get(u, -1) for u in range(3)]
    originals = np.flatnonzero(w.posts.kind == POST)
    assert originals.size == len(w.posts) == 8
    assert w.posts.parent[originals].tolist() == [-1] * 8 and w.posts.root[originals].tolist() == originals.tolist()
    freq = np.array([[4] * 24, [2] * 12 + [1] * 12], np.float64)
    assert w.user_activity[[0, 2]].tolist() == oasis_activity(freq).tolist()
    assert w.user_activity[1].tolist() == w.config.time.activity.profile()


def test_a_world_is_built_from_its_seed_overrides_group_actions_and_lexicon(tmp_path: Path) -> None:
    """The population and the follow network come from the run seed's own stream ("social-population"; the
    network's seed is that stream's next draw), so another stream's draws never change who is on the platform;
    population overrides give one user another model; a group's own action list is what its users may do; the
    stance lexicon scores with the scenario's positive, negative and intensifier words; notes say what a
    counterfactual file holds that agentsim does not read."""
    from agentsim.core.seeding import make_rng
    from agentsim.scenarios.social.population import follow_edges, synthetic_users
    from agentsim.scenarios.social.world import SocialWorld

    cf = tmp_path / "cf.json"
    cf.write_text(json.dumps([{"RS": {"title": "t"}, "RC_1": {"body": "claim", "group": "up"}, "RC_2": {}, "meta": 1}]))
    sc = load_scenario(write_scenario(tmp_path, SCENARIOS / "social" / "x_information_spread.yaml", **{
        "world.users.count": 12, "world.network": {"generator": "random_follows", "k": 2}, "world.seed_posts.count": 0,
        "world.interventions": [{"kind": "counterfactual_posts", "file": str(cf)}],
        "world.users.groups": [{"name": "a", "share": 1, "interests": ["x", "y"], "stance": 0.5, "actions": ["create_post", "trend"]},
                               {"name": "b", "share": 1, "interests": ["z"], "stance": -0.5}]}))
    config = sc.world
    w = SocialWorld(config, 3, 17, "default", {"u2": "big", "nobody": "big"})
    rng = make_rng(17, "social-population")
    pop = synthetic_users(config, 12, w.embed, rng)
    assert w.pop.stance.tolist() == pop.stance.tolist() and w.pop.group.tolist() == pop.group.tolist()
    a, b = follow_edges(config.network, pop, int(rng.integers(2**31)))
    assert _edges(w.follows) == {(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True) if x != y}
    models = dict(zip(w.agent_table()["agent_id"].to_pylist(), w.agent_table()["model"].to_pylist(), strict=True))
    assert models["u2"] == "big" and {m for u, m in models.items() if u.startswith("u") and u != "u2"} == {"default"}
    assert [w.allowed[int(w.pop.group[u])] for u in range(12)] == [
        ("create_post", "trend") if int(w.pop.group[u]) == 0 else config.allowed_actions() for u in range(12)]
    pos, neg, strong = config.stance.positive[0], config.stance.negative[0], config.stance.intensifiers[0]
    assert (w.lexicon.score(pos), w.lexicon.score(neg), w.lexicon.score(f"{strong} {pos}")) == (0.5, -0.5, 0.75)
    assert w.notes == ["cf.json: key(s) agentsim does not use: RC_2, meta"]


def test_the_agents_table_gives_each_user_its_own_followees_in_readable_text(tmp_path: Path) -> None:
    w = _world(tmp_path, **{"world.users.groups": [{"name": "cyclistes", "share": 1, "interests": ["vélo"], "stance": 0.1}]})
    w.follows.add(pair_keys(np.array([0, 0, 2, 4]), np.array([3, 1, 5, 0])))
    t = w.agent_table().to_pylist()
    assert [json.loads(r["persona"])["followees"] for r in t] == [["u1", "u3"], [], ["u5"], [], ["u0"], []]
    assert '"vélo"' in t[0]["persona"]  # stored as text a reader can search, not \\u escapes
    agents = w.agents()
    assert [(a.model, a.group) for a in agents] == [("default", "cyclistes")] * 6


def test_herd_votes_start_at_their_first_step_and_draw_their_arms_from_the_stream(tmp_path: Path) -> None:
    """herd_votes from step 1: the posts of step 0 are left alone; those of step 1 are treated in step 2, each
    entered with probability `share` and given an arm drawn uniformly from `arms` (replayed from the stream)."""
    w = _world(tmp_path, **{"world.interventions": [
        {"kind": "herd_votes", "from_step": 1, "arms": ["up", "down", "control"], "share": 0.5, "voter": "bot"}]})
    ids = w.pop.ids
    treated: dict[int, list[tuple[int, str]]] = {}
    for s in range(3):
        ctx = _ctx(w, s, seed=20 + s, next_id=100 * s)
        w._platform(ctx)
        treated[s] = [(json.loads(e.payload)["post_id"], json.loads(e.payload)["treatment"]) for e in ctx.events if e.action == "treatment"]
        w._apply_users(ctx, [Decision(ids[i], ANSWER.model_validate({"action": "create_post", "content": f"s{s}"}), "", True, "r", 1)
                             for i in range(6)])
    stream = np.random.default_rng(22)
    new = np.arange(6, 12)
    new = new[stream.random(6) < 0.5]
    arms = stream.integers(0, 3, size=new.size)
    assert treated == {0: [], 1: [], 2: [(p, ["up", "down", "control"][a]) for p, a in zip(new.tolist(), arms.tolist(), strict=True)]}


def test_counterfactual_posts_wait_for_their_first_step_and_their_votes_point_at_them(tmp_path: Path) -> None:
    """Nothing before `from_step` (however far before); each item's treatment and vote are events of the voter
    about that post (target, payload and parent event)."""
    cf = tmp_path / "cf.json"
    cf.write_text(json.dumps([{"RS": {"title": "t"}, "RC_1": {"body": f"claim {i}", "group": g}} for i, g in enumerate(["up", "down", "control"])]))
    w = _world(tmp_path, **{"world.interventions": [{"kind": "counterfactual_posts", "file": str(cf), "per_step": 1, "from_step": 3}]})
    got = {}
    for s in range(6):
        ctx = _ctx(w, s, next_id=100 * s)
        w._platform(ctx)
        got[s] = [(e.agent_id, e.action, e.target, json.loads(e.payload) if e.payload else None, e.parent_event_id) for e in ctx.events]
    assert got[0] == got[1] == got[2] == []
    for s, arm in ((3, "up"), (4, "down"), (5, "control")):
        p = s - 3
        eid = int(w.posts.event_id[p])
        vote = [] if arm == "control" else [("herd_bot", "like_post" if arm == "up" else "dislike_post", f"p{p}", {"post_id": p}, eid)]
        assert got[s][1:] == [("herd_bot", "treatment", f"p{p}", {"post_id": p, "treatment": arm}, eid)] + vote


def test_the_judge_reads_a_chat_and_a_step_without_judging_applies_nothing(tmp_path: Path) -> None:
    """The judge's prompt is a system and a user message; its ratings are the judge's events; a step that is not a
    judging step applies no ratings even right after one that was (the runtime applies every phase, with no
    decisions there); a batch no larger than `sample` is judged whole, drawing nothing from the stream."""
    from agentsim.scenarios.social.world import JUDGE_ID, StanceRating

    w = _world(tmp_path, **{"world.judge": {"enabled": True, "every": 2, "sample": 2, "topic": "bikes"}})
    w._add_posts(_ctx(w, 0), [0, 1], [POST, POST], [-1, -1], ["a", "b"], ["create_post"] * 2, [None] * 2)
    ctx = _ctx(w, 0, seed=3)
    before = ctx.rng.bit_generator.state
    obs = w.observe(ctx, "judge")
    assert ctx.rng.bit_generator.state == before
    assert [[m["role"] for m in o.messages] for o in obs] == [["system", "user"]] * 2
    w.apply(ctx, "judge", [Decision(JUDGE_ID, StanceRating(stance=2), "", True, f"j{i}", 1) for i in range(2)])
    assert [(e.agent_id, e.action) for e in ctx.events] == [(JUDGE_ID, "judge_stance")] * 2
    quiet = _ctx(w, 1, next_id=10)
    assert w.observe(quiet, "judge") == [] and w.observe(quiet, "platform") == []
    w.apply(quiet, "judge", [])
    assert quiet.events == []


def test_action_classes_are_found_by_name_and_unwrapped(tmp_path: Path) -> None:
    """Ray ships the action models to shard actors by name (pickle looks them up in the actions module): every
    allowed-action union and every single-action model must come back as itself; other names are no classes."""
    import pickle

    from agentsim.scenarios.social import actions

    model = action_model(("create_post", "trend"))
    assert pickle.loads(pickle.dumps(model)) is model and getattr(actions, model.__name__) is model
    answer = model.model_validate({"action": "create_post", "content": "hi"})
    assert pickle.loads(pickle.dumps(answer)) == answer
    one = actions.variant("like_post")
    assert one.__name__ == "Act_like_post" and getattr(actions, one.__name__) is one and pickle.loads(pickle.dumps(one)) is one
    assert actions.fields(answer) == answer.root and actions.fields(one(action="like_post", post_id=3)).post_id == 3
    for name in ("Act_nothing", "Xct_like_post", "SocialAction_create_post", "nothing"):
        with pytest.raises(AttributeError):
            getattr(actions, name)
