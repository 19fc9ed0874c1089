"""Who is on the platform and who follows whom: synthetic populations and networks, or users, follows and posts
read from CSV/Parquet files. Everything comes back as numpy columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from agentsim.scenarios.social.config import GroupSpec, NetworkSpec, SocialConfig
from agentsim.scenarios.social.embed import Embedder


def read_table(path: Path, required: tuple[str, ...], what: str) -> pd.DataFrame:
    """A CSV or Parquet file with the required columns, or a ValueError that names the file and what is wrong."""
    try:
        df = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as e:  # pandas raises many types for unreadable files
        raise ValueError(f"{path}: cannot read the {what} file ({type(e).__name__}: {e})") from e
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: the {what} file lacks column(s) {missing}; it has {list(df.columns)}")
    return df


@dataclass
class Population:
    """Users as columns. Synthetic users have ids 'u<index>' and their bios are made from their group's template."""

    ids: list[str]
    group: np.ndarray  # int16 index into groups
    groups: list[GroupSpec]
    interests: np.ndarray  # (n, 2) int32 index into topics
    topics: list[str]
    stance: np.ndarray  # float32 prior stance
    vec: np.ndarray  # (n, dim) float32 profile embedding
    bios: list[str] | None = None  # file users only
    index: dict[str, int] = field(default_factory=dict)
    names: list[str] | None = None  # display names (file users with a name column); else the id

    def name(self, i: int) -> str:
        return self.names[i] if self.names is not None else self.ids[i]

    def __len__(self) -> int:
        return len(self.ids)

    def idx(self, user_id: str) -> int | None:
        if self.index:
            return self.index.get(user_id)
        if user_id.startswith("u") and user_id[1:].isdigit():
            i = int(user_id[1:])
            return i if i < len(self.ids) and str(i) == user_id[1:] else None
        return None

    def bio(self, i: int) -> str:
        if self.bios is not None:
            return self.bios[i]
        g = self.groups[int(self.group[i])]
        interests = ", ".join(self.topics[int(t)] for t in self.interests[i])
        return (g.bio or "Interested in {interests}.").format(interests=interests, name=self.ids[i])

    def interest_names(self, i: int) -> list[str]:
        return [self.topics[int(t)] for t in dict.fromkeys(self.interests[i].tolist())]


