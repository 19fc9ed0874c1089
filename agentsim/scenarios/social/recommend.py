"""Recommender systems, computed in batch for all users active in a step.

Each recommender returns a candidate matrix (one row per active user, post indices, -1 padded) with a few more
columns than its slots, so that the feed assembler can drop the user's own and muted posts and duplicates
across recommenders and still fill its slots.
"""

from __future__ import annotations

import numpy as np

from agentsim.scenarios.social.store import EdgeSet, Posts

#: Reddit's epoch offset and time constant in its "hot" ranking.
REDDIT_EPOCH = 1134028003
HOT_SECONDS = 45000


def hot_score(likes: np.ndarray, dislikes: np.ndarray, t_seconds: np.ndarray) -> np.ndarray:
    """s = likes - dislikes; hot = sign(s) * log10(max(|s|, 1)) + (t - 1134028003) / 45000."""
    s = np.asarray(likes, np.float64) - np.asarray(dislikes, np.float64)
    return np.sign(s) * np.log10(np.maximum(np.abs(s), 1.0)) + (np.asarray(t_seconds, np.float64) - REDDIT_EPOCH) / HOT_SECONDS


def _top_per_row(rows: np.ndarray, items: np.ndarray, order_keys: tuple[np.ndarray, ...], n_rows: int, width: int) -> np.ndarray:
    """Scatter the first `width` items of each row, ordered by `order_keys` (np.lexsort: last key is primary,
    after the row), into an (n_rows, width) matrix padded with -1."""
    out = np.full((n_rows, width), -1, np.int64)
    if not rows.size:
        return out
    order = np.lexsort((*order_keys, rows))
    rows, items = rows[order], items[order]
    starts = np.searchsorted(rows, rows, side="left")
    rank = np.arange(rows.size) - starts
    keep = rank < width
    out[rows[keep], rank[keep]] = items[keep]
    return out


def hot(users: np.ndarray, pool: np.ndarray, posts: Posts, width: int) -> np.ndarray:
    """The same global ranking for everyone (Reddit's front page); own posts are dropped by the assembler."""
    if not pool.size:
        return np.full((users.size, width), -1, np.int64)
    score = hot_score(posts.likes[pool], posts.dislikes[pool], posts.time[pool])
    k = min(width, pool.size)
    top = pool[np.argsort(-score, kind="stable")[:k]]
    out = np.full((users.size, width), -1, np.int64)
    out[:, :k] = top
    return out


def random_feed(users: np.ndarray, pool: np.ndarray, width: int, rng: np.random.Generator) -> np.ndarray:
    if not pool.size:
        return np.full((users.size, width), -1, np.int64)
    return pool[rng.integers(0, pool.size, size=(users.size, width))]


def follow(users: np.ndarray, pool: np.ndarray, posts: Posts, follows: EdgeSet, width: int) -> np.ndarray:
    """Top posts of each user's followees by likes (newest first among ties)."""
    rows, followee = follows.gather(users)
    if not rows.size or not pool.size:
        return np.full((users.size, width), -1, np.int64)
    authors = posts.author[pool]
    by_author = np.argsort(authors, kind="stable")
    sorted_authors = authors[by_author]
    s = np.searchsorted(sorted_authors, followee, side="left")
    e = np.searchsorted(sorted_authors, followee, side="right")
    n = e - s
    prow = np.repeat(rows, n)
    offsets = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    cand = pool[by_author[np.repeat(s, n) + offsets]]
    return _top_per_row(prow, cand, (-cand, -posts.time[cand], -posts.likes[cand].astype(np.int64)), users.size, width)


def interest(users: np.ndarray, user_vec: np.ndarray, pool: np.ndarray, posts: Posts, now: float,
             half_life_s: float, candidates: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Cosine similarity of the user's vector (profile + latest post) with candidate posts, times a recency
    factor 2^(-age / half-life). Candidates are sampled uniformly when the window holds more than `candidates`."""
    if not pool.size:
        return np.full((users.size, width), -1, np.int64)
    cand = pool if pool.size <= candidates else np.sort(rng.choice(pool, size=candidates, replace=False))
    recency = np.exp2(-(now - posts.time[cand]) / half_life_s).astype(np.float32)
    out = np.full((users.size, width), -1, np.int64)
    k = min(width, cand.size)
    emb = posts.emb.a[cand]
    for lo in range(0, users.size, 4096):  # bounds the similarity matrix to 4096 x candidates floats
        sims = (user_vec[lo : lo + 4096] @ emb.T) * recency
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(-sims, part, axis=1).argsort(axis=1, kind="stable")
        out[lo : lo + 4096, :k] = cand[np.take_along_axis(part, order, axis=1)]
    return out
