"""Ratings from any match log: online Elo, Bradley-Terry by maximum likelihood with bootstrap intervals, and the
rank agreement between methods.

A match log is a DataFrame with columns `a`, `b` and `score_a` (1 win for a, 0 loss, 0.5 draw), in play order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats


def _check(matches: pd.DataFrame) -> pd.DataFrame:
    missing = {"a", "b", "score_a"} - set(matches.columns)
    if missing:
        raise ValueError(f"a match log needs columns a, b, score_a; missing {sorted(missing)}")
    bad = ~matches["score_a"].isin([0, 0.5, 1])
    if bad.any():
        raise ValueError(f"score_a must be 0, 0.5 or 1; row {int(np.argmax(bad.to_numpy()))} has {matches['score_a'][bad].iloc[0]!r}")
    return matches


def players_of(matches: pd.DataFrame) -> list[str]:
    return sorted(set(matches["a"]) | set(matches["b"]))


def elo(matches: pd.DataFrame, k: float = 32.0, initial: float = 1500.0, scale: float = 400.0) -> pd.Series:
    """Online Elo in the order of the log."""
    _check(matches)
    r = dict.fromkeys(players_of(matches), initial)
    for a, b, s in matches[["a", "b", "score_a"]].itertuples(index=False):
        ea = 1.0 / (1.0 + 10 ** ((r[b] - r[a]) / scale))
        r[a] += k * (s - ea)
        r[b] -= k * (s - ea)
    return pd.Series(r, name="elo").sort_values(ascending=False)


def _bt_fit(ia: np.ndarray, ib: np.ndarray, sa: np.ndarray, n: int, ridge: float) -> np.ndarray:
    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        d = theta[ia] - theta[ib]
        p = 1.0 / (1.0 + np.exp(-d))
        eps = 1e-12
        ll = sa * np.log(p + eps) + (1 - sa) * np.log(1 - p + eps)
        g = sa - p  # d ll / d d
        grad = np.zeros(n)
        np.add.at(grad, ia, g)
        np.add.at(grad, ib, -g)
        return float(-ll.sum() + ridge * theta @ theta), -grad + 2 * ridge * theta

    res = optimize.minimize(nll, np.zeros(n), jac=True, method="L-BFGS-B")
    theta = res.x
    return theta - theta.mean()


def bradley_terry(
    matches: pd.DataFrame, bootstrap: int = 0, confidence: float = 0.95, seed: int = 0, ridge: float = 1e-4
) -> pd.DataFrame:
    """Bradley-Terry strengths (log scale, mean 0; P(a beats b) = sigmoid(theta_a - theta_b)) by maximum
    likelihood; a draw counts as half a win each way. A tiny ridge keeps unbeaten players finite. With
    `bootstrap` > 0, matches are resampled with replacement for percentile intervals."""
    _check(matches)
    players = players_of(matches)
    idx = {p: i for i, p in enumerate(players)}
    ia = matches["a"].map(idx).to_numpy()
    ib = matches["b"].map(idx).to_numpy()
    sa = matches["score_a"].to_numpy(dtype=float)
    theta = _bt_fit(ia, ib, sa, len(players), ridge)
    out = pd.DataFrame({"player": players, "strength": theta})
    if bootstrap:
        rng = np.random.default_rng(seed)
        draws = np.empty((bootstrap, len(players)))
        for i in range(bootstrap):
            s = rng.integers(0, len(sa), len(sa))
            draws[i] = _bt_fit(ia[s], ib[s], sa[s], len(players), ridge)
        alpha = (1 - confidence) / 2
        out["ci_low"] = np.quantile(draws, alpha, axis=0)
        out["ci_high"] = np.quantile(draws, 1 - alpha, axis=0)
    return out.sort_values("strength", ascending=False).reset_index(drop=True)


def points(matches: pd.DataFrame) -> pd.Series:
    _check(matches)
    s = pd.concat([matches.groupby("a")["score_a"].sum(), (1 - matches["score_a"]).groupby(matches["b"]).sum()])
    return s.groupby(level=0).sum().rename("match_points")


def tiebreaks(results: Sequence[tuple[str, str, float]], scores: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """Buchholz (sum of opponents' scores) and Sonneborn-Berger (scores of beaten opponents plus half those of
    drawn ones) from (a, b, score_a) results; byes count for neither."""
    out = {p: {"buchholz": 0.0, "sonneborn_berger": 0.0} for p in scores}
    for a, b, s in results:
        out[a]["buchholz"] += scores[b]
        out[b]["buchholz"] += scores[a]
        out[a]["sonneborn_berger"] += s * scores[b]
        out[b]["sonneborn_berger"] += (1 - s) * scores[a]
    return out


def rank_agreement(ratings: dict[str, pd.Series]) -> pd.DataFrame:
    """Kendall's tau and Spearman's rho between every pair of rating methods (over their common players)."""
    names = list(ratings)
    rows = []
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            common = sorted(set(ratings[x].index) & set(ratings[y].index))
            a, b = ratings[x][common].to_numpy(), ratings[y][common].to_numpy()
            if np.ptp(a) == 0 or np.ptp(b) == 0:  # a constant rating (e.g. all draws) ranks nothing
                tau = rho = float("nan")
            else:
                tau = stats.kendalltau(a, b).statistic
                rho = stats.spearmanr(a, b).statistic
            rows.append({"method_a": x, "method_b": y, "players": len(common), "kendall_tau": tau, "spearman_rho": rho})
    return pd.DataFrame(rows)


def rating_tables(matches: pd.DataFrame, bootstrap: int = 200, seed: int = 0) -> dict[str, pd.DataFrame]:
    bt = bradley_terry(matches, bootstrap=bootstrap, seed=seed)
    e = elo(matches)
    p = points(matches)
    table = bt.set_index("player").join(e).join(p).reset_index().rename(columns={"index": "player"})
    agree = rank_agreement({"bradley_terry": bt.set_index("player")["strength"], "elo": e, "match_points": p})
    return {"ratings": table, "rank_agreement": agree}
