"""A form from a request's JSON schema, for a person answering a seat: the fields, then the answer they make.

`form_of(schema)` reads the JSON schema guided decoding uses (pydantic's `model_json_schema()`: `$defs`/`$ref`,
`anyOf` unions, `enum`/`const`, arrays with `maxItems`) into a tree of `FormField`s; `value_of` turns the values a
person gave into the JSON answer. A union of objects (the wargame's actions, one branch per target kind) becomes
one group whose choices are the union of the branches' choices; the answer's validation (the same pydantic model
as an LLM's) then refuses a wrong combination with its reason. Used by the console (`ConsoleSeats`, below) and the
seat page (agentsim/view/seat.py).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from agentsim.llm.human import SeatQueue

Kind = Literal["text", "integer", "number", "boolean", "choice", "list", "group", "json"]


@dataclass
class FormField:
    """One field of an answer. `name` is its key in the parent object ("" for the answer itself); `kind` says
    which widget asks for it; `choices` for a choice; `item` and `max_items` for a list; `fields` for a group."""

    name: str
    kind: Kind
    required: bool = True
    description: str = ""
    choices: list[Any] = field(default_factory=list)
    max_length: int | None = None
    item: FormField | None = None
    min_items: int = 0
    max_items: int | None = None
    fields: list[FormField] = field(default_factory=list)
    default: Any = None


#: Rows a list without maxItems shows.
LIST_ROWS = 3


def _resolve(node: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    while "$ref" in node and depth < 20:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = {**defs.get(name, {}), **{k: v for k, v in node.items() if k != "$ref"}}
        depth += 1
    return node


def form_of(schema: dict[str, Any] | None, name: str = "", required: bool = True, _defs: dict[str, Any] | None = None) -> FormField:
    """The form for a JSON schema (None: a text answer)."""
    if schema is None:
        return FormField(name, "text", required)
    defs = _defs if _defs is not None else schema.get("$defs", {})
    node = _resolve(schema, defs)
    desc = node.get("description", "")
    branches = node.get("anyOf") or node.get("oneOf")
    if branches:
        options = [_resolve(b, defs) for b in branches]
        real = [b for b in options if b.get("type") != "null"]
        if len(real) == 1:
            return form_of(real[0], name, required and len(real) == len(options), defs)
        if all(b.get("type") == "object" or "properties" in b for b in real):
            return _merged_group(name, real, defs, required, desc)
        return FormField(name, "json", required, desc)
    if "const" in node:
        return FormField(name, "choice", required, desc, choices=[node["const"]])
    if "enum" in node:
        return FormField(name, "choice", required, desc, choices=list(node["enum"]))
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        need = set(node.get("required", []))
        return FormField(name, "group", required, desc,
                         fields=[form_of(s, k, k in need, defs) for k, s in node.get("properties", {}).items()])
    if kind == "array":
        item = form_of(node.get("items", {}), "", True, defs)
        return FormField(name, "list", required, desc, item=item, min_items=int(node.get("minItems", 0)),
                         max_items=node.get("maxItems"))
    if kind in ("string", "integer", "number", "boolean"):
        return FormField(name, kind, required, desc, max_length=node.get("maxLength"), default=node.get("default"))
    return FormField(name, "json", required, desc)


def _merged_group(name: str, branches: list[dict[str, Any]], defs: dict[str, Any], required: bool, desc: str) -> FormField:
    """One group for a union of objects: each property once, a choice's options the union over the branches."""
    merged: dict[str, FormField] = {}
    for b in branches:
        need = set(b.get("required", []))
        for k, s in b.get("properties", {}).items():
            f = form_of(s, k, k in need, defs)
            if k not in merged:
                merged[k] = f
            elif f.kind == "choice" and merged[k].kind == "choice":
                merged[k].choices += [c for c in f.choices if c not in merged[k].choices]
    return FormField(name, "group", required, desc, fields=list(merged.values()))


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def value_of(form: FormField, values: Any) -> Any:
    """The JSON answer from what a person gave: for a group a dict {field name: value}, for a list a list of item
    values (items left wholly empty are dropped), else the value. Empty optional fields are left out; a json field's
    text is parsed (ValueError naming the field when it is not JSON)."""
    if form.kind == "group":
        out = {}
        for f in form.fields:
            v = value_of(f, (values or {}).get(f.name))
            if not (is_empty(v) and not f.required):
                out[f.name] = v
        return out
    if form.kind == "list":
        items = [value_of(form.item, v) for v in values or []] if form.item else []
        return [v for v in items if not (is_empty(v) or (isinstance(v, dict) and all(is_empty(x) for x in v.values())))]
    if form.kind == "json":
        if isinstance(values, str):
            if not values.strip():
                return None
            try:
                return json.loads(values)
            except ValueError as e:
                raise ValueError(f"{form.name or 'answer'}: not JSON ({e})") from None
        return values
    if form.kind in ("integer", "number") and isinstance(values, str):
        if not values.strip():
            return None
        try:
            return int(values) if form.kind == "integer" else float(values)
        except ValueError:
            raise ValueError(f"{form.name}: {values!r} is not a number") from None
    return values


