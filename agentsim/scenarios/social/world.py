"""The social-platform world: users wake up by their activity profile, read a recommended feed and take one
action; the platform applies all actions of a step at once. State is columnar (see store.py)."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from agentsim.analysis.stance import LexiconStance
from agentsim.core.seeding import make_rng
from agentsim.core.types import AgentRecord, Decision, Observation
from agentsim.core.world import StepContext
from agentsim.scenarios.social import recommend, rules
from agentsim.scenarios.social.actions import action_model, fields
from agentsim.scenarios.social.config import CounterfactualPosts, HerdVotes, InjectPost, SocialConfig
from agentsim.scenarios.social.embed import make_embedder
from agentsim.scenarios.social.population import (
    Population,
    file_users,
    follow_edges,
    seed_posts_file,
    synthetic_users,
)
from agentsim.scenarios.social.store import COMMENT, KINDS, POST, QUOTE, REPOST, EdgeSet, Posts, pair_keys

JUDGE_ID = "judge"
PLATFORM = "platform"


# Views are NamedTuples, not dataclasses: they cross to the shards every step, and pickle handles tuples
# twice as fast as slotted dataclasses (`agentsim bench transport`).
class FeedItem(NamedTuple):
    post_id: int
    author: str
    kind: str
    text: str
    likes: int
    dislikes: int
    comments: tuple[tuple[int, str, str], ...]  # (comment id, author, text)


class UserView(NamedTuple):
    """What a rule-based user reads (an LLM user reads the same facts as text)."""

    user_id: str
    group: str
    stance: float
    interests: tuple[str, ...]
    allowed: tuple[str, ...]
    feed: tuple[FeedItem, ...]
    following: frozenset[str]
    topic: str
    max_chars: int
    lexicon: Any
    action_model: Any
    info: str = ""  # search results or trends the user asked for last time
    sim_time: float = 0.0
    reposted: frozenset[int] = frozenset()  # feed posts the platform would refuse to let this user repost again
    scripted: Any = None  # the group's ScriptedSpec (which scripted policy plays this user)
    exposures: tuple[int, ...] = ()  # per feed item: how many of the users this user follows joined its cascade
    n_following: int = 0


class JudgeView(NamedTuple):
    post_id: int
    text: str
    lexicon: Any


class StanceRating(BaseModel):
    """The judge's answer."""

    model_config = ConfigDict(extra="forbid")
    stance: int = Field(..., ge=-5, le=5, description="-5 strongly against ... 0 neutral ... 5 strongly in favour")


