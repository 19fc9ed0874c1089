"""Information cascades: repost trees rebuilt from `parent_event_id`, their shape, growth and size distribution.

Everything is vectorized over all events at once (pointer jumping for roots and depths, level-by-level sums for
subtree sizes), so ten million events take seconds, not a Python loop per tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agentsim.analysis.tables import Kind, TableError, captured_warnings, check_table, note

SHARE_ACTIONS = ("repost", "quote_post")
ROOT_ACTIONS = ("create_post",)


class CascadeError(TableError):
    """Parent links that do not form trees: events that are their own parent, or cycles of any length.
    `self_parents` and `cycles` (each a list of event ids, in parent order) name them."""

    def __init__(self, message: str, self_parents: list[int], cycles: list[list[int]]):
        super().__init__(message)
        self.self_parents, self.cycles = self_parents, cycles


EVENT_COLUMNS: dict[str, Kind] = {"event_id": "int", "parent_event_id": "int", "action": "str", "step": "int", "agent_id": "any"}


def check_events(events: pd.DataFrame, name: str = "events table") -> pd.DataFrame:
    """The columns cascades read (event_id unique and whole, parent_event_id whole or null, action, step, agent_id)."""
    return check_table(events, name, EVENT_COLUMNS, nullable=["parent_event_id"], unique=["event_id"])


def cascade_nodes(events: pd.DataFrame, share_actions: tuple[str, ...] = SHARE_ACTIONS,
                  root_actions: tuple[str, ...] = ROOT_ACTIONS) -> pd.DataFrame:
    """One row per node of every cascade: event_id, parent (event id, -1 for a root), root, depth, step, agent_id.

    Nodes are share events with a parent, plus every original post (`root_actions`: a post nobody shared is a
    cascade of size 1).

    - The events table is checked first (`check_events`): a missing column, a null or fractional id or a repeated
      event_id is a `TableError` naming it.
    - An event that is its own parent, or parent links that go round in a cycle (of any length), are a
      `CascadeError` naming the event ids: no tree can be built from them.
    - A share whose parent is not a cascade node (not in the table, e.g. a post imported from a file, or an event
      that is neither a post nor a share) becomes a root itself; the result carries a note (`notes_of`) with how
      many and which.
    """
    check_events(events)
    act = events["action"].to_numpy()
    share = np.isin(act, share_actions) & events["parent_event_id"].notna().to_numpy()
    keep = share | np.isin(act, root_actions)
    ev = events.loc[keep, ["event_id", "parent_event_id", "step", "agent_id"]]
    ids = ev["event_id"].to_numpy(np.int64)
    order = np.argsort(ids, kind="stable")
    ids, ev = ids[order], ev.iloc[order]
    par_id = ev["parent_event_id"].fillna(-1).to_numpy(np.int64)
    pos = np.searchsorted(ids, par_id)
    pos = np.minimum(pos, max(ids.size - 1, 0))
    parent = np.where((par_id >= 0) & (ids.size > 0) & (ids[pos] == par_id), pos, -1)
    orphans = ids[(par_id >= 0) & (parent < 0)]
    jump = parent.copy()
    depth = (parent >= 0).astype(np.int64)
    # Pointer jumping: O(log depth) vectorized passes. Each pass doubles the span of `jump`, so after
    # ceil(log2(n)) + 1 passes every chain has reached its root unless it never ends (a cycle).
    for _ in range(int(np.ceil(np.log2(ids.size + 1))) + 2):
        has = jump >= 0
        nxt = np.where(has, jump[np.maximum(jump, 0)], -1)
        move = has & (nxt >= 0)
        if not move.any():
            break
        depth[move] = depth[move] + depth[jump[move]]
        jump[move] = nxt[move]
    else:  # still moving after enough passes for any forest: some chains never end
        _raise_cycles(ids, parent)
    root = np.where(jump >= 0, jump, np.arange(ids.size))
    out = pd.DataFrame({
        "event_id": ids, "parent": np.where(parent >= 0, ids[np.maximum(parent, 0)], -1), "root": ids[root],
        "depth": depth, "step": ev["step"].to_numpy(np.int64), "agent_id": ev["agent_id"].to_numpy(),
        "_parent_pos": parent, "_root_pos": root,
    })
    if orphans.size:
        shown = ", ".join(str(i) for i in orphans[:10]) + (f" and {orphans.size - 10} more" if orphans.size > 10 else "")
        note(out, f"{orphans.size} share(s) whose parent is not a post or share in this table count as roots "
                  f"(event ids {shown})")
    return out


def _raise_cycles(ids: np.ndarray, parent: np.ndarray) -> None:
    """Name the cycles of the parent function (error path only: a Python walk over the nodes that never end)."""
    state = np.zeros(ids.size, np.int8)  # 0 unseen, 1 on the current walk, 2 done
    cycles: list[list[int]] = []
    for start in range(ids.size):
        path = []
        i = start
        while i >= 0 and state[i] == 0:
            state[i] = 1
            path.append(i)
            i = parent[i]
        if i >= 0 and state[i] == 1:  # came back onto this walk: a cycle from i
            cyc = path[path.index(i):]
            cycles.append([int(ids[j]) for j in cyc])
        for j in path:
            state[j] = 2
    self_parents = [c[0] for c in cycles if len(c) == 1]
    longer = [c for c in cycles if len(c) > 1]
    parts = []
    if self_parents:
        parts.append("event(s) that are their own parent: " + ", ".join(str(i) for i in self_parents[:20]))
    if longer:
        parts.append("parent cycles: " + "; ".join(" -> ".join(str(i) for i in c + [c[0]]) for c in longer[:10])
                     + (f" (and {len(longer) - 10} more)" if len(longer) > 10 else ""))
    raise CascadeError("events table: parent_event_id links do not form trees; " + "; ".join(parts), self_parents, cycles)


NODE_COLUMNS: dict[str, Kind] = {"event_id": "int", "root": "int", "depth": "int", "step": "int", "agent_id": "any",
                                 "_parent_pos": "int", "_root_pos": "int"}


def cascade_metrics(nodes: pd.DataFrame) -> pd.DataFrame:
    """Per cascade: size (nodes incl. the root), depth, max breadth (most nodes at one depth), structural
    virality (mean shortest-path distance between all pairs of nodes, Goel et al. 2016; NaN for size 1),
    users involved, and first/last step. `nodes` is what `cascade_nodes` returns (checked: a table of another
    shape is a TableError)."""
    check_table(nodes, "cascade nodes (from cascade_nodes)", NODE_COLUMNS)
    n = len(nodes)
    if not n:
        return pd.DataFrame(columns=["root", "author", "size", "depth", "max_breadth", "structural_virality", "users", "start_step", "last_step"])
    parent = nodes["_parent_pos"].to_numpy()
    root = nodes["_root_pos"].to_numpy()
    depth = nodes["depth"].to_numpy()
    sub = np.ones(n, np.int64)
    by_depth = np.argsort(-depth, kind="stable")
    d_sorted = depth[by_depth]
    for d in range(int(depth.max()), 0, -1):  # children before parents
        lo, hi = np.searchsorted(-d_sorted, -d, side="left"), np.searchsorted(-d_sorted, -d, side="right")
        idx = by_depth[lo:hi]
        np.add.at(sub, parent[idx], sub[idx])
    size = np.bincount(root, minlength=n)
    tree_n = size[root].astype(np.float64)
    wiener = np.bincount(root, weights=np.where(parent >= 0, sub * (tree_n - sub), 0.0), minlength=n)
    roots = np.flatnonzero(size > 0)
    sz = size[roots].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        sv = np.where(sz > 1, 2.0 * wiener[roots] / (sz * (sz - 1)), np.nan)
    per_level = pd.DataFrame({"root": root, "depth": depth}).value_counts().reset_index(name="c")
    breadth = per_level.groupby("root")["c"].max().reindex(roots).to_numpy()
    grp = pd.DataFrame({"root": root, "depth": depth, "step": nodes["step"].to_numpy(), "agent": nodes["agent_id"].to_numpy()}).groupby("root")
    agg = grp.agg(depth=("depth", "max"), users=("agent", "nunique"), last_step=("step", "max")).reindex(roots)
    ids = nodes["event_id"].to_numpy()
    return pd.DataFrame({
        "root": ids[roots], "author": nodes["agent_id"].to_numpy()[roots], "size": size[roots], "depth": agg["depth"].to_numpy(),
        "max_breadth": breadth, "structural_virality": sv, "users": agg["users"].to_numpy(),
        "start_step": nodes["step"].to_numpy()[roots], "last_step": agg["last_step"].to_numpy(),
    })


def cascade_growth(nodes: pd.DataFrame, roots: list[int] | None = None, top: int = 20) -> pd.DataFrame:
    """Scale (users involved), size, depth and max breadth of each cascade over steps since its root, as in
    OASIS's comparison with real Twitter cascades. Default: the `top` largest cascades."""
    check_table(nodes, "cascade nodes (from cascade_nodes)", NODE_COLUMNS)
    if roots is None:
        sizes = nodes.groupby("root").size()
        roots = sizes.nlargest(top).index.tolist()
    sel = nodes[nodes["root"].isin(roots)].copy()
    start = sel.groupby("root")["step"].transform("min")
    sel["t"] = sel["step"] - start
    rows = []
    for r, g in sel.groupby("root"):
        horizon = int(g["t"].max())
        for t in range(horizon + 1):
            upto = g[g["t"] <= t]
            rows.append({"root": r, "t": t, "size": len(upto), "scale": upto["agent_id"].nunique(),
                         "depth": int(upto["depth"].max()), "max_breadth": int(upto["depth"].value_counts().max())})
    return pd.DataFrame(rows, columns=["root", "t", "size", "scale", "depth", "max_breadth"])


