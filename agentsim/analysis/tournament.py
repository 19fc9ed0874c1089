"""Tournament analyses of a run log: CSD expected scores and failure sensitivity, live standings with
Buchholz / Sonneborn-Berger tiebreaks, and ratings (Elo, Bradley-Terry with bootstrap CIs) from the match log."""

from __future__ import annotations

import json

import pandas as pd

from agentsim.analysis.ratings import rating_tables, tiebreaks


def match_log(events: pd.DataFrame) -> pd.DataFrame:
    """Matches in play order as columns a, b, score_a (the input of every rating method)."""
    m = events[events["action"] == "match"]
    return pd.DataFrame({
        "round": [json.loads(p)["round"] for p in m["payload"]],
        "a": m["agent_id"].to_numpy(),
        "b": m["target"].to_numpy(),
        "score_a": [float(json.loads(p)["score_a"]) for p in m["payload"]],
    })


def standings(events: pd.DataFrame) -> pd.DataFrame:
    matches = match_log(events)
    byes = events[events["action"] == "bye"]
    pts: dict[str, float] = {}
    for a, b, s in matches[["a", "b", "score_a"]].itertuples(index=False):
        pts[a] = pts.get(a, 0.0) + s
        pts[b] = pts.get(b, 0.0) + 1 - s
    for who, p in zip(byes["agent_id"], byes["payload"], strict=True):
        pts[who] = pts.get(who, 0.0) + float(json.loads(p)["points"])
    tb = tiebreaks(list(matches[["a", "b", "score_a"]].itertuples(index=False, name=None)), pts)
    rows = [{"player": p, "points": v, **tb[p]} for p, v in pts.items()]
    df = pd.DataFrame(rows).sort_values(["points", "buchholz", "sonneborn_berger", "player"], ascending=[False, False, False, True])
    df.insert(0, "place", range(1, len(df) + 1))
    return df.reset_index(drop=True)


def tournament_tables(log, bootstrap: int = 200) -> dict[str, pd.DataFrame]:
    events, metrics = log.events, log.metrics
    out: dict[str, pd.DataFrame] = {}
    if (metrics["metric"] == "expected_score").any():
        last = metrics["step"].max()
        final = metrics[metrics["step"] == last]
        es = final[final["metric"] == "expected_score"].set_index("agent_id")["value"].rename("expected_score")
        se = final[final["metric"] == "std_error"].set_index("agent_id")["value"].rename("std_error")
        table = pd.concat([es, se], axis=1).reset_index(names="model")
        table["rank"] = table["expected_score"].rank(ascending=False, method="min").astype(int)
        out["expected_scores"] = table.sort_values(["rank", "model"]).reset_index(drop=True)
        sens = events[events["action"] == "sensitivity"]
        if len(sens):
            rows = [{"model": a, **json.loads(p)} for a, p in zip(sens["agent_id"], sens["payload"], strict=True)]
            out["sensitivity"] = pd.DataFrame(rows)
    if (events["action"] == "match").any():
        out["standings"] = standings(events)
        out.update(rating_tables(match_log(events), bootstrap=bootstrap))
    if not out:
        raise KeyError("no tournament results (no 'match' events and no 'expected_score' metrics)")
    return out
