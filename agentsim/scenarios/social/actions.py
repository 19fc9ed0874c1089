"""The typed action an LLM user must answer with, and what each action needs."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, create_model, model_validator

POST_ACTIONS = {"repost", "quote_post", "like_post", "unlike_post", "dislike_post", "undo_dislike_post", "create_comment"}
COMMENT_ACTIONS = {"like_comment", "dislike_comment"}
USER_ACTIONS = {"follow", "unfollow", "mute", "unmute"}
CONTENT_ACTIONS = {"create_post", "quote_post", "create_comment"}
QUERY_ACTIONS = {"search_posts", "search_user"}

DESCRIPTIONS = {
    "create_post": "write a new post (content)",
    "repost": "share a post from your feed unchanged (post_id)",
    "quote_post": "share a post from your feed with your comment (post_id, content)",
    "like_post": "like a post (post_id)",
    "unlike_post": "take back your like of a post (post_id)",
    "dislike_post": "down-vote a post (post_id)",
    "undo_dislike_post": "take back your down-vote (post_id)",
    "create_comment": "comment on a post (post_id, content)",
    "like_comment": "like a comment (post_id = the comment's id)",
    "dislike_comment": "down-vote a comment (post_id = the comment's id)",
    "follow": "follow a user (user_id)",
    "unfollow": "stop following a user (user_id)",
    "mute": "hide a user's posts (user_id)",
    "unmute": "show a muted user's posts again (user_id)",
    "search_posts": "search posts (query); results appear next time",
    "search_user": "search users (query); results appear next time",
    "trend": "look at trending posts; they appear next time",
    "refresh": "ask for a fresh feed",
    "do_nothing": "do nothing this time",
}


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _needs(self, info: ValidationInfo) -> Any:
        a: str = self.action  # type: ignore[attr-defined]
        ctx = info.context or {}
        pid = self.post_id  # type: ignore[attr-defined]
        if a in POST_ACTIONS | COMMENT_ACTIONS:
            if pid is None:
                raise ValueError(f"{a} needs post_id")
            legal = ctx.get("comments" if a in COMMENT_ACTIONS else "posts")
            if legal is not None and pid not in legal:
                what = "comment" if a in COMMENT_ACTIONS else "post"
                raise ValueError(f"{what} {pid} is not in your feed; choose one of {sorted(legal)[:20]}")
        if a in USER_ACTIONS:
            uid = self.user_id  # type: ignore[attr-defined]
            if not uid:
                raise ValueError(f"{a} needs user_id")
            legal = ctx.get("users")
            if legal is not None and uid not in legal:
                raise ValueError(f"user {uid!r} is not one you have seen; choose one of {sorted(legal)[:20]}")
        if a in CONTENT_ACTIONS and not (self.content or "").strip():  # type: ignore[attr-defined]
            raise ValueError(f"{a} needs content")
        if a in QUERY_ACTIONS and not (self.query or "").strip():  # type: ignore[attr-defined]
            raise ValueError(f"{a} needs query")
        return self


@lru_cache(maxsize=64)
def action_model(allowed: tuple[str, ...]) -> type[BaseModel]:
    """One pydantic model per allowed-action set, so the JSON schema (and guided decoding) offers only those."""
    return create_model(
        "SocialAction",
        __base__=_Base,
        action=(Literal[allowed], Field(..., description="One of the actions you may take.")),  # type: ignore[valid-type]
        post_id=(int | None, Field(None, description="The post or comment the action is about.")),
        user_id=(str | None, Field(None, description="The user the action is about.")),
        content=(str | None, Field(None, description="Text of a post, quote or comment.")),
        query=(str | None, Field(None, description="Search text.")),
    )