def _normalise(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return (v / np.where(n == 0, 1, n)).astype(np.float32)


def synthetic_users(config: SocialConfig, n: int, embed: Embedder, rng: np.random.Generator) -> Population:
    groups = list(config.users.groups)
    shares = np.array([g.share for g in groups], np.float64)
    group = rng.choice(len(groups), size=n, p=shares / shares.sum()).astype(np.int16)
    topics = list(dict.fromkeys(t for g in groups for t in g.interests))
    tindex = {t: i for i, t in enumerate(topics)}
    per_group = [np.array([tindex[t] for t in g.interests], np.int32) for g in groups]
    interests = np.zeros((n, 2), np.int32)
    for gi, pool in enumerate(per_group):
        members = np.flatnonzero(group == gi)
        interests[members] = pool[rng.integers(0, pool.size, size=(members.size, 2))]
    stance = np.clip(np.array([g.stance for g in groups], np.float32)[group] + rng.normal(0, 0.1, n).astype(np.float32), -1, 1)
    temb = embed(topics)
    vec = _normalise(temb[interests[:, 0]] + temb[interests[:, 1]])
    return Population([f"u{i}" for i in range(n)], group, groups, interests, topics, stance.astype(np.float32), vec)


def file_users(config: SocialConfig, embed: Embedder) -> Population:
    assert config.users.file is not None
    df = read_table(config.users.file, ("user_id",), "users")
    ids = df["user_id"].astype(str).tolist()
    dup = pd.Series(ids)[pd.Series(ids).duplicated()].unique().tolist()
    if dup:
        raise ValueError(f"{config.users.file}: user_id repeats: {dup[:5]}")
    groups = list(config.users.groups)
    names = {g.name: i for i, g in enumerate(groups)}
    labels = df["group"].astype(str).tolist() if "group" in df.columns else [groups[0].name] * len(ids)
    for lab in labels:
        if lab not in names:  # groups named only in the file get the defaults
            names[lab] = len(groups)
            groups.append(GroupSpec(name=lab))
    group = np.array([names[lab] for lab in labels], np.int16)
    raw_interests = df["interests"].astype(str).tolist() if "interests" in df.columns else [""] * len(ids)
    per_user = [[t.strip() for t in s.split(";") if t.strip()] or list(groups[g].interests) for s, g in zip(raw_interests, group, strict=True)]
    topics = list(dict.fromkeys(t for ts in per_user for t in ts))
    tindex = {t: i for i, t in enumerate(topics)}
    interests = np.array([[tindex[ts[0]], tindex[ts[min(1, len(ts) - 1)]]] for ts in per_user], np.int32).reshape(-1, 2)
    bios = df["bio"].astype(str).tolist() if "bio" in df.columns else [f"Interested in {', '.join(ts)}." for ts in per_user]
    stance = np.array([groups[g].stance for g in group], np.float32)
    vec = _normalise(embed([f"{b} {' '.join(ts)}" for b, ts in zip(bios, per_user, strict=True)]))
    names = df["name"].astype(str).tolist() if "name" in df.columns else None
    return Population(ids, group, groups, interests, topics, stance, vec, bios, {u: i for i, u in enumerate(ids)}, names)


def follow_edges(net: NetworkSpec, pop: Population, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(follower, followee) index arrays."""
    n = len(pop)
    if net.follows_file is not None:
        df = read_table(net.follows_file, ("follower", "followee"), "follows")
        a = [pop.idx(str(u)) for u in df["follower"]]
        b = [pop.idx(str(u)) for u in df["followee"]]
        unknown = sorted({str(u) for u, i in zip(list(df["follower"]) + list(df["followee"]), a + b, strict=True) if i is None})
        if unknown:
            raise ValueError(f"{net.follows_file}: {len(unknown)} user id(s) not among the users, e.g. {unknown[:5]}")
        return np.array(a, np.int64), np.array(b, np.int64)
    if net.generator == "none" or n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if net.generator == "random_follows":
        rng = np.random.default_rng(seed)
        k = min(net.k, n - 1)
        follower = np.repeat(np.arange(n, dtype=np.int64), k)
        followee = rng.integers(0, n, size=follower.size)
        within = rng.random(follower.size) < net.homophily
        if within.any():
            order = np.argsort(pop.group, kind="stable")
            counts = np.bincount(pop.group, minlength=len(pop.groups))
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            g = pop.group[follower[within]]
            followee[within] = order[starts[g] + (rng.random(g.size) * counts[g]).astype(np.int64)]
        return follower, followee
    import networkx as nx

    k = max(1, min(net.k, n - 1))
    if net.generator == "barabasi_albert":
        g = nx.barabasi_albert_graph(n, k, seed=seed)
    elif net.generator == "powerlaw_cluster":
        g = nx.powerlaw_cluster_graph(n, k, net.p, seed=seed)
    elif net.generator == "watts_strogatz":
        g = nx.watts_strogatz_graph(n, max(2, k), net.p, seed=seed)
    else:
        g = nx.fast_gnp_random_graph(n, net.p, seed=seed)
    e = np.array(g.edges(), np.int64).reshape(-1, 2)
    # Undirected ties become mutual follows.
    return np.concatenate([e[:, 0], e[:, 1]]), np.concatenate([e[:, 1], e[:, 0]])


def seed_posts_file(path: Path, pop: Population, start_epoch: float) -> tuple[list[int], list[str], list[float]]:
    df = read_table(path, ("author", "content"), "seed posts")
    authors = [pop.idx(str(a)) for a in df["author"]]
    unknown = sorted({str(a) for a, i in zip(df["author"], authors, strict=True) if i is None})
    if unknown:
        raise ValueError(f"{path}: {len(unknown)} author id(s) not among the users, e.g. {unknown[:5]}")
    if "timestamp" in df.columns:
        ts = df["timestamp"].astype(str)
        num = pd.to_numeric(ts, errors="coerce")
        parsed = pd.to_datetime(ts.where(num.isna()), utc=True, errors="coerce")
        times = num.where(num.notna(), parsed.map(lambda t: t.timestamp() if pd.notna(t) else np.nan))
        bad = ts[times.isna()].tolist()
        if bad:
            raise ValueError(f"{path}: timestamp(s) neither ISO 8601 nor epoch seconds, e.g. {bad[:3]}")
        times = times.astype(float).tolist()
    else:
        times = [start_epoch - 60.0] * len(authors)
    order = np.argsort(np.asarray(times), kind="stable")
    return [int(authors[i]) for i in order], [str(df["content"].iloc[i]) for i in order], [float(times[i]) for i in order]
