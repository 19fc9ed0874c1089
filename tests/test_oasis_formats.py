"""OASIS's data files in (agentsim/scenarios/social/oasis.py): the Twitter users CSV, the Reddit users JSON and the
counterfactual posts, built here in OASIS's layout; every bad cell is named by file, row and field."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from agentsim.core.datafile import DataFileError
from agentsim.logs.reader import RunLog
from agentsim.scenarios.social.oasis import oasis_activity
from agentsim.scenarios.social.population import load_users
from agentsim.spec.errors import SpecError
from agentsim.spec.loader import load_scenario, prepare_scenario

from conftest import SCENARIOS, write_scenario
from test_runs import agentsim_cli, run_ok

X = SCENARIOS / "social" / "x_information_spread.yaml"
# OASIS's Twitter users CSV header (data/twitter_dataset/anonymous_topic_200_1h/*.csv), leading pandas index included.
HEADER = ["", "user_id", "name", "username", "description", "created_at", "followers_count", "following_count", "following_list",
          "following_agentid_list", "previous_tweets", "tweets_id", "activity_level_frequency", "activity_level", "user_char"]


def twitter_csv(path: Path, n: int = 5, **cells: dict[int, str]) -> Path:
    """n users in OASIS's layout: user i follows user 0 (row positions), user 0 holds the source post; `cells` maps a
    column to {row: text} to put bad values in."""
    rows = []
    for i in range(n):
        row = {"": str(i), "user_id": str(500 + i), "name": f"User {i}", "username": f"user{i}", "description": f"bio {i}",
               "created_at": "2009-05-06 15:58:48+00:00", "followers_count": "10", "following_count": "1",
               "following_list": "['500']" if i else "[]", "following_agentid_list": "[0]" if i else "[]",
               "previous_tweets": "['the source post']" if i == 0 else "[]", "tweets_id": "[]",
               "activity_level_frequency": str([i + 1] * 24), "activity_level": str(["busy"] * 24), "user_char": f"profile {i}"}
        for col, by_row in cells.items():
            if i in by_row:
                row[col] = by_row[i]
        rows.append(row)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_twitter_users_csv_is_read_as_oasis_reads_it(tmp_path: Path) -> None:
    users = load_users(twitter_csv(tmp_path / "topic.csv"), None, None)
    assert users.fmt == "oasis_twitter" and users.ids == ["user0", "user1", "user2", "user3", "user4"]
    assert users.names == [f"User {i}" for i in range(5)] and users.bios[2] == "profile 2"
    assert users.follows == [[], [0], [0], [0], [0]]
    assert users.posts == ((0, "the source post"),)
    # OASIS's generate_agents: counts / the file's largest count (5), +0.1 where below 0.6, rounded to 2 decimals.
    assert users.activity[:, 0].tolist() == [0.3, 0.5, 0.6, 0.8, 1.0]
    assert "told" not in users.notes[0] and "OASIS's Twitter users CSV" in users.notes[0]
    assert "(the unnamed index column), created_at, followers_count, following_count, following_list, tweets_id, activity_level" in users.notes[1]


def test_oasis_activity_normalisation_by_hand() -> None:
    freq = np.array([[0, 2, 10, 6], [1, 3, 5, 8]], float)
    np.testing.assert_allclose(oasis_activity(freq), [[0.1, 0.3, 1.0, 0.6], [0.2, 0.4, 0.6, 0.8]])


def test_follows_by_id_reads_following_list(tmp_path: Path) -> None:
    f = twitter_csv(tmp_path / "t.csv", following_agentid_list={3: "[99]"}, following_list={3: "['502', '501']"})
    assert load_users(f, None, "oasis_twitter", "id").follows[3] == [2, 1]
    with pytest.raises(DataFileError) as e:
        load_users(f, None, "oasis_twitter", "row")  # 99 is no row position
    assert "row 4 (id 'user3'): field following_agentid_list: [99] is not a row position" in str(e.value)


BAD = [
    ("following_agentid_list", {2: "[7]"}, "row 3 (id 'user2'): field following_agentid_list: [7] is not a row position of this file (0-based, as OASIS's agent ids: 0..4"),
    ("following_agentid_list", {1: "[0, 1"}, "row 2 (id 'user1'): field following_agentid_list: '[0, 1' is not a list"),
    ("following_agentid_list", {1: "['a']"}, "row 2 (id 'user1'): field following_agentid_list.0"),
    ("previous_tweets", {0: "a post without brackets"}, "row 1 (id 'user0'): field previous_tweets"),
    ("activity_level_frequency", {4: str([1] * 23)}, "row 5 (id 'user4'): field activity_level_frequency"),
    ("activity_level_frequency", {3: str([1] * 23 + [-2])}, "row 4 (id 'user3'): field activity_level_frequency.23"),
    ("username", {2: ""}, "row 3: field username"),
    ("username", {2: " user2"}, "row 3 (id ' user2'): field username"),
]


@pytest.mark.parametrize(("column", "cells", "expected"), BAD, ids=[f"{c}-{list(v.values())[0][:12]}" for c, v, _ in BAD])
def test_every_bad_cell_names_file_row_and_field(tmp_path: Path, column: str, cells: dict[int, str], expected: str) -> None:
    f = twitter_csv(tmp_path / "t.csv", **{column: cells})
    with pytest.raises(DataFileError) as e:
        load_users(f, None, "oasis_twitter")
    assert str(f) in str(e.value) and expected in str(e.value), str(e.value)


def test_an_active_threshold_column_is_used_as_given(tmp_path: Path) -> None:
    f = twitter_csv(tmp_path / "t.csv")
    text = f.read_text().splitlines()
    text[0] += ",active_threshold"
    for i in range(1, len(text)):
        text[i] += ',"' + str([0.0] * 24 if i == 2 else [1.0] * 24) + '"'
    f.write_text("\n".join(text) + "\n")
    sc = prepare_scenario(write_scenario(tmp_path, X, **{"world.users": {"file": str(f)}, "world.interventions": [],
                                                         "world.seed_posts.count": 0}),
                          [])
    w = sc.family.create_world(sc.spec, sc.world)
    from agentsim.core.world import StepContext

    acted = set()
    for step in range(6):
        acted |= set(w.active_users(StepContext(step, w.sim_time(step), np.random.default_rng(step), 0)).tolist())
    assert acted == {0, 2, 3, 4}  # user1 (threshold 0 every hour) never acts; the others always do


def test_a_run_on_an_oasis_file_uses_its_network_and_source_post_and_reports_unused_columns(tmp_path: Path) -> None:
    f = twitter_csv(tmp_path / "topic.csv", n=8)
    scen = write_scenario(tmp_path, X, steps=3, **{"world.users": {"file": str(f)}, "world.interventions": [], "world.seed_posts.count": 0})
    out = agentsim_cli("validate", str(scen), "--backend", "scripted")
    assert out.returncode == 0, out.stderr
    assert "note: topic.csv: read as OASIS's Twitter users CSV" in out.stdout and "tweets_id" in out.stdout
    run_ok(str(scen), "--backend", "scripted", "--run-dir", str(tmp_path / "run"), "--quiet")
    log = RunLog(tmp_path / "run")
    assert any("does not use" in n for n in log.meta["world_notes"])
    first = log.events.iloc[0]
    assert first["action"] == "create_post" and first["agent_id"] == "user0" and "the source post" in first["payload"]
    followees = {a: json.loads(p)["followees"] for a, p in zip(log.agents["agent_id"], log.agents["persona"], strict=True) if p}
    assert followees["user0"] == [] and all(followees[f"user{i}"] == ["user0"] for i in range(1, 8))


def test_json_where_csv_is_expected_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "users.csv"
    f.write_text(json.dumps([{"username": "a"}]))
    scen = write_scenario(tmp_path, X, **{"world.users": {"file": str(f), "format": "agentsim"}})
    out = agentsim_cli("validate", str(scen), "--backend", "scripted")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "looks like JSON (it starts with '[')" in out.stderr and "world.users.file" in out.stderr


def reddit_json(path: Path, **change) -> Path:
    users = [{"realname": f"Real {i}", "username": f"r{i}", "bio": f"bio {i}", "persona": f"persona {i}", "age": 30 + i,
              "gender": "female", "mbti": "INTJ", "country": "UK", "profession": "baker", "interested_topics": ["bread"],
              "karma": 12} for i in range(4)]
    for k, v in change.items():
        users[1][k] = v
    path.write_text(json.dumps(users))
    return path


def test_reddit_users_json(tmp_path: Path) -> None:
    users = load_users(reddit_json(tmp_path / "u.json"), None, None)
    assert users.fmt == "oasis_reddit" and users.ids == ["r0", "r1", "r2", "r3"] and users.names[0] == "Real 0"
    assert users.bios[1] == "bio 1 persona 1 (31 years old, female, INTJ, from UK, baker)"
    assert users.topics[0] == ["bread"] and any("karma" in n for n in users.notes)


@pytest.mark.parametrize(("change", "expected"), [
    ({"age": "old"}, "row 2 (id 'r1'): field age"),
    ({"age": -3}, "row 2 (id 'r1'): field age"),
    ({"interested_topics": "bread"}, "row 2 (id 'r1'): field interested_topics"),
    ({"username": None}, "row 2: field username"),
])
def test_bad_reddit_users_name_row_and_field(tmp_path: Path, change: dict, expected: str) -> None:
    with pytest.raises(DataFileError) as e:
        load_users(reddit_json(tmp_path / "u.json", **change), None, "oasis_reddit")
    assert expected in str(e.value), str(e.value)


def test_broken_json_names_line_and_column(tmp_path: Path) -> None:
    f = tmp_path / "u.json"
    f.write_text('[\n  {"username": "a"},\n  {"username": "b",}\n]')
    with pytest.raises(DataFileError) as e:
        load_users(f, None, None)
    assert "u.json line 3 column" in str(e.value)
    f.write_text('{"username": "a"}')
    with pytest.raises(DataFileError, match="must hold a JSON list of objects; it holds a dict"):
        load_users(f, None, None)


def test_counterfactual_posts_get_their_preassigned_arms(tmp_path: Path) -> None:
    items = [{"RS": {"title": "None", "selftext": f"context {i}"}, "RC_1": {"body": f"claim {i}", "group": g}}
             for i, g in enumerate(["up", "down", "control", "up", "down", "control"])]
    cf = tmp_path / "cf.json"
    cf.write_text(json.dumps(items))
    scen = write_scenario(tmp_path, SCENARIOS / "social" / "reddit_herd_effect.yaml", steps=4, **{
        "world.users": {"file": str(reddit_json(tmp_path / "u.json"))},
        "world.interventions": [{"kind": "counterfactual_posts", "file": str(cf), "per_step": 2, "from_step": 1}]})
    run_ok(str(scen), "--backend", "scripted", "--run-dir", str(tmp_path / "run"), "--quiet")
    log = RunLog(tmp_path / "run")
    ev = log.events
    tr = ev[ev["action"] == "treatment"]
    assert [json.loads(p)["treatment"] for p in tr["payload"]] == [it["RC_1"]["group"] for it in items]
    assert tr.groupby("step").size().to_dict() == {1: 2, 2: 2, 3: 2}
    posted = ev[(ev["action"] == "create_post") & (ev["agent_id"] == "post_bot")]
    assert [json.loads(p)["content"] for p in posted["payload"]] == [f"claim {i}" for i in range(6)]
    from agentsim.analysis.social import herd_table

    herd = herd_table(log).set_index("treatment")
    assert herd.loc[["up", "control", "down"], "posts"].tolist() == [2, 2, 2]


def test_a_bad_counterfactual_item_names_row_and_field(tmp_path: Path) -> None:
    cf = tmp_path / "cf.json"
    cf.write_text(json.dumps([{"RC_1": {"body": "x", "group": "up"}}, {"RC_1": {"body": "y", "group": "sideways"}}]))
    scen = write_scenario(tmp_path, SCENARIOS / "social" / "reddit_herd_effect.yaml",
                          **{"world.interventions": [{"kind": "counterfactual_posts", "file": str(cf)}]})
    with pytest.raises(SpecError) as e:
        load_scenario(scen)
    assert "world.interventions.0.file" in str(e.value) and "cf.json row 2: field RC_1.group: 'sideways' is not allowed" in str(e.value)
