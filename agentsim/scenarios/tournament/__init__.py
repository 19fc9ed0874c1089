"""Tournament family: Swiss-system tournaments, live or Monte Carlo (Competitive Swiss-System Dynamics)."""

from __future__ import annotations

from typing import Any

from agentsim.core.datafile import DataFileError, FileFormat
from agentsim.core.family import Analysis, Family
from agentsim.core.names import NamedId
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


def _names(spec: Any, config: TournamentConfig) -> list[NamedId]:
    """Live: the participants (YAML); CSD: the models of the score table (file and row)."""
    if config.mode == "live":
        return [NamedId(p.name, ("world", "participants", i, "name")) for i, p in enumerate(config.participants)]
    if config.csd is None:
        return []
    from agentsim.scenarios.tournament.files import load_score_table

    loc = ("world", "csd", "scores_file")
    try:
        table = load_score_table(config.csd.scores_file, config.csd.benchmarks)
    except DataFileError as e:
        raise e.at(*loc) from None
    return [NamedId(m, loc, str(config.csd.scores_file), row, "model") for m, row in zip(table.models, table.rows, strict=True)]


def _check(spec: Any, config: TournamentConfig) -> list[tuple[list[str | int], str]]:
    from agentsim.spec.loader import alias_problems

    out = alias_problems(spec, [(["world", "participants", i, "model"], p.model) for i, p in enumerate(config.participants)]
                         + [(["world", "live", "judge"], config.live.judge if config.live else None)])
    if config.mode == "csd" and config.csd is not None:
        from agentsim.scenarios.tournament.csd import read_score_table

        try:
            _, benchmarks, _ = read_score_table(str(config.csd.scores_file), config.csd.benchmarks)
        except DataFileError:
            pass  # reported by _names
        else:
            el = config.csd.eliminations
            if isinstance(el, list) and len(el) != len(benchmarks):
                out.append((["world", "csd", "eliminations"], f"{len(el)} entries for {len(benchmarks)} rounds (one per benchmark)"))
    live = config.live
    if config.mode == "live" and live is not None:
        from agentsim.scenarios.tournament.world import load_items

        try:
            items = load_items(live)
        except DataFileError as e:
            out.append((["world", "live", "items_file"], str(e)))
        else:
            if live.match == "benchmark":
                where = f"{live.items_file} row" if not live.items and live.items_file else "world.live.items entry"
                out.extend((["world", "live", "items_file" if not live.items and live.items_file else "items"],
                            f"{where} {i}: field answer: a benchmark item needs a reference answer")
                           for i, item in enumerate(items, start=1) if not item.answer.strip())
    return out


def _file_formats() -> tuple[FileFormat, ...]:
    from agentsim.scenarios.tournament.config import Item
    from agentsim.scenarios.tournament.files import LongScoreRow, WideScoreRow, load_score_table, read_items

    return (
        FileFormat("Score table, wide", "tournament", ("world.csd.scores_file",), "table", WideScoreRow,
                   "scenarios/tournament/example_scores.csv",
                   "Per-benchmark scores for CSD: one row per model, one column per benchmark (rounds in column order, "
                   "or `world.csd.benchmarks`). At least 2 models; model names are unique.", read=load_score_table),
        FileFormat("Score table, long", "tournament", ("world.csd.scores_file",), "table", LongScoreRow,
                   "scenarios/tournament/examples/scores_long.csv",
                   "The same scores one per row, chosen when the table has `benchmark` and `score` columns; every model "
                   "needs exactly one score on every benchmark.", read=load_score_table),
        FileFormat("Benchmark items", "tournament", ("world.live.items_file",), "jsonl or csv", Item,
                   "scenarios/tournament/examples/items.jsonl",
                   "Items of a live tournament, one per round (cycling): JSONL with one object per line, or CSV with "
                   "a header (`.jsonl` files are JSONL, any other name CSV). `match: benchmark` needs every answer.", read=read_items,
                   notes=("A CSV example: [`scenarios/tournament/examples/items.csv`](scenarios/tournament/examples/items.csv).",)),
    )


#: The live judge's agent id (world.JUDGE_ID).
RESERVED_IDS = frozenset({"Judge"})
FAMILY = Family(
    name="tournament",
    description="Swiss-system tournaments: live matches through the backends, or CSD Monte Carlo over score tables.",
    config_model=TournamentConfig,
    create_world=_create_world,
    scripted_policy=_scripted,
    summary=_summary,
    agent_ids=_agent_ids,
    check=_check,
    reserved_ids=RESERVED_IDS,
    names=_names,
    # Participants name their model and the judge its alias; CSD asks no model: population.model is never used.
    uses_population_model=lambda spec, config: False,
    file_formats=_file_formats(),
    analyses=(Analysis("tournament", "agentsim.analysis.tournament:tournament_tables",
                       plots="agentsim.analysis.tournament:tournament_plots", description="CSD expected scores; standings, Elo and Bradley-Terry with CIs."),),
    view="agentsim.scenarios.tournament.view:build",
)
