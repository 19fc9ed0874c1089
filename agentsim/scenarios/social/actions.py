"""The typed action an LLM user must answer with, and what each action needs."""

from __future__ import annotations

import json
from functools import cache, lru_cache
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationInfo,
    create_model,
    model_validator,
)

from agentsim.core.names import nfc

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


#: The fields each action needs. Each action is its own model with these fields required, and the answer is a
#: union discriminated by `action`: with guided decoding a model cannot leave out what its action needs.
NEEDS: dict[str, tuple[str, ...]] = {
    **{a: ("post_id",) for a in POST_ACTIONS | COMMENT_ACTIONS},
    **{a: ("user_id",) for a in USER_ACTIONS},
    **{a: ("query",) for a in QUERY_ACTIONS},
    "create_post": ("content",), "quote_post": ("post_id", "content"), "create_comment": ("post_id", "content"),
    "trend": (), "refresh": (), "do_nothing": (),
}
_FIELDS: dict[str, Any] = {
    "post_id": (int, Field(..., description="The post (or, for comment actions, the comment) the action is about.")),
    # NFC, as every id is on load: a model may write "josé" with a combining accent.
    "user_id": (Annotated[str, AfterValidator(nfc)], Field(..., min_length=1, description="The user the action is about.")),
    "content": (str, Field(..., min_length=1, description="Text of the post, quote or comment.")),
    "query": (str, Field(..., min_length=1, description="Search text.")),
}


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _legal(self, info: ValidationInfo) -> Any:
        a: str = self.action  # type: ignore[attr-defined]
        ctx = info.context or {}
        if a in POST_ACTIONS | COMMENT_ACTIONS:
            pid = self.post_id  # type: ignore[attr-defined]
            legal = ctx.get("comments" if a in COMMENT_ACTIONS else "posts")
            if legal is not None and pid not in legal:
                what = "comment" if a in COMMENT_ACTIONS else "post"
                raise ValueError(f"{what} {pid} is not in your feed; choose one of {sorted(legal)[:20]}")
        if a in USER_ACTIONS:
            uid = self.user_id  # type: ignore[attr-defined]
            legal = ctx.get("users")
            if legal is not None and uid not in legal:
                raise ValueError(f"user {uid!r} is not one you have seen; choose one of {json.dumps(sorted(legal)[:20], ensure_ascii=False)}")
        return self


@cache
def variant(action: str) -> type[BaseModel]:
    """The model of one action (one class per action, shared by every allowed set)."""
    cls = create_model(f"Act_{action}", __base__=_Base, __module__=__name__,
                       action=(Literal[action], Field(..., description=DESCRIPTIONS[action])),  # type: ignore[valid-type]
                       **{f: _FIELDS[f] for f in NEEDS[action]})
    return cls


@lru_cache(maxsize=64)
def action_model(allowed: tuple[str, ...]) -> type[BaseModel]:
    """One model per allowed-action set: a union of one model per action, discriminated by `action`, so the JSON
    schema (and guided decoding) offers only those actions, each with exactly the fields it needs."""
    variants = [variant(a) for a in allowed]
    union = variants[0] if len(variants) == 1 else Annotated[Union[tuple(variants)], Field(discriminator="action")]  # noqa: UP007

    class SocialAction(RootModel[union]):  # type: ignore[valid-type]
        model_config = ConfigDict(json_schema_extra=_any_of)

    # Importable by name (see __getattr__ below), so Ray ships these classes to shard actors by reference: pickling a
    # dynamically built pydantic class by value does not survive (its validators fail to rebuild).
    SocialAction.__qualname__ = SocialAction.__name__ = "SocialAction__" + "__".join(allowed)
    SocialAction.__module__ = __name__
    return SocialAction


def __getattr__(name: str) -> Any:
    if name.startswith("SocialAction__"):
        return action_model(tuple(name.removeprefix("SocialAction__").split("__")))
    if name.startswith("Act_") and name[4:] in NEEDS:
        return variant(name[4:])
    raise AttributeError(name)


def _any_of(schema: dict[str, Any]) -> None:
    """The branches are disjoint (each has its own `action` const), so anyOf means the same as pydantic's oneOf,
    and grammar compilers (xgrammar) represent anyOf exactly instead of warning and falling back."""
    if "oneOf" in schema:
        schema["anyOf"] = schema.pop("oneOf")
        schema.pop("discriminator", None)


def fields(action: BaseModel) -> BaseModel:
    """The chosen action's model (unwrapping the union)."""
    return action.root if isinstance(action, RootModel) else action
