"""The `world:` section of a social-platform scenario (X-like or Reddit-like, after OASIS)."""

from __future__ import annotations

import string
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from agentsim.core.names import Name
from agentsim.spec.models import StrictModel, scenario_path

ACTIONS = (
    "create_post", "repost", "quote_post", "like_post", "unlike_post", "dislike_post", "undo_dislike_post",
    "create_comment", "like_comment", "dislike_comment", "follow", "unfollow", "mute", "unmute",
    "search_posts", "search_user", "trend", "refresh", "do_nothing",
)
ActionName = Literal[
    "create_post", "repost", "quote_post", "like_post", "unlike_post", "dislike_post", "undo_dislike_post",
    "create_comment", "like_comment", "dislike_comment", "follow", "unfollow", "mute", "unmute",
    "search_posts", "search_user", "trend", "refresh", "do_nothing",
]
#: The action spaces of OASIS's two platforms: X has no downvotes, Reddit has no reposts or follows.
DEFAULT_ACTIONS: dict[str, tuple[str, ...]] = {
    "x": ("create_post", "repost", "quote_post", "like_post", "unlike_post", "create_comment", "like_comment",
          "follow", "unfollow", "mute", "unmute", "search_posts", "search_user", "trend", "refresh", "do_nothing"),
    "reddit": ("create_post", "like_post", "unlike_post", "dislike_post", "undo_dislike_post", "create_comment",
               "like_comment", "dislike_comment", "search_posts", "search_user", "trend", "refresh", "do_nothing"),
}


class ActivitySpec(StrictModel):
    """When users act: a flat probability per step, or a 24-hour profile (probability per step in each hour)."""

    probability: float | None = Field(None, ge=0.0, le=1.0, description="Flat probability of acting in a step.")
    hourly: list[Annotated[float, Field(ge=0.0, le=1.0)]] | None = Field(
        None, min_length=24, max_length=24, description="Probability of acting in a step, for hours 0..23 of the simulated day."
    )

    @model_validator(mode="after")
    def _one(self) -> ActivitySpec:
        if (self.probability is None) == (self.hourly is None):
            raise ValueError("give exactly one of 'probability' (flat) or 'hourly' (24 values)")
        return self

    def profile(self) -> list[float]:
        return list(self.hourly) if self.hourly is not None else [float(self.probability or 0.0)] * 24


class ScriptedSpec(StrictModel):
    """How a group's users act under the scripted backend: agentsim's stance-lexicon users, or one of the field's
    classical models of information spread, so LLM groups can be run beside a classical baseline on one population.

    - `stance`: the rule-based user (scripted.py): reposts, likes and comments on what its stance lexicon scores as
      agreeing, posts in its own voice.
    - `independent_cascade` (Kempe, Kleinberg & Tardos 2003): every post shown in the feed is an exposure; each is
      reposted with probability `p`, independently (the first that fires is reposted); otherwise the user does
      nothing. A post one already shared is never an exposure again.
    - `linear_threshold` (Granovetter 1978; Kempe et al. 2003): the user reposts a feed post once the share of the
      users it follows who have posted or shared that post's cascade reaches its threshold (`threshold`, or a
      uniform draw per user, fixed by the user id); otherwise it does nothing."""

    policy: Literal["stance", "independent_cascade", "linear_threshold"] = Field(
        "stance", description="stance (agentsim's rule-based users), independent_cascade or linear_threshold.")
    p: float = Field(0.05, ge=0.0, le=1.0, description="independent_cascade: probability that one exposure (a post shown in the feed) is reposted.")
    threshold: float | Literal["uniform"] = Field(
        "uniform", description="linear_threshold: share of followees who must have joined a cascade (0..1), or 'uniform' for a per-user draw from U(0, 1).")

    @field_validator("threshold")
    @classmethod
    def _share(cls, v: float | str) -> float | str:
        if isinstance(v, float | int) and not 0.0 <= v <= 1.0:
            raise ValueError(f"a threshold is a share of followees, 0..1; got {v}")
        return v


