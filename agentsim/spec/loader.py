"""Load and validate a scenario file: YAML (safe_load only) -> ScenarioSpec + the family's typed world config."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from agentsim.core.family import Family
from agentsim.core.registry import UnknownFamilyError, get_family
from agentsim.spec.errors import LineIndex, SpecError, SpecProblem, problems_from
from agentsim.spec.models import ScenarioSpec


@dataclass(frozen=True)
class Scenario:
    """A validated scenario, ready to run."""

    spec: ScenarioSpec
    world: BaseModel
    family: Family
    source: Path | None = None


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def apply_overrides(data: dict[str, Any], *, backend: str | None = None, **fields: Any) -> dict[str, Any]:
    """Command-line overrides: `backend` switches every model alias; other keys are dotted paths."""
    data = copy.deepcopy(data)
    if backend is not None:
        models = data.get("models")
        if not isinstance(models, dict) or not models:
            models = {"default": {}}
        data["models"] = {a: {**(m if isinstance(m, dict) else {}), "backend": backend} for a, m in models.items()}
    for dotted, value in fields.items():
        if value is None:
            continue
        node = data
        *parents, last = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return data


def parse_scenario(
    data: Any, source: str = "<scenario>", text: str | None = None, base_dir: Path | None = None
) -> Scenario:
    lines = LineIndex(text) if text is not None else None
    if not isinstance(data, dict):
        raise SpecError(source, [SpecProblem("", f"the file must be a mapping of fields, got {type(data).__name__}")])
    problems: list[SpecProblem] = []
    family = None
    kind = data.get("kind")
    if isinstance(kind, str):
        try:
            family = get_family(kind)
        except UnknownFamilyError as e:
            problems.append(SpecProblem("kind", e.message, lines.line_of(["kind"]) if lines else None))
    spec = None
    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as e:
        problems.extend(p for p in problems_from(e, ScenarioSpec, (), lines) if not (p.path == "kind" and family is None and kind))
    world = None
    if family is not None:
        try:
            world = family.config_model.model_validate(data.get("world") or {}, context={"base_dir": base_dir})
        except ValidationError as e:
            problems.extend(problems_from(e, family.config_model, ("world",), lines))
    if spec is not None and world is not None and family is not None:
        problems.extend(_cross_checks(spec, world, family, lines))
    if problems:
        raise SpecError(source, problems)
    assert spec is not None and world is not None and family is not None
    return Scenario(spec, world, family, Path(source) if source != "<scenario>" else None)


def _cross_checks(spec: ScenarioSpec, world: BaseModel, family: Family, lines: LineIndex | None) -> list[SpecProblem]:
    out = []
    agent_ids = family.agent_ids(world)
    if agent_ids:
        for agent in spec.population.overrides:
            if agent not in agent_ids:
                loc = ["population", "overrides", agent]
                out.append(SpecProblem(".".join(loc), f"no agent named {agent!r}; agents: {', '.join(agent_ids)}", lines.line_of(loc) if lines else None))
    for loc, message in family.problems(spec, world):
        out.append(SpecProblem(".".join(str(p) for p in loc), message, lines.line_of(loc) if lines else None))
    return out


def alias_problems(spec: ScenarioSpec, uses: list[tuple[list[str | int], str | None]]) -> list[tuple[list[str | int], str]]:
    """For a family's `check`: (YAML path, message) for each alias in `uses` that the scenario does not define."""
    return [
        (loc, f"unknown model alias {alias!r}; defined aliases: {sorted(spec.models)}")
        for loc, alias in uses
        if alias is not None and alias not in spec.models
    ]


def load_scenario(path: str | Path, **overrides: Any) -> Scenario:
    """Read, override and validate a scenario file. Raises SpecError listing every problem."""
    path = Path(path)
    if not path.exists():
        raise SpecError(str(path), [SpecProblem("", "file not found")])
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(e, "problem", None) or str(e)
        raise SpecError(str(path), [SpecProblem("", f"not valid YAML: {reason}", line)]) from None
    if data is None:
        raise SpecError(str(path), [SpecProblem("", "the file is empty")])
    if isinstance(data, dict) and overrides:
        data = apply_overrides(data, **overrides)
    return parse_scenario(data, str(path), text, base_dir=path.parent)


def scenario_json_schema() -> dict[str, Any]:
    """The JSON schema of scenario files, with each installed family's `world` section."""
    from agentsim.core.registry import families

    schema = ScenarioSpec.model_json_schema()
    variants = []
    for name in families():
        fam = get_family(name)
        ws = fam.config_model.model_json_schema()
        defs = ws.pop("$defs", {})
        schema.setdefault("$defs", {}).update(defs)
        schema["$defs"][f"world_{name}"] = ws
        variants.append({"if": {"properties": {"kind": {"const": name}}}, "then": {"properties": {"world": {"$ref": f"#/$defs/world_{name}"}}}})
    if variants:
        schema["allOf"] = variants
        schema["properties"]["kind"]["enum"] = families()
    schema["title"] = "agentsim scenario"
    return schema
