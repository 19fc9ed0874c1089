"""What a scenario family provides to the platform. A family is one folder plus one registration."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel

from agentsim.core.world import World


@dataclass(frozen=True)
class Family:
    """A scenario family.

    - `config_model`: the pydantic model of the YAML's `world:` section.
    - `create_world(spec, config)`: builds the world for a validated scenario. This is where data files are read
      and cross-checked, and `agentsim validate` calls it too (agentsim/spec/loader.py: prepare_scenario), so a bad
      data file should raise SpecError naming the file, field and row, or at least a ValueError whose message
      names the file; both reach the user as exit 2 without a traceback.
    - `scripted_policy(observation_data, rng)`: the rule-based baseline behind `--backend scripted`.
    - `summary(run_log)`: optional tables for the end-of-run summary (title -> DataFrame).
    - `agent_ids(config)`: the agents a population override may name.
    - `check(spec, config)`: cross-field problems as (YAML path, message), e.g. unknown model aliases.
    - `create_mind(spec, config)`: optional; the Mind that builds prompts and keeps memories where the agents live
      (core/mind.py). Worlds of a family with a mind may leave `Observation.messages` empty.
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