def prompt_text(request: dict[str, Any], with_system: bool = True) -> str:
    """The request's messages as a person reads them."""
    parts = []
    for m in request.get("messages") or []:
        if m.get("role") == "system" and not with_system:
            continue
        parts.append(f"[{m.get('role', '?')}]\n{m.get('content', '')}")
    return "\n\n".join(parts)


class ConsoleSeats:
    """Answers the requests of some seats in a terminal (`agentsim run ... --human Red`): prints what the agent sees,
    asks for a JSON answer on one line (or, on an empty line, field by field with numbered menus for choices), and
    asks again with the reason when the answer is refused. Reads `stdin` line by line, so it works piped; at the end
    of input it stops answering (the requests then wait for their timeout). Runs on a daemon thread."""

    def __init__(self, run_dir: Path, seats: list[str], stdin: TextIO | None = None, out: Callable[[str], None] | None = None,
                 poll_s: float = 0.1):
        self.queues = [SeatQueue(run_dir, s) for s in seats]
        self.stdin = stdin or sys.stdin
        self.out = out or (lambda s: print(s, flush=True))
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._system_shown: dict[str, str] = {}
        self.thread = threading.Thread(target=self._loop, name="agentsim-console-seats", daemon=True)

    def start(self) -> ConsoleSeats:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _read(self, ask: str) -> str | None:
        self.out(ask)
        line = self.stdin.readline()
        if not line:
            return None
        return line.rstrip("\n")

    def _loop(self) -> None:
        while not self._stop.is_set():
            for q in self.queues:
                for req in q.pending():
                    if self._answer(q, req) is None:
                        for seat in self.queues:
                            seat.close()
                        self.out("(input closed: seats with a timeout_s get their fallback when it passes; the others "
                                 "stop the run, which `agentsim resume` continues)")
                        return
            time.sleep(self.poll_s)

    def _answer(self, q: SeatQueue, req: dict[str, Any]) -> bool | None:
        """Ask until the backend accepts an answer or the request goes; None when input ends."""
        system = "\n".join(m.get("content", "") for m in req.get("messages") or [] if m.get("role") == "system")
        first = self._system_shown.get(q.agent_id) != system
        self._system_shown[q.agent_id] = system
        self.out(f"\n=== {q.agent_id}: request {req['request_id']} ===\n{prompt_text(req, with_system=first)}")
        form = form_of((req.get("response_format") or {}).get("json_schema"))
        refused = len(req.get("refused") or [])
        while True:
            answer = self._ask_answer(form)
            if answer is None:
                return None
            q.answer(req, answer)
            while True:  # the backend accepts (the pending file goes) or refuses (one more in `refused`)
                now = q.get(req["request_id"])
                if now is None:
                    self.out(f"{q.agent_id}: answer accepted")
                    return True
                if len(now.get("refused") or []) > refused:
                    refused = len(now["refused"])
                    self.out(f"{q.agent_id}: answer refused: {now['refused'][-1]['reason']}\nAnswer again.")
                    break
                if self._stop.is_set():
                    return True
                time.sleep(self.poll_s)

    def _ask_answer(self, form: FormField) -> Any:
        if form.kind == "text":
            return self._read("Your answer (one line):")
        line = self._read("Your answer as JSON on one line (an empty line: field by field):")
        if line is None:
            return None
        if line.strip():
            return line
        try:
            return value_of(form, self._ask_field(form, form.name or "answer"))
        except EOFError:
            return None

    def _line(self, ask: str) -> str:
        line = self._read(ask)
        if line is None:
            raise EOFError
        return line

    def _ask_field(self, f: FormField, label: str) -> Any:
        opt = "" if f.required else " (optional, empty: none)"
        if f.kind == "group":
            return {c.name: self._ask_field(c, f"{label}.{c.name}" if label != "answer" else c.name) for c in f.fields}
        if f.kind == "list":
            top = f.max_items if f.max_items is not None else LIST_ROWS
            while True:
                n = self._line(f"{label}: how many ({f.min_items}-{top})?").strip() or "0"
                if n.isdigit() and f.min_items <= int(n) <= top:
                    break
                self.out(f"  a whole number from {f.min_items} to {top}, please")
            assert f.item is not None
            return [self._ask_field(f.item, f"{label}[{i + 1}]") for i in range(int(n))]
        if f.kind == "choice":
            menu = "\n".join(f"  {i + 1}) {c}" for i, c in enumerate(f.choices))
            while True:
                pick = self._line(f"{label}{opt}:\n{menu}\nNumber:").strip()
                if not pick and not f.required:
                    return None
                if pick.isdigit() and 1 <= int(pick) <= len(f.choices):
                    return f.choices[int(pick) - 1]
                self.out(f"  a number from 1 to {len(f.choices)}, please")
        cap = f" (up to {f.max_length} characters)" if f.max_length else ""
        text = self._line(f"{label}{cap}{opt}:")
        if f.kind == "boolean":
            return text.strip().lower() in ("y", "yes", "true", "1")
        if f.kind in ("integer", "number", "json"):
            try:
                return value_of(f, text)
            except ValueError as e:
                self.out(f"  {e}")
                return self._ask_field(f, label)
        return text if text or f.required else None
