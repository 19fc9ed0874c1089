"""Information cascades: repost trees rebuilt from `parent_event_id`, their shape, growth and size distribution.

Everything is vectorized over all events at once (pointer jumping for roots and depths, level-by-level sums for
subtree sizes), so ten million events take seconds, not a Python loop per tree.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SHARE_ACTIONS = ("repost", "quote_post")
ROOT_ACTIONS = ("create_post",)


def cascade_nodes(events: pd.DataFrame, share_actions: tuple[str, ...] = SHARE_ACTIONS,
                  root_actions: tuple[str, ...] = ROOT_ACTIONS) -> pd.DataFrame:
    """One row per node of every cascade: event_id, parent (event id, -1 for a root), root, depth, step, agent_id.

    Nodes are share events with a parent, plus every original post (`root_actions`: a post nobody shared is a
    cascade of size 1). A share whose parent is not in the log becomes a root itself."""
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
    jump = parent.copy()
    depth = (parent >= 0).astype(np.int64)
    while True:  # pointer jumping: O(log depth) vectorized passes
        has = jump >= 0
        nxt = np.where(has, jump[np.maximum(jump, 0)], -1)
        move = has & (nxt >= 0)
        if not move.any():
            break
        depth[move] = depth[move] + depth[jump[move]]
        jump[move] = nxt[move]
    root = np.where(jump >= 0, jump, np.arange(ids.size))
    return pd.DataFrame({
        "event_id": ids, "parent": np.where(parent >= 0, ids[np.maximum(parent, 0)], -1), "root": ids[root],
        "depth": depth, "step": ev["step"].to_numpy(np.int64), "agent_id": ev["agent_id"].to_numpy(),
        "_parent_pos": parent, "_root_pos": root,
    })


def cascade_metrics(nodes: pd.DataFrame) -> pd.DataFrame:
    """Per cascade: size (nodes incl. the root), depth, max breadth (most nodes at one depth), structural
    virality (mean shortest-path distance between all pairs of nodes, Goel et al. 2016; NaN for size 1),
    users involved, and first/last step."""
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
    """NRMSE of the mean simulated curve against a reference curve (columns t and the metrics) per metric."""
    sim = simulated.groupby("t")[list(metrics)].mean()
    ref = reference.set_index("t")[list(metrics)].sort_index()
    common = sim.index.intersection(ref.index)
    return pd.DataFrame([{"metric": m, "nrmse": nrmse(sim.loc[common, m].to_numpy(), ref.loc[common, m].to_numpy()), "points": len(common)}
                         for m in metrics])


def fit_power_law(sizes: np.ndarray, xmin: float | None = None) -> tuple[dict[str, Any], Any]:
    """Discrete power-law MLE with xmin chosen by the KS distance (the `powerlaw` package), and log-likelihood
    ratio tests against lognormal and exponential (R > 0 favours the power law; p is the significance of R's sign)."""
    import powerlaw

    x = np.asarray(sizes, float)
    x = x[x >= 1]
    if np.unique(x).size < 3:
        raise ValueError(f"a power-law fit needs at least 3 distinct sizes; got {np.unique(x).tolist()}")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        fit = powerlaw.Fit(x, discrete=True, estimate_discrete=False, xmin=xmin, verbose=False)
        r_ln, p_ln = fit.distribution_compare("power_law", "lognormal", normalized_ratio=True)
        r_ex, p_ex = fit.distribution_compare("power_law", "exponential", normalized_ratio=True)
    return {
        "alpha": float(fit.power_law.alpha), "sigma": float(getattr(fit.power_law, "standard_err", None) or fit.power_law.sigma), "xmin": float(fit.power_law.xmin),
        "ks_distance": float(fit.power_law.D), "n": int(x.size), "n_tail": int((x >= fit.power_law.xmin).sum()),
        "R_vs_lognormal": float(r_ln), "p_vs_lognormal": float(p_ln), "R_vs_exponential": float(r_ex), "p_vs_exponential": float(p_ex),
    }, fit


def plot_ccdf(sizes: np.ndarray, path: Path | str | None = None, ax: Any = None) -> Any:
    """Empirical CCDF of cascade sizes with the fitted power law over its tail."""
    from agentsim.analysis.plots import own_axes, save_own

    ax, own = own_axes(ax, path)
    x = np.sort(np.asarray(sizes, float))
    ccdf = 1.0 - np.arange(x.size) / x.size
    ax.loglog(x, ccdf, ".", ms=3, label="cascades")
    try:
        res, fit = fit_power_law(x)
        tail = x[x >= res["xmin"]]
        share = tail.size / x.size
        xs = np.unique(tail)
        ax.loglog(xs, share * (xs / res["xmin"]) ** (1 - res["alpha"]), "--", label=f"power law α={res['alpha']:.2f}, xmin={res['xmin']:.0f}")
    except ValueError:
        pass
    ax.set_xlabel("cascade size")
    ax.set_ylabel("P(size ≥ x)")
    ax.legend()
    return save_own(ax, own, path)
