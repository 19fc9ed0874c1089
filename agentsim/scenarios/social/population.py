"""Who is on the platform and who follows whom: synthetic populations and networks, or users, follows and posts
read from CSV/Parquet files. Everything comes back as numpy columns.

The row models (UserRow, FollowRow, PostRow) are the file formats (README "File formats"): a bad file is refused
with its file, row, id and field."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from agentsim.core.datafile import check_columns, drop_blank_optionals, read_table, validate_rows
from agentsim.core.names import Name
from agentsim.scenarios.social.config import GroupSpec, NetworkSpec, SocialConfig
from agentsim.scenarios.social.embed import Embedder


class UserRow(BaseModel):
    """One user of a users file."""

    model_config = ConfigDict(extra="forbid")
    user_id: Name = Field(..., description="The user's id: its agent id, what others follow and mention; unique in the file, not a reserved id.")
    name: Name | None = Field(None, description="Display name shown in prompts (default: the id).")
    bio: str | None = Field(None, description="Profile text (default: 'Interested in <interests>.').")
    interests: str | list[str] | None = Field(
        None, description="Topics, separated by ';' (a list in Parquet); the user posts about the first two (default: the group's interests)."
    )
    group: Name | None = Field(None, description="One of the scenario's `world.users.groups` (default: the first group); the group gives stance, activity, model and actions.")

    @field_validator("group")
    @classmethod
    def _known_group(cls, v: str | None, info: ValidationInfo) -> str | None:
        groups = (info.context or {}).get("groups")
        if v is not None and groups is not None and v not in groups:
            raise ValueError(f"{v!r} is not a group of this scenario; world.users.groups are {list(groups)}")
        return v

    def topics(self) -> list[str]:
        raw = self.interests if isinstance(self.interests, list) else (self.interests or "").split(";")
        return [t.strip() for t in raw if t.strip()]


def _known_user(v: str, info: ValidationInfo) -> str:
    known = (info.context or {}).get("known")
    if known is not None and not known(v):
        raise ValueError(f"{v!r} is not among the users")
    return v


class FollowRow(BaseModel):
    """One follow edge of a follows file (a user following itself is ignored; a repeated edge counts once)."""

    model_config = ConfigDict(extra="forbid")
    follower: Name = Field(..., description="The user who follows (a user id of the users file, or u<i> for synthetic users).")
    followee: Name = Field(..., description="The user followed.")

    _known = field_validator("follower", "followee")(_known_user)


class PostRow(BaseModel):
    """One post on the platform before step 0."""

    model_config = ConfigDict(extra="forbid")
    author: Name = Field(..., description="The author's user id.")
    content: str = Field(..., min_length=1, description="The post's text.")
    timestamp: float | None = Field(
        None, description="When it was posted: ISO 8601 (UTC unless it says otherwise) or Unix epoch seconds (default: a minute before the start)."
    )

    _known = field_validator("author")(_known_user)

    @field_validator("timestamp", mode="before")
    @classmethod
    def _time(cls, v: object) -> object:
        if not isinstance(v, str):
            return (v if v.tzinfo else v.replace(tzinfo=UTC)).timestamp() if isinstance(v, datetime) else v
        try:
            return float(v)
        except ValueError:
            pass
        try:
            t = datetime.fromisoformat(v.strip())
        except ValueError:
            raise ValueError(f"{v!r} is neither ISO 8601 nor epoch seconds") from None
        return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True)
class UsersTable:
    """A validated users file as columns (row i of the file is index i).

    Formats other than agentsim's (OASIS's, see oasis.py) may also give each user's follows (row positions), a
    24-hour activity profile (an (n, 24) array of per-step probabilities; NaN rows: the group's), posts made before
    step 0 ((row, text) in file order), and the columns agentsim does not use; `notes` say how the file was read."""

    ids: list[str]
    names: list[str] | None
    bios: list[str | None]
    topics: list[list[str]]
    groups: list[str | None]
    fmt: str = "agentsim"
    follows: list[list[int]] | None = None
    activity: np.ndarray | None = field(default=None, compare=False)
    posts: tuple[tuple[int, str], ...] = ()
    unused: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def load_users(path: Path, groups: tuple[str, ...] | None, fmt: str | None = "agentsim", follows_by: str = "row") -> UsersTable:
    """The users of a users file; DataFileError names the file, row, id and field of every bad cell (a group not in
    `groups` included; None skips that check). Repeated and reserved ids are refused by Family.problems.
    `fmt`: agentsim, oasis_twitter, oasis_reddit, or None to tell from the file (oasis.detect_format, with a note)."""
    st = path.stat() if path.exists() else None
    return _load_users(path, groups, fmt, follows_by, st.st_mtime_ns if st else 0, st.st_size if st else 0)


def users_file(config: SocialConfig, groups: tuple[str, ...] | None = ()) -> UsersTable:
    """The scenario's users file as its `world.users` says to read it (groups: the scenario's, unless given)."""
    assert config.users.file is not None
    if groups == ():
        groups = tuple(g.name for g in config.users.groups)
    return load_users(config.users.file, groups, config.users.format, config.users.follows_by)


@lru_cache(maxsize=4)
def _load_users(path: Path, groups: tuple[str, ...] | None, fmt: str | None, follows_by: str, _mtime: int, _size: int) -> UsersTable:
    from agentsim.scenarios.social import oasis

    notes: list[str] = []
    if fmt is None:
        fmt, how = oasis.detect_format(path)
        notes += [how] if how else []
    if fmt == "oasis_twitter":
        parts = oasis.load_twitter(path, groups, follows_by)
    elif fmt == "oasis_reddit":
        parts = oasis.load_reddit(path, groups)
    else:
        columns, raw = read_table(path, "users")
        check_columns(path, columns, UserRow, "users")
        rows = validate_rows(path, drop_blank_optionals(raw, UserRow), UserRow, "user_id", context={"groups": groups})
        names = [r.name or r.user_id for r in rows] if "name" in columns else None
        return UsersTable([r.user_id for r in rows], names, [r.bio for r in rows], [r.topics() for r in rows], [r.group for r in rows],
                          notes=tuple(notes))
    if parts["unused"]:
        notes.append(oasis.describe_unused(path, parts["unused"], fmt))
    return UsersTable(fmt=fmt, notes=tuple(notes), **parts)


def load_follows(path: Path, known: Callable[[str], bool] | None) -> list[FollowRow]:
    """Follow edges; DataFileError names the row of every id `known` refuses (None: no such check)."""
    columns, raw = read_table(path, "follows")
    check_columns(path, columns, FollowRow, "follows")
    return validate_rows(path, raw, FollowRow, "follower", context={"known": known})


def load_posts(path: Path, known: Callable[[str], bool] | None) -> list[PostRow]:
    """Seed posts; DataFileError names the row of every bad timestamp and of every author `known` refuses."""
    columns, raw = read_table(path, "seed posts")
    check_columns(path, columns, PostRow, "seed posts")
    return validate_rows(path, drop_blank_optionals(raw, PostRow), PostRow, "author", context={"known": known})


def synthetic_known(n: int) -> Callable[[str], bool]:
    """Whether an id is one of the synthetic users u0..u{n-1}."""
    return lambda u: u.startswith("u") and u[1:].isdigit() and str(int(u[1:])) == u[1:] and int(u[1:]) < n


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
    activity: np.ndarray | None = None  # (n, 24) per-user probability of acting in a step, by hour (NaN: the group's)
    follows: list[list[int]] | None = None  # per user, the indices it follows (from an OASIS users file)
    posts: tuple[tuple[int, str], ...] = ()  # (user index, text) posted before step 0 (OASIS's previous_tweets)
    notes: tuple[str, ...] = ()  # how the users file was read, and what in it is not used

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
    groups = list(config.users.groups)
    index = {g.name: i for i, g in enumerate(groups)}
    users = users_file(config, tuple(index))
    ids = users.ids
    group = np.array([index[g] if g is not None else 0 for g in users.groups], np.int16)
    per_user = [ts or list(groups[g].interests) for ts, g in zip(users.topics, group, strict=True)]
    topics = list(dict.fromkeys(t for ts in per_user for t in ts))
    tindex = {t: i for i, t in enumerate(topics)}
    interests = np.array([[tindex[ts[0]], tindex[ts[min(1, len(ts) - 1)]]] for ts in per_user], np.int32).reshape(-1, 2)
    bios = [b if b is not None else f"Interested in {', '.join(ts)}." for b, ts in zip(users.bios, per_user, strict=True)]
    stance = np.array([groups[g].stance for g in group], np.float32)
    vec = _normalise(embed([f"{b} {' '.join(ts)}" for b, ts in zip(bios, per_user, strict=True)]))
    activity = users.activity if config.users.activity == "file" else None
    return Population(ids, group, groups, interests, topics, stance, vec, bios, {u: i for i, u in enumerate(ids)}, users.names,
                      activity=activity, follows=users.follows, posts=users.posts, notes=users.notes)


def follow_edges(net: NetworkSpec, pop: Population, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(follower, followee) index arrays."""
    n = len(pop)
    if net.follows_file is None and pop.follows is not None:
        # An OASIS users file carries its follow network (following_agentid_list): that is the network.
        counts = [len(f) for f in pop.follows]
        return (np.repeat(np.arange(n, dtype=np.int64), counts),
                np.fromiter((j for f in pop.follows for j in f), np.int64, sum(counts)))
    if net.follows_file is not None:
        edges = load_follows(net.follows_file, lambda u: pop.idx(u) is not None)
        return (np.array([pop.idx(e.follower) for e in edges], np.int64).reshape(-1),
                np.array([pop.idx(e.followee) for e in edges], np.int64).reshape(-1))
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
    posts = load_posts(path, lambda u: pop.idx(u) is not None)
    authors = [pop.idx(p.author) for p in posts]
    times = [p.timestamp if p.timestamp is not None else start_epoch - 60.0 for p in posts]
    order = np.argsort(np.asarray(times, dtype=float), kind="stable")
    return [int(authors[i]) for i in order], [posts[i].content for i in order], [float(times[i]) for i in order]  # type: ignore[arg-type]
