"""Social-platform family: X-like and Reddit-like platforms with recommenders, after OASIS (Yang et al. 2024)."""

from __future__ import annotations

from typing import Any

from agentsim.core.family import Analysis, Family
from agentsim.scenarios.social.config import HerdVotes, SocialConfig


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
        out["Largest repost cascades"] = cascades.nlargest(5, "size")
    return out


def _check(spec: Any, config: SocialConfig) -> list[tuple[list[str | int], str]]:
    from agentsim.spec.loader import alias_problems

    out = alias_problems(
        spec,
        [(["world", "users", "groups", i, "model"], g.model) for i, g in enumerate(config.users.groups)]
        + [(["world", "judge", "model"], config.judge.model if config.judge.enabled else None)],
    )
    from agentsim.scenarios.social.population import read_table

    ids: set[str] | None = None
    if config.users.file is not None:
        try:
            ids = set(read_table(config.users.file, ("user_id",), "users")["user_id"].astype(str))
        except ValueError as e:
            out.append((["world", "users", "file"], str(e)))
    n = config.users.count

    def known(u: str) -> bool:
        if ids is not None:
            return u in ids
        return n is not None and u.startswith("u") and u[1:].isdigit() and str(int(u[1:])) == u[1:] and int(u[1:]) < n

    for loc, path, cols, what in ((["world", "network", "follows_file"], config.network.follows_file, ("follower", "followee"), "follows"),
                                  (["world", "seed_posts", "file"], config.seed_posts.file, ("author",), "seed posts")):
        if path is None:
            continue
        try:
            df = read_table(path, cols + (("content",) if what == "seed posts" else ()), what)
        except ValueError as e:
            out.append((loc, str(e)))
            continue
        if ids is None and n is None:
            continue
        unknown = sorted({str(u) for c in cols for u in df[c].astype(str) if not known(str(u))})
        if unknown:
            out.append((loc, f"{path}: {len(unknown)} user id(s) not among the users, e.g. {unknown[:5]}"))
    for agent in spec.population.overrides:
        if (ids is not None or n is not None) and not known(agent):
            out.append((["population", "overrides", agent], f"no user named {agent!r} (synthetic users are u0..u{(n or 1) - 1})"))
    for i, iv in enumerate(config.interventions):
        if isinstance(iv, HerdVotes) and (ids is not None or n is not None) and known(iv.voter):
            out.append((["world", "interventions", i, "voter"], f"{iv.voter!r} is a user; the voter must be a separate controlled account"))
    return out


FAMILY = Family(
    name="social",
    description="X-like and Reddit-like platforms with recommenders, cascades, herd effect and polarization (after OASIS).",
    config_model=SocialConfig,
    create_world=_create_world,
    scripted_policy=_scripted,
    summary=_summary,
    check=_check,
    create_mind=_create_mind,
    analyses=(Analysis("social", "agentsim.analysis.social:social_tables", plots="agentsim.analysis.social:social_plots",
                       description="Cascades, power law, adoption under exposure, herd effect, polarization, roles."),),
)
