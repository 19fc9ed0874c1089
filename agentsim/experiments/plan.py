"""From an experiment file to its cells: every run's scenario, validated, with its parameter values and seed."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agentsim.experiments.spec import EXPERIMENT_KIND, ExperimentSpec
from agentsim.spec.errors import LineIndex, SpecError, SpecProblem, _model_at, problems_from
from agentsim.spec.loader import Scenario, parse_scenario
from agentsim.spec.models import ScenarioSpec
from agentsim.spec.overrides import COMMAND_LINE, Override, absolutize_paths, apply_to_data
from agentsim.spec.shipped import resolve_scenario
from agentsim.spec.yamlio import read_yaml


@dataclass(frozen=True)
class Cell:
    """One run of the experiment."""

    index: int
    base: str  # the base scenario's file stem
    base_file: Path
    params: dict[str, Any]  # scenario path -> value (grid, zip; not `set`)
    seed: int
    scenario: Scenario = field(compare=False, repr=False)

    @property
    def run_name(self) -> str:
        return f"{self.index:04d}-{self.base}-s{self.seed}"


@dataclass(frozen=True)
class Plan:
    spec: ExperimentSpec
    source: Path
    cells: list[Cell]
    plan_hash: str
    #: The parent run of a branch experiment (every cell branches from it at spec.branch.at).
    branch_parent: Path | None = None


def is_experiment_file(path: str | Path) -> bool:
    """True for a YAML file (or a shipped one by name) whose `kind` is `experiment` (cheap: reads it, builds nothing)."""
    try:
        data = _read_yaml(resolve_scenario(path), "experiment file")
    except SpecError:
        return False
    return isinstance(data, dict) and data.get("kind") == EXPERIMENT_KIND


def _read_yaml(path: Path, what: str) -> Any:
    return read_yaml(path, what).data


def _resolved(sc: Scenario) -> dict[str, Any]:
    """The scenario as validated, defaults filled in: what a path may point into."""
    data = sc.spec.model_dump(mode="json")
    data["world"] = sc.world.model_dump(mode="json")
    return data


def path_problem(sc: Scenario, path: str) -> str | None:
    """Why `path` names nothing in the scenario `sc` (None when it does).

    A path exists when each step is a field of the model at that place (the scenario, a model spec, the family's
    world section, ...), a key or an index of the data there, or a new key under a free-form mapping
    (`models.<alias>`, `population.overrides.<agent>`, `models.<alias>.engine_args.<arg>`)."""
    parts = path.split(".")
    if not all(parts):
        return "empty step in the path"
    node: Any = _resolved(sc)
    for i, part in enumerate(parts):
        loc = parts[:i]
        root, sub = (sc.family.config_model, loc[1:]) if loc[:1] == ["world"] else (ScenarioSpec, loc)
        model: type[BaseModel] | None = _model_at(root, sub)
        if part == "*":  # every key / item (the override mechanism's wildcard): check the path through the first
            node = next(iter(node.values()), None) if isinstance(node, dict) else (node[0] if isinstance(node, list) and node else None)
            continue
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                return f"{'.'.join(loc)} is a list of {len(node)}; {part!r} is not an index in it"
            node = node[int(part)]
            continue
        if model is not None and part not in model.model_fields:
            import difflib

            hint = difflib.get_close_matches(part, list(model.model_fields), n=1)
            where = ".".join(loc) or "the scenario"
            return (f"{where} has no field {part!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
                    + f" Fields: {', '.join(sorted(model.model_fields))}")
        if isinstance(node, dict):
            node = node.get(part)
        elif node is None:
            node = None  # an unset optional section (its fields were checked against the model above)
        else:
            return f"{'.'.join(loc)} is {node!r}, not a mapping; it has no {part!r}"
    return None


def load_experiment_spec(path: str | Path) -> tuple[ExperimentSpec, dict[str, Any]]:
    path = resolve_scenario(path)  # the shipped study: wargame/study.yaml
    doc = read_yaml(path, "experiment file")
    data = doc.data
    if not isinstance(data, dict):
        raise SpecError(str(path), [SpecProblem("", "an experiment file is a mapping of fields")])
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as e:
        raise SpecError(str(path), problems_from(e, ExperimentSpec, (), LineIndex.from_node(doc.root))) from None
    # Paths written in a file are relative to that file (README, "Paths"): here the experiment directory's parent.
    if "dir" in (data.get("logging") or {}) and not spec.logging.dir.is_absolute():
        spec = spec.model_copy(update={"logging": spec.logging.model_copy(update={"dir": path.parent / spec.logging.dir})})
    return spec, data


def plan_experiment(
    path: str | Path, sets: Sequence[Override] = (), *, backend: str | None = None, repeats: int | None = None,
    max_concurrent_runs: int | None = None,
) -> Plan:
    """Validate the experiment file and every cell's scenario. Raises SpecError listing every problem (the path
    that names nothing, or the cell whose scenario is invalid, with its parameter values).

    The command line may add to the file (`agentsim sweep FILE --set PATH=V --backend B --repeats N`): `sets` and
    `backend` join the experiment's `set` (replacing a value the file gives there; a path the grid or zip varies
    is an error), `repeats` and `max_concurrent_runs` replace the file's."""
    path = resolve_scenario(path)
    spec, _ = load_experiment_spec(path)
    extra = {o.path: o.value for o in sets} | ({"models.*.backend": backend} if backend else {})
    varied = [p for p in extra if p in spec.grid or p in spec.zip]
    if varied:
        raise SpecError(COMMAND_LINE, [SpecProblem(p, "the experiment varies this path (grid or zip); it cannot also be set") for p in varied])
    update: dict[str, Any] = {"set": {**spec.set, **extra}}
    if repeats is not None:
        update["repeats"] = repeats
    if max_concurrent_runs is not None:
        update["max_concurrent_runs"] = max_concurrent_runs
    try:
        spec = ExperimentSpec.model_validate({**spec.model_dump(), **update})
    except ValidationError as e:
        raise SpecError(COMMAND_LINE, problems_from(e, ExperimentSpec)) from None
    lines = LineIndex.from_node(read_yaml(path, "experiment file").root)
    problems: list[SpecProblem] = []
    bases = _branch_parent(spec, path, lines) if spec.branch is not None else _base_files(spec, path, lines)
    names = [b.name for b in bases]
    if len(set(names)) != len(names):
        raise SpecError(str(path), [SpecProblem("base", f"base scenarios need distinct file names; got {names}", lines.line_of(["base"]))])
    for section in ("grid", "zip", "set"):
        for p in getattr(spec, section):
            for b in bases:
                why = path_problem(b.scenario, p)
                if why:
                    problems.append(SpecProblem(f"{section}.{p}", f"not a path of {b.name}: {why}", lines.line_of([section, p])))
    if problems:
        raise SpecError(str(path), problems)

    cells: list[Cell] = []
    rows = spec.parameter_rows()
    for b in bases:
        base_sc = b.scenario
        seeds = spec.seeds or [base_sc.spec.seed + r for r in range(spec.repeats)]
        for params in rows:
            for seed in seeds if "seed" not in params else [None]:
                changes = {**spec.set, **params, **({"seed": seed} if seed is not None else {})}
                label = ", ".join(f"{k}={v!r}" for k, v in {**params, "seed": changes.get("seed", seed)}.items())
                try:
                    sc = _cell_scenario(b, changes, path)
                except SpecError as e:
                    problems.extend(SpecProblem(p.path, f"cell {len(cells)} ({b.name}: {label}): {p.message}") for p in e.problems)
                    cells.append(None)  # type: ignore[arg-type]  # keeps numbering; the plan fails below
                    continue
                cells.append(Cell(len(cells), b.name, b.file, dict(params), sc.spec.seed, sc))
    if problems:
        raise SpecError(str(path), problems)
    parent = bases[0].file if spec.branch is not None else None
    return Plan(spec, path.resolve(), cells, _plan_hash(spec, cells), parent)


