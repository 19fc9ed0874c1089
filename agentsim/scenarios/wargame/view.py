"""The wargame's panel in `agentsim view`: escalation score per day with its category stack, the nations' states
at the scrubbed day, and the message graph up to it. The scores are agentsim.analysis.escalation's tables (the
same as `agentsim analyze RUN escalation`); the viewer only draws them."""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import panel as pn
from matplotlib.ticker import MaxNLocator

from agentsim.analysis.escalation import CATEGORIES, WEIGHTS, escalation_tables
from agentsim.view.data import MAX_ROWS
from agentsim.view.panels import ViewContext, empty_note, figure, new_figure, table

#: Colours of the escalation categories, most escalating first (nuclear red ... de-escalation green).
COLOURS = {"nuclear": "#7b1f1f", "violent_escalation": "#d9534f", "non_violent_escalation": "#f0ad4e",
           "posturing": "#5bc0de", "de_escalation": "#5cb85c", "status_quo": "#cccccc"}


def build(ctx: ViewContext) -> Any:
    data = ctx.data

    def tables() -> dict[str, Any]:
        return data.memo("escalation_tables", lambda: escalation_tables(data.log))

    def escalation(step: int) -> Any:
        per_day = tables()["per_day"]
        if per_day.empty:
            return empty_note("no day has completed yet")
        day = step + 1
        fig = new_figure(9, 3.6)
        ax = fig.subplots()
        days = per_day["day"].to_numpy()
        pos = np.zeros(len(days))
        neg = np.zeros(len(days))
        n = max(int(data.sql("SELECT count(*) AS n FROM agents WHERE kind = 'nation'")["n"].iloc[0]), 1)
        for c in CATEGORIES:
            v = per_day[f"points_{c}"].to_numpy(dtype=float) / n
            base = np.where(v >= 0, pos, neg)
            ax.bar(days, v, bottom=base, color=COLOURS[c], label=f"{c} ({WEIGHTS[c]:+d})", width=0.8)
            pos = pos + np.where(v >= 0, v, 0)
            neg = neg + np.where(v < 0, v, 0)
        ax.plot(days, per_day["es"], color="black", marker="o", ms=3, label="ES_t")
        ax.axvline(day, color="#d9534f", ls="--", lw=1)
        ax.set_xlabel("day")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("points / nation")
        ax.set_title("Escalation score per day (ES_t = weighted total / nations), by category")
        ax.margins(y=0.15)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        cols = ["day", "es", "total", "n_actions", "n_messages", "n_nuclear", "n_invalid", "n_refused"]
        shown = per_day[per_day["day"] <= day][cols]
        return pn.Column(figure(fig, 820), table(shown, "escalation-per-day", f"Per day, up to day {day} (analysis.escalation)"))

    def states(step: int) -> Any:
        df = data.sql("SELECT agent_id AS nation, replace(metric, 'state/', '') AS attribute, value FROM metrics "
                      "WHERE step = ? AND metric LIKE 'state/%' AND agent_id IS NOT NULL LIMIT ?", [step, MAX_ROWS * 20])
        if df.empty:
            return empty_note(f"no nation states logged at step {step}")
        wide = df.pivot_table(index="nation", columns="attribute", values="value", aggfunc="first").reset_index()
        return table(wide, "nation-states", f"Nation states after day {step + 1}")

    def messages(step: int) -> Any:
        edges = data.sql("SELECT agent_id AS sender, coalesce(target, 'World') AS recipient, count(*) AS messages FROM events "
                         "WHERE action = 'Message' AND phase = 'nations' AND step <= ? GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT ?",
                         [step, MAX_ROWS])
        if edges.empty:
            return empty_note(f"no messages up to day {step + 1}")
        g = nx.DiGraph()
        for s, r, k in edges.itertuples(index=False):
            g.add_edge(s, r, weight=int(k))
        fig = new_figure(5.5, 5.5)
        ax = fig.subplots()
        layout = nx.circular_layout(sorted(g.nodes))
        widths = [0.5 + 2.5 * d["weight"] / edges["messages"].max() for _, _, d in g.edges(data=True)]
        nx.draw_networkx(g, layout, ax=ax, width=widths, node_color="#dde8f5", node_size=900, font_size=8,
                         arrowsize=10, connectionstyle="arc3,rad=0.08", edge_color="#555")
        ax.set_title(f"Messages up to day {step + 1} (width: count)", fontsize=9)
        ax.set_axis_off()
        return pn.Row(figure(fig, 460), table(edges, "message-graph", "Message counts"))

    return pn.Column(ctx.live(escalation, "escalation"), ctx.live(states, "nation states"),
                     ctx.live(messages, "message graph"), sizing_mode="stretch_width")
