"""Social-platform family: X-like and Reddit-like platforms with recommenders, after OASIS (Yang et al. 2024)."""

from __future__ import annotations

from typing import Any

from agentsim.core.datafile import FileFormat
from agentsim.core.family import Analysis, Family
from agentsim.core.names import NamedId
from agentsim.scenarios.social.config import CounterfactualPosts, HerdVotes, InjectPost, SocialConfig


def _create_world(spec: Any, config: SocialConfig) -> Any:
    from agentsim.scenarios.social.world import SocialWorld

    return SocialWorld(config, spec.steps, spec.seed, spec.population.model, dict(spec.population.overrides))


def _create_mind(spec: Any, config: SocialConfig) -> Any:
    from agentsim.scenarios.social.mind import SocialMind

    return SocialMind(config)


def _scripted(data: Any, rng: Any) -> Any:
    from agentsim.scenarios.social.scripted import scripted_policy

    return scripted_policy(data, rng)


def _summary(log: Any) -> dict[str, Any]:
    from agentsim.analysis.social import activity_table, cascade_table

    out = {"Actions per step": activity_table(log)}
    cascades = cascade_table(log)
    if len(cascades):
        largest = cascades.sort_values(["size", "root"], ascending=[False, True]).reset_index(drop=True)
        largest.attrs["rows_shown"] = 5  # the summary shows the 5 largest and says how many more there are
        out["Largest repost cascades"] = largest
    from agentsim.analysis.social import refusals_table

    refused = refusals_table(log)
    if len(refused):
        out["Refused by the platform's rules"] = refused
    if (log.meta.get("world") or {}).get("alignment"):
        from agentsim.analysis.alignment import alignment_tables, params_from

        out["Alignment with the reference (NRMSE, OASIS's definitions)"] = alignment_tables([log], params_from(log))["alignment"]
    return out


def _known(config: SocialConfig) -> Any:
    """Whether an id is a user (None: the users file cannot be read; its problems are reported by _names)."""
    from agentsim.core.datafile import DataFileError
    from agentsim.scenarios.social.population import synthetic_known, users_file

    if config.users.file is None:
        return synthetic_known(config.users.count or 0)
    try:
        ids = set(users_file(config).ids)
    except DataFileError:
        return None
    return ids.__contains__


def _names(spec: Any, config: SocialConfig) -> list[NamedId]:
    """The users of a users file (synthetic users are u0..u{n-1}, made by the platform) and the controlled accounts
    that interventions create: herd voters, and authors of injected posts who are not users."""
    from agentsim.core.datafile import DataFileError
    from agentsim.scenarios.social.population import users_file

    out: list[NamedId] = []
    if config.users.file is not None:
        loc = ("world", "users", "file")
        try:
            users = users_file(config)
        except DataFileError as e:
            raise e.at(*loc) from None
        column = "user_id" if users.fmt == "agentsim" else "username"
        out += [NamedId(u, loc, str(config.users.file), i, column) for i, u in enumerate(users.ids, start=1)]
    known = _known(config) or (lambda u: False)
    controlled: dict[str, NamedId] = {}
    for i, iv in enumerate(config.interventions):
        if isinstance(iv, HerdVotes) and not known(iv.voter):  # a voter who is a user: _check says so
            controlled.setdefault(iv.voter, NamedId(iv.voter, ("world", "interventions", i, "voter")))
        elif isinstance(iv, InjectPost) and not known(iv.author):
            controlled.setdefault(iv.author, NamedId(iv.author, ("world", "interventions", i, "author")))
        elif isinstance(iv, CounterfactualPosts):
            for role in ("poster", "voter"):
                if not known(getattr(iv, role)):
                    controlled.setdefault(getattr(iv, role), NamedId(getattr(iv, role), ("world", "interventions", i, role)))
    return out + list(controlled.values())


def _check(spec: Any, config: SocialConfig) -> list[tuple[list[str | int], str]]:
    from agentsim.core.datafile import DataFileError
    from agentsim.scenarios.social.population import load_follows, load_posts
    from agentsim.spec.loader import alias_problems

    out = alias_problems(
        spec,
        [(["world", "users", "groups", i, "model"], g.model) for i, g in enumerate(config.users.groups)]
        + [(["world", "judge", "model"], config.judge.model if config.judge.enabled else None)],
    )
    known = _known(config)
    if known is None:
        return out  # the users file is unreadable: _names reported why; nothing else can be checked against it
    for loc, path, load in ((["world", "network", "follows_file"], config.network.follows_file, load_follows),
                            (["world", "seed_posts", "file"], config.seed_posts.file, load_posts)):
        if path is not None:
            try:
                load(path, known)
            except DataFileError as e:
                out.append((loc, str(e)))
    n = config.users.count
    for agent in spec.population.overrides:
        if not known(agent):
            where = f"synthetic users are u0..u{n - 1}" if n is not None else f"users are those of {config.users.file}"
            out.append((["population", "overrides", agent], f"no user named {agent!r} ({where})"))
    for i, iv in enumerate(config.interventions):
        if isinstance(iv, HerdVotes) and known(iv.voter):
            out.append((["world", "interventions", i, "voter"], f"{iv.voter!r} is a user; the voter must be a separate controlled account"))
        if isinstance(iv, CounterfactualPosts):
            from agentsim.scenarios.social.oasis import load_counterfactual

            for role in ("poster", "voter"):
                if known(getattr(iv, role)):
                    out.append((["world", "interventions", i, role], f"{getattr(iv, role)!r} is a user; the {role} must be a separate controlled account"))
            if iv.poster == iv.voter:
                out.append((["world", "interventions", i, "voter"], "the voter must be another account than the poster"))
            try:
                load_counterfactual(iv.file)
            except DataFileError as e:
                out.append((["world", "interventions", i, "file"], str(e)))
    return out


