"""Tournament analyses of a run log: CSD expected scores and failure sensitivity, live standings with
Buchholz / Sonneborn-Berger tiebreaks, and ratings (Elo, Bradley-Terry with bootstrap CIs) from the match log."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from agentsim.analysis.ratings import rating_tables, tiebreaks
from agentsim.analysis.tables import TableError, check_table, empty, note_empty_tables

EVENTS = {"action": "str", "agent_id": "any", "target": "any", "payload": "any"}


def _payloads(rows: pd.DataFrame, what: str, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """The JSON payloads of `rows` ('match' or 'bye' events), each with `keys`; a TableError names the row."""
    out = []
    for i, p in zip(rows.index, rows["payload"], strict=True):
        try:
            d = json.loads(p)
            missing = [k for k in keys if k not in d]
        except (TypeError, ValueError) as e:
            raise TableError(f"events table: '{what}' event at row {i}: payload is not JSON ({type(e).__name__}: {p!r})") from None
        if missing:
            raise TableError(f"events table: '{what}' event at row {i}: payload lacks {missing} (has {sorted(d)})")
        out.append(d)
    return out


def match_log(events: pd.DataFrame) -> pd.DataFrame:
    """Matches in play order as columns round, a, b, score_a (the input of every rating method), from the `match`
    events (agent_id plays target; payload {"round": ..., "score_a": ...}). The table is checked first."""
    check_table(events, "events table", EVENTS, nullable=["target", "payload"])
    m = events[events["action"] == "match"]
    check_table(m, "events table ('match' events)", {"target": "any", "payload": "str"})
    p = _payloads(m, "match", ("round", "score_a"))
    try:
        score = [float(d["score_a"]) for d in p]
    except (TypeError, ValueError):
        i = next(i for i, d in zip(m.index, p, strict=True) if not isinstance(d["score_a"], int | float))
        raise TableError(f"events table: 'match' event at row {i}: score_a must be a number") from None
    return pd.DataFrame({"round": [d["round"] for d in p], "a": m["agent_id"].to_numpy(), "b": m["target"].to_numpy(), "score_a": score})


STANDINGS_COLUMNS = ["place", "player", "points", "buchholz", "sonneborn_berger"]


def standings(events: pd.DataFrame) -> pd.DataFrame:
    """Points per player (matches plus byes) with Buchholz and Sonneborn-Berger tiebreaks, in final order."""
    matches = match_log(events)
    byes = events[events["action"] == "bye"]
    pts: dict[str, float] = {}
    for a, b, s in matches[["a", "b", "score_a"]].itertuples(index=False):
        pts[a] = pts.get(a, 0.0) + s
        pts[b] = pts.get(b, 0.0) + 1 - s
    for who, d in zip(byes["agent_id"], _payloads(byes, "bye", ("points",)), strict=True):
        pts[who] = pts.get(who, 0.0) + float(d["points"])
    if not pts:
        return empty(STANDINGS_COLUMNS, "no matches or byes")
    tb = tiebreaks(list(matches[["a", "b", "score_a"]].itertuples(index=False, name=None)), pts)
    rows = [{"player": p, "points": v, **tb[p]} for p, v in pts.items()]
    df = pd.DataFrame(rows).sort_values(["points", "buchholz", "sonneborn_berger", "player"], ascending=[False, False, False, True])
    df.insert(0, "place", range(1, len(df) + 1))
    return df.reset_index(drop=True)


def tournament_tables(log: Any, bootstrap: int = 200) -> dict[str, pd.DataFrame]:
    """CSD runs: expected_scores (and sensitivity); live runs: standings, ratings, rank_agreement. A run with no
    results yet (killed before its first round) gives these tables empty, with a note."""
    events, metrics = log.events, log.metrics
    mode = (log.spec.get("world") or {}).get("mode")
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
    elif mode == "csd":
        out["expected_scores"] = empty(["model", "expected_score", "std_error", "rank"], "no expected scores in this run")
    if (events["action"] == "match").any():
        out["standings"] = standings(events)
        out.update(rating_tables(match_log(events), bootstrap=bootstrap))
    elif mode != "csd":
        why = "no matches in this run"
        out["standings"] = empty(STANDINGS_COLUMNS, why)
        out["ratings"] = empty(["player", "strength", "ci_low", "ci_high", "elo", "match_points"], why)
        out["rank_agreement"] = empty(["method_a", "method_b", "players", "kendall_tau", "spearman_rho"], why)
    note_empty_tables(out, log)
    return out
