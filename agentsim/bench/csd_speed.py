"""Benchmark: the vectorized CSD simulator against a plain per-tournament loop, on the same score table.

The loop is the textbook algorithm written one tournament at a time (it also serves as an independent check of
the vectorized code in the tests). Both run in the same process; the ratio is per-tournament time."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

import numpy as np

from agentsim.scenarios.tournament.csd import eliminations_schedule, simulate


def simulate_loop(
    scores: np.ndarray, n_tournaments: int, eliminations: int | Sequence[int] = 0, ties: str = "half",
    bye_points: float = 0.0, seed: int = 0,
) -> np.ndarray:
    """Mean final score per model, one tournament at a time."""
    rnd = random.Random(seed)
    m, k = scores.shape
    t = eliminations_schedule(eliminations, k, m)
    total = np.zeros(m)
    for _ in range(n_tournaments):
        score = [0.0] * m
        alive = list(range(m))
        for r in range(k):
            keys = {a: rnd.random() for a in alive}
            order = sorted(alive, key=lambda a: (-score[a], keys[a]))
            for i in range(0, len(order) - 1, 2):
                a, b = order[i], order[i + 1]
                if scores[a, r] > scores[b, r]:
                    wa = 1.0
                elif scores[a, r] < scores[b, r]:
                    wa = 0.0
                else:
                    wa = 0.5 if ties == "half" else float(rnd.random() < 0.5)
                score[a] += wa
                score[b] += 1.0 - wa
            if len(order) % 2:
                score[order[-1]] += bye_points
            if t[r]:
                keys = {a: rnd.random() for a in alive}
                out = set(sorted(alive, key=lambda a: (score[a], keys[a]))[: t[r]])
                alive = [a for a in alive if a not in out]
        total += score
    return total / n_tournaments


def run_speed(models: int, benchmarks: int, tournaments: int, loop_tournaments: int, eliminations: int, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0, 100, (models, benchmarks)).round(1)
    names = [f"m{i}" for i in range(models)]
    t0 = time.perf_counter()
    simulate(scores, names, tournaments, eliminations, seed=seed)
    vec_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    simulate_loop(scores, loop_tournaments, eliminations, seed=seed)
    loop_s = time.perf_counter() - t0
    vec_per = vec_s / tournaments
    loop_per = loop_s / loop_tournaments
    return {"vectorized_s": vec_s, "loop_s": loop_s, "vectorized_us_per_tournament": 1e6 * vec_per,
            "loop_us_per_tournament": 1e6 * loop_per, "speedup": loop_per / vec_per}