def nrmse(simulated: np.ndarray, reference: np.ndarray) -> float:
    """Root-mean-square error normalised by the reference's range (by its mean if the range is 0)."""
    s, r = np.asarray(simulated, float), np.asarray(reference, float)
    m = min(s.size, r.size)
    if not m:
        return float("nan")
    s, r = s[:m], r[:m]
    scale = r.max() - r.min() or abs(r.mean()) or 1.0
    return float(np.sqrt(np.mean((s - r) ** 2)) / scale)


def compare_growth(simulated: pd.DataFrame, reference: pd.DataFrame, metrics: tuple[str, ...] = ("scale", "depth", "max_breadth")) -> pd.DataFrame:
    """NRMSE of the mean simulated curve against a reference curve (columns t and the metrics) per metric, over
    every t of the reference: the simulated curve is carried at its last value to the reference's end (a cascade
    that stopped growing, or never spread, keeps its size; it does not drop out of the comparison), as OASIS pads
    its curves. The reference (often from outside the platform) is checked: t whole and unique, metrics numeric.
    For OASIS's own definitions and normalisation see agentsim.analysis.alignment."""
    check_table(simulated, "simulated growth (from cascade_growth)", {"t": "int", **dict.fromkeys(metrics, "number")})
    check_table(reference, "reference growth", {"t": "int", **dict.fromkeys(metrics, "number")}, unique=["t"])
    sim = simulated.groupby("t")[list(metrics)].mean()
    ref = reference.set_index("t")[list(metrics)].sort_index()
    grid = ref.index[ref.index >= sim.index.min()] if len(sim) else ref.index[:0]
    carried = sim.reindex(sim.index.union(grid)).ffill().loc[grid]
    return pd.DataFrame([{"metric": m, "nrmse": nrmse(carried[m].to_numpy(), ref.loc[grid, m].to_numpy()), "points": len(grid)}
                         for m in metrics])


