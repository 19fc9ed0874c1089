"""OASIS's own data files (camel-ai/oasis, Apache-2.0): the Twitter users CSV, the Reddit users JSON and the Reddit
counterfactual posts, read into agentsim's users table with the same row errors as agentsim's own formats
(`FILE row N (id X): field F: problem`).

Formats (README "File formats" has the generated tables):

- **Twitter users CSV** (`data/twitter_dataset/anonymous_topic_200_1h/<topic>.csv`), read as OASIS's
  `oasis/social_agent/agents_generator.py: generate_agents` reads it: a user per row, the row's position (0-based)
  its OASIS agent id; `username` is the agent id in agentsim; `user_char` the profile text (OASIS's `user_profile`),
  `description` the bio shown to others; `following_agentid_list` a Python-literal list of the row positions the
  user follows (`"0"` meaning none, as OASIS reads it); `previous_tweets` a list of posts made before the start;
  `activity_level_frequency` 24 counts per hour, turned into probabilities as OASIS does (divided by the file's
  largest count, +0.1 where below 0.6, rounded to 2 decimals), or `active_threshold`, 24 probabilities as given.
- **Reddit users JSON** (`data/reddit/user_data_36.json`, read as `generate_reddit_agents` reads it): a list of
  objects with `username`, `realname`, `bio`, `persona`, `age`, `gender`, `mbti`, `country` (and `profession`,
  `interested_topics`).
- **Counterfactual posts JSON** (`data/reddit/counterfactual_36.json`): a list of items, each with the comment
  `RC_1.body` that is posted and its pre-assigned arm `RC_1.group` (up, down or control), and the context `RS`.

Columns and keys agentsim does not use are never dropped silently: the loaders return them (`unused`) and the world
reports them (`agentsim validate`, run.json `world_notes`).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from agentsim.core.datafile import (
    DataFileError,
    check_regular_file,
    drop_blank_optionals,
    read_table,
    validate_rows,
)
from agentsim.core.names import Name

Format = Literal["agentsim", "oasis_twitter", "oasis_reddit"]
#: Columns whose presence in a CSV/Parquet users file says it is OASIS's Twitter format.
TWITTER_MARKERS = ("following_agentid_list", "user_char", "previous_tweets", "activity_level_frequency")


def _literal(v: Any, what: str) -> Any:
    """A cell holding a Python or JSON literal list (OASIS writes lists with pandas: "[32]", "['972651']")."""
    if not isinstance(v, str):
        return v
    text = v.strip()
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError(f"{_short(text)!r} is not a list written as [a, b, ...] ({what})") from None


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _known_group(v: str | None, info: ValidationInfo) -> str | None:
    groups = (info.context or {}).get("groups")
    if v is not None and groups is not None and v not in groups:
        raise ValueError(f"{v!r} is not a group of this scenario; world.users.groups are {list(groups)}")
    return v


Hourly = Annotated[list[Annotated[float, Field(ge=0.0)]], Field(min_length=24, max_length=24)]


class OasisTwitterRow(BaseModel):
    """One user of OASIS's Twitter users CSV (columns agentsim does not use are reported, not refused)."""

    model_config = ConfigDict(extra="ignore")
    username: Name = Field(..., description="The user's handle: its agent id in agentsim (unique in the file).")
    name: Name | None = Field(None, description="Display name shown in prompts (default: the username).")
    user_id: str | None = Field(None, description="The account's id in the source data; what `following_list` names (with `world.users.follows_by: id`).")
    user_char: str | None = Field(None, description="Profile text the user acts on (OASIS's `user_profile` in the system prompt); default: `description`.")
    description: str | None = Field(None, description="Bio shown to others (and the profile text when `user_char` is empty).")
    following_agentid_list: list[int] = Field(
        default_factory=list, description="Whom the user follows: a list [i, j, ...] of 0-based row positions (OASIS's agent ids), "
        "or of `user_id`s with `world.users.follows_by: id`; a bare 0 means nobody, as OASIS reads it.",
        json_schema_extra={"doc_type": "list of integers, as text"})
    following_list: list[str] = Field(
        default_factory=list, description="Whom the user follows by `user_id` (read instead of `following_agentid_list` with `world.users.follows_by: id`).",
        json_schema_extra={"doc_type": "list of ids, as text"})
    previous_tweets: list[str] = Field(
        default_factory=list, description="Posts the user made before step 0 (in order; the source post of an information-spread topic).",
        json_schema_extra={"doc_type": "list of texts, as text"})
    activity_level_frequency: Hourly | None = Field(
        None, description="24 activity counts, hours 0..23; turned into per-step probabilities as OASIS does (÷ the file's largest count, +0.1 below 0.6, rounded to 2 decimals).",
        json_schema_extra={"doc_type": "24 numbers >= 0, as text"})
    active_threshold: Annotated[list[Annotated[float, Field(ge=0.0, le=1.0)]], Field(min_length=24, max_length=24)] | None = Field(
        None, description="24 probabilities of acting in a step, hours 0..23 (used as given; wins over `activity_level_frequency`).",
        json_schema_extra={"doc_type": "24 numbers in 0..1, as text"})
    group: Name | None = Field(None, description="agentsim's addition: one of `world.users.groups` (default: the first); gives stance, model and actions.")

    _group = field_validator("group")(_known_group)

    @field_validator("following_agentid_list", mode="before")
    @classmethod
    def _follows(cls, v: Any) -> Any:
        v = _literal(v, "row positions of followees")
        return [] if isinstance(v, int) and not isinstance(v, bool) and v == 0 else v  # OASIS: "0" = no follows

    @field_validator("following_list", "previous_tweets", mode="before")
    @classmethod
    def _lists(cls, v: Any, info: ValidationInfo) -> Any:
        v = _literal(v, info.field_name or "")
        if isinstance(v, list | tuple):
            return [str(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in v]
        return v

    @field_validator("activity_level_frequency", "active_threshold", mode="before")
    @classmethod
    def _hourly(cls, v: Any, info: ValidationInfo) -> Any:
        return _literal(v, "24 values, hours 0..23")

    def profile(self) -> str:
        return (self.user_char or "").strip() or (self.description or "").strip()


class OasisRedditRow(BaseModel):
    """One user of OASIS's Reddit users JSON (keys agentsim does not use are reported, not refused)."""

    model_config = ConfigDict(extra="ignore")
    username: Name = Field(..., description="The user's name on the platform: its agent id in agentsim (unique in the file).")
    realname: Name | None = Field(None, description="Display name shown in prompts (default: the username).")
    bio: str | None = Field(None, description="Bio shown to others.")
    persona: str | None = Field(None, description="The longer self-description the user acts on (added to the profile text).")
    age: int | None = Field(None, ge=0, le=150, description="Age in years (in the profile text, as OASIS's Reddit prompt has it).")
    gender: str | None = Field(None, description="Gender (profile text).")
    mbti: str | None = Field(None, description="MBTI type (profile text).")
    country: str | None = Field(None, description="Country (profile text).")
    profession: str | None = Field(None, description="Profession (profile text).")
    interested_topics: list[str] = Field(default_factory=list, description="Topics: the user's interests (default: the group's).")
    group: Name | None = Field(None, description="agentsim's addition: one of `world.users.groups` (default: the first).")

    _group = field_validator("group")(_known_group)

    def profile(self) -> str:
        parts = [(self.bio or "").strip(), (self.persona or "").strip()]
        facts = [f"{self.age} years old" if self.age is not None else "", self.gender or "", self.mbti or "",
                 f"from {self.country}" if self.country else "", self.profession or ""]
        facts = [f for f in facts if f]
        if facts:
            parts.append("(" + ", ".join(facts) + ")")
        return " ".join(p for p in parts if p)


class _Context(BaseModel):
    model_config = ConfigDict(extra="ignore")
    title: str | None = Field(None, description="The context post's title ('None' in OASIS's file means none).")
    selftext: str | None = Field(None, description="The context post's text.")


class _Comment(BaseModel):
    model_config = ConfigDict(extra="ignore")
    body: str = Field(..., min_length=1, description="The text that is posted.")
    group: Literal["up", "down", "control"] = Field(..., description="Its pre-assigned arm: up (one up-vote), down (one down-vote) or control.")


class CounterfactualRow(BaseModel):
    """One item of OASIS's Reddit counterfactual posts JSON."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    context: _Context | None = Field(None, alias="RS", description="The context it was written for (title, selftext): read and checked, not posted (OASIS's counterfactual script posts RC_1.body only).")
    comment: _Comment = Field(..., alias="RC_1", description="`body`: the text that is posted; `group`: its pre-assigned arm, up, down or control.")


# -- reading ------------------------------------------------------------------------------------------------------
def read_json_list(path: str | Path, what: str) -> list[Any]:
    """A JSON file holding a list (of objects): DataFileError naming the line and column of a syntax error."""
    p = Path(path)
    if not p.exists():
        raise DataFileError(p, [f"{p}: file not found"])
    check_regular_file(p, what)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataFileError(p, [f"{p}: the {what} file is not UTF-8 text (byte {e.start}: {e.reason})"]) from None
    except OSError as e:
        raise DataFileError(p, [f"{p}: cannot read the {what} file ({e.strerror or e})"]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        hint = " (it looks like a CSV table; give world.users.format: oasis_twitter or agentsim)" if "," in text.split("\n", 1)[0] and not text.lstrip().startswith(("[", "{")) else ""
        raise DataFileError(p, [f"{p} line {e.lineno} column {e.colno}: not valid JSON ({e.msg}){hint}"]) from None
    if not isinstance(data, list):
        raise DataFileError(p, [f"{p}: the {what} file must hold a JSON list of objects; it holds a {type(data).__name__}"])
    bad = [i for i, r in enumerate(data, start=1) if not isinstance(r, dict)]
    if bad:
        raise DataFileError(p, [f"{p} row {i}: expected an object {{...}}, got {type(data[i - 1]).__name__}" for i in bad])
    return data


def detect_format(path: Path) -> tuple[Format, str]:
    """The users file's format and a note saying how it was told: `.json` is OASIS's Reddit users; a table with
    OASIS's Twitter columns (TWITTER_MARKERS) is OASIS's Twitter users; anything else agentsim's own format."""
    if path.suffix.lower() == ".json":
        return "oasis_reddit", f"{path.name}: read as OASIS's Reddit users JSON (a .json file; set world.users.format to choose)"
    try:
        columns, _ = read_table(path, "users")
    except DataFileError:
        return "agentsim", ""  # the agentsim reader reports what is wrong with it
    found = [c for c in TWITTER_MARKERS if c in columns]
    if found:
        return "oasis_twitter", (f"{path.name}: read as OASIS's Twitter users CSV (it has column(s) {found}; "
                                 "set world.users.format to choose)")
    return "agentsim", ""


def _unused(columns: Sequence[str], model: type[BaseModel]) -> tuple[str, ...]:
    known = set(model.model_fields)
    return tuple(c for c in columns if c not in known)


def describe_unused(path: Path, unused: Sequence[str], fmt: str) -> str:
    shown = [("(the unnamed index column)" if not c.strip() else c) for c in unused]
    return f"{path.name}: column(s) agentsim does not use in {fmt}: {', '.join(shown)}"


def oasis_activity(freq: np.ndarray) -> np.ndarray:
    """OASIS's per-user hourly probabilities from activity counts (`agents_generator.generate_agents`):
    counts ÷ the largest count in the file, +0.1 where below 0.6, rounded to 2 decimals. (n, 24) -> (n, 24)."""
    top = float(np.max(freq)) if freq.size else 0.0
    prob = freq / top if top > 0 else np.zeros_like(freq, dtype=np.float64)
    prob = np.where(prob < 0.6, prob + 0.1, prob)
    return np.round(prob, 2)


def load_twitter(path: Path, groups: tuple[str, ...] | None, follows_by: str) -> dict[str, Any]:
    """OASIS's Twitter users CSV (or Parquet) as the parts of a users table; DataFileError names every bad row and
    field, a followee position outside the file, an unknown followee id and a repeated username."""
    columns, raw = read_table(path, "users")
    problems = []
    if "username" not in columns:
        problems.append(f"{path}: the OASIS Twitter users file lacks column 'username' (the agent id); it has {list(columns)}")
    if problems:
        raise DataFileError(path, problems)
    rows: list[OasisTwitterRow] = validate_rows(path, drop_blank_optionals(raw, OasisTwitterRow), OasisTwitterRow, "username",
                                                context={"groups": groups})
    n = len(rows)
    follows: list[list[int]] = []
    if follows_by == "id":
        by_id: dict[str, int] = {}
        for i, r in enumerate(rows):
            if r.user_id is not None:
                by_id.setdefault(r.user_id.strip(), i)
        field = "following_list" if "following_list" in columns else "following_agentid_list"
        for i, r in enumerate(rows):
            named = r.following_list if field == "following_list" else [str(x) for x in r.following_agentid_list]
            missing = [x for x in named if x.strip() not in by_id]
            if missing:
                problems.append(f"{path} row {i + 1} (id {r.username!r}): field {field}: {missing[:5]} "
                                f"{'is not the user_id' if len(missing) == 1 else 'are not user_ids'} of any user in the file "
                                "(world.users.follows_by: id)")
            follows.append([by_id[x.strip()] for x in named if x.strip() in by_id])
        if "user_id" not in columns:
            problems.insert(0, f"{path}: world.users.follows_by: id needs a user_id column; the file has {list(columns)}")
    else:
        for i, r in enumerate(rows):
            out = [j for j in r.following_agentid_list if not 0 <= j < n]
            if out:
                problems.append(f"{path} row {i + 1} (id {r.username!r}): field following_agentid_list: {out[:5]} "
                                f"{'is not a row position' if len(out) == 1 else 'are not row positions'} of this file "
                                f"(0-based, as OASIS's agent ids: 0..{n - 1}; set world.users.follows_by: id for user_ids)")
            follows.append(list(r.following_agentid_list))
    if problems:
        raise DataFileError(path, problems)
    activity = None
    if any(r.active_threshold is not None or r.activity_level_frequency is not None for r in rows):
        activity = np.full((n, 24), np.nan, np.float64)
        freq_rows = [i for i, r in enumerate(rows) if r.activity_level_frequency is not None]
        if freq_rows:
            freq = np.array([rows[i].activity_level_frequency for i in freq_rows], np.float64)
            activity[freq_rows] = oasis_activity(freq)
        for i, r in enumerate(rows):
            if r.active_threshold is not None:
                activity[i] = r.active_threshold
    used_follow = "following_list" if follows_by == "id" and "following_list" in columns else "following_agentid_list"
    not_read = {"following_agentid_list", "following_list"} - {used_follow}
    unused = tuple(c for c in columns if c not in OasisTwitterRow.model_fields or c in not_read)
    return {
        "ids": [r.username for r in rows],
        "names": [r.name or r.username for r in rows] if "name" in columns else None,
        "bios": [r.profile() or None for r in rows],
        "topics": [[] for _ in rows],
        "groups": [r.group for r in rows],
        "follows": follows,
        "activity": activity,
        "posts": tuple((i, t) for i, r in enumerate(rows) for t in r.previous_tweets if t.strip()),
        "unused": unused,
    }


def load_reddit(path: Path, groups: tuple[str, ...] | None) -> dict[str, Any]:
    """OASIS's Reddit users JSON as the parts of a users table."""
    raw = read_json_list(path, "users")
    keys = list(dict.fromkeys(k for r in raw for k in r))
    rows: list[OasisRedditRow] = validate_rows(path, drop_blank_optionals(raw, OasisRedditRow), OasisRedditRow, "username",
                                               context={"groups": groups})
    return {
        "ids": [r.username for r in rows],
        "names": [r.realname or r.username for r in rows],
        "bios": [r.profile() or None for r in rows],
        "topics": [[t.strip() for t in r.interested_topics if t.strip()] for r in rows],
        "groups": [r.group for r in rows],
        "follows": None,
        "activity": None,
        "posts": (),
        "unused": _unused(keys, OasisRedditRow),
    }


def load_counterfactual(path: str | Path) -> tuple[list[CounterfactualRow], tuple[str, ...]]:
    """The items of a counterfactual posts JSON (row errors name RC_1.body / RC_1.group) and its unused keys."""
    p = Path(path)
    raw = read_json_list(p, "counterfactual posts")
    rows = validate_rows(p, raw, CounterfactualRow, None)
    keys = list(dict.fromkeys(k for r in raw for k in r))
    return rows, tuple(k for k in keys if k not in ("RS", "RC_1"))