def _uses_population_model(spec: Any, config: SocialConfig) -> bool:
    """Groups without a model of their own and a judge without its own alias play on population.model."""
    return any(g.model is None for g in config.users.groups) or (config.judge.enabled and config.judge.model is None)


def _file_formats() -> tuple[FileFormat, ...]:
    from agentsim.analysis.alignment import AlignmentParams, ReferenceRow, read_reference
    from agentsim.scenarios.social.oasis import (
        CounterfactualRow,
        OasisRedditRow,
        OasisTwitterRow,
        load_counterfactual,
    )
    from agentsim.scenarios.social.population import (
        FollowRow,
        PostRow,
        UserRow,
        load_follows,
        load_posts,
        load_users,
    )

    return (
        FileFormat("Users file", "social", ("world.users.file",), "table", UserRow, "scenarios/social/examples/users.csv",
                   "The users of a social platform (instead of `world.users.count` synthetic users). Ids are unique and "
                   f"none is a reserved id ({', '.join(sorted(RESERVED_IDS))}) or a controlled account's.",
                   read=lambda p: load_users(p, None)),
        FileFormat("Follows file", "social", ("world.network.follows_file",), "table", FollowRow, "scenarios/social/examples/follows.csv",
                   "The initial follow network (instead of a generator). Every id must be a user.",
                   read=lambda p: load_follows(p, None)),
        FileFormat("Seed posts file", "social", ("world.seed_posts.file",), "table", PostRow, "scenarios/social/examples/posts.csv",
                   "Posts on the platform before step 0, in time order. Every author must be a user.",
                   read=lambda p: load_posts(p, None)),
        FileFormat("Users file, OASIS Twitter CSV", "social", ("world.users.file",), "table", OasisTwitterRow,
                   "scenarios/social/examples/oasis_twitter_users.csv",
                   "OASIS's Twitter users (`data/twitter_dataset/anonymous_topic_200_1h/<topic>.csv`; `world.users.format: oasis_twitter`, "
                   "or told from its columns). Read as OASIS's `agents_generator.generate_agents` reads it: row positions (0-based) are "
                   "OASIS's agent ids; list cells are Python literals (`[32, 55]`, `['a post']`). The follow lists are the initial "
                   "network (unless `world.network.follows_file` is given), `previous_tweets` are posted before step 0, and the "
                   "24-hour profile is each user's activity (`world.users.activity`). Columns not listed here (OASIS's `user_id` list "
                   "index, `created_at`, `followers_count`, `activity_level`, ...) are reported by `agentsim validate` and in run.json "
                   "`world_notes`, never used silently.",
                   read=lambda p: load_users(p, None, "oasis_twitter")),
        FileFormat("Users file, OASIS Reddit JSON", "social", ("world.users.file",), "json list", OasisRedditRow,
                   "scenarios/social/examples/oasis_reddit_users.json",
                   "OASIS's Reddit users (`data/reddit/user_data_36.json`; `world.users.format: oasis_reddit`, or a `.json` file): a JSON "
                   "list of objects, one per user. The profile text is the bio, the persona and the demographics, as OASIS's Reddit "
                   "prompt has them. Unused keys are reported.",
                   read=lambda p: load_users(p, None, "oasis_reddit")),
        FileFormat("Reference cascade", "social", ("world.alignment.reference",), "table", ReferenceRow,
                   "scenarios/social/examples/reference_cascade.csv",
                   "A real cascade to score runs against (`world.alignment.reference`, or `agentsim analyze RUN social --reference FILE`): "
                   "one row per time point since the source post (minute 0), in minutes, or in steps converted with the runs' "
                   "`world.time.minutes_per_step`; each value holds until the next row. At least one of scale, depth, max_breadth. "
                   "OASIS's own real cascades (a `real_world_prop_data` folder of `real_data_<metric>/<topic>.pkl` lists, one value "
                   "per minute) are read too, with `topic` (plain lists of numbers only: a pickle naming any class is refused).",
                   read=lambda p: read_reference(AlignmentParams(reference=p))),
        FileFormat("Counterfactual posts, OASIS Reddit JSON", "social", ("world.interventions.file",), "json list", CounterfactualRow,
                   "scenarios/social/examples/oasis_counterfactual.json",
                   "OASIS's herd-effect posts (`data/reddit/counterfactual_36.json`), named by a `counterfactual_posts` intervention: a "
                   "JSON list of items; each `RC_1.body` is posted by the intervention's poster and voted at once by its voter as "
                   "`RC_1.group` says (up, down, control).",
                   read=lambda p: load_counterfactual(p)[0]),
    )


#: The stance judge's agent id (world.JUDGE_ID).
RESERVED_IDS = frozenset({"judge"})


FAMILY = Family(
    name="social",
    description="X-like and Reddit-like platforms with recommenders, cascades, herd effect and polarization (after OASIS).",
    config_model=SocialConfig,
    create_world=_create_world,
    scripted_policy=_scripted,
    summary=_summary,
    check=_check,
    create_mind=_create_mind,
    reserved_ids=RESERVED_IDS,
    names=_names,
    uses_population_model=_uses_population_model,
    file_formats=_file_formats(),
    analyses=(Analysis("social", "agentsim.analysis.social:social_tables", compare="agentsim.analysis.social:social_compare",
                       plots="agentsim.analysis.social:social_plots", params="agentsim.analysis.alignment:AlignmentParams",
                       description="Cascades, refusals, power law, adoption under exposure, herd effect, polarization, roles; "
                                   "with --reference, scale/depth/max-breadth growth and NRMSE computed OASIS's way."),),
    view="agentsim.scenarios.social.view:build",
)