class GroupSpec(StrictModel):
    """A population group: synthetic users drawn with these interests, stance, activity and model."""

    name: Name = Field(..., description="Group label (logged as the agent's group): any Unicode text (README \"Names\").")
    share: float = Field(1.0, gt=0, description="Relative size of the group among synthetic users.")
    interests: list[str] = Field(default_factory=lambda: ["news"], min_length=1, description="Topics its users post about.")
    stance: float = Field(0.0, ge=-1.0, le=1.0, description="Prior opinion on the scenario's issue, -1..1 (persona text and scripted policy).")
    bio: str = Field("", description="Bio template; {interests} and {name} are filled in (write {{ and }} for literal braces).")
    activity: ActivitySpec | None = Field(None, description="Activity of this group (default: world.time.activity).")
    model: str | None = Field(None, description="Model alias for this group's users (default: population.model).")
    actions: list[ActionName] | None = Field(None, description="Actions this group may use (default: world.actions).")
    scripted: ScriptedSpec = Field(default_factory=ScriptedSpec, description="How its users act under the scripted backend (stance users, independent cascade or linear threshold).")

    @field_validator("bio")
    @classmethod
    def _template(cls, v: str) -> str:
        # The template is filled with str.format for every synthetic user: refuse here what would fail there.
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
        except ValueError as e:
            raise ValueError(f"not a valid template ({e}); write {{{{ and }}}} for literal braces") from None
        unknown = sorted(fields - {"interests", "name"})
        if unknown:
            raise ValueError(f"unknown placeholder(s) {unknown}; a bio template may use {{interests}} and {{name}}")
        return v


class UsersSpec(StrictModel):
    """Who is on the platform: synthetic users, or users read from a file."""

    count: int | None = Field(None, ge=1, le=50_000_000, description="Number of synthetic users (drawn from the groups).")
    file: Path | None = Field(None, description="Users file: agentsim's CSV/Parquet (user_id[, name, bio, interests, group]), OASIS's Twitter users CSV or OASIS's Reddit users JSON (README \"File formats\"); relative to the scenario file.")
    format: Literal["agentsim", "oasis_twitter", "oasis_reddit"] | None = Field(
        None, description="Format of `file`: agentsim, oasis_twitter (OASIS's users CSV: username, user_char, following_agentid_list, previous_tweets, "
        "activity_level_frequency, ...) or oasis_reddit (OASIS's users JSON). Default: told from the file (.json: oasis_reddit; "
        "OASIS's Twitter columns: oasis_twitter; else agentsim), with a note saying which.")
    follows_by: Literal["row", "id"] = Field(
        "row", description="oasis_twitter: how follow lists name users: 'row' (following_agentid_list holds 0-based row positions, "
        "OASIS's agent ids) or 'id' (following_list, or following_agentid_list without it, holds values of the user_id column).")
    activity: Literal["file", "group"] = Field(
        "file", description="'file': users whose file gives a 24-hour profile (oasis_twitter: active_threshold or activity_level_frequency) "
        "act by it, the others by their group's; 'group': every user by the group's activity.")
    groups: list[GroupSpec] = Field(default_factory=lambda: [GroupSpec(name="users")], min_length=1, description="Population groups.")

    _paths = field_validator("file")(scenario_path)

    @model_validator(mode="after")
    def _one(self) -> UsersSpec:
        if (self.count is None) == (self.file is None):
            raise ValueError("give exactly one of 'count' (synthetic users) or 'file' (users from a CSV/Parquet file)")
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise ValueError(f"group names repeat: {names}")
        return self


class NetworkSpec(StrictModel):
    """The initial follow network: a networkx generator (synthetic users) or a file of edges."""

    generator: Literal["barabasi_albert", "powerlaw_cluster", "watts_strogatz", "erdos_renyi", "random_follows", "none"] = Field(
        "barabasi_albert",
        description="networkx generator (undirected edges become mutual follows), or 'random_follows' (k uniform follows per user, numpy; for millions of users).",
    )
    k: int = Field(5, ge=0, le=10_000, description="Edges per new node (BA, powerlaw_cluster), neighbours (Watts-Strogatz), or follows per user (random_follows).")
    p: float = Field(0.1, ge=0.0, le=1.0, description="Triangle (powerlaw_cluster), rewiring (Watts-Strogatz) or edge (Erdos-Renyi) probability.")
    homophily: float = Field(0.0, ge=0.0, le=1.0, description="random_follows: share of follows drawn within the user's own group.")
    follows_file: Path | None = Field(None, description="CSV or Parquet with columns follower, followee (user ids; README \"File formats\"); overrides the generator.")

    _paths = field_validator("follows_file")(scenario_path)


class SourceSpec(StrictModel):
    """One recommender feeding part of each feed."""

    kind: Literal["hot", "interest", "follow", "random"] = Field(..., description="hot (Reddit), interest (X, embeddings), follow (followees' top posts) or random.")
    slots: int = Field(5, ge=1, le=200, description="Feed items this recommender fills.")


