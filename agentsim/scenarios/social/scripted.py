"""Rule-based users: a seeded baseline with homophily, social proof and opinion reinforcement.

A user reads the stance of each feed item with the lexicon scorer, picks an item with probability rising with
agreement and with its likes (social proof, which is what makes cascades heavy-tailed), and likes, reposts or
comments on what it agrees with and down-votes (where allowed) what it does not. Its own posts lean the way of
the agreeable posts it just read, more strongly than its prior: an echo chamber pushes it to the extremes.
Cheap enough for a million users, and a reference point for LLM populations.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from agentsim.scenarios.social.config import StanceSpec
from agentsim.scenarios.social.world import JudgeView, StanceRating, UserView


def compose_post(stance: float, interests: list[str], lex: StanceSpec, rng: np.random.Generator, max_chars: int) -> str:
    """A short post whose lexicon stance follows `stance` (sign) and whose intensity follows |stance|."""
    words = lex.positive if stance >= 0 else lex.negative
    n_pol = 1 + int(abs(stance) * 2.5)
    n_int = int(abs(stance) * 2.99) if lex.intensifiers else 0
    parts = [str(words[int(rng.integers(len(words)))]) for _ in range(n_pol)]
    parts += [str(lex.intensifiers[int(rng.integers(len(lex.intensifiers)))]) for _ in range(n_int)]
    rng.shuffle(parts)
    topic = interests[int(rng.integers(len(interests)))] if interests else "this"
    if abs(stance) < 0.15:
        return f"Thinking about {topic} today, curious what others say #{topic.replace(' ', '')}"[:max_chars]
    return f"On {topic}: {' '.join(parts)} #{topic.replace(' ', '')}"[:max_chars]


def independent_cascade(v: UserView, rng: np.random.Generator, p: float) -> Any:
    """Independent cascade: each post shown in the feed (one not yet shared) is an exposure reposted with
    probability p, independently; the first exposure that fires is reposted, else the user does nothing."""
    fire = rng.random(len(v.feed)) < p
    for it, f in zip(v.feed, fire, strict=True):
        if f and it.post_id not in v.reposted and "repost" in v.allowed:
            return v.action_model.model_validate({"action": "repost", "post_id": it.post_id})
    return _idle(v, rng)


def user_threshold(user_id: str, spec: Any) -> float:
    """The user's linear-threshold threshold: the group's value, or a U(0, 1) draw fixed by the user id (the same in
    every run and shard, whatever order users act in)."""
    if spec.threshold != "uniform":
        return float(spec.threshold)
    return float(np.random.default_rng(zlib.crc32(user_id.encode("utf-8"))).random())


def linear_threshold(v: UserView, rng: np.random.Generator, spec: Any) -> Any:
    """Linear threshold: repost the feed post whose cascade the largest share of one's followees joined, once that
    share reaches the user's threshold; else do nothing."""
    theta = user_threshold(v.user_id, spec)
    best, share = None, -1.0
    for it, k in zip(v.feed, v.exposures or (0,) * len(v.feed), strict=True):
        s = k / v.n_following if v.n_following else 0.0
        if it.post_id not in v.reposted and s > share:
            best, share = it, s
    if best is not None and v.n_following and share >= theta and share > 0 and "repost" in v.allowed:
        return v.action_model.model_validate({"action": "repost", "post_id": best.post_id})
    return _idle(v, rng)


def _idle(v: UserView, rng: np.random.Generator) -> Any:
    """What a classical-model user does when it does not adopt: nothing (or a refresh, where doing nothing is not
    among the group's actions; the stance user's choice when neither is)."""
    for quiet in ("do_nothing", "refresh"):
        if quiet in v.allowed:
            return v.action_model.model_validate({"action": quiet})
    return user_turn(v._replace(scripted=None), rng)


def user_turn(v: UserView, rng: np.random.Generator) -> Any:
    spec = v.scripted
    if spec is not None and spec.policy == "independent_cascade":
        return independent_cascade(v, rng, spec.p)
    if spec is not None and spec.policy == "linear_threshold":
        return linear_threshold(v, rng, spec)
    allowed = set(v.allowed)
    lex = v.lexicon
    feed = v.feed
    stances = np.array([lex.score(it.text) for it in feed]) if feed else np.zeros(0)
    agree = stances * np.sign(v.stance or 1e-9)
    lean = v.stance
    if feed and (agree > 0).any():
        lean = float(np.clip(0.6 * v.stance + 0.6 * np.mean(stances[agree > 0]), -1, 1))
    act = dict(action="do_nothing")
    r = rng.random()
    if "create_post" in allowed and (not feed or r < 0.2):
        act = dict(action="create_post", content=compose_post(lean, list(v.interests), _spec(lex), rng, v.max_chars))
    elif feed:
        likes = np.array([it.likes - it.dislikes for it in feed], np.float64)
        w = np.exp(2.0 * agree) * (1.0 + np.log1p(np.maximum(likes, 0)))
        i = int(rng.choice(len(feed), p=w / w.sum()))
        it, ag = feed[i], agree[i]
        u = rng.random()
        social_proof = min(1.0, 0.15 + 0.08 * np.log1p(max(it.likes, 0)))
        if ag > 0 and "repost" in allowed and u < social_proof and it.post_id not in v.reposted:
            act = dict(action="repost", post_id=it.post_id)
        elif ag > 0 and "quote_post" in allowed and u < social_proof + 0.03:
            act = dict(action="quote_post", post_id=it.post_id, content=compose_post(lean, list(v.interests), _spec(lex), rng, v.max_chars))
        elif "create_comment" in allowed and u < 0.3:
            act = dict(action="create_comment", post_id=it.post_id, content=compose_post(lean, list(v.interests), _spec(lex), rng, v.max_chars))
        elif ag > 0 and "follow" in allowed and it.author not in v.following and u < 0.4:
            act = dict(action="follow", user_id=it.author)
        elif ag >= 0 and "like_post" in allowed:
            act = dict(action="like_post", post_id=it.post_id)
        elif ag < 0 and "dislike_post" in allowed:
            act = dict(action="dislike_post", post_id=it.post_id)
        elif it.comments and "like_comment" in allowed:
            act = dict(action="like_comment", post_id=it.comments[0][0])
        if r > 0.985 and "search_posts" in allowed:
            act = dict(action="search_posts", query=v.interests[0] if v.interests else v.topic)
        elif r > 0.98 and "trend" in allowed:
            act = dict(action="trend")
    return v.action_model.model_validate(act)


def _spec(lex: Any) -> StanceSpec:
    pos = [w for w, p in lex.polarity.items() if p > 0]
    neg = [w for w, p in lex.polarity.items() if p < 0]
    return StanceSpec(positive=pos, negative=neg, intensifiers=sorted(lex.intensifiers))


def judge(v: JudgeView, rng: np.random.Generator) -> Any:
    return StanceRating(stance=int(round(5 * v.lexicon.score(v.text))))


def scripted_policy(data: Any, rng: np.random.Generator) -> Any:
    if isinstance(data, UserView):
        return user_turn(data, rng)
    if isinstance(data, JudgeView):
        return judge(data, rng)
    raise TypeError(f"social scripted policy got an unexpected observation: {type(data).__name__}")
