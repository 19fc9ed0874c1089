"""Load and validate a scenario file: YAML (one bounded safe loader) -> overrides -> ScenarioSpec + the family's
typed world config. `prepare_scenario` goes on to build the world: the one path `run` and `validate` share."""

from __future__ import annotations

import copy
import dataclasses
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agentsim.core.datafile import DataFileError
from agentsim.core.family import Family
from agentsim.core.registry import UnknownFamilyError, get_family
from agentsim.spec.errors import LineIndex, SpecError, SpecProblem, problems_from
from agentsim.spec.models import ScenarioSpec
from agentsim.spec.overrides import Applied, Override, absolutize_paths, apply_to_data, recorded
from agentsim.spec.shipped import resolve_scenario, shipped_names
from agentsim.spec.yamlio import read_yaml


@dataclass(frozen=True)
class Scenario:
    """A validated scenario, ready to run.

    `overrides` is {dotted path: JSON value} of every command-line change to the file (`--set`, `--seed`,
    `--steps`, `--backend` as `models.<alias>.backend`, `--out` as `logging.dir`, `--runtime`, `--address`,
    `--shards`), as they stand in the validated scenario; run.json keeps it under "overrides"."""

    spec: ScenarioSpec
    world: BaseModel
    family: Family
    source: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    lines: LineIndex | None = field(default=None, repr=False, compare=False)
    #: What the world says a reader must know about how it read the scenario's data (e.g. a users file's format told
    #: from the file, columns it does not use): `agentsim validate` prints them, run.json keeps them as world_notes.
    notes: tuple[str, ...] = ()


def _legacy_overrides(fields: dict[str, Any]) -> list[Override]:
    """`load_scenario(path, backend=..., seed=..., **{"runtime.kind": ...})` keyword overrides as Overrides."""
    return [
        Override("models.*.backend" if k == "backend" else k, v, f"{k}={v}")
        for k, v in fields.items() if v is not None
    ]


def apply_overrides(data: dict[str, Any], *, backend: str | None = None, **fields: Any) -> dict[str, Any]:
    """A copy of `data` with overrides applied: `backend` switches every model alias; other keys are dotted paths
    (agentsim/spec/overrides.py has the rules). Raises SpecError for a path that cannot be followed."""
    data = copy.deepcopy(data)
    apply_to_data(data, _legacy_overrides({"backend": backend, **fields}))
    return data


def parse_scenario(
    data: Any, source: str = "<scenario>", text: str | None = None, base_dir: Path | None = None,
    lines: LineIndex | None = None,
) -> Scenario:
    """Validate scenario data (a dict as read from YAML). Relative paths in it are relative to `base_dir`.
    Raises SpecError listing every problem; a data file the world config names that is itself wrong raises
    that file's SpecError."""
    if lines is None and text is not None:
        lines = LineIndex(text)
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
        spec = ScenarioSpec.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as e:
        problems.extend(p for p in problems_from(e, ScenarioSpec, (), lines) if not (p.path == "kind" and family is None and kind))
    world = None
    if family is not None:
        try:
            world = family.config_model.model_validate(data.get("world") or {}, context={"base_dir": base_dir})
        except ValidationError as e:
            problems.extend(problems_from(e, family.config_model, ("world",), lines))
    if spec is not None and world is not None and family is not None:
        with world_errors(source, lines):
            problems.extend(_cross_checks(spec, world, family, lines))
    if problems:
        raise SpecError(source, problems)
    assert spec is not None and world is not None and family is not None
    return Scenario(spec, world, family, Path(source) if source != "<scenario>" else None, lines=lines)


@contextmanager
def world_errors(source: str, lines: LineIndex | None) -> Iterator[None]:
    """Turn what a family raises while it reads the world's inputs into a SpecError naming the scenario.

    A family reports a bad data file as a SpecError naming that file (it passes through), or as a ValueError
    whose message names the file (agentsim/scenarios/social/population.py: read_table); an unreadable file is an
    OSError. Anything else is a bug in the family and keeps its traceback."""
    where = lines.line_of(["world"]) if lines else None
    try:
        yield
    except SpecError:
        raise
    except DataFileError as e:  # a data file's rows (core/datafile.py): each problem names file, row, id and field
        raise SpecError(e.path, [SpecProblem(".".join(str(p) for p in e.loc), msg) for msg in e.problems]) from None
    except ValidationError as e:  # a family validating a data file without naming it
        raise SpecError(source, [
            SpecProblem("world", f"{e.title}: {'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}", where)
            for err in e.errors(include_url=False)
        ]) from None
    except ValueError as e:
        raise SpecError(source, [SpecProblem("world", str(e), where)]) from None
    except OSError as e:
        what = f"{e.filename}: " if e.filename else ""
        raise SpecError(source, [SpecProblem("world", f"{what}cannot be read ({e.strerror or e})", where)]) from None


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


def _from_command_line(e: SpecError, applied: Applied) -> SpecError:
    """Problems at a field an override wrote point at the override, not at the line the file had there."""
    out = []
    for p in e.problems:
        origin = applied.origin_of(p.path)
        out.append(SpecProblem(p.path, f"{p.message} (from {origin})", None) if origin else p)
    return SpecError(e.source, out)


