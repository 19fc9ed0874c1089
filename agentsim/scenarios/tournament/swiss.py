"""Classical Swiss pairing (tiebreaks are computed from the match log in agentsim.analysis.ratings).

Pairing is a maximum-weight matching (networkx) over the players still to pair: an edge joins every two players
who have not met, weighted to prefer equal scores; a bye node joins the players who have not had a bye,
preferring low scores. Maximum cardinality first means a full pairing without rematches is found whenever one
exists; only when none exists are rematches allowed, at a large penalty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import networkx as nx


class _Bye:
    """The bye's node in the pairing graph: an object, not a string, so no player's name can be taken for it."""

    def __repr__(self) -> str:
        return "BYE"


BYE = _Bye()


def swiss_pairing(
    scores: Mapping[str, float],
    played: set[frozenset[str]],
    had_bye: set[str],
    order: Sequence[str] | None = None,
) -> tuple[list[tuple[str, str]], str | None]:
    """Pairs for the next round and the player with the bye (None when the count is even).

    `order` breaks ties within a score group (e.g. a seed or rating order); by default, by name."""
    players = list(order) if order is not None else sorted(scores)
    rank = {p: i for i, p in enumerate(sorted(players, key=lambda p: (-scores[p], players.index(p))))}
    n = len(players)
    if n < 2:
        return [], (players[0] if players else None)

    def build(allow_rematch: bool) -> nx.Graph:
        g = nx.Graph()
        big = 10.0 * (n + 1) ** 2
        for i, a in enumerate(players):
            for b in players[i + 1 :]:
                rematch = frozenset((a, b)) in played
                if rematch and not allow_rematch:
                    continue
                # Prefer equal scores, then neighbours in the ranking (top half vs top half of a group).
                w = big - 100.0 * abs(scores[a] - scores[b]) - abs(rank[a] - rank[b]) / n
                g.add_edge(a, b, weight=w - (big / 2 if rematch else 0.0))
        if n % 2:
            eligible = [p for p in players if p not in had_bye] or players
            for p in eligible:
                # Twice a pairing's score weight: moving the bye up from p to a player q with more points saves at
                # most 100 x (s_q - s_p) in the pairings, so the bye strictly goes to the lowest score (with 100,
                # the two tie and the leader could get it).
                g.add_edge(p, BYE, weight=big - 200.0 * (scores[p] - min(scores.values())) + rank[p] / n)
        return g

    for allow in (False, True):
        g = build(allow)
        matching = nx.max_weight_matching(g, maxcardinality=True)
        if len(matching) * 2 >= n + (n % 2):
            break
    pairs, bye = [], None
    for a, b in matching:
        if a is BYE or b is BYE:
            bye = b if a is BYE else a
        else:
            pairs.append((a, b) if rank[a] <= rank[b] else (b, a))
    pairs.sort(key=lambda ab: rank[ab[0]])
    return pairs, bye