class EmbeddingSpec(StrictModel):
    """Text embeddings for the interest recommender and for search."""

    kind: Literal["hashing", "sentence_transformer"] = Field(
        "hashing", description="'hashing': signed feature hashing of words (runs anywhere, no download); 'sentence_transformer': a model by name (needs the package and the weights)."
    )
    dim: int = Field(64, ge=8, le=4096, description="hashing: dimensions.")
    model: str = Field("sentence-transformers/all-MiniLM-L6-v2", description="sentence_transformer: model name or directory.")


class RecommenderSpec(StrictModel):
    sources: list[SourceSpec] = Field(
        default_factory=lambda: [SourceSpec(kind="follow", slots=5), SourceSpec(kind="interest", slots=5)],
        min_length=1, description="Recommenders whose picks fill each feed, in order (duplicates are skipped).",
    )
    window_minutes: float = Field(24 * 60, gt=0, description="Only posts this recent are candidates.")
    candidates: int = Field(2000, ge=10, description="interest: posts sampled from the window when it holds more.")
    recency_half_life_minutes: float = Field(180.0, gt=0, description="interest: the recency factor halves over this age.")
    comments_per_post: int = Field(2, ge=0, le=20, description="Latest comments shown under each feed post.")

    @property
    def feed_size(self) -> int:
        return sum(s.slots for s in self.sources)


class TimeSpec(StrictModel):
    minutes_per_step: float = Field(60.0, gt=0, le=7 * 24 * 60, description="Simulated minutes per step.")
    start: datetime = Field(datetime(2024, 1, 1, 8, tzinfo=UTC), description="Simulated clock at step 0 (ISO 8601).")
    activity: ActivitySpec = Field(default_factory=lambda: ActivitySpec(probability=0.1), description="Default activity for every group.")

    @property
    def start_epoch(self) -> float:
        start = self.start if self.start.tzinfo else self.start.replace(tzinfo=UTC)
        return start.timestamp()


class SeedPostsSpec(StrictModel):
    count: int = Field(0, ge=0, description="Synthetic posts written by random users before step 0 (on their groups' topics).")
    file: Path | None = Field(None, description="CSV or Parquet with columns author, content[, timestamp (ISO or epoch s)] (README \"File formats\").")

    _paths = field_validator("file")(scenario_path)


class InjectPost(StrictModel):
    """Post a message at a step, from a user or from a controlled account."""

    kind: Literal["inject_post"]
    step: int = Field(..., ge=0, description="Step at whose start the post appears.")
    author: Name = Field(..., description="User id of the author (an existing user, or a new controlled account).")
    content: str = Field(..., min_length=1, description="The post's text.")


class HerdVotes(StrictModel):
    """The herd-effect design (Muchnik et al. 2013, replicated in OASIS): new posts are randomly assigned to an
    up-vote, a down-vote or no vote (control) from a controlled account, right after they are created."""

    kind: Literal["herd_votes"]
    from_step: int = Field(0, ge=0)
    to_step: int | None = Field(None, ge=0, description="Last step whose new posts are treated (None: all).")
    share: float = Field(1.0, gt=0, le=1.0, description="Share of new posts entered into the experiment.")
    arms: list[Literal["up", "down", "control"]] = Field(default_factory=lambda: ["up", "down", "control"], min_length=1)
    voter: Name = Field("herd_bot", description="Id of the controlled voting account (not a user, not a reserved id).")


class CounterfactualPosts(StrictModel):
    """OASIS's Reddit counterfactual (herd-effect) experiment on its own data: each item of the file (OASIS's
    `counterfactual_36.json` format) is posted by a controlled account, and its pre-assigned arm is applied right
    away by a controlled voter (up: one up-vote; down: one down-vote; control: none), logged as a `treatment` event
    like `herd_votes`, so the herd table reads it (after OASIS's reddit_simulation_counterfactual.py)."""

    kind: Literal["counterfactual_posts"]
    file: Path = Field(..., description="OASIS's counterfactual posts JSON: a list of {RS: {title, selftext}, RC_1: {body, group}} (README \"File formats\").")
    from_step: int = Field(0, ge=0, description="Step at whose start the first posts appear.")
    per_step: int = Field(20, ge=1, description="Items posted per step, in file order (OASIS's round_post_num).")
    poster: Name = Field("post_bot", description="Id of the controlled account that posts them (not a user).")
    voter: Name = Field("herd_bot", description="Id of the controlled account that votes (not a user).")

    _paths = field_validator("file")(scenario_path)


Intervention = Annotated[InjectPost | HerdVotes | CounterfactualPosts, Field(discriminator="kind")]


