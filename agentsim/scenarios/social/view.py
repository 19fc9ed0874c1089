"""The social platform's panel in `agentsim view`: a sample of the follow network, the cascades up to the scrubbed
step (the largest drawn as a tree), the feed composition and what users did per step.

Sized for a million users: the network sample is drawn in DuckDB (at most `MAX_NODES` nodes reach the page), the
cascade forest is rebuilt by agentsim.analysis.cascades from the post and share events only (its vectorized
code; ten million events take seconds), and every table sent is capped."""

from __future__ import annotations

from typing import Any

import networkx as nx
import pandas as pd
import panel as pn

from agentsim.analysis.cascades import ROOT_ACTIONS, SHARE_ACTIONS, cascade_metrics, cascade_nodes
from agentsim.analysis.social import activity_table
from agentsim.view.panels import ViewContext, empty_note, figure, new_figure, table

#: The most nodes of the follow-network sample and of a drawn cascade tree.
MAX_NODES = 2000
MAX_TREE = 400
#: Users whose followees seed the network sample.
SAMPLE_USERS = 60


def network_sample(ctx: ViewContext, max_nodes: int = MAX_NODES, users: int = SAMPLE_USERS) -> pd.DataFrame:
    """(follower, followee) edges of the initial follow network (agents.persona `followees`) of `users` users
    picked by a hash of their id (the same sample on every refresh), cut so at most `max_nodes` users appear."""
    edges = ctx.data.sql(
        "WITH s AS (SELECT agent_id, persona FROM agents WHERE persona IS NOT NULL ORDER BY hash(agent_id) LIMIT ?) "
        "SELECT agent_id AS follower, unnest(CAST(json_extract(persona, '$.followees') AS VARCHAR[])) AS followee FROM s "
        "LIMIT ?", [int(users), int(max_nodes) * 4])
    seen: set[str] = set()
    keep = []
    for f, t in edges.itertuples(index=False):
        new = {f, t} - seen
        if len(seen) + len(new) > max_nodes:
            continue
        seen |= new
        keep.append((f, t))
    return pd.DataFrame(keep, columns=["follower", "followee"])


def cascades_upto(ctx: ViewContext, step: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(nodes, metrics) of the cascades up to `step` (analysis.cascades: cascade_nodes, cascade_metrics), from the
    post and share events only."""
    acts = ", ".join(f"'{a}'" for a in ROOT_ACTIONS + SHARE_ACTIONS)

    def compute() -> tuple[pd.DataFrame, pd.DataFrame]:
        ev = ctx.data.sql(f"SELECT event_id, step, agent_id, action, parent_event_id FROM events WHERE action IN ({acts}) "
                          "AND step <= ?", [int(step)])
        nodes = cascade_nodes(ev)
        return nodes, cascade_metrics(nodes)

    return ctx.data.memo(("cascades", step), compute)


def build(ctx: ViewContext) -> Any:
    data = ctx.data

    def draw_network() -> tuple[int, int, Any] | None:
        edges = network_sample(ctx)
        if edges.empty:
            return None
        g = nx.DiGraph()
        g.add_edges_from(edges.itertuples(index=False, name=None))
        fig = new_figure(5.5, 5.5)
        ax = fig.subplots()
        pos = nx.spring_layout(g, seed=0, iterations=30)
        nx.draw_networkx_nodes(g, pos, ax=ax, node_size=12, node_color="#4a7ab5")
        nx.draw_networkx_edges(g, pos, ax=ax, width=0.3, alpha=0.4, arrows=False)
        ax.set_title(f"Follow network sample: {g.number_of_nodes()} users, {g.number_of_edges()} edges "
                     f"(of {data.agent_count()} agents)", fontsize=8)
        ax.set_axis_off()
        return g.number_of_nodes(), g.number_of_edges(), fig

    def network(_: int) -> Any:
        # The initial network does not change as the run goes: sampled and laid out once (once the agents exist).
        drawn = data.lasting("network", draw_network, keep=lambda v: v is not None)
        if drawn is None:
            return empty_note("no follow network in the agents table (no `followees` in the personas)")
        nodes, edges, fig = drawn
        marker = f'<div class="social-network" data-nodes="{nodes}" data-edges="{edges}"></div>'
        return pn.Column(pn.pane.HTML(marker), figure(fig, 460))

    def cascades(step: int) -> Any:
        nodes, metrics = cascades_upto(ctx, step)
        if metrics.empty:
            return empty_note(f"no posts or shares up to step {step}")
        ranked = metrics.sort_values(["size", "root"], ascending=[False, True]).reset_index(drop=True)
        top = int(ranked["root"].iloc[0])
        tree = nodes[nodes["root"] == top].head(MAX_TREE)
        g = nx.DiGraph()
        g.add_nodes_from(tree["event_id"])
        g.add_edges_from((p, e) for e, p in zip(tree["event_id"], tree["parent"], strict=True) if p >= 0 and p in g)
        for e, d in zip(tree["event_id"], tree["depth"], strict=True):
            g.nodes[e]["depth"] = int(d)
        fig = new_figure(5.5, 4)
        ax = fig.subplots()
        pos = nx.multipartite_layout(g, subset_key="depth", align="horizontal", scale=1)
        pos = {k: (x, -y) for k, (x, y) in pos.items()}
        nx.draw_networkx(g, pos, ax=ax, with_labels=False, node_size=20, node_color="#e0884a", arrows=False, width=0.6)
        ax.set_title(f"Largest cascade up to step {step}: root event {top}, size {int(ranked['size'].iloc[0])}, "
                     f"depth {int(ranked['depth'].iloc[0])}", fontsize=8)
        ax.set_axis_off()
        return pn.Row(figure(fig, 460), table(ranked.head(20), "cascades", f"Largest cascades up to step {step} "
                                              f"({len(ranked)} in all; analysis.cascades)"))

    def feed(step: int) -> Any:
        sources = ((data.log.spec.get("world") or {}).get("recommender") or {}).get("sources") or []
        slots = pd.DataFrame([{"source": s.get("kind"), "slots": s.get("slots")} for s in sources if isinstance(s, dict)])
        activity = data.memo("activity", lambda: activity_table(data.log))
        parts = []
        if not slots.empty:
            slots["share"] = slots["slots"] / slots["slots"].sum()
            parts.append(table(slots, "feed-composition", "Feed composition: slots per recommender source (feeds are not logged)"))
        if "step" in activity.columns and not activity.empty:
            parts.append(table(activity[activity["step"] <= step], "activity", f"Activity per step up to step {step} "
                               "(analysis.social.activity_table)", max_rows=100, tail=True))
        return pn.Column(*parts) if parts else empty_note("no feed settings or activity in this run")

    return pn.Column(pn.Row(ctx.live(network, "follow network"), ctx.live(feed, "feed composition")),
                     ctx.live(cascades, "cascades"), sizing_mode="stretch_width")
