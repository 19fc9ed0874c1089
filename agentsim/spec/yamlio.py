"""The one way agentsim reads YAML written by users: scenario files, data files they point at, `--set` values.

Plain `yaml.safe_load` has three traps for input nobody has checked:

- **alias bombs** ("billion laughs"): a 1 KB document whose aliases expand to 10^9 nodes. PyYAML keeps the aliases
  shared, so loading is quick, but everything that walks the result afterwards (pydantic, deepcopy, JSON) expands
  it and runs out of time and memory. Here each alias counts as the size of the node it repeats, and a document
  whose expanded size passes `YamlLimits.max_nodes` is refused while it is being composed;
- **deep nesting**: PyYAML composes recursively, so `[[[[...` thousands deep ends in a RecursionError. Nesting
  beyond `YamlLimits.max_depth` is refused first;
- **duplicate keys**: `safe_load` keeps the last value silently. Here a key that appears twice in one mapping is an
  error naming the key and both lines (YAML 1.2 forbids duplicates; merge keys `<<:` still override as usual).

Tags outside plain YAML (`!!python/object`, ...) are refused as `safe_load` refuses them. Every failure is a
`SpecError` naming the file and the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agentsim.spec.errors import SpecError, SpecProblem

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class YamlLimits:
    """Bounds on one YAML document. The defaults are far above any scenario or data file agentsim ships (the
    largest has a few thousand nodes and nests 6 deep) and far below what hurts: a million nodes is about a second
    of validation. Bulk data belongs in CSV or Parquet files."""

    max_bytes: int = 16 * 2**20
    max_depth: int = 100
    max_nodes: int = 1_000_000


DEFAULT_LIMITS = YamlLimits()


@dataclass(frozen=True)
class YamlDocument:
    """A loaded document: the Python data and the composed node tree (for line numbers; None for an empty file)."""

    data: Any
    root: yaml.Node | None


class _Refused(yaml.MarkedYAMLError):
    """A document outside `YamlLimits`, or with a duplicate key."""


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts nodes (an alias counts as the size of what it repeats) and nesting depth while it
    composes, and refuses an alias to a node that is still open (a recursive structure)."""

    def __init__(self, text: str, limits: YamlLimits):
        super().__init__(text)
        self.limits = limits
        self._nodes = 0
        self._depth = 0
        # Expanded size of each finished node, by id; the tree keeps every node alive, so ids stay unique.
        self._sizes: dict[int, int] = {}

    def _count(self, n: int, mark: yaml.Mark) -> None:
        self._nodes += n
        if self._nodes > self.limits.max_nodes:
            raise _Refused(
                None, None,
                f"the document expands to more than {self.limits.max_nodes:,} nodes (aliases count as what they "
                "repeat); refusing it (an alias bomb?)",
                mark,
            )

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            node = super().compose_node(parent, index)
            size = self._sizes.get(id(node))
            if size is None:  # the anchored node is one of this alias's ancestors
                raise _Refused(None, None, "an alias refers to a node that contains it (a recursive structure)", mark)
            self._count(size, mark)
            return node
        mark = self.peek_event().start_mark
        self._depth += 1
        if self._depth > self.limits.max_depth:
            raise _Refused(None, None, f"nesting deeper than {self.limits.max_depth} levels", mark)
        before = self._nodes
        self._count(1, mark)
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._sizes[id(node)] = self._nodes - before
        return node


def _key_text(key: Any) -> str:
    return repr(key) if not isinstance(key, str) else f"'{key}'"


def _check_duplicate_keys(loader: _BoundedLoader, root: yaml.Node, source: str) -> None:
    """Raise SpecError at the first mapping that has a key twice (keys compared as the values they load to)."""
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, tuple[str | int, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, yaml.Node] = {}
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.tag != _MERGE_TAG:
                    key = loader.construct_object(k, deep=True)
                    try:
                        earlier = first.get(key)
                    except TypeError:  # unhashable: the constructor reports it later
                        earlier = None
                    if earlier is not None:
                        where = ".".join(str(p) for p in path)
                        raise SpecError(source, [SpecProblem(
                            ".".join(str(p) for p in (*path, key)),
                            f"the key {_key_text(key)} appears twice in {f'the mapping at {where}' if where else 'the top level'} (lines "
                            f"{earlier.start_mark.line + 1} and {k.start_mark.line + 1}); YAML keeps only one, so remove the other",
                            k.start_mark.line + 1,
                        )])
                    first[key] = k
                    stack.append((v, (*path, key)))
                else:
                    stack.append((v, path))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*path, i)) for i, item in enumerate(node.value))


