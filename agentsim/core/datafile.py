"""Data files that scenarios point at (users, follows, posts, score tables, benchmark items, nations, actions):
read them, validate every row against the family's pydantic row model, and say what is wrong in the user's terms:

    users.csv row 3 (id 'bob'): field group: 'greens' is not a group of this scenario; world.users.groups are ['activists']

Rows are counted from 1: the first data row of a CSV or Parquet table (the header is not a row), the first entry
of a YAML list, the first non-empty line of a JSONL file. A family declares each format it reads as a
`FileFormat`; README's "File formats" section is generated from these declarations (`formats_markdown`) and a test
keeps the two equal.

Errors: every reader raises `DataFileError` (a ValueError) listing every problem it found (at most `MAX_PROBLEMS`).
"""

from __future__ import annotations

import csv
import difflib
import json
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import annotated_types as at
from pydantic import BaseModel, TypeAdapter, ValidationError

from agentsim.core.names import check_name
from agentsim.spec.errors import LineIndex, explain
from agentsim.spec.yamlio import is_special_file

MAX_PROBLEMS = 20
PARQUET_SUFFIXES = (".parquet", ".pq")


class DataFileError(ValueError):
    """A data file that cannot be used. `problems` holds one line per problem, each naming the file, and for a row
    its number, id and field; `loc` is the scenario field that names the file (set by the family with `at`)."""

    def __init__(self, path: str | Path, problems: Sequence[str], loc: Sequence[str | int] = ()):
        self.path = str(path)
        self.problems = list(problems)
        self.loc = tuple(loc)
        super().__init__(self.render())

    def render(self) -> str:
        shown = self.problems[:MAX_PROBLEMS]
        more = len(self.problems) - len(shown)
        if len(self.problems) == 1:
            return shown[0]
        lines = [f"{len(self.problems)} problems in {self.path}:"] + [f"    {p}" for p in shown]
        if more:
            lines.append(f"    ... and {more} more")
        return "\n".join(lines)

    def at(self, *loc: str | int) -> DataFileError:
        """The same error, reported at the scenario field `loc` (e.g. world.users.file)."""
        return DataFileError(self.path, self.problems, loc)


# -- reading ------------------------------------------------------------------------------------------------------
def check_regular_file(p: Path, what: str) -> None:
    """Data files are regular files (spec.yamlio.is_special_file): DataFileError naming the path otherwise."""
    if is_special_file(p):
        raise DataFileError(p, [f"{p}: not a regular file (a device, pipe or socket); give the path of a {what}"])


def read_table(path: str | Path, what: str) -> tuple[list[str], list[dict[str, Any]]]:
    """A CSV (UTF-8, header row; a byte-order mark is allowed) or Parquet table as (columns, rows).

    CSV cells are text exactly as written (an empty cell is ''); no value is guessed to be a number or missing, so
    the id `NA` stays `NA` and `007` stays `007`. Parquet integer columns are read as text (an integer id 7 is the
    name '7'; numeric fields parse it back), nulls as None."""
    p = Path(path)
    if not p.exists():
        raise DataFileError(p, [f"{p}: file not found"])
    check_regular_file(p, what)
    if p.suffix.lower() in PARQUET_SUFFIXES:
        return _read_parquet(p, what)
    try:
        with p.open(encoding="utf-8-sig", newline="") as f:
            head = f.read(4096).lstrip()
            if head[:1] in ("[", "{"):
                # A JSON file where a table is expected would otherwise be read as a one-column CSV of brackets.
                raise DataFileError(p, [f"{p}: the {what} file looks like JSON (it starts with {head[:1]!r}), not a CSV table with a "
                                        "header row; give a CSV or Parquet file, or a format that reads JSON where there is one"])
            f.seek(0)
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise DataFileError(p, [f"{p}: the {what} file is empty (it needs a header row)"])
            repeated = sorted({c for c in header if header.count(c) > 1})
            if repeated:
                raise DataFileError(p, [f"{p}: column(s) {repeated} appear more than once in the header"])
            rows: list[dict[str, Any]] = []
            problems = []
            for i, cells in enumerate(reader, start=1):
                if len(cells) != len(header):
                    if not any(c.strip() for c in cells):
                        continue  # a blank line
                    problems.append(f"{p} row {i}: {len(cells)} cells; the header has {len(header)} columns")
                    continue
                rows.append(dict(zip(header, cells, strict=True)))
    except UnicodeDecodeError as e:
        raise DataFileError(p, [f"{p}: the {what} file is not UTF-8 text (byte {e.start}: {e.reason})"]) from None
    except csv.Error as e:
        raise DataFileError(p, [f"{p}: not a CSV file ({e})"]) from None
    except OSError as e:
        raise DataFileError(p, [f"{p}: cannot read the {what} file ({e.strerror or e})"]) from None
    if problems:
        raise DataFileError(p, problems)
    return header, rows