@dataclass(frozen=True)
class _Base:
    """What the cells start from: a scenario file, or a parent run (its run.json's scenario)."""

    name: str  # the `base` column: the file's stem, or <run>@<step> for branches
    file: Path  # the scenario file, or the parent run directory
    data: dict[str, Any]
    scenario: Scenario
    source: str  # where its relative paths are relative to (a scenario file)


def _base_files(spec: ExperimentSpec, path: Path, lines: LineIndex) -> list[_Base]:
    problems, bases = [], []
    for i, rel in enumerate(spec.base):
        file = rel if rel.is_absolute() else path.parent / rel
        if not file.exists():  # a shipped scenario by name (wargame/neutral.yaml), as `agentsim run` takes it
            file = resolve_scenario(rel) if resolve_scenario(rel).exists() else file
        try:
            data = _read_yaml(file, "scenario file")
            if not isinstance(data, dict):
                raise SpecError(str(file), [SpecProblem("", "a scenario file is a mapping of fields")])
            sc = parse_scenario(data, str(file), base_dir=file.parent)
        except SpecError as e:
            problems.append(SpecProblem(f"base.{i}", f"{file}: " + "; ".join(str(p) for p in e.problems), lines.line_of(["base", i])))
            continue
        bases.append(_Base(file.stem, file.resolve(), data, sc, str(file)))
    if problems:
        raise SpecError(str(path), problems)
    return bases


