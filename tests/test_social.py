"""Social-platform family: recommenders, world rules, interventions and the analyses against known answers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

from agentsim.analysis.cascades import (
    cascade_growth,
    cascade_metrics,
    cascade_nodes,
    compare_growth,
    fit_power_law,
    nrmse,
)
from agentsim.analysis.social import (
    exposure_intervals,
    fit_exposure_hazard,
    herd_table,
    polarization_table,
    post_stances,
    roles_table,
    social_tables,
)
from agentsim.core.check import check_world
from agentsim.logs.reader import RunLog
from agentsim.scenarios.social.recommend import hot_score
from agentsim.scenarios.social.store import EdgeSet, pair_keys
from agentsim.spec.errors import SpecError
from agentsim.spec.loader import load_scenario, parse_scenario

from conftest import SCENARIOS, tiny_models, write_scenario
from test_runs import _kill_at_random_step, agentsim_cli, assert_same_log, run_ok

SOCIAL = SCENARIOS / "social"


# -- recommenders and state --------------------------------------------------------------------------------
def test_hot_score_matches_hand_computed_values() -> None:
    t0 = 1134028003
    # s = 10: log10(10) = 1, no time term.
    assert hot_score(np.array([10]), np.array([0]), np.array([t0]))[0] == pytest.approx(1.0)
    # s = 0 counts as |s| = 1 (log10 1 = 0, sign 0): only the time term, 45000 s = +1.
    assert hot_score(np.array([0]), np.array([0]), np.array([t0 + 45000]))[0] == pytest.approx(1.0)
    # s = -100: -2, plus 90000 s = +2.
    assert hot_score(np.array([1]), np.array([101]), np.array([t0 + 90000]))[0] == pytest.approx(0.0)
    # A 2024 post with 1 like: 0 + (1704067200 - 1134028003) / 45000.
    assert hot_score(np.array([1]), np.array([0]), np.array([1704067200]))[0] == pytest.approx((1704067200 - t0) / 45000)


def test_edge_set_against_a_python_set() -> None:
    rng = np.random.default_rng(0)
    ref: set[tuple[int, int]] = set()
    es = EdgeSet()
    for _ in range(30):
        a, b = rng.integers(0, 50, 40), rng.integers(0, 50, 40)
        if rng.random() < 0.6:
            es.add(pair_keys(a, b))
            ref |= set(zip(a.tolist(), b.tolist(), strict=True))
        else:
            es.remove(pair_keys(a, b))
            ref -= set(zip(a.tolist(), b.tolist(), strict=True))
        assert len(es) == len(ref)
    users = np.arange(50)
    rows, nb = es.gather(users)
    assert set(zip(users[rows].tolist(), nb.tolist(), strict=True)) == ref
    assert all(bool(es.contains(a, b)) == ((a, b) in ref) for a in range(0, 50, 7) for b in range(50))


def _world(tmp_path: Path, base: str = "x_information_spread.yaml", **changes):
    sc = load_scenario(write_scenario(tmp_path, SOCIAL / base, **changes))
    return sc, sc.family.create_world(sc.spec, sc.world)


def _ctx(world, step: int, seed: int = 0):
    from agentsim.core.world import StepContext

    return StepContext(step, world.sim_time(step), np.random.default_rng(seed), 0)


def test_recommenders_rank_as_specified(tmp_path: Path) -> None:
    from agentsim.scenarios.social import recommend

    sc, w = _world(tmp_path, **{"world.seed_posts.count": 0, "world.network.generator": "none"})
    ctx = _ctx(w, 0)
    texts = ["cycling lanes downtown", "tax policy debate", "football results tonight", "cycling lanes downtown again", "jazz night"]
    ids = w._add_posts(ctx, [1, 2, 3, 4, 5], [0] * 5, [-1] * 5, texts, ["create_post"] * 5, [None] * 5)
    likes = [3, 9, 1, 9, 0]
    for p, n in zip(ids.tolist(), likes, strict=True):
        w.posts.vote(p, "likes", n)
    w.follows.add(pair_keys([0, 0, 0], [1, 2, 4]))
    pool = w._pool(ctx.sim_time)
    users = np.array([0, 6])
    # follow: user 0 follows 1, 2, 4 -> their posts by likes (ties: newest first); user 6 follows nobody.
    f = recommend.follow(users, pool, w.posts, w.follows, 4)
    assert f[0].tolist() == [ids[3], ids[1], ids[0], -1] and (f[1] == -1).all()
    # hot: one global order by likes - dislikes (same creation time).
    h = recommend.hot(users, pool, w.posts, 3)
    assert h[0].tolist() == [ids[1], ids[3], ids[0]] or h[0].tolist() == [ids[3], ids[1], ids[0]]
    # interest: a user whose vector is a post's embedding gets that post first.
    vec = w.posts.emb.a[[ids[2]]]
    i = recommend.interest(np.array([0]), vec, pool, w.posts, ctx.sim_time, 3600.0, 100, 2, ctx.rng)
    assert i[0, 0] == ids[2]
    # The assembled feed drops one's own posts and muted authors.
    w.mutes.add(pair_keys([4], [2]))
    feed = w.feeds(np.array([4]), ctx)[0]
    authors = {int(w.posts.author[p]) for p in feed}
    assert 4 not in authors and 2 not in authors and len(feed) == len(set(feed))


def test_activity_profile_decides_who_acts(tmp_path: Path) -> None:
    hourly = [0.0] * 24
    hourly[9] = 1.0
    sc, w = _world(tmp_path, **{"world.time.activity": {"hourly": hourly}, "world.time.start": "2024-01-01T08:00:00Z",
                                "world.time.minutes_per_step": 60})
    assert w.active_users(_ctx(w, 0)).size == 0  # 08:00
    assert w.active_users(_ctx(w, 1)).size == w.n_users  # 09:00
    assert w.active_users(_ctx(w, 2)).size == 0


# -- whole runs ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def x_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("x")
    f = write_scenario(tmp, SOCIAL / "x_information_spread.yaml", steps=10, **{"world.users.count": 300})
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp / "run"), "--quiet")
    return tmp / "run"


def test_log_links_reposts_to_what_they_share(x_run: Path) -> None:
    ev = RunLog(x_run).events
    posts = ev[ev["action"].isin(["create_post", "repost", "quote_post", "create_comment"])]
    by_event = {e: json.loads(p)["post_id"] for e, p in zip(posts["event_id"], posts["payload"], strict=True)}
    shares = ev[ev["action"].isin(["repost", "quote_post", "like_post", "create_comment"])]
    assert len(shares) > 20
    for target, parent in zip(shares["target"], shares["parent_event_id"], strict=True):
        assert by_event[int(parent)] == int(target[1:])  # target "p<id>" is the post the parent event created
    injected = ev[(ev["agent_id"] == "u2") & (ev["phase"] == "platform")]
    assert injected["action"].tolist() == ["create_post"] and injected["step"].tolist() == [1]
    # from a user with followers: the news reaches them (it is liked, commented or shared by someone)
    assert (ev["parent_event_id"] == injected["event_id"].iloc[0]).any()


def test_world_state_agrees_with_the_event_log(tmp_path: Path) -> None:
    from agentsim.llm.router import build_backend
    from agentsim.runtime.local import LocalRuntime

    sc = load_scenario(write_scenario(tmp_path, SOCIAL / "reddit_herd_effect.yaml", steps=6), backend="scripted")
    rt = LocalRuntime(sc, build_backend(sc.spec.models, sc.family.scripted_policy), tmp_path / "run")
    rt.run()
    ev = RunLog(tmp_path / "run").events
    votes = ev[ev["action"].isin(["like_post", "unlike_post", "dislike_post", "undo_dislike_post", "like_comment", "dislike_comment"])]
    likes = np.zeros(len(rt.world.posts), int)
    dislikes = np.zeros(len(rt.world.posts), int)
    for a, t in zip(votes["action"], votes["target"], strict=True):
        p = int(t[1:])
        if a in ("like_post", "like_comment", "unlike_post"):
            likes[p] += -1 if a == "unlike_post" else 1
        else:
            dislikes[p] += 1 if a != "undo_dislike_post" else -1
    assert (likes == rt.world.posts.likes).all() and (dislikes == rt.world.posts.dislikes).all()
    assert likes.sum() > 10 and dislikes.sum() > 0


def test_scripted_runs_are_identical_and_resume_after_sigkill(tmp_path: Path) -> None:
    """Users' memories live in the policy's minds, not the world: the checkpoint must carry them, or the prompts
    (and so the request hashes) after the resume differ from the uninterrupted run's."""
    steps = 24
    f = write_scenario(tmp_path, SOCIAL / "x_information_spread.yaml", steps=steps,
                       **{"world.users.count": 200, "runtime.checkpoint_every": 3, "logging.record_prompts": True})
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "a"), "--quiet")
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "b"), "--quiet")
    assert_same_log(tmp_path / "a", tmp_path / "b")
    prompts = RunLog(tmp_path / "a").llm_calls["prompt"]
    assert prompts.str.contains("Your recent activity:\\n- ", regex=False).sum() > 50
    killed = tmp_path / "killed"
    _kill_at_random_step(f, killed, steps, seed=5)
    assert list(killed.glob("checkpoint-*.npz"))  # the columnar state went to the array file
    memories = json.loads((killed / "checkpoint.json").read_text())["memories"]
    assert len(memories) > 20 and all(1 <= len(m) <= 3 for m in memories.values())
    r = agentsim_cli("resume", str(killed), "--quiet")
    assert r.returncode == 0, r.stderr
    assert_same_log(tmp_path / "a", killed)


