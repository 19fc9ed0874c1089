"""OASIS's platform rules: which actions the platform refuses, and what an action on a repost is about.

Each rule reproduces one check of OASIS's platform (camel-ai/oasis, `oasis/social_platform/platform.py`, class
`Platform`), cited at the rule. A refused action changes no state; the world logs it as a `refused` event whose
payload holds the wanted action and the reason (OASIS's error text where OASIS has one), as OASIS's
`{"success": False, "error": ...}` answers do, so refusals can be counted (`agentsim analyze RUN social`: table
`refusals`).

Keys. A share key is (user, post): the post a repost counts against, as OASIS's `original_post_id`:
- a repost of an original post or of a quote counts against that post; a repost of a repost counts against the
  post the first repost shared (`Platform.repost`: "repost" type -> `root_post_id`);
- a quote counts against the root of what it quotes (`Platform.quote_post`: a quote of a repost or quote is
  stored with the root's id).
"""

from __future__ import annotations

import numpy as np

from agentsim.scenarios.social.store import QUOTE, REPOST, Posts

#: The reasons a platform refuses an action, by rule. Texts in quotes are OASIS's own error messages.
REASONS = {
    # Platform.repost: SELECT ... FROM post WHERE original_post_id = ? AND user_id = ? -> refused. The query
    # matches the user's reposts and quotes alike, so a quote also uses up the repost of what it quotes.
    "repost_again": "Repost record already exists.",
    # Platform.like_post / dislike_post / like_comment / dislike_comment: a second record is refused.
    "like_again": "Like record already exists.",
    "dislike_again": "Dislike record already exists.",
    "comment_like_again": "Comment like record already exists.",
    "comment_dislike_again": "Comment dislike record already exists.",
    # Platform.unlike_post / undo_dislike_post: nothing to take back.
    "unlike_none": "Like record does not exist.",
    "undislike_none": "Dislike record does not exist.",
    # Platform.follow / unfollow / mute / unmute.
    "follow_again": "Follow record already exists.",
    "unfollow_none": "Follow record does not exist.",
    "mute_again": "Mute record already exists.",
    "unmute_none": "No mute record exists.",
    # Not OASIS checks (its follow and mute tables take any pair), but a follow graph file with self-loops is
    # refused by agentsim's loaders too (EdgeSet.from_pairs drops them): one can neither follow nor mute oneself.
    "follow_self": "cannot follow yourself",
    "mute_self": "cannot mute yourself",
    "unknown_user": "unknown user",
}


def original(posts: Posts, pid: int | np.ndarray) -> np.ndarray:
    """The post an action on `pid` is about when `pid` may be a repost: reposts are followed back to the first
    post that is not a repost (OASIS: `PlatformUtils._get_post_type` gives a repost's `root_post_id`, and
    like_post, dislike_post, their undos, create_comment and repost act on that post). Vectorized over ids."""
    p = np.asarray(pid, np.int64).copy()
    kind, parent = posts.kind, posts.parent
    for _ in range(64):  # a repost of a repost of ... : chains are short; each pass climbs one level
        up = kind[p] == REPOST
        if not up.any():
            return p
        p[up] = parent[p[up]]
    while (up := kind[p] == REPOST).any():  # pragma: no cover - chains longer than 64 reposts
        p[up] = parent[p[up]]
    return p


def share_key_post(posts: Posts, kind: int, pid: int) -> int:
    """The post a new share (REPOST or QUOTE) of `pid` counts against (see the module docstring)."""
    if kind == QUOTE:
        return int(posts.root[pid])
    return int(original(posts, pid))


def shares_of(posts: Posts) -> tuple[np.ndarray, np.ndarray]:
    """(user, post) of every repost and quote on the platform, as share keys: rebuilt from the posts (a checkpoint
    does not need to store them)."""
    kinds = posts.kind
    reposts = np.flatnonzero(kinds == REPOST)
    quotes = np.flatnonzero(kinds == QUOTE)
    users = np.concatenate([posts.author[reposts], posts.author[quotes]])
    targets = np.concatenate([original(posts, posts.parent[reposts]) if reposts.size else np.zeros(0, np.int64),
                              posts.root[quotes]])
    return users.astype(np.int64), targets.astype(np.int64)
