"""The tournament's panel in `agentsim view`: standings after each round up to the scrubbed one and that round's
pairings (live tournaments), or the expected scores and their sensitivity (CSD). Tables are
agentsim.analysis.tournament's (standings with Buchholz and Sonneborn-Berger, tournament_tables)."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import panel as pn

from agentsim.analysis.tournament import standings, tournament_tables
from agentsim.view.data import MAX_ROWS
from agentsim.view.panels import ViewContext, empty_note, table


def build(ctx: ViewContext) -> Any:
    data = ctx.data

    def results(step: int) -> pd.DataFrame:
        return data.sql("SELECT event_id, step, phase, agent_id, action, target, payload FROM events "
                        "WHERE action IN ('match', 'bye') AND step <= ? ORDER BY event_id LIMIT ?", [int(step), MAX_ROWS * 20])

    def live(step: int) -> Any:
        ev = results(step)
        if ev.empty:
            csd = data.memo("tournament_tables", lambda: tournament_tables(data.log, bootstrap=0))
            if "expected_scores" in csd:
                out = [table(csd["expected_scores"], "expected-scores", "Expected scores (CSD; analysis.tournament)")]
                if "sensitivity" in csd:
                    out.append(table(csd["sensitivity"], "sensitivity", "Sensitivity to failures"))
                return pn.Column(*out)
            return empty_note(f"no matches up to step {step}")
        table_now = standings(ev)
        pairs = ev[(ev["step"] == ev["step"].max()) & (ev["action"] == "match")]
        rows = []
        for a, b, p in zip(pairs["agent_id"], pairs["target"], pairs["payload"], strict=True):
            d = json.loads(p)
            rows.append({"round": d.get("round"), "a": a, "b": b, "score_a": d.get("score_a")})
        rounds = sorted({json.loads(p).get("round") for p in ev.loc[ev["action"] == "match", "payload"]} - {None})
        return pn.Row(
            table(table_now, "standings", f"Standings after round {rounds[-1] if rounds else '?'} (analysis.tournament)"),
            table(pd.DataFrame(rows, columns=["round", "a", "b", "score_a"]), "pairings",
                  f"Pairings of step {int(ev['step'].max())}"))

    return pn.Column(ctx.live(live, "tournament"), sizing_mode="stretch_width")
