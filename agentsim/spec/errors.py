"""Turn pydantic validation errors into messages in the user's terms: YAML path, line, bad value, allowed values."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError


@dataclass(frozen=True)
class SpecProblem:
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}" if self.path else "(top level)"
        line = f" (line {self.line})" if self.line else ""
        return f"{where}{line}: {self.message}"


class SpecError(Exception):
    """A scenario file that cannot be used. `problems` lists every field that is wrong."""

    def __init__(self, source: str, problems: Sequence[SpecProblem]):
        self.source = source
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        n = len(self.problems)
        head = f"{self.source}: {n} problem{'s' if n != 1 else ''}"
        return "\n".join([head] + [f"  - {p}" for p in self.problems])


def _unwrap(tp: Any) -> list[Any]:
    """The concrete types inside Optional/Union/Annotated."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for a in typing.get_args(tp):
            out.extend(_unwrap(a))
        return out
    return [tp]


def field_types(root: type[BaseModel], loc: Sequence[str | int]) -> list[Any]:
    """The annotation candidates of the field at `loc` inside `root` (through models, dicts and lists)."""
    current: list[Any] = [root]
    for part in loc:
        nxt: list[Any] = []
        for tp in current:
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                field = tp.model_fields.get(str(part))
                if field is not None:
                    nxt.extend(_unwrap(field.annotation))
            else:
                origin = typing.get_origin(tp)
                args = typing.get_args(tp)
                if origin is dict and len(args) == 2:
                    nxt.extend(_unwrap(args[1]))
                elif origin in (list, tuple) and args:
                    nxt.extend(_unwrap(args[0]))
        current = nxt
    return current


def _model_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The pydantic model class that sits at `loc` inside `root`, if one does."""
    for tp in field_types(root, loc):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp
    return None


def _fmt_value(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 80 else s[:77] + "..."


#: Plain words YAML 1.1 (PyYAML) reads as booleans when they are not quoted.
YAML11_BOOLEANS = ("yes", "no", "on", "off", "y", "n", "true", "false")


def explain(err: dict[str, Any], root: type[BaseModel], raw: str | None = None) -> str:
    """One pydantic error as a sentence with the bad value and what is allowed. `raw` is the value's text as the
    YAML file wrote it, where known (LineIndex.scalar_at)."""
    typ = err["type"]
    loc = err["loc"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if typ == "string_type" and isinstance(value, bool):
        # YAML 1.1 turns an unquoted yes/no/on/off/true/false into a boolean: where text is wanted, say so.
        word = raw if raw is not None and raw.lower() in YAML11_BOOLEANS else None
        shown = f"{word!r}" if word else f"the word (e.g. 'yes', 'no', 'on', 'off' or '{str(value).lower()}')"
        return (f"text is expected here, but YAML read {word or 'an unquoted word'} as the boolean {str(value).lower()}; "
                f"quote it: write {shown} in quotes")
    if typ == "extra_forbidden":
        parent = _model_at(root, loc[:-1])
        allowed = sorted(parent.model_fields) if parent else []
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        msg = f"unknown field {str(loc[-1])!r}"
        if hint:
            msg += f"; did you mean {hint[0]!r}?"
        if allowed:
            msg += f" Allowed fields: {', '.join(allowed)}"
        return msg
    if typ == "missing":
        return "required field is missing"
    if typ in ("literal_error", "enum"):
        return f"{_fmt_value(value)} is not allowed; allowed values: {ctx.get('expected')}"
    base = err["msg"]
    if base.startswith("Value error, "):
        base = base[len("Value error, ") :]
    if value is None or isinstance(value, dict):
        return base
    return f"{base} (got {_fmt_value(value)})"


def problems_from(
    exc: ValidationError, root: type[BaseModel], prefix: Sequence[str | int] = (), lines: LineIndex | None = None
) -> list[SpecProblem]:
    """`root` is the model that was validated; `prefix` is where it sits in the YAML file."""
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(prefix) + tuple(err["loc"])
        path = ".".join(str(p) for p in loc)
        line = lines.line_of(loc) if lines else None
        raw = lines.scalar_at(loc) if lines else None
        out.append(SpecProblem(path, explain(err, root, raw), line))
    return out


class LineIndex:
    """Maps a YAML path to the line it stands on, so errors point into the file."""

    def __init__(self, text: str):
        from agentsim.spec.yamlio import parse_yaml

        try:
            self._root: yaml.Node | None = parse_yaml(text, "<text>").root
        except SpecError:
            self._root = None

    @classmethod
    def from_node(cls, root: yaml.Node | None) -> LineIndex:
        """The index of a document already composed (agentsim/spec/yamlio.py: YamlDocument.root)."""
        index = cls.__new__(cls)
        index._root = root
        return index

    def scalar_at(self, loc: Sequence[str | int]) -> str | None:
        """The text of the scalar at `loc` as the file wrote it (None when `loc` is not a scalar of the file)."""
        node = self._root
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if str(k.value) == str(part)), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
            else:
                return None
        return node.value if isinstance(node, yaml.ScalarNode) else None

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        node = self._root
        best = node.start_mark.line + 1 if node is not None else None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if str(k.value) == str(part):
                        best = k.start_mark.line + 1
                        node = v
                        break
                else:
                    return best
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
                best = node.start_mark.line + 1
            else:
                return best
        return best