def fit_power_law(sizes: np.ndarray, xmin: float | None = None) -> tuple[dict[str, Any], Any]:
    """Discrete power-law MLE with xmin chosen by the KS distance (the `powerlaw` package), and log-likelihood
    ratio tests against lognormal and exponential (R > 0 favours the power law; p is the significance of R's sign).

    The result's "notes" entry lists, readably, the warnings `powerlaw` raised (e.g. no valid fits, parameters at
    the edge of their range). Raises ValueError when there is nothing to fit: fewer than 3 distinct sizes, or no
    size in the fitted range (powerlaw's "No data points in defined range of the distribution")."""
    import powerlaw

    x = np.asarray(sizes, float)
    x = x[x >= 1]
    if np.unique(x).size < 3:
        raise ValueError(f"a power-law fit needs at least 3 distinct sizes; got {np.unique(x).tolist()}")
    if xmin is not None and not (x >= xmin).any():
        raise ValueError(f"no cascade size is >= xmin = {xmin} (largest {x.max():.0f}): no data points in the fitted range")
    with captured_warnings() as warned:
        try:
            fit = powerlaw.Fit(x, discrete=True, estimate_discrete=False, xmin=xmin, verbose=False)
            r_ln, p_ln = fit.distribution_compare("power_law", "lognormal", normalized_ratio=True)
            r_ex, p_ex = fit.distribution_compare("power_law", "exponential", normalized_ratio=True)
        except ValueError as e:  # powerlaw's "No data points in defined range of the distribution."
            raise ValueError(f"powerlaw found no sizes inside the range it fits ({e}); {x.size} sizes, "
                             f"{np.unique(x).size} distinct, largest {x.max():.0f}") from e
    sigma = fit.power_law.standard_err if hasattr(type(fit.power_law), "standard_err") else fit.power_law.sigma
    return {
        "alpha": float(fit.power_law.alpha), "sigma": float(sigma), "xmin": float(fit.power_law.xmin),
        "ks_distance": float(fit.power_law.D), "n": int(x.size), "n_tail": int((x >= fit.power_law.xmin).sum()),
        "R_vs_lognormal": float(r_ln), "p_vs_lognormal": float(p_ln), "R_vs_exponential": float(r_ex), "p_vs_exponential": float(p_ex),
        "notes": [f"powerlaw: {w}" for w in warned],
    }, fit


