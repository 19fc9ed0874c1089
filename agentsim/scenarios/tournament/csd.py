"""Competitive Swiss-System Dynamics (after "LLM Swiss Round"): Monte Carlo Swiss tournaments over a score table.

Models play one round per benchmark, in a fixed order; model i beats j on benchmark k when its score is higher.
Each round, the models still in play are grouped by cumulative score and paired at random within their group; an
odd model floats down to the next group, and if none is left it gets a bye. After round k, T_k models drawn at
random from the lowest-score group are eliminated (spilling into the next-lowest group if that one is smaller).

All N tournaments advance together as (N, M) numpy arrays: sorting each row by (score, random key) gives the score
groups in random order, so pairing neighbours (0-1, 2-3, ...) *is* random pairing within groups with the odd model
floating down, and the first T_k of the reverse order are a random draw from the lowest group.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

TieRule = Literal["half", "coin"]


@dataclass(frozen=True)
class CSDResult:
    models: tuple[str, ...]
    expected_score: np.ndarray  # E[S_m], shape (M,)
    std_error: np.ndarray  # SE of E[S_m]
    rounds_survived: np.ndarray  # mean number of rounds played
    win_share: np.ndarray  # share of tournaments in which the model has the (shared) top score
    n_tournaments: int
    round_means: np.ndarray  # (K, M) mean cumulative score after each round
    place_counts: np.ndarray | None = None  # (M, M): tournaments model m finished in place p+1 (ties shared, `placements`)

    def table(self) -> pd.DataFrame:
        df = pd.DataFrame(
            {
                "model": self.models,
                "expected_score": self.expected_score,
                "std_error": self.std_error,
                "rounds_played": self.rounds_survived,
                "top_share": self.win_share,
            }
        )
        df["rank"] = df["expected_score"].rank(ascending=False, method="min").astype(int)
        return df.sort_values(["rank", "model"]).reset_index(drop=True)


def placements(final: np.ndarray) -> np.ndarray:
    """(M, M) counts of final places from (N, M) final scores: model m in place p+1 (1 = highest score). Models tied
    on a score share the places they span equally (two tied for 2nd each count 1/2 in places 2 and 3), so every row
    and every column sums to N."""
    from scipy.stats import rankdata

    n, m = final.shape
    lo = rankdata(-final, method="min", axis=1).astype(np.int64) - 1  # first place spanned (0-based)
    hi = rankdata(-final, method="max", axis=1).astype(np.int64)  # one past the last
    w = 1.0 / (hi - lo)
    model = np.broadcast_to(np.arange(m), (n, m))
    # A difference array per model: +w from the first place spanned, -w after the last; the running sum spreads w.
    diff = (np.bincount((model * (m + 1) + lo).ravel(), w.ravel(), m * (m + 1))
            - np.bincount((model * (m + 1) + hi).ravel(), w.ravel(), m * (m + 1)))
    return np.cumsum(diff.reshape(m, m + 1), axis=1)[:, :m]


def eliminations_schedule(eliminations: int | Sequence[int], rounds: int, models: int) -> np.ndarray:
    """T_k for each round; at least one model always stays in play."""
    t = np.full(rounds, int(eliminations)) if isinstance(eliminations, int | np.integer) else np.asarray(eliminations, int)
    if len(t) != rounds:
        raise ValueError(f"eliminations has {len(t)} entries; there are {rounds} rounds (one per benchmark)")
    if (t < 0).any():
        raise ValueError("eliminations must be >= 0")
    out, alive = np.zeros(rounds, int), models
    for k in range(rounds):
        out[k] = min(t[k], alive - 1)
        alive -= out[k]
    return out


def simulate(
    scores: np.ndarray,
    models: Sequence[str],
    n_tournaments: int = 100_000,
    eliminations: int | Sequence[int] = 0,
    ties: TieRule = "half",
    bye_points: float = 0.0,
    seed: int = 0,
    chunk: int = 50_000,
) -> CSDResult:
    """Run `n_tournaments` Swiss tournaments on an (M, K) score table (models x benchmarks, in round order)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError("scores must be a 2-D table: models x benchmarks")
    m, k = scores.shape
    if m != len(models):
        raise ValueError(f"{len(models)} model names for {m} rows of scores")
    if m < 2:
        raise ValueError("a tournament needs at least 2 models")
    if np.isnan(scores).any():
        bad = [(models[i], int(j)) for i, j in zip(*np.nonzero(np.isnan(scores)), strict=True)][:5]
        raise ValueError(f"missing scores (model, benchmark index): {bad}")
    if ties not in ("half", "coin"):
        raise ValueError(f"ties must be 'half' or 'coin', not {ties!r}")
    t = eliminations_schedule(eliminations, k, m)
    rng = np.random.default_rng(seed)
    total = np.zeros(m)
    total_sq = np.zeros(m)
    played = np.zeros(m)
    top = np.zeros(m)
    round_sums = np.zeros((k, m))
    place = np.zeros((m, m))
    done = 0
    while done < n_tournaments:
        n = min(chunk, n_tournaments - done)
        final, rounds_played, per_round = _simulate_chunk(scores, t, n, ties, bye_points, rng)
        total += final.sum(0)
        total_sq += (final**2).sum(0)
        played += rounds_played.sum(0)
        best = final.max(1, keepdims=True)
        top += (final == best).sum(0)
        round_sums += per_round
        place += placements(final)
        done += n
    mean = total / n_tournaments
    var = np.maximum(total_sq / n_tournaments - mean**2, 0.0) * n_tournaments / max(n_tournaments - 1, 1)
    return CSDResult(
        tuple(models), mean, np.sqrt(var / n_tournaments), played / n_tournaments, top / n_tournaments,
        n_tournaments, round_sums / n_tournaments, place,
    )