def _yaml_problem(e: yaml.YAMLError) -> SpecProblem:
    mark = getattr(e, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(e, "problem", None)
    context = getattr(e, "context", None)
    context_mark = getattr(e, "context_mark", None)
    if context and context_mark is not None and mark is not None and context_mark.line != mark.line:
        context = f"{context} (line {context_mark.line + 1})"
    reason = ", ".join(p for p in (context, problem) if p) if problem else str(e)
    if isinstance(e, yaml.constructor.ConstructorError) and problem and "could not determine a constructor for the tag" in problem:
        tag = problem.split("tag", 1)[1].strip().strip("'").replace("tag:yaml.org,2002:", "!!")
        reason = f"the tag {tag!r} is not allowed: agentsim reads plain YAML only (no Python objects)"
    elif not isinstance(e, _Refused):
        reason = f"not valid YAML: {reason}"
    return SpecProblem("", reason, line)


def parse_yaml(text: str, source: str, limits: YamlLimits = DEFAULT_LIMITS) -> YamlDocument:
    """One YAML document from `text`. Raises SpecError (naming `source` and the line) for invalid YAML, more than
    one document, tags outside plain YAML, duplicate keys, or a document outside `limits`."""
    if len(text) > limits.max_bytes:
        raise SpecError(source, [SpecProblem("", f"larger than {limits.max_bytes // 2**20} MiB; put bulk data in CSV or Parquet files")])
    try:
        loader = _BoundedLoader(text, limits)
    except yaml.reader.ReaderError as e:  # a control character: raised before any parsing
        line = text[: e.position].count("\n") + 1
        raise SpecError(source, [SpecProblem("", f"not valid YAML: character #x{e.character:04x} is not allowed (a binary file?)", line)]) from None
    try:
        root = loader.get_single_node()
        if root is None:
            return YamlDocument(None, None)
        _check_duplicate_keys(loader, root, source)
        return YamlDocument(loader.construct_document(root), root)
    except yaml.YAMLError as e:
        raise SpecError(source, [_yaml_problem(e)]) from None
    except RecursionError:  # a limit above what this interpreter's stack allows
        raise SpecError(source, [SpecProblem("", "nested too deeply to read")]) from None
    finally:
        loader.dispose()


def is_special_file(path: Path) -> bool:
    """A device, FIFO or socket: reading one never ends or never stops growing (/dev/zero), so no user file may be one."""
    return path.exists() and not path.is_dir() and not path.is_file()


def read_text_file(path: Path, what: str = "file") -> str:
    """The UTF-8 text of a user's file, or a SpecError that says why it cannot be read (missing, a directory,
    not text, no permission, not a regular file)."""
    if is_special_file(path):
        raise SpecError(str(path), [SpecProblem("", f"not a regular file (a device, pipe or socket); give the path of a {what}")])
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(str(path), [SpecProblem("", f"{what} not found")]) from None
    except IsADirectoryError:
        raise SpecError(str(path), [SpecProblem("", f"is a directory; give the path of a {what}")]) from None
    except PermissionError:
        raise SpecError(str(path), [SpecProblem("", "cannot be read: permission denied")]) from None
    except OSError as e:
        raise SpecError(str(path), [SpecProblem("", f"cannot be read: {e.strerror or e}")]) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise SpecError(str(path), [SpecProblem(
            "", f"not a text file: byte 0x{raw[e.start]:02x} at offset {e.start} is not UTF-8", line)]) from None


def read_yaml(path: str | Path, what: str = "YAML file", limits: YamlLimits = DEFAULT_LIMITS) -> YamlDocument:
    """Read one YAML document from a user's file; every failure is a SpecError naming the file (and line)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        size = 0  # read_text_file says why
    if size > limits.max_bytes:
        raise SpecError(str(path), [SpecProblem("", f"larger than {limits.max_bytes // 2**20} MiB; put bulk data in CSV or Parquet files")])
    return parse_yaml(read_text_file(path, what), str(path), limits)
