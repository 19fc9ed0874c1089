"""Ratings from any match log: online Elo, Bradley-Terry by maximum likelihood with bootstrap intervals, and the
rank agreement between methods.

A match log is a DataFrame with columns `a`, `b` and `score_a` (1 win for a, 0 loss, 0.5 draw), in play order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import special, stats

from agentsim.analysis.stats import bootstrap as _bootstrap
from agentsim.analysis.stats import interval_notes
from agentsim.analysis.tables import TableError, check_table, note, notes_of


def check_matches(matches: pd.DataFrame) -> pd.DataFrame:
    """A match log: columns a, b (players, no nulls), score_a (0, 0.5 or 1); nobody plays themself. Raises
    TableError (a ValueError) naming the column and the rows."""
    check_table(matches, "match log", {"a": "any", "b": "any", "score_a": "number"})
    bad = ~matches["score_a"].isin([0, 0.5, 1]).to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        # str, not repr: numpy 2's repr would show the user np.float64(2.0)
        raise TableError(f"match log: score_a must be 0, 0.5 or 1; row {matches.index[i]} has {matches['score_a'].iloc[i]}")
    same = (matches["a"] == matches["b"]).to_numpy()
    if same.any():
        rows = [f"row {matches.index[i]} ({matches['a'].iloc[i]} vs {matches['b'].iloc[i]})" for i in np.flatnonzero(same)[:5]]
        raise TableError(f"match log: a player cannot play themself: {', '.join(rows)}"
                         + (f" and {int(same.sum()) - 5} more" if same.sum() > 5 else ""))
    return matches


_check = check_matches  # the name other modules used


def players_of(matches: pd.DataFrame) -> list[str]:
    return sorted(set(matches["a"]) | set(matches["b"]), key=str)


def elo(matches: pd.DataFrame, k: float = 32.0, initial: float = 1500.0, scale: float = 400.0) -> pd.Series:
    """Online Elo in the order of the log."""
    check_matches(matches)
    r = dict.fromkeys(players_of(matches), initial)
    for a, b, s in matches[["a", "b", "score_a"]].itertuples(index=False):
        ea = 1.0 / (1.0 + 10 ** ((r[b] - r[a]) / scale))
        r[a] += k * (s - ea)
        r[b] -= k * (s - ea)
    return pd.Series(r, name="elo").sort_values(ascending=False)


def _bt_counts(ia: np.ndarray, ib: np.ndarray, sa: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per resample (leading axes of ia/ib/sa, last axis = matches): W[i, j] points i took from j, N[i, j] games."""
    lead = ia.shape[:-1]
    r = np.arange(int(np.prod(lead)))[:, None] if lead else np.zeros((1, 1), np.int64)
    ia, ib, sa = ia.reshape(r.shape[0], -1), ib.reshape(r.shape[0], -1), sa.reshape(r.shape[0], -1)
    size = r.shape[0] * n * n
    ab, ba = (r * n * n + ia * n + ib).ravel(), (r * n * n + ib * n + ia).ravel()
    w = np.bincount(ab, sa.ravel(), size) + np.bincount(ba, 1 - sa.ravel(), size)
    g = np.bincount(ab, minlength=size) + np.bincount(ba, minlength=size)
    return w.reshape(lead + (n, n)), g.reshape(lead + (n, n)).astype(float)


def _bt_fit_counts(W: np.ndarray, N: np.ndarray, ridge: float, iterations: int = 200) -> np.ndarray:
    """Maximise sum_ij W_ij log sigmoid(t_i - t_j) - ridge |t|^2 for every resample at once (leading axes) by
    Newton's method, steps capped at 1 so unbeaten players (finite only through the ridge) climb steadily.
    The optimum has mean 0 (the likelihood's gradient sums to 0, so the ridge's does too)."""
    n = W.shape[-1]
    theta = np.zeros(W.shape[:-1])
    eye = np.eye(n)
    for _ in range(iterations):
        p = special.expit(theta[..., :, None] - theta[..., None, :])
        grad = (W - N * p).sum(-1) - 2 * ridge * theta
        if np.abs(grad).max(initial=0.0) < 1e-10 * max(1.0, N.sum(axis=(-1, -2)).max(initial=0.0)):
            break
        w = N * p * (1 - p)
        info = eye * (w.sum(-1)[..., None] + 2 * ridge) - w  # minus the Hessian: Laplacian of w plus the ridge
        step = np.linalg.solve(info, grad[..., None])[..., 0]
        big = np.abs(step).max(-1, keepdims=True)
        theta = theta + step / np.maximum(big, 1.0)
    return theta - theta.mean(-1, keepdims=True)


