"""Tournament family: Swiss-system tournaments, live or Monte Carlo (Competitive Swiss-System Dynamics)."""

from __future__ import annotations

from typing import Any

from agentsim.core.family import Analysis, Family
from agentsim.scenarios.tournament.config import TournamentConfig


def _create_world(spec: Any, config: TournamentConfig) -> Any:
    from agentsim.scenarios.tournament.world import CSDWorld, LiveWorld

    return CSDWorld(config, spec.steps, spec.seed) if config.mode == "csd" else LiveWorld(config, spec.steps)


def _scripted(data: Any, rng: Any) -> Any:
    from agentsim.scenarios.tournament.scripted import scripted_policy

    return scripted_policy(data, rng)


def _summary(log: Any) -> dict[str, Any]:
    from agentsim.analysis.tournament import tournament_tables

    t = tournament_tables(log, bootstrap=100)
    keep = ("expected_scores", "standings", "ratings")
    return {f"Tournament: {k}": v for k, v in t.items() if k in keep}


def _agent_ids(config: TournamentConfig) -> list[str]:
    return [p.name for p in config.participants]


def _check(spec: Any, config: TournamentConfig) -> list[tuple[list[str | int], str]]:
    from agentsim.spec.loader import alias_problems

    out = alias_problems(spec, [(["world", "participants", i, "model"], p.model) for i, p in enumerate(config.participants)]
                         + [(["world", "live", "judge"], config.live.judge if config.live else None)])
    if config.mode == "csd" and config.csd is not None:
        from agentsim.scenarios.tournament.csd import read_score_table

        try:
            _, benchmarks, _ = read_score_table(str(config.csd.scores_file), config.csd.benchmarks)
        except ValueError as e:
            out.append((["world", "csd", "scores_file"], str(e)))
        else:
            el = config.csd.eliminations
            if isinstance(el, list) and len(el) != len(benchmarks):
                out.append((["world", "csd", "eliminations"], f"{len(el)} entries for {len(benchmarks)} rounds (one per benchmark)"))
    return out


FAMILY = Family(
    name="tournament",
    description="Swiss-system tournaments: live matches through the backends, or CSD Monte Carlo over score tables.",
    config_model=TournamentConfig,
    create_world=_create_world,
    scripted_policy=_scripted,
    summary=_summary,
    agent_ids=_agent_ids,
    check=_check,
    analyses=(Analysis("tournament", "agentsim.analysis.tournament:tournament_tables",
                       description="CSD expected scores; standings, Elo and Bradley-Terry with CIs."),),
)