def _read_parquet(p: Path, what: str) -> tuple[list[str], list[dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(p)
    except (OSError, pa.ArrowException) as e:
        raise DataFileError(p, [f"{p}: cannot read the {what} file as Parquet ({e})"]) from None
    cols = [col.cast(pa.string()) if pa.types.is_integer(col.type) else col for col in table.columns]
    table = pa.table(cols, names=table.column_names)
    return list(table.column_names), table.to_pylist()


def read_jsonl(path: str | Path, what: str) -> list[Any]:
    """One JSON value per non-empty line."""
    p = Path(path)
    check_regular_file(p, what)
    out = []
    problems = []
    try:
        lines = p.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise DataFileError(p, [f"{p}: the {what} file is not UTF-8 text (byte {e.start}: {e.reason})"]) from None
    except OSError as e:
        raise DataFileError(p, [f"{p}: cannot read the {what} file ({e.strerror or e})"]) from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            problems.append(f"{p} line {n}: not valid JSON ({e.msg})")
    if problems:
        raise DataFileError(p, problems)
    return out


# -- validating ---------------------------------------------------------------------------------------------------
def check_columns(path: str | Path, columns: Sequence[str], model: type[BaseModel], what: str) -> None:
    """Refuse missing required columns and unknown ones (with a did-you-mean), once for the whole table."""
    fields = model.model_fields
    known = list(fields)
    problems = []
    missing = [c for c, f in fields.items() if f.is_required() and c not in columns]
    if missing:
        problems.append(f"{path}: the {what} file lacks column(s) {missing}; it has {list(columns)}")
    for c in columns:
        if c not in known:
            hint = difflib.get_close_matches(c, known, n=1)
            problems.append(f"{path}: unknown column {c!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
                            + f" Columns of a {what} file: {', '.join(known)}")
    if problems:
        raise DataFileError(path, problems)


def drop_blank_optionals(rows: list[dict[str, Any]], model: type[BaseModel]) -> list[dict[str, Any]]:
    """An empty cell (or a Parquet null) in an optional column means 'not given': the field takes its default."""
    required = {k for k, f in model.model_fields.items() if f.is_required()}
    return [{k: v for k, v in r.items() if k in required or (v is not None and v != "")} for r in rows]


def validate_rows(
    path: str | Path,
    rows: Sequence[Any],
    model: type[BaseModel],
    id_field: str | None,
    *,
    context: dict[str, Any] | None = None,
    strip_loc: int = 0,
    lines: Callable[[int, tuple[str | int, ...]], int | None] | None = None,
) -> list[Any]:
    """Validate `rows` as a list of `model`; on failure raise DataFileError with one line per bad field:
    'FILE row N (id X): field F: problem'. `strip_loc` drops leading parts of a field path (a wrapper key such as
    `scores` whose items are the real columns); `lines(i, loc)` gives the text line of row i's field, if known."""
    try:
        return TypeAdapter(list[model]).validate_python(list(rows), context=context)  # type: ignore[valid-type]
    except ValidationError as e:
        raise DataFileError(path, row_problems(path, e.errors(include_url=False), rows, model, id_field, strip_loc, lines)) from None


def row_problems(
    path: str | Path,
    errors: Iterable[dict[str, Any]],
    rows: Sequence[Any],
    model: type[BaseModel],
    id_field: str | None,
    strip_loc: int = 0,
    lines: Callable[[int, tuple[str | int, ...]], int | None] | None = None,
) -> list[str]:
    """One 'FILE row N (line L, id X): field F: problem' line per pydantic error of a list of rows."""
    out = []
    for err in errors:
        loc = tuple(err["loc"])
        if not loc or not isinstance(loc[0], int):
            out.append(f"{path}: {explain(err, model)}")
            continue
        i, rest = loc[0], loc[1:]
        row = rows[i] if i < len(rows) else None
        ident = row.get(id_field) if id_field and isinstance(row, dict) else None
        line = lines(i, rest) if lines else None
        where = [f"line {line}"] if line else []
        if isinstance(ident, str) and ident:
            where.append(f"id {ident!r}")
        head = f"{path} row {i + 1}" + (f" ({', '.join(where)})" if where else "")
        # pydantic marks a bad dict key with a trailing '[key]'; the key itself already names the field.
        shown = tuple(x for x in (rest[strip_loc:] if len(rest) > strip_loc else rest) if x != "[key]")
        what = _without_echo(explain({**err, "loc": rest}, model), err.get("input"))
        out.append(f"{head}: field {'.'.join(str(x) for x in shown)}: {what}" if shown else f"{head}: {what}")
    return out


def _without_echo(message: str, value: Any) -> str:
    """explain() ends a message with '(got VALUE)'; drop that when the message already quotes the value."""
    tail = message.rfind(" (got ")
    if tail > 0 and isinstance(value, str) and repr(value) in message[:tail]:
        return message[:tail]
    return message


def validate_yaml_list(path: str | Path, data: Any, file_model: type[BaseModel], list_key: str, id_field: str,
                       text: str | None = None) -> Any:
    """Validate a YAML file whose rows sit in a top-level list (`nations:`, `actions:`); problems name the row
    (1-based), its line and its id."""
    try:
        return file_model.model_validate(data)
    except ValidationError as e:
        index = LineIndex(text) if text is not None else None
        rows = data.get(list_key) if isinstance(data, dict) else None
        rows = rows if isinstance(rows, list) else []
        problems = []
        for err in e.errors(include_url=False):
            loc = tuple(err["loc"])
            if len(loc) >= 2 and loc[0] == list_key and isinstance(loc[1], int):
                problems.extend(row_problems(path, [{**err, "loc": loc[1:]}], rows, _list_item_model(file_model, list_key), id_field,
                                             lines=(lambda i, rest: index.line_of([list_key, i, *rest])) if index else None))
            else:
                line = index.line_of(list(loc)) if index else None
                where = f" (line {line})" if line else ""
                field_path = ".".join(str(x) for x in loc) or "top level"
                problems.append(f"{path}{where}: {field_path}: {explain(err, file_model)}")
        raise DataFileError(path, problems) from None


def _list_item_model(file_model: type[BaseModel], key: str) -> type[BaseModel]:
    ann = file_model.model_fields[key].annotation
    for arg in typing.get_args(ann):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    raise TypeError(f"{file_model.__name__}.{key} is not a list of models")


# -- documentation ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileFormat:
    """One kind of data file a family reads: its row model, where a scenario names it, and a shipped example.

    `fields` is the scenario field that points at such a file (e.g. world.users.file); `layout` says how rows sit
    in the file ('table': CSV or Parquet with a header; 'yaml': a YAML list under `list_key`; 'jsonl or csv').
    `models` lists further models to document (nested entries such as an action's effects). `read(path)` reads and
    validates one such file on its own (checks that need the scenario, such as known groups, are skipped) and raises
    DataFileError."""

    name: str
    family: str
    fields: tuple[str, ...]
    layout: str
    row_model: type[BaseModel]
    example: str
    about: str
    read: Callable[[Path], Any]
    list_key: str | None = None
    models: tuple[type[BaseModel], ...] = ()
    notes: tuple[str, ...] = field(default=())


def _is_name(metadata: Iterable[Any]) -> bool:
    return any(getattr(m, "func", None) is check_name for m in metadata)


def type_text(annotation: Any, metadata: Sequence[Any] = ()) -> str:
    """A field type in words, for the documentation tables."""
    if _is_name(metadata):
        return "name"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_text(args[0], args[1:])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(type_text(a) for a in args if a is not type(None)))
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (list, tuple):
        return f"list of {type_text(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {type_text(args[0])} to {type_text(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"{annotation.__name__} entry"
    return {str: "text", float: "number", int: "integer", bool: "true/false"}.get(annotation, getattr(annotation, "__name__", str(annotation)))


def constraint_text(metadata: Sequence[Any]) -> str:
    """Bounds and lengths of a field, in words."""
    parts = []
    for m in metadata:
        for attr, word in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            v = getattr(m, attr, None)
            if isinstance(m, at.Ge | at.Gt | at.Le | at.Lt | at.Interval) and v is not None:
                parts.append(f"{word} {v}")
        if isinstance(m, at.MinLen) and m.min_length:
            parts.append(f"at least {m.min_length} " + ("characters" if m.min_length > 1 else "character"))
        if isinstance(m, at.MaxLen):
            parts.append(f"at most {m.max_length} long")
        if getattr(m, "allow_inf_nan", None) is False:
            parts.append("finite")
    return ", ".join(dict.fromkeys(parts))


def model_table(model: type[BaseModel], column_word: str = "column") -> str:
    rows = [f"| {column_word} | type | required | constraints | meaning |", "|---|---|---|---|---|"]
    for name, info in model.model_fields.items():
        key = info.alias or name
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        required = "yes" if info.is_required() else "no" if default is None else f"no (default {default!r})"
        desc = (info.description or "").replace("|", "\\|").replace("\n", " ")
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        kind = extra.get("doc_type") or type_text(info.annotation, info.metadata)
        rows.append(f"| `{key}` | {kind} | {required} | {extra.get('doc_constraints') or constraint_text(info.metadata)} | {desc} |")
    return "\n".join(rows)


def formats_markdown(formats: Iterable[FileFormat]) -> str:
    """The body of README's "File formats" section."""
    out = []
    for f in formats:
        word = "column" if f.layout == "table" or f.layout.startswith("jsonl") else "field"
        parts = [f"### {f.name} ({f.family})", "",
                 f"Named by {', '.join(f'`{x}`' for x in f.fields)}. Layout: {f.layout}. Example: [`{f.example}`]({f.example}).", "",
                 f.about, ""]
        if f.list_key:
            parts += [f"A YAML mapping with one key, `{f.list_key}`, holding a list of entries; each entry:", ""]
        parts.append(model_table(f.row_model, word))
        for m in f.models:
            parts += ["", f"Each `{m.__name__}` entry:", "", model_table(m, "field")]
        for note in f.notes:
            parts += ["", note]
        out.append("\n".join(parts))
    return "\n\n".join(out) + "\n"


README_START = "<!-- file-formats: generated by scripts/file_formats.py from the row models; do not edit by hand -->"
README_END = "<!-- file-formats: end -->"


def readme_section() -> str:
    """README's "Names" and "File formats" text, from the installed families' declarations (between the markers)."""
    from agentsim.core.names import NAME_RULE
    from agentsim.core.registry import families, get_family

    fams = [get_family(n) for n in families()]
    reserved = "\n".join(f"| {f.name} | {', '.join(f'`{r}`' for r in sorted(f.reserved_ids)) or '(none)'} |" for f in fams)
    formats = [ff for f in fams for ff in f.file_formats]
    return "\n".join([
        README_START,
        "## Names",
        "",
        f"Agent ids, participant and nation names, group and arm labels are data: {NAME_RULE}. Ids must be unique in a "
        "scenario and may not be one of the ids a family uses for its own agents, compared ignoring case. `agentsim "
        "validate` refuses a bad name with its YAML path, or its file, row and field; `agentsim run` refuses exactly "
        "the same names. In YAML, quote a name that looks like a number (`'007'`).",
        "",
        "| family | reserved ids |",
        "|---|---|",
        reserved,
        "",
        "## File formats",
        "",
        "Every data file a scenario can point at, with its columns or fields. Paths are relative to the scenario file. "
        "Tables are CSV (UTF-8, a header row; every cell is read as text, so `NA` and `007` stay as written) or Parquet "
        "(`.parquet`, `.pq`); an empty cell or a null in an optional column takes the default, and an unknown column "
        "is refused. Rows are counted from 1 (the first data row, the first list entry, the first non-empty JSONL line); "
        "a bad file is refused with every bad row as `FILE row N (id X): field F: problem`.",
        "",
        formats_markdown(formats).rstrip("\n"),
        README_END,
    ]) + "\n"


def update_readme(path: str | Path, check: bool = False) -> bool:
    """Write `readme_section()` between the markers of README `path` (or, with check, only say whether it is current)."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        raise ValueError(f"{p}: the markers {README_START!r} and {README_END!r} are missing")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    new = head + readme_section().rstrip("\n") + tail
    if check:
        return new == text
    p.write_text(new, encoding="utf-8")
    return True