def bradley_terry(
    matches: pd.DataFrame, bootstrap: int = 0, confidence: float = 0.95, seed: int = 0, ridge: float = 1e-4
) -> pd.DataFrame:
    """Bradley-Terry strengths (log scale, mean 0; P(a beats b) = sigmoid(theta_a - theta_b)) by maximum
    likelihood; a draw counts as half a win each way. A tiny ridge keeps unbeaten players finite.

    With `bootstrap` > 0 resamples, matches are resampled with replacement (scipy.stats.bootstrap through
    `stats.bootstrap`; all resamples are fitted at once) for ci_low / ci_high. With fewer than 2 matches the
    interval is undefined: NaN, and a note on the table (`notes_of`)."""
    check_matches(matches)
    players = players_of(matches)
    n = len(players)
    idx = {p: i for i, p in enumerate(players)}
    ia = matches["a"].map(idx).to_numpy(np.int64)
    ib = matches["b"].map(idx).to_numpy(np.int64)
    sa = matches["score_a"].to_numpy(dtype=float)
    theta = _bt_fit_counts(*_bt_counts(ia, ib, sa, n), ridge)
    out = pd.DataFrame({"player": players, "strength": theta})
    notes: list[str] = []
    if bootstrap:
        def strengths(rows: np.ndarray, axis: int = -1) -> np.ndarray:
            rows = np.moveaxis(rows, axis, -1)
            t = _bt_fit_counts(*_bt_counts(ia[rows], ib[rows], sa[rows], n), ridge)
            return np.moveaxis(t, -1, 0)  # scipy wants the outputs first, resamples after

        ci = _bootstrap(
            (np.arange(len(sa)),), strengths, confidence=confidence, n_resamples=bootstrap, seed=seed,
            output_shape=(n,), batch=max(1, min(bootstrap, 2_000_000 // (n * n + len(sa)))),
        )
        out["ci_low"], out["ci_high"] = ci.low, ci.high
        notes = interval_notes("strength CI", [(f"{len(sa)} match{'es' if len(sa) != 1 else ''}", ci.note)])
    W, N = _bt_counts(ia, ib, sa, n)
    won, games = W.sum(1), N.sum(1)
    for what, mask in (("won", won == games), ("lost", won == 0)):
        who = [players[i] for i in np.flatnonzero(mask & (games > 0))]
        if who:
            notes.append(f"{', '.join(map(str, who))} {what} every game: the maximum-likelihood strength is infinite; the "
                         f"value shown is set by the ridge ({ridge:g}), not by the data")
    out = out.sort_values("strength", ascending=False).reset_index(drop=True)
    return note(out, *notes)


def points(matches: pd.DataFrame) -> pd.Series:
    check_matches(matches)
    s = pd.concat([matches.groupby("a")["score_a"].sum(), (1 - matches["score_a"]).groupby(matches["b"]).sum()])
    return s.groupby(level=0).sum().rename("match_points")


def tiebreaks(results: Sequence[tuple[str, str, float]], scores: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """Buchholz (sum of opponents' scores) and Sonneborn-Berger (scores of beaten opponents plus half those of
    drawn ones) from (a, b, score_a) results; byes count for neither. Every player in a result needs a score."""
    out = {p: {"buchholz": 0.0, "sonneborn_berger": 0.0} for p in scores}
    unknown = sorted({p for a, b, _ in results for p in (a, b)} - set(scores), key=str)
    if unknown:
        raise TableError(f"tiebreaks: player(s) {unknown} play in the results but have no score")
    for a, b, s in results:
        out[a]["buchholz"] += scores[b]
        out[b]["buchholz"] += scores[a]
        out[a]["sonneborn_berger"] += s * scores[b]
        out[b]["sonneborn_berger"] += (1 - s) * scores[a]
    return out


def rank_agreement(ratings: dict[str, pd.Series]) -> pd.DataFrame:
    """Kendall's tau and Spearman's rho between every pair of rating methods (over their common players)."""
    names = list(ratings)
    rows, notes = [], []
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            common = sorted(set(ratings[x].index) & set(ratings[y].index), key=str)
            a, b = ratings[x][common].to_numpy(), ratings[y][common].to_numpy()
            if len(common) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:  # a constant rating (e.g. all draws) ranks nothing
                tau = rho = float("nan")
                flat = [m for m, v in ((x, a), (y, b)) if len(v) and np.ptp(v) == 0]
                notes.append(f"{x} vs {y}: undefined (NaN): " + (f"fewer than 2 common players ({len(common)})" if len(common) < 2
                                                                  else f"{' and '.join(flat)} rate(s) every player the same"))
            else:
                tau = stats.kendalltau(a, b).statistic
                rho = stats.spearmanr(a, b).statistic
            rows.append({"method_a": x, "method_b": y, "players": len(common), "kendall_tau": tau, "spearman_rho": rho})
    return note(pd.DataFrame(rows, columns=["method_a", "method_b", "players", "kendall_tau", "spearman_rho"]), *notes)


def rating_tables(matches: pd.DataFrame, bootstrap: int = 200, seed: int = 0) -> dict[str, pd.DataFrame]:
    """ratings (Bradley-Terry strength with its CI, Elo, match points per player) and rank_agreement."""
    bt = bradley_terry(matches, bootstrap=bootstrap, seed=seed)
    e = elo(matches)
    p = points(matches)
    table = bt.set_index("player").join(e).join(p).reset_index().rename(columns={"index": "player"})
    note(table, *notes_of(bt))
    agree = rank_agreement({"bradley_terry": bt.set_index("player")["strength"], "elo": e, "match_points": p})
    return {"ratings": table, "rank_agreement": agree}