@pytest.mark.parametrize("name", ["x_information_spread", "reddit_herd_effect", "polarization"])
def test_shipped_scenarios_pass_the_conformance_check(name: str) -> None:
    check_world(load_scenario(SOCIAL / f"{name}.yaml"), steps=4)


def test_herd_effect_arms(tmp_path: Path) -> None:
    f = write_scenario(tmp_path, SOCIAL / "reddit_herd_effect.yaml", steps=16, **{"world.users.count": 200})
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "run"), "--quiet")
    h = herd_table(RunLog(tmp_path / "run")).set_index("treatment")
    assert set(h.index) == {"up", "down", "control"} and h["posts"].sum() > 100
    # The controlled vote is exactly +1 / -1 / 0 of every treated post's score.
    assert h.loc["up", "mean_score"] - h.loc["up", "mean_others"] == pytest.approx(1.0)
    assert h.loc["down", "mean_score"] - h.loc["down", "mean_others"] == pytest.approx(-1.0)
    assert h.loc["control", "mean_score"] == h.loc["control", "mean_others"]
    assert (h["low"] <= h["mean_score"]).all() and (h["mean_score"] <= h["high"]).all()


def test_polarization_and_roles_on_a_run(tmp_path: Path) -> None:
    f = write_scenario(tmp_path, SOCIAL / "polarization.yaml", steps=12, **{"world.users.count": 120})
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "run"), "--quiet")
    log = RunLog(tmp_path / "run")
    assert (log.events["action"] == "judge_stance").sum() > 20
    pol = polarization_table(log).set_index("group")
    assert set(pol.index) == {"supporters", "opponents"}
    assert pol.loc["supporters", "stance_last"] > 0 > pol.loc["opponents", "stance_last"]
    # Issue 15 §8: each resample had rows x columns posts, so the intervals were ~2.6x too narrow. The bootstrap
    # interval of a difference of means must be about as wide as the normal-theory one (Welch's standard error).
    st_ = post_stances(log)
    first, last = st_["step"].min(), st_["step"].max()
    w = max(1, (last - first + 1) // 4)
    for g, d in st_.groupby("group"):
        a, b = d.loc[d["step"] < first + w, "extremity"], d.loc[d["step"] > last - w, "extremity"]
        welch = 2 * 1.96 * math.sqrt(a.var() / len(a) + b.var() / len(b))
        width = pol.loc[g, "high"] - pol.loc[g, "low"]
        assert 0.75 < width / welch < 1.33, (g, width, welch)
        assert pol.loc[g, "low"] < pol.loc[g, "change"] < pol.loc[g, "high"]
    roles = roles_table(log)
    assert set(roles["silhouette"]["k"]) == {2, 3, 4, 5, 6}
    assert roles["roles"]["users"].sum() == 120
    tables = social_tables(log)
    assert {"cascades", "power_law", "adoption", "herd", "polarization", "roles"} <= set(tables)


def test_analyze_cli_writes_tables_and_plots(x_run: Path, tmp_path: Path) -> None:
    r = agentsim_cli("analyze", str(x_run), "escalation")
    assert r.returncode == 2 and "a social run; the escalation analysis reads wargame runs" in r.stderr
    r = agentsim_cli("analyze", str(x_run), "social", "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr[-3000:]
    for name in ("social_cascades.csv", "social_power_law.csv", "social_adoption.csv", "social_cascade_ccdf.png", "social_polarization.png"):
        assert (tmp_path / "out" / name).exists(), name


# -- analyses against known answers ----------------------------------------------------------------------
def _events(rows: list[tuple[int, int | None, str, int, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["event_id", "parent_event_id", "action", "step", "agent_id"]).astype({"parent_event_id": "Int64"})


def test_hand_built_tree_has_known_shape() -> None:
    #   A(0) -> B(1) -> D(3) -> E(4);  A -> C(2);  F(5) alone;  a like (6) on A is not part of the tree.
    ev = _events([(0, None, "create_post", 0, "a"), (1, 0, "repost", 1, "b"), (2, 0, "quote_post", 1, "c"), (3, 1, "repost", 2, "d"),
                  (4, 3, "repost", 3, "e"), (5, None, "create_post", 0, "f"), (6, 0, "like_post", 1, "g")])
    m = cascade_metrics(cascade_nodes(ev)).set_index("root")
    assert m.loc[0, "size"] == 5 and m.loc[0, "depth"] == 3 and m.loc[0, "max_breadth"] == 2 and m.loc[0, "users"] == 5
    # Mean distance over the 10 pairs: (1+1+2+3 + 2+1+2 + 3+4 + 1) / 10 = 2.0; networkx agrees.
    g = nx.Graph([(0, 1), (0, 2), (1, 3), (3, 4)])
    assert m.loc[0, "structural_virality"] == pytest.approx(2.0) == pytest.approx(nx.average_shortest_path_length(g))
    assert m.loc[5, "size"] == 1 and math.isnan(m.loc[5, "structural_virality"])
    growth = cascade_growth(cascade_nodes(ev), roots=[0]).set_index("t")
    assert growth["size"].tolist() == [1, 3, 4, 5] and growth["depth"].tolist() == [0, 1, 2, 3]


def test_structural_virality_matches_networkx_on_random_trees() -> None:
    rng = np.random.default_rng(3)
    rows, eid = [], 0
    trees = []
    for _ in range(20):
        n = int(rng.integers(2, 40))
        base = eid
        rows.append((eid, None, "create_post", 0, "r"))
        edges = []
        for i in range(1, n):
            p = base + int(rng.integers(0, i))
            rows.append((base + i, p, "repost", i, f"u{i}"))
            edges.append((p, base + i))
        eid += n
        trees.append((base, nx.Graph(edges)))
    m = cascade_metrics(cascade_nodes(_events(rows))).set_index("root")
    for root, g in trees:
        assert m.loc[root, "structural_virality"] == pytest.approx(nx.average_shortest_path_length(g))
        assert m.loc[root, "depth"] == max(nx.shortest_path_length(g, root).values())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_power_law_fit_recovers_alpha(seed: int) -> None:
    sizes = st.zipf(2.5).rvs(20_000, random_state=np.random.default_rng(seed))
    res, _ = fit_power_law(sizes)
    assert abs(res["alpha"] - 2.5) <= 0.05, res
    assert res["R_vs_exponential"] > 0  # a power law beats an exponential on power-law data


def test_nrmse() -> None:
    ref = np.array([0.0, 2.0, 4.0])
    assert nrmse(ref, ref) == 0.0
    assert nrmse(ref + 1.0, ref) == pytest.approx(1.0 / 4.0)
    sim = pd.DataFrame({"t": [0, 1, 2], "scale": [0, 2, 4], "depth": [0, 1, 1], "max_breadth": [1, 1, 1]})
    refdf = pd.DataFrame({"t": [0, 1, 2], "scale": [0, 2, 4], "depth": [0, 1, 2], "max_breadth": [1, 1, 1]})
    c = compare_growth(sim, refdf).set_index("metric")["nrmse"]
    assert c["scale"] == 0 and c["depth"] == pytest.approx(math.sqrt(1 / 3) / 2)


def test_cox_recovers_a_known_hazard_ratio() -> None:
    """Subjects whose exposure steps up at random times; hazard = 0.05 * 1.6**exposure, piecewise constant."""
    rng = np.random.default_rng(0)
    hr, base = 1.6, 0.05
    rows = []
    for sid in range(4000):
        t, exposure = 0.0, 1
        changes = np.sort(rng.uniform(0, 30, rng.integers(0, 4)))
        for stop in [*changes.tolist(), 30.0]:
            wait = rng.exponential(1 / (base * hr**exposure))
            if t + wait < stop:
                rows.append((sid, t, t + wait, exposure, 1))
                break
            rows.append((sid, t, stop, exposure, 0))
            t, exposure = stop, exposure + 1
    res = fit_exposure_hazard(pd.DataFrame(rows, columns=["id", "start", "stop", "exposure", "event"]))
    assert abs(res["hazard_ratio"] - hr) < 0.1 and res["hr_low"] < hr < res["hr_high"]
    assert res["concordance"] > 0.5


def test_exposure_intervals_by_hand() -> None:
    # u follows a and b. a adopts at step 1, b at step 3, u at step 5: u is exposed from step 2 (1 followee) and
    # from step 4 (2 followees), adopts at 5. v follows a only and never adopts: censored at end + 1 = 8.
    edges = pd.DataFrame({"follower": ["u", "u", "v"], "followee": ["a", "b", "a"]})
    adoptions = pd.DataFrame({"agent_id": ["a", "b", "u"], "cascade": [7, 7, 7], "step": [1, 3, 5]})
    iv = exposure_intervals(adoptions, edges, end_step=7)
    u = iv[iv["event"].astype(bool) | (iv["exposure"] == 2)]
    assert u[["start", "stop", "exposure", "event"]].values.tolist() == [[2, 4, 2, 1]]
    rows = sorted(iv[["start", "stop", "exposure", "event"]].values.tolist())
    assert rows == [[0, 2, 1, 0], [0, 6, 1, 0], [2, 4, 2, 1]]


# -- bad input -----------------------------------------------------------------------------------------------
def test_bad_social_yaml_is_a_clear_error(tmp_path: Path) -> None:
    users = tmp_path / "users.csv"
    users.write_text("id,bio\nalice,hi\n")
    f = write_scenario(tmp_path, SOCIAL / "x_information_spread.yaml", **{"world.users": {"file": str(users)}})
    with pytest.raises(SpecError, match=r"lacks column\(s\) \['user_id'\]"):
        load_scenario(f)
    f = write_scenario(tmp_path, SOCIAL / "x_information_spread.yaml", **{"world.time.activity": {"probability": 0.1, "hourly": [0.1] * 24}})
    with pytest.raises(SpecError, match="exactly one of 'probability'"):
        load_scenario(f)
    f = write_scenario(tmp_path, SOCIAL / "x_information_spread.yaml", **{"world.actions": ["create_post", "retweet"]})
    with pytest.raises(SpecError, match="retweet"):
        load_scenario(f)


def test_users_follows_and_posts_from_files(tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text("user_id,name,bio,interests,group\nalice,Alice,I bike,cycling;climate,greens\n"
                                        "bob,Bob,I drive,cars,drivers\ncarol,Carol,News,news,greens\n")
    (tmp_path / "follows.parquet").parent.mkdir(exist_ok=True)
    pd.DataFrame({"follower": ["alice", "bob", "carol"], "followee": ["carol", "alice", "alice"]}).to_parquet(tmp_path / "follows.parquet")
    (tmp_path / "posts.csv").write_text("author,content,timestamp\ncarol,Bike lanes open today,2024-01-01T07:00:00Z\nbob,Traffic is bad,1704088800\n")
    f = write_scenario(tmp_path, SOCIAL / "x_information_spread.yaml", steps=3, **{
        "world.users": {"file": str(tmp_path / "users.csv"), "groups": [{"name": "greens"}, {"name": "drivers"}]},
        "world.network": {"follows_file": str(tmp_path / "follows.parquet")},
        "world.seed_posts": {"file": str(tmp_path / "posts.csv")}, "world.interventions": [], "world.time.activity": {"probability": 1.0}})
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "run"), "--quiet")
    log = RunLog(tmp_path / "run")
    agents = log.agents.set_index("agent_id")
    bob = json.loads(agents.loc["bob", "persona"])
    assert bob["followees"] == ["alice"] and bob["name"] == "Bob" and bob["interests"] == ["cars"] and agents.loc["bob", "group"] == "drivers"
    seeds = log.events[(log.events["step"] == 0) & (log.events["phase"] == "platform")]
    # In time order: 1704088800 is 06:00, before the 07:00 post.
    assert [json.loads(p)["content"] for p in seeds["payload"]] == ["Traffic is bad", "Bike lanes open today"]
    (tmp_path / "bad.csv").write_text("follower,followee\nalice,mallory\n")
    f = write_scenario(tmp_path, SOCIAL / "x_information_spread.yaml", **{
        "world.users": {"file": str(tmp_path / "users.csv"), "groups": [{"name": "greens"}, {"name": "drivers"}]},
        "world.network": {"follows_file": str(tmp_path / "bad.csv")}})
    r = agentsim_cli("run", str(f), "--backend", "scripted", "--quiet")
    assert r.returncode == 2 and "bad.csv row 1 (id 'alice'): field followee: 'mallory' is not among the users" in r.stderr
    assert "Traceback" not in r.stderr


# -- the LLM path --------------------------------------------------------------------------------------------
@pytest.mark.vllm
def test_tiny_model_social_run(tiny_model: Path, tmp_path: Path) -> None:
    """Real vLLM with guided JSON: every answer is a valid action or logged invalid; none crashes the run."""
    f = write_scenario(tmp_path, SOCIAL / "x_information_spread.yaml", steps=2, models=tiny_models(tiny_model, max_tokens=48),
                       **{"world.users.count": 60})
    run_ok(str(f), "--run-dir", str(tmp_path / "run"), "--quiet")
    log = RunLog(tmp_path / "run")
    calls = log.llm_calls
    assert len(calls) > 10 and (calls["backend"] == "vllm").all() and calls["completion_tokens"].sum() > 0
    users = log.events[log.events["phase"] == "users"]
    acted = set(users["agent_id"])
    assert acted <= set(calls["agent_id"])
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "completed"


def test_parse_scenario_accepts_a_dict_for_a_million_users() -> None:
    sc = parse_scenario({"kind": "social", "name": "big", "steps": 1, "models": {"default": {"backend": "scripted"}},
                         "world": {"users": {"count": 1_000_000}, "network": {"generator": "random_follows"}},
                         "population": {"overrides": {"u999999": "default"}}})
    assert sc.world.users.count == 1_000_000
    with pytest.raises(SpecError, match="no user named 'u1000000'"):
        parse_scenario({"kind": "social", "name": "big", "steps": 1, "models": {"default": {"backend": "scripted"}},
                        "world": {"users": {"count": 1_000_000}}, "population": {"overrides": {"u1000000": "default"}}})