class SocialWorld:
    def __init__(self, config: SocialConfig, steps: int, seed: int, default_model: str, overrides: dict[str, str]):
        self.config = config
        self.steps = steps
        self.embed = make_embedder(config.embedding)
        rng = make_rng(seed, "social-population")
        self.pop: Population = (
            synthetic_users(config, config.users.count, self.embed, rng) if config.users.count else file_users(config, self.embed)
        )
        n = len(self.pop)
        self.n_users = n
        a, b = follow_edges(config.network, self.pop, int(rng.integers(2**31)))
        self.follows = EdgeSet.from_pairs(a, b)
        self.initial_follows = self.follows.keys.copy()
        self.mutes = EdgeSet()
        self.likes = EdgeSet()  # (user, post) for posts and comments
        self.dislikes = EdgeSet()
        self.shares = EdgeSet()  # (user, post) of every repost and quote, as OASIS's original_post_id (rules.py)
        # (user, root) of every post, repost and quote: who joined which cascade (the linear-threshold baseline reads it).
        self.participants = EdgeSet()
        self._count_exposures = any(g.scripted.policy == "linear_threshold" for g in config.users.groups)
        self.posts = Posts(self.embed.dim)
        self.latest_post = np.full(n, -1, np.int64)
        # What a user asked for last time (search results, trends), shown next time: the text, and the ids it
        # names, kept as ids (parsing "@name" back out of the text cannot work for every Unicode id).
        self.info: dict[int, tuple[str, tuple[str, ...]]] = {}
        self.judged_upto = 0
        self.seeded = False
        # Accounts that act only through interventions (not users; they never get a feed).
        extra = [iv.author for iv in config.interventions if isinstance(iv, InjectPost) and self.pop.idx(iv.author) is None]
        extra += [iv.voter for iv in config.interventions if isinstance(iv, HerdVotes)]
        extra += [a for iv in config.interventions if isinstance(iv, CounterfactualPosts) for a in (iv.poster, iv.voter)]
        # What a reader of the run must know about how its data files were read (validate prints them; run.json
        # keeps them as world_notes): the users file's format when it was told from the file, unused columns.
        self.notes: list[str] = list(self.pop.notes)
        self.counterfactual: dict[int, list[Any]] = {}
        for i, iv in enumerate(config.interventions):
            if isinstance(iv, CounterfactualPosts):
                from agentsim.scenarios.social.oasis import load_counterfactual

                self.counterfactual[i], unused = load_counterfactual(iv.file)
                if unused:
                    self.notes.append(f"{iv.file.name}: key(s) agentsim does not use: {', '.join(unused)}")
        self.controlled = {u: n + i for i, u in enumerate(dict.fromkeys(extra))}
        # Per-user model alias: group model, then population overrides by agent id.
        self.aliases = list(dict.fromkeys([default_model] + [g.model for g in self.pop.groups if g.model] + list(overrides.values())))
        amap = {m: i for i, m in enumerate(self.aliases)}
        galias = np.array([amap[g.model or default_model] for g in self.pop.groups], np.int16)
        self.alias = galias[self.pop.group]
        for uid, m in overrides.items():
            i = self.pop.idx(uid)
            if i is not None:
                self.alias[i] = amap[m]
        self.judge_alias = config.judge.model or default_model
        self.activity = np.array([(g.activity or config.time.activity).profile() for g in self.pop.groups], np.float64)
        # Per-user 24-hour profiles from the users file (NaN rows: the group's profile).
        ua = self.pop.activity
        self.user_activity = None if ua is None else np.where(np.isnan(ua), self.activity[self.pop.group], ua)
        self.allowed = [config.allowed_actions(g) for g in self.pop.groups]
        self.lexicon = LexiconStance(config.stance.positive, config.stance.negative, config.stance.intensifiers)
        self.phases = (PLATFORM, "users", "judge") if config.judge.enabled else (PLATFORM, "users")
        self._judged: list[int] = []

    # -- ids ------------------------------------------------------------------------------------------------------
    def user_id(self, i: int) -> str:
        if i < self.n_users:
            return self.pop.ids[i]
        return next(u for u, j in self.controlled.items() if j == i)

    def user_index(self, user_id: str) -> int | None:
        i = self.pop.idx(user_id)
        return i if i is not None else self.controlled.get(user_id)

    # -- protocol -------------------------------------------------------------------------------------------------
    def agent_table(self) -> pa.Table:
        """One row per user, built in columns (a million users must not mean a million Python objects here)."""
        pop = self.pop
        n = self.n_users
        rows_f, followee = self.follows.gather(np.arange(n))
        counts = np.bincount(rows_f, minlength=n)
        splits = np.concatenate([[0], np.cumsum(counts)])
        ids = np.array(pop.ids, dtype=object)
        personas = []
        groups = [g.name for g in pop.groups]
        for i in range(n):
            fl = ids[followee[splits[i] : splits[i + 1]]].tolist()
            personas.append(json.dumps({"name": pop.name(i), "bio": pop.bio(i), "interests": pop.interest_names(i), "stance": round(float(pop.stance[i]), 3),
                                        "followees": fl}, ensure_ascii=False))
        agent_id = list(pop.ids) + list(self.controlled) + ([JUDGE_ID] if self.config.judge.enabled else [])
        kinds = ["user"] * n + ["controlled"] * len(self.controlled) + (["judge"] if self.config.judge.enabled else [])
        aliases = np.array(self.aliases, dtype=object)[self.alias].tolist()
        models = aliases + [""] * len(self.controlled) + ([self.judge_alias] if self.config.judge.enabled else [])
        grp = np.array(groups, dtype=object)[pop.group].tolist() + [""] * (len(agent_id) - n)
        personas += [None] * (len(agent_id) - n)
        return pa.table({"agent_id": agent_id, "kind": kinds, "model": models, "group": grp, "persona": personas})

    def agents(self) -> list[AgentRecord]:
        return [
            AgentRecord(r["agent_id"], r["kind"], r["model"], r["group"], json.loads(r["persona"]) if r["persona"] else {})
            for r in self.agent_table().to_pylist()
        ]

    def sim_time(self, step: int) -> float:
        """Seconds since the Unix epoch (the Reddit hot score needs absolute time)."""
        return self.config.time.start_epoch + step * self.config.time.minutes_per_step * 60.0

    def observe(self, ctx: StepContext, phase: str) -> list[Observation]:
        if phase == "users":
            return self._observe_users(ctx)
        if phase == "judge":
            return self._observe_judge(ctx)
        return []

    def apply(self, ctx: StepContext, phase: str, decisions: list[Decision]) -> None:
        if phase == PLATFORM:
            self._platform(ctx)
        elif phase == "users":
            self._apply_users(ctx, decisions)
        else:
            self._apply_judge(ctx, decisions)

    def get_state(self) -> dict[str, Any]:
        return {
            "follows": self.follows.keys.copy(), "mutes": self.mutes.keys.copy(), "likes": self.likes.keys.copy(),
            "dislikes": self.dislikes.keys.copy(), "posts": self.posts.get_state(), "latest_post": self.latest_post.copy(),
            "info": {str(k): [text, list(users)] for k, (text, users) in self.info.items()},
            "judged_upto": self.judged_upto, "seeded": self.seeded,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.follows, self.mutes = EdgeSet(state["follows"]), EdgeSet(state["mutes"])
        self.likes, self.dislikes = EdgeSet(state["likes"]), EdgeSet(state["dislikes"])
        self.posts.set_state(state["posts"])
        self.shares = EdgeSet(pair_keys(*rules.shares_of(self.posts)))
        joined = self.posts.kind != COMMENT
        self.participants = EdgeSet(pair_keys(self.posts.author[joined], self.posts.root[joined]))
        self.latest_post = np.asarray(state["latest_post"], np.int64)
        # Checkpoints before mentions were kept as ids hold the text alone.
        self.info = {int(k): (v, ()) if isinstance(v, str) else (v[0], tuple(v[1])) for k, v in state["info"].items()}
        self.judged_upto, self.seeded = int(state["judged_upto"]), bool(state["seeded"])

    # -- platform phase: seeding and interventions ---------------------------------------------------------------
    def _add_posts(self, ctx: StepContext, authors: list[int], kinds: list[int], parents: list[int], texts: list[str],
                   actions: list[str], request_ids: list[str | None], time: float | None = None) -> np.ndarray:
        start = len(self.posts)
        eids = []
        for j, (au, k, par, txt, act, rid) in enumerate(zip(authors, kinds, parents, texts, actions, request_ids, strict=True)):
            payload: dict[str, Any] = {"post_id": start + j, "kind": KINDS[k]}
            if k != REPOST:
                payload["content"] = txt
            parent_eid = int(self.posts.event_id[par]) if par >= 0 else None
            root = int(self.posts.root[par]) if par >= 0 else start + j
            if par >= 0:
                payload["root"] = root
            eids.append(ctx.emit(self.user_id(au), act, f"p{par}" if par >= 0 else None, payload, parent_eid, rid))
        ids = self.posts.add(np.array(authors), np.array(kinds), np.array(parents), ctx.step,
                             ctx.sim_time if time is None else time, np.array(eids), texts, self.embed(texts))
        users = np.array(authors)
        mine = users < self.n_users
        self.latest_post[users[mine]] = ids[mine]
        joined = np.asarray(kinds) != COMMENT
        self.participants.add(pair_keys(users[joined], self.posts.root[ids[joined]]))
        return ids

    def _platform(self, ctx: StepContext) -> None:
        if not self.seeded:
            self._seed(ctx)
            self.seeded = True
        for iv in self.config.interventions:
            if isinstance(iv, InjectPost) and iv.step == ctx.step:
                self._add_posts(ctx, [self.user_index(iv.author)], [POST], [-1], [iv.content], ["create_post"], [None])  # type: ignore[list-item]
            elif isinstance(iv, HerdVotes) and iv.from_step <= ctx.step - 1 and (iv.to_step is None or ctx.step - 1 <= iv.to_step):
                self._herd(ctx, iv)
        for i, items in self.counterfactual.items():
            self._counterfactual(ctx, self.config.interventions[i], items)  # type: ignore[arg-type]

    def _counterfactual(self, ctx: StepContext, iv: CounterfactualPosts, items: list[Any]) -> None:
        """This step's share of OASIS's counterfactual posts: posted by the controlled poster, then voted by the
        controlled voter as each item's pre-assigned arm says (a `treatment` event, as herd_votes logs)."""
        k = ctx.step - iv.from_step
        batch = items[k * iv.per_step : (k + 1) * iv.per_step] if k >= 0 else []
        if not batch:
            return
        poster, voter = self.controlled[iv.poster], self.controlled[iv.voter]
        texts = [it.comment.body[: self.config.max_post_chars] for it in batch]
        ids = self._add_posts(ctx, [poster] * len(batch), [POST] * len(batch), [-1] * len(batch), texts,
                              ["create_post"] * len(batch), [None] * len(batch))
        for p, it in zip(ids.tolist(), batch, strict=True):
            eid = int(self.posts.event_id[p])
            arm = it.comment.group
            ctx.emit(iv.voter, "treatment", f"p{p}", {"post_id": p, "treatment": arm}, eid)
            if arm == "control":
                continue
            column, edges, action = ("likes", self.likes, "like_post") if arm == "up" else ("dislikes", self.dislikes, "dislike_post")
            self.posts.vote(p, column, 1)
            edges.add(pair_keys(voter, p)[None])
            ctx.emit(iv.voter, action, f"p{p}", {"post_id": p}, eid)

    def _seed(self, ctx: StepContext) -> None:
        sp = self.config.seed_posts
        if self.pop.posts:
            # OASIS's previous_tweets: each user's posts, in file order, a minute before the start.
            authors = [u for u, _ in self.pop.posts]
            self._add_posts(ctx, authors, [POST] * len(authors), [-1] * len(authors), [t[: self.config.max_post_chars] for _, t in self.pop.posts],
                            ["create_post"] * len(authors), [None] * len(authors), time=self.config.time.start_epoch - 60.0)
        if sp.file is not None:
            authors, texts, times = seed_posts_file(sp.file, self.pop, self.config.time.start_epoch)
            for a, t, tm in zip(authors, texts, times, strict=True):
                self._add_posts(ctx, [a], [POST], [-1], [t], ["create_post"], [None], time=tm)
        if sp.count:
            from agentsim.scenarios.social.scripted import compose_post

            authors = ctx.rng.integers(0, self.n_users, size=sp.count)
            texts = [
                compose_post(float(self.pop.stance[a]), self.pop.interest_names(int(a)), self.config.stance, ctx.rng, self.config.max_post_chars)
                for a in authors
            ]
            self._add_posts(ctx, authors.tolist(), [POST] * sp.count, [-1] * sp.count, texts, ["create_post"] * sp.count, [None] * sp.count,
                            time=self.config.time.start_epoch - 60.0)

    def _herd(self, ctx: StepContext, iv: HerdVotes) -> None:
        new = np.flatnonzero((self.posts.step == ctx.step - 1) & (self.posts.kind == POST))
        new = new[ctx.rng.random(new.size) < iv.share]
        arms = ctx.rng.integers(0, len(iv.arms), size=new.size)
        voter = self.controlled[iv.voter]
        for p, arm in zip(new.tolist(), arms.tolist(), strict=True):
            treatment = iv.arms[arm]
            eid = int(self.posts.event_id[p])
            ctx.emit(iv.voter, "treatment", f"p{p}", {"post_id": p, "treatment": treatment}, eid)
            if treatment == "control":
                continue
            column, edges, action = ("likes", self.likes, "like_post") if treatment == "up" else ("dislikes", self.dislikes, "dislike_post")
            self.posts.vote(p, column, 1)
            edges.add(pair_keys(voter, p)[None])
            ctx.emit(iv.voter, action, f"p{p}", {"post_id": p}, eid)

    # -- users phase ----------------------------------------------------------------------------------------------
    def active_users(self, ctx: StepContext) -> np.ndarray:
        minutes = ctx.step * self.config.time.minutes_per_step
        hour = int((self.config.time.start.hour + self.config.time.start.minute / 60 + minutes / 60) % 24)
        if self.user_activity is not None:
            p = self.user_activity[:, hour]
        else:
            p = self.activity[self.pop.group, hour] if self.activity.shape[0] > 1 else np.full(self.n_users, self.activity[0, hour])
        return np.flatnonzero(ctx.rng.random(self.n_users) < p)

    def _pool(self, now: float) -> np.ndarray:
        """Candidate posts: originals, reposts and quotes inside the time window (comments show under posts)."""
        lo = int(np.searchsorted(self.posts.time, now - self.config.recommender.window_minutes * 60.0, side="left"))
        idx = np.arange(lo, len(self.posts))
        return idx[self.posts.kind[lo:] != COMMENT]

    def feeds(self, users: np.ndarray, ctx: StepContext) -> list[list[int]]:
        rc = self.config.recommender
        pool = self._pool(ctx.sim_time)
        mats = []
        for src in rc.sources:
            width = src.slots + 8
            if src.kind == "hot":
                m = recommend.hot(users, pool, self.posts, width)
            elif src.kind == "follow":
                m = recommend.follow(users, pool, self.posts, self.follows, width)
            elif src.kind == "random":
                m = recommend.random_feed(users, pool, width, ctx.rng)
            else:
                latest = self.latest_post[users]
                vec = self.pop.vec[users] + np.where(latest[:, None] >= 0, self.posts.emb.a[np.maximum(latest, 0)] if len(self.posts) else 0, 0)
                vec /= np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-9)
                m = recommend.interest(users, vec, pool, self.posts, ctx.sim_time, rc.recency_half_life_minutes * 60.0, rc.candidates, width, ctx.rng)
            mats.append((m.tolist(), src.slots))
        authors = self.posts.author
        muted_users = set((self.mutes.keys >> 32).tolist()) if len(self.mutes) else set()
        out = []
        for r, u in enumerate(users.tolist()):
            muted = set(self.mutes.neighbours(u).tolist()) if u in muted_users else ()
            feed: list[int] = []
            seen: set[int] = set()
            for rows, slots in mats:
                taken = 0
                for p in rows[r]:
                    if taken == slots:
                        break
                    if p < 0 or p in seen or authors[p] == u or authors[p] in muted:
                        continue
                    seen.add(p)
                    feed.append(p)
                    taken += 1
            out.append(feed)
        return out

    def _comments(self, posts: set[int]) -> dict[int, list[int]]:
        k = self.config.recommender.comments_per_post
        if not k or not posts or not len(self.posts):
            return {}
        comments = np.flatnonzero(self.posts.kind == COMMENT)
        parents = self.posts.parent[comments]
        sel = comments[np.isin(parents, np.fromiter(posts, np.int64))]
        out: dict[int, list[int]] = {}
        for c in sel[::-1].tolist():  # newest first
            lst = out.setdefault(int(self.posts.parent[c]), [])
            if len(lst) < k:
                lst.append(c)
        return out

    def _item(self, p: int, comments: dict[int, list[int]]) -> FeedItem:
        posts = self.posts
        kind = KINDS[int(posts.kind[p])]
        text = posts.text[p]
        if kind == "repost":
            text = f"(repost of @{self.user_id(int(posts.author[int(posts.parent[p])]))}) {text}"
        elif kind == "quote":
            text = f'{text} (quoting: "{posts.text[int(posts.parent[p])]}")'
        return FeedItem(p, self.user_id(int(posts.author[p])), kind, text, int(posts.likes[p]), int(posts.dislikes[p]),
                        tuple((c, self.user_id(int(posts.author[c])), posts.text[c]) for c in comments.get(p, [])))

    def _observe_users(self, ctx: StepContext) -> list[Observation]:
        users = self.active_users(ctx)
        feeds = self.feeds(users, ctx)
        shown = {p for f in feeds for p in f}
        comments = self._comments(shown)
        items = {p: self._item(p, comments) for p in shown}
        obs = []
        group_names = [g.name for g in self.pop.groups]
        for u, feed in zip(users.tolist(), feeds, strict=True):
            g = int(self.pop.group[u])
            allowed = self.allowed[g]
            fitems = tuple(items[p] for p in feed)
            cids = {c[0] for it in fitems for c in it.comments}
            following = self.follows.neighbours(u)
            fset = frozenset(self.pop.ids[f] for f in following.tolist()) if following.size < 200 else frozenset()
            seen_users = {it.author for it in fitems} | {c[1] for it in fitems for c in it.comments} | set(fset)
            info, mentioned = self.info.pop(u, ("", ()))
            seen_users |= set(mentioned)
            if u < self.n_users:
                muted = self.mutes.neighbours(u)
                seen_users |= {self.user_id(m) for m in muted.tolist()}
            seen_users.discard(self.pop.ids[u])
            model = action_model(allowed)
            reposted = frozenset()
            if feed and len(self.shares):
                fid = np.asarray(feed, np.int64)
                reposted = frozenset(fid[self.shares.contains(u, rules.original(self.posts, fid))].tolist())
            exposures: tuple[int, ...] = ()
            if self._count_exposures and feed and following.size:
                roots = self.posts.root[np.asarray(feed, np.int64)]
                exposures = tuple(self.participants.contains(following[:, None], roots[None, :]).sum(axis=0).tolist())
            view = UserView(self.pop.ids[u], group_names[g], float(self.pop.stance[u]), tuple(self.pop.interest_names(u)), allowed,
                            fitems, fset, self.config.topic, self.config.max_post_chars, self.lexicon, model, info, ctx.sim_time,
                            reposted, self.pop.groups[g].scripted, exposures, int(following.size))
            obs.append(Observation(
                agent_id=self.pop.ids[u],
                model=self.aliases[int(self.alias[u])],
                messages=None,  # SocialMind builds the prompt where the user lives
                action_model=model,
                data=view,
                validation_context={"posts": {it.post_id for it in fitems}, "comments": cids, "users": seen_users},
            ))
        ctx.metric("active_users", len(obs))
        return obs

    def _apply_users(self, ctx: StepContext, decisions: list[Decision]) -> None:
        """Apply one step's answers simultaneously, under OASIS's platform rules (rules.py): an action OASIS would
        refuse changes nothing and is logged as a `refused` event with the wanted action and the reason."""
        new_posts: list[tuple[int, int, int, str, str, str | None]] = []
        counts: dict[str, int] = {}
        # Pending edge changes of this step (sets: membership is checked for every action).
        follow_add: set[int] = set()
        follow_del: set[int] = set()
        mute_add: set[int] = set()
        mute_del: set[int] = set()
        like_add: set[int] = set()
        like_del: set[int] = set()
        dis_add: set[int] = set()
        dis_del: set[int] = set()
        share_add: set[int] = set()
        queries: list[tuple[int, str, str, str | None]] = []
        cap = self.config.max_post_chars
        posts = self.posts
        for d in decisions:
            if not d.valid or d.action is None:
                continue
            u = self.pop.idx(d.agent_id)
            if u is None:
                continue
            a = fields(d.action)
            act: str = a.action  # type: ignore[attr-defined]
            rid = d.request_id
            pid = getattr(a, "post_id", None)
            uid = getattr(a, "user_id", None)
            content = (getattr(a, "content", None) or "").strip()[:cap]
            refused: str | None = None
            if act == "create_post":
                new_posts.append((u, POST, -1, content, act, rid))
            elif act in ("repost", "quote_post"):
                kind = REPOST if act == "repost" else QUOTE
                against = rules.share_key_post(posts, kind, pid)
                key = int(pair_keys(u, against))
                # Platform.repost refuses a second share of one post; Platform.quote_post allows any number of quotes
                # ("the quote content may be different"), but each one counts against a later repost.
                if kind == REPOST and (key in share_add or bool(self.shares.contains(u, against))):
                    refused = rules.REASONS["repost_again"]
                else:
                    share_add.add(key)
                    text = posts.text[int(posts.root[pid])] if kind == REPOST else content
                    new_posts.append((u, kind, pid, text, act, rid))
            elif act == "create_comment":
                # Platform.create_comment: a comment on a repost is a comment on the post it shares.
                new_posts.append((u, COMMENT, int(rules.original(posts, pid)), content, act, rid))
            elif act in ("like_post", "like_comment", "unlike_post", "dislike_post", "dislike_comment", "undo_dislike_post"):
                # Platform.like_post etc.: a vote on a repost is a vote on the post it shares (comments are never reposts).
                pid = int(rules.original(posts, pid))
                key = int(pair_keys(u, pid))
                like = act in ("like_post", "like_comment", "unlike_post")
                edges, col, add, delete = (self.likes, "likes", like_add, like_del) if like else (self.dislikes, "dislikes", dis_add, dis_del)
                undo = act in ("unlike_post", "undo_dislike_post")
                has = bool(edges.contains(u, pid)) and key not in delete or key in add
                if undo and has:
                    delete.add(key)
                    posts.vote(pid, col, -1)
                elif not undo and not has:
                    add.add(key)
                    posts.vote(pid, col, 1)
                else:
                    refused = rules.REASONS[{"like_post": "like_again", "dislike_post": "dislike_again",
                                             "like_comment": "comment_like_again", "dislike_comment": "comment_dislike_again",
                                             "unlike_post": "unlike_none", "undo_dislike_post": "undislike_none"}[act]]
                if refused is None:
                    ctx.emit(d.agent_id, act, f"p{pid}", {"post_id": pid}, int(posts.event_id[pid]), rid)
            elif act in ("follow", "unfollow", "mute", "unmute"):
                v = self.user_index(uid)
                if v is None or v >= self.n_users:
                    refused = rules.REASONS["unknown_user"]
                elif v == u and act in ("follow", "mute"):
                    refused = rules.REASONS[f"{act}_self"]
                else:
                    edges, add, delete = (self.follows, follow_add, follow_del) if act in ("follow", "unfollow") else (self.mutes, mute_add, mute_del)
                    key = int(pair_keys(u, v))
                    has = bool(edges.contains(u, v)) and key not in delete or key in add
                    undo = act in ("unfollow", "unmute")
                    if undo and has:
                        delete.add(key)
                    elif not undo and not has:
                        add.add(key)
                    else:
                        refused = rules.REASONS[{"follow": "follow_again", "unfollow": "unfollow_none",
                                                 "mute": "mute_again", "unmute": "unmute_none"}[act]]
                    if refused is None:
                        ctx.emit(d.agent_id, act, uid, None, None, rid)
            elif act in ("search_posts", "search_user"):
                queries.append((u, act, a.query.strip(), rid))  # type: ignore[attr-defined]
            elif act == "trend":
                self.info[u] = self._trend(ctx)
                ctx.emit(d.agent_id, act, None, None, None, rid)
            else:  # refresh, do_nothing
                ctx.emit(d.agent_id, act, None, None, None, rid)
            if refused is not None:
                target = f"p{pid}" if pid is not None else uid
                wanted: dict[str, Any] = {"wanted": act, "reason": refused}
                wanted.update({"post_id": pid} if pid is not None else {"user_id": uid} if uid is not None else {})
                ctx.emit(d.agent_id, "refused", target, wanted, None, rid)
                counts[f"refused/{act}"] = counts.get(f"refused/{act}", 0) + 1
                act = "refused"
            counts[act] = counts.get(act, 0) + 1
        if new_posts:
            au, kinds, parents, texts, acts, rids = (list(x) for x in zip(*new_posts, strict=True))
            self._add_posts(ctx, au, kinds, parents, texts, acts, rids)
        self._search(ctx, queries)
        for edges, add, delete in ((self.follows, follow_add, follow_del), (self.mutes, mute_add, mute_del),
                                   (self.likes, like_add, like_del), (self.dislikes, dis_add, dis_del),
                                   (self.shares, share_add, set())):
            edges.add(np.fromiter(add, np.int64, len(add)))
            edges.remove(np.fromiter(delete, np.int64, len(delete)))
        for act, c in sorted(counts.items()):
            ctx.metric(act if act.startswith("refused/") else f"actions/{act}", c)
        ctx.metric("posts_total", len(self.posts))
        ctx.metric("follows_total", len(self.follows))

    def _search(self, ctx: StepContext, queries: list[tuple[int, str, str, str | None]]) -> None:
        if not queries:
            return
        q = self.embed([t for _, _, t, _ in queries])
        pool = self._pool(ctx.sim_time)
        for j, (u, act, text, rid) in enumerate(queries):
            if act == "search_posts":
                hits = pool[np.argsort(-(self.posts.emb.a[pool] @ q[j]), kind="stable")[:3]] if pool.size else np.zeros(0, np.int64)
                named = [self.user_id(int(self.posts.author[p])) for p in hits.tolist()]
                lines = [f"[post {p}] @{a}: {self.posts.text[p]}" for p, a in zip(hits.tolist(), named, strict=True)]
            else:
                best = np.full(3, -1, np.int64)
                best_s = np.full(3, -np.inf)
                for lo in range(0, self.n_users, 262_144):
                    s = self.pop.vec[lo : lo + 262_144] @ q[j]
                    k = min(3, s.size)
                    top = np.argpartition(-s, k - 1)[:k]
                    cand_i = np.concatenate([best, top + lo])
                    cand_s = np.concatenate([best_s, s[top]])
                    keep = np.argsort(-cand_s, kind="stable")[:3]
                    best, best_s = cand_i[keep], cand_s[keep]
                named = [self.pop.ids[i] for i in best.tolist() if i >= 0 and i != u]
                lines = [f"@{self.pop.ids[i]}: {self.pop.bio(i)}" for i in best.tolist() if i >= 0 and i != u]
            self.info[u] = (f'Results of your search "{text}":\n' + ("\n".join(lines) if lines else "(nothing found)"), tuple(named))
            ctx.emit(self.pop.ids[u], act, None, {"query": text, "results": len(lines)}, None, rid)

    def _trend(self, ctx: StepContext) -> tuple[str, tuple[str, ...]]:
        pool = self._pool(ctx.sim_time)
        top = pool[np.argsort(-self.posts.likes[pool], kind="stable")[:3]] if pool.size else []
        authors = [self.user_id(int(self.posts.author[p])) for p in top]
        lines = [f"[post {p}] @{a} ({self.posts.likes[p]} likes): {self.posts.text[p]}" for p, a in zip(top, authors, strict=True)]
        return "Trending posts:\n" + ("\n".join(lines) if lines else "(none)"), tuple(authors)

    # -- judge phase ----------------------------------------------------------------------------------------------
    def _observe_judge(self, ctx: StepContext) -> list[Observation]:
        jc = self.config.judge
        if ctx.step % jc.every:
            # The runtime applies every phase, with no decisions where there were no observations: the posts of
            # the last judging step must not be waiting for answers then.
            self._judged = []
            return []
        cand = np.arange(self.judged_upto, len(self.posts))
        cand = cand[self.posts.kind[cand] != REPOST]
        self.judged_upto = len(self.posts)
        if cand.size > jc.sample:
            cand = np.sort(ctx.rng.choice(cand, size=jc.sample, replace=False))
        self._judged = cand.tolist()
        model = StanceRating
        system = (f"You rate the stance of social media posts on {jc.topic}. Answer with JSON "
                  '{"stance": S} where S is an integer from -5 (strongly against) through 0 (neutral or unrelated) to 5 (strongly in favour).')
        return [
            Observation(JUDGE_ID, self.judge_alias,
                        [{"role": "system", "content": system}, {"role": "user", "content": f"Post: {self.posts.text[p]}"}],
                        action_model=model, data=JudgeView(p, self.posts.text[p], self.lexicon), tag=f"-p{p}")
            for p in cand.tolist()
        ]

    def _apply_judge(self, ctx: StepContext, decisions: list[Decision]) -> None:
        # The policy answers every observation, in order.
        for p, d in zip(self._judged, decisions, strict=True):
            if d.valid and d.action is not None:
                ctx.emit(JUDGE_ID, "judge_stance", f"p{p}", {"post_id": p, "stance": int(d.action.stance)},
                         int(self.posts.event_id[p]), d.request_id)