class JudgeSpec(StrictModel):
    """A judge model that rates the stance of sampled posts, for the polarization analysis."""

    enabled: bool = False
    model: str | None = Field(None, description="Model alias of the judge (default: population.model).")
    every: int = Field(1, ge=1, description="Judge every N steps.")
    sample: int = Field(20, ge=1, le=100_000, description="Posts (new since the last judging) rated each time.")
    topic: str = Field("the issue under discussion", description="What stance is about, as told to the judge.")


class StanceSpec(StrictModel):
    """A lexicon stance scorer: score = mean weight of the lexicon words in a text (-1..1), extremity = |score|."""

    positive: list[str] = Field(default_factory=lambda: ["support", "agree", "good", "great", "love", "yes", "pro", "benefit"])
    negative: list[str] = Field(default_factory=lambda: ["oppose", "disagree", "bad", "terrible", "hate", "no", "against", "harm"])
    intensifiers: list[str] = Field(default_factory=lambda: ["very", "absolutely", "totally", "extremely", "never", "always", "must"])


class AlignmentSpec(StrictModel):
    """Score the run's cascade against a real one, OASIS's way (agentsim/analysis/alignment.py): the end-of-run
    summary and `agentsim analyze RUN social` print the growth table and the NRMSE of scale, depth and max breadth."""

    reference: Path = Field(..., description="Reference cascade: a CSV/Parquet table (minute or step, scale, depth, max_breadth; README \"File formats\") "
                                             "or OASIS's real_world_prop_data folder (with `topic`); `data:oasis/...` names a fetched OASIS file.")
    topic: str | None = Field(None, description="With OASIS's real_world_prop_data folder: the topic whose real_data_<metric>/<topic>.pkl are read.")
    scale: Literal["users", "events"] = Field("users", description="users: unique users incl. the source's author (OASIS); events: shares + 1.")
    breadth: Literal["without_root", "with_root"] = Field("without_root", description="without_root: most users at one depth >= 1 (OASIS); with_root: level 0 too.")
    normalise: Literal["max", "range"] = Field("max", description="NRMSE divided by the reference's max (OASIS) or its range.")
    window_minutes: int = Field(150, ge=1, description="Minutes compared from the source post (OASIS: 150).")
    cascade: Literal["source", "largest"] | int = Field("source", description="source (the run's first post), largest, or a root event id.")

    _paths = field_validator("reference")(scenario_path)


class SocialConfig(StrictModel):
    """An X-like or Reddit-like platform, after OASIS (Yang et al. 2024)."""

    mode: Literal["x", "reddit"] = Field("x", description="Platform: 'x' (follows, reposts, interest feed) or 'reddit' (votes, hot feed).")
    topic: str = Field("a public issue", description="What the scenario is about (used in prompts).")
    users: UsersSpec = Field(default_factory=lambda: UsersSpec(count=100), description="Who is on the platform.")
    network: NetworkSpec = Field(default_factory=NetworkSpec, description="The initial follow network.")
    actions: list[ActionName] | None = Field(None, description="Actions users may take (default: the platform's OASIS action space).")
    recommender: RecommenderSpec = Field(default_factory=RecommenderSpec, description="How feeds are made.")
    embedding: EmbeddingSpec = Field(default_factory=EmbeddingSpec, description="Text embeddings (interest feed, search).")
    time: TimeSpec = Field(default_factory=TimeSpec, description="Simulated clock and activity.")
    seed_posts: SeedPostsSpec = Field(default_factory=SeedPostsSpec, description="Content on the platform before step 0.")
    interventions: list[Intervention] = Field(default_factory=list, description="Scheduled injections and herd-effect votes.")
    judge: JudgeSpec = Field(default_factory=JudgeSpec, description="Stance judging of posts (polarization).")
    stance: StanceSpec = Field(default_factory=StanceSpec, description="Lexicon stance scorer (scripted policy and analysis).")
    max_post_chars: int = Field(280, ge=10, le=40_000, description="Posts, quotes and comments are cut to this length.")
    memory: int = Field(3, ge=0, le=50, description="Own recent actions shown to a user in its prompt.")
    alignment: AlignmentSpec | None = Field(None, description="Score the run's cascade against a real one (OASIS's scale/depth/max-breadth NRMSE).")

    def allowed_actions(self, group: GroupSpec | None = None) -> tuple[str, ...]:
        if group is not None and group.actions is not None:
            return tuple(group.actions)
        return tuple(self.actions) if self.actions is not None else DEFAULT_ACTIONS[self.mode]
