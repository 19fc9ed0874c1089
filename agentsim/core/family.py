"""What a scenario family provides to the platform. A family is one folder plus one registration."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel

from agentsim.core.datafile import DataFileError, FileFormat
from agentsim.core.names import NamedId, name_problems
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
    - `params`: the pydantic model of the analysis's parameters (`agentsim analyze ... --param KEY=VALUE`,
      `--reference FILE`), or None when it takes none. With one, `tables` and `compare` are called with
      `params=` a dict of what the command line gave (validated against the model first, so a bad one is named).
    """

    name: str
    tables: Ref
    compare: Ref | None = None
    plots: Ref | None = None
    description: str = ""
    params: Ref | None = None


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
    - `reserved_ids`: the agent ids the family's worlds use themselves (a judge, the world model, a message target);
      no user-defined id may equal one of them, ignoring case (core/names.py).
    - `names(spec, config)`: every agent id the scenario defines, with where (`NamedId`: a YAML path, or a data
      file and row), so `problems` can refuse repeats and reserved ids; may raise `DataFileError` with `.loc` set.
    - `uses_population_model(spec, config)`: whether some agent falls back to `population.model`; only then must that
      alias exist (a live tournament whose participants all name their model needs no `default` alias).
    - `file_formats`: the data files the family reads (core/datafile.py), documented in README's "File formats".
    - `analyses`: what `agentsim analyze` runs on this family's runs; the first is the default, also reached by
      the family's name (`agentsim analyze RUN wargame` runs `escalation`).
    - `view`: optional; the family's panel in `agentsim view` as "module:function" (imported only by the viewer):
      `build(ctx)` -> a Panel object (agentsim/view/registry.py). A family without one gets the common panels only.
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
    reserved_ids: frozenset[str] = frozenset()
    analyses: tuple[Analysis, ...] = ()
    names: Callable[[Any, Any], list[NamedId]] = field(default=lambda spec, config: [])
    uses_population_model: Callable[[Any, Any], bool] = field(default=lambda spec, config: True)
    file_formats: tuple[FileFormat, ...] = ()
    view: Ref | None = None

    def problems(self, spec: Any, config: Any) -> list[tuple[list[str | int], str]]:
        """Every cross-field problem of a validated scenario as (YAML path, message): the default model alias when
        something uses it, the names (repeats, reserved ids; one check for every family), then `check`."""
        out: list[tuple[list[str | int], str]] = []
        if self.uses_population_model(spec, config) and spec.population.model not in spec.models:
            out.append((["population", "model"], f"unknown model alias {spec.population.model!r} (agents without a model of "
                                                 f"their own use it); defined aliases: {sorted(spec.models)}"))
        try:
            named = self.names(spec, config)
        except DataFileError as e:
            out.append((list(e.loc), str(e)))
        else:
            out.extend(name_problems(named, self.reserved_ids, self.name))
        out.extend(self.check(spec, config))
        return out