#: The alternatives drawn against the power law on the CCDF (powerlaw's distribution names) and their labels.
ALTERNATIVES = {"lognormal": "lognormal", "exponential": "exponential", "truncated_power_law": "truncated power law"}


def plot_ccdf(sizes: np.ndarray, path: Path | str | None = None, ax: Any = None, title: str = "") -> Any:
    """Empirical CCDF of cascade sizes, P(size >= x) at each unique size, as a step plot (n = cascades, in the
    legend), with the fitted discrete power law over its tail (x >= xmin) and the likelihood-ratio alternatives
    (powerlaw's lognormal, exponential and truncated power law, fitted on the same tail), each alternative's legend
    entry giving the normalised log-likelihood ratio R (R > 0 favours the power law) and its p-value (Vuong's
    test; Clauset, Shalizi & Newman 2009, section 5). Fitted curves are scaled by the tail's share so they meet
    the empirical CCDF at xmin. Returns the Figure; raises NothingToShow without cascades or when every cascade has
    the same size (one point is no distribution)."""
    from agentsim.analysis.plots import NothingToShow, own_axes, save_own

    x = np.sort(np.asarray(sizes, float))
    if not x.size:
        raise NothingToShow("no cascades in this run (no reposts)")
    if np.unique(x).size < 2:
        raise NothingToShow(f"all {x.size} cascades have size {x[0]:.0f}: no distribution to draw (no post was shared)"
                            if x[0] == 1 else f"all {x.size} cascades have size {x[0]:.0f}: one point, no distribution")
    ax, own = own_axes(ax, (6, 4.5))
    xs = np.unique(x)
    ccdf = np.array([(x >= v).mean() for v in xs])
    ax.step(xs, ccdf, where="post", color="black", lw=1.2, label=f"cascades (n={x.size}, {xs.size} distinct sizes)")
    ax.plot(xs, ccdf, "o", color="black", ms=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    fitted = ""
    try:
        res, fit = fit_power_law(x)
    except ValueError as e:
        fitted = f"no power-law fit: {e}"
    else:
        tail = xs[xs >= res["xmin"]]
        share = (x >= res["xmin"]).mean()
        grid = np.unique(np.concatenate([tail, np.geomspace(tail.min(), tail.max(), 50).round()]))
        grid = grid[grid >= res["xmin"]]
        ax.plot(grid, share * fit.power_law.ccdf(grid), "--", color="#0072B2", lw=1.5,
                label=f"power law: alpha={res['alpha']:.2f}, xmin={res['xmin']:.0f} (n_tail={res['n_tail']})")
        from agentsim.analysis.tables import captured_warnings

        for (name, label), color, ls in zip(ALTERNATIVES.items(), ("#E69F00", "#009E73", "#CC79A7"), (":", "-.", (0, (5, 1))), strict=True):
            try:
                with captured_warnings():
                    r, p = fit.distribution_compare("power_law", name, normalized_ratio=True)
                    y = share * getattr(fit, name).ccdf(grid)
            except (ValueError, FloatingPointError, ZeroDivisionError):
                continue
            y = np.where(np.isfinite(y) & (y > 0), y, np.nan)  # a tail probability below float precision is not drawn as 0
            if np.isfinite(y).any():
                ax.plot(grid, y, ls=ls, color=color, lw=1.2, label=f"{label}: R={r:.2f}, p={p:.2g}")
    ax.set_ylim(ccdf.min() / 5, 1.5)  # the data's range: a fitted curve falling far below the last size is cut there
    if title:
        ax.set_title(title, fontsize=10)
    ax.set_xlabel("cascade size (posts: the root and its shares)")
    ax.set_ylabel("P(size ≥ x)")
    ax.legend(fontsize=7, title=fitted or "R > 0 favours the power law (Vuong test p)", title_fontsize=7)
    return save_own(ax, own, path)
