"""Columnar platform state: follows as one sorted int64 array, posts as growable numpy columns.

A million users must fit in a few hundred bytes each, so nothing here is one Python object per user or per post
(post texts are the exception: a list of str, needed for prompts and search).
"""

from __future__ import annotations

from typing import Any

import numpy as np

SHIFT = np.int64(32)
LOW = np.int64(0xFFFFFFFF)

KINDS = ("post", "repost", "quote", "comment")
POST, REPOST, QUOTE, COMMENT = range(4)


def pair_keys(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    return (np.asarray(a, np.int64) << SHIFT) | np.asarray(b, np.int64)


class EdgeSet:
    """Directed pairs (a, b) as sorted unique int64 keys a<<32|b: membership and out-neighbour ranges are binary
    searches, and a step's additions and removals are merged in O(E) (no re-sort)."""

    def __init__(self, keys: np.ndarray | None = None):
        self.keys = np.unique(np.asarray(keys, np.int64)) if keys is not None else np.zeros(0, np.int64)

    @classmethod
    def from_pairs(cls, a: np.ndarray, b: np.ndarray) -> EdgeSet:
        keep = np.asarray(a) != np.asarray(b)
        return cls(pair_keys(np.asarray(a)[keep], np.asarray(b)[keep]))

    def __len__(self) -> int:
        return int(self.keys.size)

    def contains(self, a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
        k = pair_keys(a, b)
        i = np.searchsorted(self.keys, k)
        i = np.minimum(i, max(self.keys.size - 1, 0))
        return (self.keys[i] == k) if self.keys.size else np.zeros(np.shape(k), bool)

    def ranges(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = np.asarray(a, np.int64)
        return np.searchsorted(self.keys, a << SHIFT), np.searchsorted(self.keys, (a + 1) << SHIFT)

    def neighbours(self, a: int) -> np.ndarray:
        s, e = self.ranges(np.array([a]))
        return (self.keys[s[0] : e[0]] & LOW).astype(np.int64)

    def gather(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, neighbour) for every out-edge of every a[row], vectorized."""
        s, e = self.ranges(a)
        n = e - s
        rows = np.repeat(np.arange(a.size), n)
        offsets = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        return rows, (self.keys[np.repeat(s, n) + offsets] & LOW).astype(np.int64)

    def out_degree(self, n_nodes: int) -> np.ndarray:
        return np.bincount((self.keys >> SHIFT).astype(np.int64), minlength=n_nodes)

    def in_degree(self, n_nodes: int) -> np.ndarray:
        return np.bincount((self.keys & LOW).astype(np.int64), minlength=n_nodes)

    def add(self, keys: np.ndarray) -> None:
        keys = np.unique(np.asarray(keys, np.int64))
        if not keys.size:
            return
        keys = keys[~self._member(keys)]
        self.keys = np.insert(self.keys, np.searchsorted(self.keys, keys), keys)

    def remove(self, keys: np.ndarray) -> None:
        keys = np.unique(np.asarray(keys, np.int64))
        if not keys.size or not self.keys.size:
            return
        keys = keys[self._member(keys)]
        self.keys = np.delete(self.keys, np.searchsorted(self.keys, keys))

    def _member(self, keys: np.ndarray) -> np.ndarray:
        if not self.keys.size:
            return np.zeros(keys.size, bool)
        i = np.minimum(np.searchsorted(self.keys, keys), self.keys.size - 1)
        return self.keys[i] == keys


class Column:
    """A growable 1-D numpy column (amortised doubling)."""

    def __init__(self, dtype: Any, data: np.ndarray | None = None, width: int | None = None):
        self.dtype = np.dtype(dtype)
        self.width = width
        shape = (0,) if width is None else (0, width)
        self._a = np.zeros(shape, self.dtype) if data is None else np.asarray(data, self.dtype)
        self.n = len(self._a)

    @property
    def a(self) -> np.ndarray:
        return self._a[: self.n]

    def extend(self, values: np.ndarray) -> None:
        values = np.asarray(values, self.dtype)
        need = self.n + len(values)
        if need > len(self._a):
            cap = max(need, 2 * len(self._a), 1024)
            shape = (cap,) if self.width is None else (cap, self.width)
            grown = np.zeros(shape, self.dtype)
            grown[: self.n] = self._a[: self.n]
            self._a = grown
        self._a[self.n : need] = values
        self.n = need


class Posts:
    """Every post, repost, quote and comment, in creation order (so a time window is a contiguous range)."""

    COLUMNS = {"author": np.int64, "kind": np.int8, "parent": np.int64, "root": np.int64, "step": np.int32,
               "time": np.float64, "likes": np.int32, "dislikes": np.int32, "event_id": np.int64}

    def __init__(self, dim: int):
        self.cols = {k: Column(t) for k, t in self.COLUMNS.items()}
        self.emb = Column(np.float32, width=dim)
        self.text: list[str] = []

    def __len__(self) -> int:
        return self.cols["author"].n

    def __getattr__(self, name: str) -> np.ndarray:
        cols = self.__dict__.get("cols")
        if cols is not None and name in cols:
            return cols[name].a
        raise AttributeError(name)

    def add(self, author: np.ndarray, kind: np.ndarray, parent: np.ndarray, step: int, time: float,
            event_id: np.ndarray, texts: list[str], emb: np.ndarray) -> np.ndarray:
        n = len(texts)
        start = len(self)
        parent = np.asarray(parent, np.int64)
        root = np.where(parent >= 0, self.root[np.maximum(parent, 0)] if start else parent, np.arange(start, start + n))
        for name, values in (("author", author), ("kind", kind), ("parent", parent), ("root", root),
                             ("step", np.full(n, step)), ("time", np.full(n, time)), ("likes", np.zeros(n)),
                             ("dislikes", np.zeros(n)), ("event_id", event_id)):
            self.cols[name].extend(np.asarray(values))
        self.emb.extend(emb)
        self.text.extend(texts)
        return np.arange(start, start + n)

    def vote(self, post: int, column: str, delta: int) -> None:
        self.cols[column]._a[post] += delta

    def get_state(self) -> dict[str, Any]:
        return {**{k: c.a.copy() for k, c in self.cols.items()}, "emb": self.emb.a.copy(), "text": list(self.text)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.cols = {k: Column(t, state[k]) for k, t in self.COLUMNS.items()}
        self.emb = Column(np.float32, state["emb"], width=self.emb.width)
        self.text = list(state["text"])