def _simulate_chunk(
    scores: np.ndarray, t: np.ndarray, n: int, ties: TieRule, bye_points: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m, k = scores.shape
    rows = np.arange(n)[:, None]
    score = np.zeros((n, m))
    alive = np.ones((n, m), dtype=bool)
    played = np.zeros((n, m))
    per_round = np.zeros((k, m))
    n_alive = m
    # Scores move in steps of 1/2 when byes are worth a multiple of 1/2: then 2*score + U[0,1) orders by score with
    # uniform random ties in one argsort; otherwise a two-key lexsort does the same.
    on_grid = float(2 * bye_points).is_integer()

    def rank(primary: np.ndarray) -> np.ndarray:
        u = rng.random((n, m))
        if on_grid:
            return np.argsort(2.0 * primary + u, axis=1)
        return np.lexsort((u, primary), axis=1)

    for r in range(k):
        # Highest score first, random order within a score group; eliminated models sort last.
        order = rank(np.where(alive, -score, np.inf))[:, :n_alive]
        pairs = n_alive // 2
        a = order[:, 0 : 2 * pairs : 2]
        b = order[:, 1 : 2 * pairs : 2]
        sa = scores[a, r]
        sb = scores[b, r]
        win_a = (sa > sb).astype(np.float64)
        tie = sa == sb
        if ties == "half":
            win_a[tie] = 0.5
        else:
            win_a[tie] = (rng.random(int(tie.sum())) < 0.5).astype(np.float64)
        # Each model plays at most once per round, so (row, model) pairs are unique: plain fancy indexing adds
        # correctly and is far faster than np.add.at.
        score[rows, a] += win_a
        score[rows, b] += 1.0 - win_a
        if n_alive % 2:
            score[np.arange(n), order[:, -1]] += bye_points
        played[alive] += 1
        per_round[r] = score.sum(0)  # summed over the chunk's tournaments; simulate divides by all of them
        if t[r]:
            # Lowest score first, random within a group: the first T_k are a random draw from the lowest group.
            out = rank(np.where(alive, score, np.inf))[:, : t[r]]
            alive[rows, out] = False
            n_alive -= int(t[r])
    return score, played, per_round


def read_score_table(path: str, benchmarks: Sequence[str] | None = None) -> tuple[list[str], list[str], np.ndarray]:
    """Models, benchmarks (in round order) and the (M, K) scores of a score table (see files.load_score_table)."""
    from agentsim.scenarios.tournament.files import load_score_table

    t = load_score_table(path, benchmarks)
    return t.models, t.benchmarks, t.scores


def failure_sensitivity(
    scores: np.ndarray, models: Sequence[str], eliminations: Sequence[int], n_tournaments: int = 20_000, seed: int = 0, **kw
) -> pd.DataFrame:
    """E[S] and rank of every model for each uniform elimination rate T (same T every round), plus how far each
    model's rank moves across the sweep. Robust generalists keep their rank; specialists fall as T grows,
    because an early loss on a weak benchmark now ends their tournament."""
    rows = []
    for t in eliminations:
        res = simulate(scores, models, n_tournaments, eliminations=int(t), seed=seed, **kw).table()
        rows.append(res.assign(T=int(t)))
    df = pd.concat(rows, ignore_index=True)
    spread = df.groupby("model")["rank"].agg(lambda r: int(r.max() - r.min())).rename("rank_range")
    cv = pd.Series(np.asarray(scores).std(1) / np.maximum(np.abs(np.asarray(scores).mean(1)), 1e-12), index=list(models), name="score_cv")
    df = df.merge(spread, left_on="model", right_index=True).merge(cv, left_on="model", right_index=True)
    base = df[df["T"] == min(eliminations)].set_index("model")["expected_score"]
    df["es_change"] = df["expected_score"] - df["model"].map(base)
    return df


def exact_expected_scores(
    scores: np.ndarray, eliminations: int | Sequence[int] = 0, ties: TieRule = "half", bye_points: float = 0.0
) -> np.ndarray:
    """E[S_m] by enumerating every pairing, coin flip and elimination draw (small M only). Written as plain
    recursion, independently of the vectorized simulator, so each checks the other."""
    from itertools import permutations, product

    scores = np.asarray(scores, dtype=float)
    m, k = scores.shape
    if m > 6:
        raise ValueError("exact enumeration is for at most 6 models")
    t = eliminations_schedule(eliminations, k, m)

    @functools.cache
    def expect(r: int, score: tuple[float, ...], alive: tuple[int, ...]) -> tuple[float, ...]:
        if r == k:
            return score
        perms = list(permutations(alive))
        acc = np.zeros(m)
        for perm in perms:
            rank = {a: i for i, a in enumerate(perm)}
            order = sorted(alive, key=lambda a: (-score[a], rank[a]))
            pairs = [(order[i], order[i + 1]) for i in range(0, len(order) - 1, 2)]
            tied = [i for i, (a, b) in enumerate(pairs) if scores[a, r] == scores[b, r]]
            flips = list(product((0.0, 1.0), repeat=len(tied))) if ties == "coin" else [()]
            for flip in flips:
                new = list(score)
                for i, (a, b) in enumerate(pairs):
                    if scores[a, r] > scores[b, r]:
                        wa = 1.0
                    elif scores[a, r] < scores[b, r]:
                        wa = 0.0
                    else:
                        wa = flip[tied.index(i)] if ties == "coin" else 0.5
                    new[a] += wa
                    new[b] += 1.0 - wa
                if len(order) % 2:
                    new[order[-1]] += bye_points
                w = 1.0 / (len(perms) * len(flips))
                if t[r] == 0:
                    acc += w * np.asarray(expect(r + 1, tuple(new), alive))
                    continue
                draws = list(permutations(alive))
                for d in draws:
                    drank = {a: i for i, a in enumerate(d)}
                    out = set(sorted(alive, key=lambda a: (new[a], drank[a]))[: t[r]])
                    rest = tuple(a for a in alive if a not in out)
                    acc += (w / len(draws)) * np.asarray(expect(r + 1, tuple(new), rest))
        return tuple(acc)

    return np.asarray(expect(0, tuple([0.0] * m), tuple(range(m))))
