"""Command-line overrides of a scenario: one mechanism, dotted paths.

`--set PATH=VALUE` writes VALUE (read as YAML) at PATH in the scenario's data before validation:

- PATH is dotted: `world.users.count`. Through a mapping a part is a key (a missing key or an empty value becomes a
  new mapping); through a list a part is an index (`world.users.groups.0.share`), which must exist; `*` stands for
  every key of a mapping or every item of a list (`models.*.backend`).
- A path that goes through a scalar (a string, a number, ...) is an error naming where it stopped and what is
  there. A key the scenario format does not know is left for validation, which reports it as an unknown field.
- Shallower paths are applied first, so `--set world.users={count: 5} --set world.users.count=6` gives 6 whatever
  the order on the command line; at the same depth, named paths go before `*` paths.
- Two overrides of the same path with different values are an error (the same value twice is fine).

The other flags are sugar for a path: `--seed` = `seed`, `--steps` = `steps`, `--out` = `logging.dir`,
`--runtime` = `runtime.kind`, `--address` = `runtime.address` (plus `runtime.kind=ray` unless something else sets
`runtime.kind`), `--shards` = `runtime.shards`, and `--backend` = `models.*.backend` (every model alias, including
those a `--set` adds). So `--steps 3 --set steps=5` is a conflict, and `--steps 3 --set steps=3` is not.

Relative paths given on the command line are relative to the working directory (relative paths written in a
scenario file are relative to that file): a value written at a path-typed field (`logging.dir`,
`world.nations_file`, ...) is made absolute here, before validation.
"""

from __future__ import annotations

import copy
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from agentsim.spec.errors import LineIndex, SpecError, SpecProblem, _unwrap, field_types

#: The source named by errors in the command line itself (not in a file).
COMMAND_LINE = "command line"


@dataclass(frozen=True)
class Override:
    """One change to the scenario's data: `path` (dotted, `*` allowed), the value, and how the user gave it (for
    error messages: `--set steps=3`, `--steps 3`)."""

    path: str
    value: Any
    origin: str

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.path.split("."))


def parse_set(item: str) -> Override:
    """One `--set KEY=VALUE`; the value is read as YAML (so 100000 is an int, true a bool, [1, 2] a list)."""
    from agentsim.spec.yamlio import parse_yaml

    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError(COMMAND_LINE, [SpecProblem("--set", f"{item!r} is not KEY=VALUE; write e.g. --set world.users.count=1000")])
    if any(not p.strip() for p in key.split(".")):
        raise SpecError(COMMAND_LINE, [SpecProblem("--set", f"{key!r} has an empty part; write a dotted path like world.users.count")])
    try:
        value = parse_yaml(text, f"--set {key}").data
    except SpecError as e:
        raise SpecError(COMMAND_LINE, [SpecProblem(key, f"--set {item}: the value is not valid YAML ({e.problems[0].message})")]) from None
    return Override(".".join(p.strip() for p in key.split(".")), value, f"--set {item}")


def command_line_overrides(
    sets: Sequence[str] = (),
    *,
    backend: str | None = None,
    seed: int | None = None,
    steps: int | None = None,
    out: str | Path | None = None,
    runtime: str | None = None,
    address: str | None = None,
    shards: int | None = None,
) -> list[Override]:
    """The overrides a `run` or `validate` command line asks for: its flags as dotted paths, then its --set items."""
    out_list: list[Override] = []
    flags: list[tuple[str, str, Any]] = [
        ("seed", "--seed", seed), ("steps", "--steps", steps), ("logging.dir", "--out", None if out is None else str(out)),
        ("runtime.kind", "--runtime", runtime), ("runtime.address", "--address", address), ("runtime.shards", "--shards", shards),
        ("models.*.backend", "--backend", backend),
    ]
    for path, flag, value in flags:
        if value is not None:
            out_list.append(Override(path, value, f"{flag} {value}"))
    parsed = [parse_set(s) for s in sets]
    out_list.extend(parsed)
    if address is not None and runtime is None and not any(o.path == "runtime.kind" for o in parsed):
        out_list.append(Override("runtime.kind", "ray", f"--address {address}"))
    return out_list