def load_scenario(path: str | Path, overrides: Sequence[Override] = (), **fields: Any) -> Scenario:
    """Read, override and validate a scenario file. Raises SpecError listing every problem.

    `overrides` come from the command line (agentsim/spec/overrides.py: command_line_overrides); the keyword
    form `load_scenario(f, backend="scripted", steps=3, **{"runtime.kind": "ray"})` is the same as `--backend`,
    `--set steps=3`, `--set runtime.kind=ray`. A path that does not exist may name a shipped scenario
    (`wargame/neutral.yaml`: agentsim/spec/shipped.py)."""
    path = resolve_scenario(path)
    if not path.exists() and shipped_names():
        raise SpecError(str(path), [SpecProblem("", "scenario file not found; shipped scenarios: " + ", ".join(shipped_names()))])
    doc = read_yaml(path, "scenario file")
    data = doc.data
    if data is None:
        raise SpecError(str(path), [SpecProblem("", "the file is empty")])
    lines = LineIndex.from_node(doc.root)
    overrides = [*overrides, *_legacy_overrides(fields)]
    applied = Applied({}, {})
    if isinstance(data, dict) and overrides:
        applied = apply_to_data(data, overrides, str(path), lines)
        try:
            family = get_family(data["kind"]) if isinstance(data.get("kind"), str) else None
        except UnknownFamilyError:
            family = None
        absolutize_paths(data, applied.paths, ScenarioSpec, family.config_model if family else None)
    try:
        sc = parse_scenario(data, str(path), base_dir=path.parent, lines=lines)
    except SpecError as e:
        if e.source != str(path) or not applied.paths:
            raise
        raise _from_command_line(e, applied) from None
    return dataclasses.replace(sc, overrides=recorded(data, applied.paths))


def directory_problem(target: Path, what: str = "the run log") -> str | None:
    """Why a directory `target` cannot be made (or written into), or None: every part of the path that exists is
    a directory, and the deepest existing one takes a new directory. `what` names what goes there."""
    target = target.absolute()
    for part in (target, *target.parents):
        if not part.exists():
            continue
        if not part.is_dir():
            return (f"{target} is a file, not a directory" if part == target
                    else f"{target} is inside {part}, which is a file, not a directory")
        # Try it: os.access says yes to root everywhere, and a read-only or virtual file system (/proc, /sys, a full
        # disk, a read-only mount) refuses only when asked. The probe directory is removed at once.
        try:
            shutil.rmtree(tempfile.mkdtemp(prefix=".agentsim-probe-", dir=part))
        except OSError as e:
            why = "no permission" if isinstance(e, PermissionError) else (e.strerror or type(e).__name__).lower()
            return f"cannot create {what} in {part}: {why}"
        return None
    return None


def check_log_dir(sc: Scenario, run_dir: Path | None = None) -> None:
    """The run log can be written at `run_dir` (or under `logging.dir`): every part of the path that exists is
    a directory, and the deepest existing one is writable. Raises SpecError naming the field."""
    target = (run_dir if run_dir is not None else sc.spec.logging.dir).absolute()
    field_name = "--run-dir" if run_dir is not None else "logging.dir"
    from_cli = run_dir is not None or "logging.dir" in sc.overrides
    line = sc.lines.line_of(["logging", "dir"]) if sc.lines is not None and not from_cli else None
    note = " (from the command line)" if from_cli else ""
    problem = directory_problem(target)
    if problem:
        raise SpecError(str(sc.source or sc.spec.name), [SpecProblem(field_name, problem + note, line)])


class _BuiltWorld:
    """A family's `create_world` that hands over a world already built (by `build_world`) on its first call for
    this very spec and config, and builds a new one on every later call (a runtime going back to step 0)."""

    def __init__(self, world: Any, spec: ScenarioSpec, config: BaseModel, create: Any):
        self._world, self._spec, self._config, self._create = world, spec, config, create

    def peek(self) -> Any:
        """The world built beforehand, still to be handed over (None once handed over)."""
        return self._world

    def __call__(self, spec: Any, config: Any) -> Any:
        if self._world is not None and spec is self._spec and config is self._config:
            world, self._world = self._world, None
            return world
        return self._create(spec, config)


def build_world(sc: Scenario) -> Scenario:
    """Build the world (the family reads and cross-checks its data files here) with the same error handling as
    validation. The returned Scenario's family hands this world to the runtime instead of building it again."""
    source = str(sc.source or sc.spec.name)
    with world_errors(source, sc.lines):
        world = sc.family.create_world(sc.spec, sc.world)
    family = dataclasses.replace(sc.family, create_world=_BuiltWorld(world, sc.spec, sc.world, sc.family.create_world))
    return dataclasses.replace(sc, family=family, notes=tuple(getattr(world, "notes", None) or ()))


def prepare_scenario(path: str | Path, overrides: Sequence[Override] = (), run_dir: Path | None = None) -> Scenario:
    """Everything `agentsim run` does before its first step except loading models and starting engines: read the
    file, apply the overrides, validate, check where the log goes, build the world. `agentsim validate` runs
    exactly this, so it rejects what `run` would reject at start. Raises SpecError."""
    sc = load_scenario(path, overrides)
    check_log_dir(sc, run_dir)
    return build_world(sc)


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