def _branch_parent(spec: ExperimentSpec, path: Path, lines: LineIndex) -> list[_Base]:
    """The parent run of a branch experiment: its scenario (from run.json) and the kept checkpoint at `at`."""
    from agentsim.runtime.branch import kept_steps

    assert spec.branch is not None
    run = spec.branch.run if spec.branch.run.is_absolute() else path.parent / spec.branch.run
    where = lines.line_of(["branch", "run"])
    try:
        meta = json.loads((run / "run.json").read_text())
        data = meta["spec"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        raise SpecError(str(path), [SpecProblem("branch.run", f"{run}: not a run directory with a readable run.json", where)]) from None
    kept = kept_steps(run)
    if spec.branch.at not in kept:
        ends = int(data.get("steps", 0)) if isinstance(data, dict) else 0
        why = (f"it kept no checkpoint after step {spec.branch.at}; at values it can branch at (steps kept): "
               f"{', '.join(str(k) for k in kept if not ends or k < ends)}"
               if kept else "it kept no checkpoints (run it with runtime.keep_checkpoints: true)")
        raise SpecError(str(path), [SpecProblem("branch.at", f"{run}: {why}", lines.line_of(["branch", "at"]))])
    source = meta.get("source") or str(run / "run.json")
    try:
        sc = parse_scenario(data, source, base_dir=Path(source).parent)
    except SpecError as e:
        raise SpecError(str(path), [SpecProblem("branch.run", f"{run}: its scenario no longer validates: {e.render()}", where)]) from None
    return [_Base(f"{run.name}@{spec.branch.at}", run.resolve(), data, sc, source)]


def _cell_scenario(base: _Base, changes: dict[str, Any], experiment: Path) -> Scenario:
    """The base scenario with a cell's changes, validated. A relative path among the values is relative to the
    experiment file, where it is written."""
    cell = copy.deepcopy(base.data)
    applied = apply_to_data(cell, [Override(k, v, f"{k}={v!r}") for k, v in changes.items()], str(experiment))
    absolutize_paths(cell, applied.paths, ScenarioSpec, base.scenario.family.config_model, cwd=experiment.parent)
    return parse_scenario(cell, base.source, base_dir=Path(base.source).parent)


def _plan_hash(spec: ExperimentSpec, cells: list[Cell]) -> str:
    """Identifies what the experiment runs: the cells' full scenarios (so an edited base file is a new plan)."""
    blob = json.dumps([spec.model_dump(mode="json", exclude={"max_concurrent_runs", "description"})]
                      + [[c.base, c.params, c.seed, c.scenario.spec.model_dump(mode="json"), c.scenario.world.model_dump(mode="json")]
                         for c in cells], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