def _describe(value: Any) -> str:
    kind = {str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(type(value), f"a {type(value).__name__}")
    shown = repr(value)
    return f"{kind} ({shown if len(shown) <= 40 else shown[:37] + '...'})"


class _Applier:
    def __init__(self, data: dict[str, Any], source: str, lines: LineIndex | None):
        self.data = data
        self.source = source
        self.lines = lines
        self.applied: dict[tuple[str | int, ...], tuple[Any, str]] = {}
        self.created: dict[tuple[str | int, ...], str] = {}  # mappings an override added on its way, and by whom

    def fail(self, loc: Sequence[str | int], message: str) -> SpecError:
        line = self.lines.line_of(list(loc)) if self.lines else None
        return SpecError(self.source, [SpecProblem(".".join(str(p) for p in loc), message, line)])

    def apply(self, o: Override) -> None:
        for loc in self._targets(o):
            self._put(o, loc)

    def _step(self, o: Override, node: Any, loc: tuple[str | int, ...], part: str) -> tuple[Any, str | int]:
        """The key or index `part` names inside `node` (which sits at `loc`)."""
        if isinstance(node, dict):
            if part not in node and part.isdigit() and int(part) in node:  # YAML mapping keys may be numbers
                return node, int(part)
            return node, part
        if isinstance(node, list):
            where = ".".join(map(str, loc))
            valid = f" (0..{len(node) - 1})" if node else " (the list is empty)"
            if not re.fullmatch(r"\d+", part):
                raise self.fail(loc, f"{o.origin}: {where} is a list; {part!r} is not an index{valid}")
            if int(part) >= len(node):
                raise self.fail(loc, f"{o.origin}: {where} has {len(node)} item(s); index {part} is out of range{valid}")
            return node, int(part)
        raise self.fail(loc, f"{o.origin}: {'.'.join(map(str, loc)) or 'the scenario'} is {_describe(node)}, not a mapping "
                             f"or a list, so it has no {part!r} inside it")

    def _targets(self, o: Override) -> list[tuple[str | int, ...]]:
        """Concrete locations of `o.path`, expanding `*`; creates missing mappings on the way."""
        found: list[tuple[str | int, ...]] = []

        def walk(node: Any, loc: tuple[str | int, ...], rest: tuple[str, ...]) -> None:
            part, rest = rest[0], rest[1:]
            if part == "*":
                if isinstance(node, dict):
                    keys: list[str | int] = list(node)
                elif isinstance(node, list):
                    keys = list(range(len(node)))
                else:
                    raise self.fail(loc, f"{o.origin}: {'.'.join(map(str, loc)) or 'the scenario'} is {_describe(node)}; "
                                         "'*' needs a mapping or a list")
                for k in keys:
                    if rest:
                        child = node[k]
                        if child is None and isinstance(node, dict):
                            child = node[k] = {}
                        walk(child, (*loc, k), rest)
                    else:
                        found.append((*loc, k))
                return
            container, key = self._step(o, node, loc, part)
            if not rest:
                found.append((*loc, key))
                return
            child = container.get(key) if isinstance(container, dict) else container[key]
            if child is None:  # a missing key or an empty value (`world:`) is an empty mapping
                if isinstance(container, dict) and key not in container:
                    self.created.setdefault((*loc, key), o.origin)
                child = container[key] = {}
            walk(child, (*loc, key), rest)

        walk(self.data, (), o.parts)
        return found

    def _put(self, o: Override, loc: tuple[str | int, ...]) -> None:
        earlier = self.applied.get(loc)
        if earlier is not None and earlier[0] != o.value:
            path = ".".join(str(p) for p in loc)
            raise SpecError(COMMAND_LINE, [SpecProblem(path, f"{earlier[1]} and {o.origin} give {path} different values; give one of them")])
        node: Any = self.data
        for p in loc[:-1]:
            node = node[p]
        node[loc[-1]] = copy.deepcopy(o.value)  # `*` puts one value in many places: each gets its own copy
        self.applied[loc] = (o.value, o.origin)


@dataclass(frozen=True)
class Applied:
    """Where overrides landed: dotted path -> location in the data, and location -> how the user gave it."""

    paths: dict[str, tuple[str | int, ...]]
    origins: dict[tuple[str | int, ...], str]
    created: dict[str, str] = field(default_factory=dict)

    def origin_of(self, dotted: str) -> str | None:
        """The override that wrote `dotted`, a field above it, or added the mapping `dotted` on its way."""
        if dotted in self.created:
            return self.created[dotted]
        best = None
        for path, loc in self.paths.items():
            if (dotted == path or dotted.startswith(path + ".")) and (best is None or len(path) > len(best[0])):
                best = (path, self.origins[loc])
        return best[1] if best else None


def apply_to_data(
    data: dict[str, Any], overrides: Sequence[Override], source: str = COMMAND_LINE, lines: LineIndex | None = None
) -> Applied:
    """Apply `overrides` to `data` in place, shallow paths first. Raises SpecError for a path through a scalar, a
    bad list index, or two different values for one path."""
    if any(o.parts[0] == "models" for o in overrides) and data.get("models") is None:
        data["models"] = {"default": {}}  # the alias a scenario without `models:` gets, so --backend reaches it
    applier = _Applier(data, source, lines)
    for o in sorted(overrides, key=lambda o: (len(o.parts), "*" in o.parts)):
        applier.apply(o)
    return Applied(
        {".".join(str(p) for p in loc): loc for loc in applier.applied},
        {loc: origin for loc, (_, origin) in applier.applied.items()},
        {".".join(str(p) for p in loc): origin for loc, origin in applier.created.items()},
    )


def recorded(data: Mapping[str, Any], paths: Mapping[str, tuple[str | int, ...]]) -> dict[str, Any]:
    """{dotted path: JSON value} of the applied overrides, as they stand in `data` (after cwd resolution)."""
    out: dict[str, Any] = {}
    for dotted, loc in paths.items():
        node: Any = data
        for p in loc:
            node = node[p]
        out[dotted] = to_jsonable_python(node, fallback=str)
    return out


# -- relative paths on the command line ------------------------------------------------------------------------------
def _absolute(value: Any, types: list[Any], cwd: Path) -> Any:
    """`value` with every relative path string at a Path-typed place made absolute against `cwd`."""
    if isinstance(value, str) and any(t is Path for t in types):
        # A dataset path (data:<dataset>/...) is found by the data resolver, not relative to anything.
        return value if Path(value).is_absolute() or value.startswith("data:") else str(cwd / value)
    if isinstance(value, dict):
        models = [t for t in types if isinstance(t, type) and issubclass(t, BaseModel)]
        dict_values = [a for t in types if typing.get_origin(t) is dict for a in _unwrap(typing.get_args(t)[1])]
        out = {}
        for k, v in value.items():
            sub = [a for m in models if str(k) in m.model_fields for a in _unwrap(m.model_fields[str(k)].annotation)]
            out[k] = _absolute(v, sub + dict_values, cwd)
        return out
    if isinstance(value, list):
        items = [a for t in types if typing.get_origin(t) in (list, tuple) and typing.get_args(t) for a in _unwrap(typing.get_args(t)[0])]
        return [_absolute(v, items, cwd) for v in value]
    return value


def absolutize_paths(
    data: dict[str, Any], paths: Mapping[str, tuple[str | int, ...]], spec_model: type[BaseModel],
    world_model: type[BaseModel] | None, cwd: Path | None = None,
) -> None:
    """Make relative file paths that the command line wrote into `data` absolute against the working directory."""
    cwd = cwd or Path.cwd()
    for loc in paths.values():
        if loc and loc[0] == "world":
            if world_model is None:
                continue
            types = field_types(world_model, loc[1:])
        else:
            types = field_types(spec_model, loc)
        if not types:
            continue
        node: Any = data
        for p in loc[:-1]:
            node = node[p]
        node[loc[-1]] = _absolute(node[loc[-1]], types, cwd)
