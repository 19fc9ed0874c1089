"""What a scenario family provides to the platform. A family is one folder plus one registration."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel

from agentsim.core.world import World

Ref = str | Callable[..., Any]


def resolve(ref: Ref) -> Callable[..., Any]:
    """A callable, or a "module:attribute" string imported on first use (so that registering a family, or listing
    families, imports none of its analysis code)."""
    if callable(ref):
        return ref
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Analysis:
    """An analysis a family offers to `agentsim analyze RUN NAME`. Each callable may be given as "module:function".

    - `tables(run_log)`: title -> DataFrame for one run (notes on a table in `df.attrs["notes"]`).
    - `compare(run_logs)`: the same over a directory of runs; None if the analysis reads one run only.
    - `plots(tables, run_logs, out_dir)`: writes PNGs under out_dir (`--out`), returns their paths; a plot of an
      empty table is a figure that says "no data".
    """

    name: str
    tables: Ref
    compare: Ref | None = None
    plots: Ref | None = None
    description: str = ""


@dataclass(frozen=True)
class Family:
    """A scenario family.

    - `config_model`: the pydantic model of the YAML's `world:` section.
    - `create_world(spec, config)`: builds the world for a validated scenario.
    - `scripted_policy(observation_data, rng)`: the rule-based baseline behind `--backend scripted`.
    - `summary(run_log)`: optional tables for the end-of-run summary (title -> DataFrame).
    - `agent_ids(config)`: the agents a population override may name.
    - `check(spec, config)`: cross-field problems as (YAML path, message), e.g. unknown model aliases.
    - `create_mind(spec, config)`: optional; the Mind that builds prompts and keeps memories where the agents live
      (core/mind.py). Worlds of a family with a mind may leave `Observation.messages` empty.
    - `analyses`: what `agentsim analyze` runs on this family's runs; the first is the default, also reached by
      the family's name (`agentsim analyze RUN wargame` runs `escalation`).
    """

    name: str
    description: str
    config_model: type[BaseModel]
    create_world: Callable[[Any, Any], World]
    scripted_policy: Callable[[Any, np.random.Generator], BaseModel | str]
    summary: Callable[[Any], dict[str, Any]] | None = None
    agent_ids: Callable[[Any], list[str]] = field(default=lambda config: [])
    check: Callable[[Any, Any], list[tuple[list[str | int], str]]] = field(default=lambda spec, config: [])
    create_mind: Callable[[Any, Any], Any] | None = None
    analyses: tuple[Analysis, ...] = ()
