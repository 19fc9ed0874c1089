"""Seat pages: a person plays a human seat (`backend: human`) in the browser.

`serve_seats(run_dir, seats)` starts one HoloViz Panel server on a thread, with one link per seat:
`http://HOST:PORT/seat?token=<random>`. The token is the seat's key: one person's link cannot open another seat, so
each person sees only what their agent may observe (the request's messages are exactly that agent's prompt).

The page follows the seat's queue in the run directory (agentsim/llm/human.py: SeatQueue) every `POLL_MS`: it shows
the oldest pending request (the prompt, the system message folded), a form built from the request's JSON schema
(agentsim/llm/human_form.py: form_of; for a wargame nation: its reasoning, up to the allowed number of actions
with their targets, and its messages), and, for any schema, a box to answer as JSON instead; a request without a
schema (free text) gets one text box. Sending writes the
answer file; the backend validates it with the same pydantic model as an LLM's answer, and a refused answer's
reason is shown above the form until the person sends another. Between requests the page says it is waiting.

Resources (Bokeh's and Panel's JS and CSS) are served by this server (`resources="server"`), so the page works
offline.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import panel as pn

from agentsim.llm.human import SeatQueue
from agentsim.llm.human_form import LIST_ROWS, FormField, form_of, value_of
from agentsim.view.net import free_port, panel_server

POLL_MS = 300
#: Longest list a form shows row by row.
MAX_ROWS = 10
#: A choice left empty in an optional place (a list row not used).
BLANK = "—"


def _css(path: tuple[str | int, ...]) -> str:
    """The CSS class naming a field's widget (tests and styles find it): field-actions-0-action_name."""
    return "field-" + "-".join(str(p) for p in path) if path else "field-answer"


Getter = Callable[[], Any]


def _widget(f: FormField, path: tuple[str | int, ...], optional: bool = False) -> tuple[Any, Getter]:
    """A widget (or layout) for field `f` and a function giving its value as `value_of` takes it."""
    label = f.name or "answer"
    hint = f.description
    css = ["seat-field", _css(path)]
    if f.kind == "group":
        parts = [_widget(c, (*path, c.name), optional or not c.required) for c in f.fields]
        box = pn.Row if optional and len(parts) <= 4 else pn.Column
        return box(*[p for p, _ in parts]), lambda: {c.name: g() for c, (_, g) in zip(f.fields, parts, strict=True)}
    if f.kind == "list" and f.item is not None:
        n = min(f.max_items if f.max_items is not None else LIST_ROWS, MAX_ROWS)
        rows = [_widget(f.item, (*path, i), optional=True) for i in range(n)]
        top = f"up to {f.max_items}" if f.max_items is not None else f"{n} rows shown"
        title = pn.pane.Markdown(f"**{label}** ({top}; leave a row empty to skip it){': ' + hint if hint else ''}")
        return pn.Column(title, *[w for w, _ in rows]), lambda: [g() for _, g in rows]
    if f.kind == "choice":
        options = {str(c): c for c in f.choices}
        if optional or not f.required:
            options = {BLANK: "", **options}
        w = pn.widgets.Select(name=label, options=options, css_classes=css, width=320)
        return w, lambda: w.value
    if f.kind == "boolean":
        w = pn.widgets.Checkbox(name=label, value=bool(f.default), css_classes=css)
        return w, lambda: w.value
    cap = f" (up to {f.max_length} characters)" if f.max_length else ""
    long = f.kind in ("text", "json", "string") and (f.max_length is None or f.max_length > 120) and not optional
    w = (pn.widgets.TextAreaInput(name=label + cap, placeholder=hint, css_classes=css, max_length=f.max_length or 50_000,
                                  sizing_mode="stretch_width", height=90) if long
         else pn.widgets.TextInput(name=label + cap, placeholder=hint, css_classes=css, max_length=f.max_length or 50_000))
    # value_input follows every keystroke; value only follows on blur, which a click on Send may not precede.
    return w, lambda: w.value_input if w.value_input is not None else w.value


@dataclass
class SeatServer:
    """The running server: `links` {agent id: URL}; `stop()` ends it."""

    thread: Any
    port: int
    links: dict[str, str] = field(default_factory=dict)

    run_dir: Path | None = None

    def stop(self) -> None:
        if self.run_dir is not None:
            for agent in self.links:
                SeatQueue(self.run_dir, agent).publish_link(None)
        self.thread.stop()


class SeatPage:
    """One browser session's page of one seat."""

    def __init__(self, run_dir: Path, agent_id: str):
        self.queue = SeatQueue(run_dir, agent_id)
        self.agent_id = agent_id
        self.status = pn.pane.Markdown("Waiting for the first request…", css_classes=["seat-status"])
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["seat-refused"])
        self.prompt = pn.Column()
        self.form_box = pn.Column()
        self.raw = pn.widgets.TextAreaInput(name="Or answer as JSON (used instead of the form when not empty)",
                                            css_classes=["seat-raw"], sizing_mode="stretch_width", height=80)
        self.send = pn.widgets.Button(name="Send answer", button_type="primary", css_classes=["seat-send"], disabled=True)
        self.send.on_click(self._on_send)
        self.answer_box = pn.Column(self.form_box, self.raw, self.send, visible=False)
        self.layout = pn.Column(
            pn.pane.Markdown(f"# Seat: {agent_id}"), self.status, self.alert, self.prompt, self.answer_box,
            sizing_mode="stretch_width", max_width=1100,
        )
        self._shown: tuple[str, int] | None = None
        self._request: dict[str, Any] | None = None
        self._form: FormField | None = None
        self._get: Getter | None = None
        self._sent_for: str | None = None

    def refresh(self) -> None:
        """Show the oldest pending request, a refusal of the answer just sent, or that the page waits."""
        pending = self.queue.pending()
        if not pending:
            if self._request is not None:
                done = self._request["request_id"] == self._sent_for
                self.status.object = ("Answer accepted. " if done else "") + "Waiting for the next request…"
                self._request, self._shown = None, None
                self.answer_box.visible = False
                self.prompt.objects = []
                self.alert.visible = False
            return
        req = pending[0]
        refused = req.get("refused") or []
        key = (req["request_id"], len(refused))
        if key == self._shown:
            return
        if self._shown is None or self._shown[0] != req["request_id"]:
            self._show(req)
        self._shown, self._request = key, req
        if refused:
            self.alert.object = f"**Your answer was refused:** {refused[-1]['reason']}\n\nCorrect it and send again."
            self.alert.visible = True
        else:
            self.alert.visible = False
        self.send.disabled = False
        more = f" ({len(pending) - 1} more waiting)" if len(pending) > 1 else ""
        deadline = req.get("deadline")
        until = f"; answer by {time.strftime('%H:%M:%S', time.localtime(deadline))}" if deadline else ""
        self.status.object = f"**Step {int(req.get('step', 0)) + 1}**, request `{req['request_id']}`{until}{more}"

    def _show(self, req: dict[str, Any]) -> None:
        self._form = form_of((req.get("response_format") or {}).get("json_schema"))
        widget, self._get = _widget(self._form, ())
        self.form_box.objects = [widget]  # before the prompt: a new prompt on the page means a new form too
        self.raw.value = ""
        # A free-text request (no JSON schema: e.g. drift's user simulator) has one text box already; "answer as JSON"
        # would only mislead.
        self.raw.visible = self._form.kind != "text"
        parts = []
        for m in req.get("messages") or []:
            text = pn.pane.Markdown(f"```text\n{m.get('content', '')}\n```", sizing_mode="stretch_width", css_classes=[f"seat-{m.get('role')}"])
            if m.get("role") == "system":
                parts.append(pn.Card(text, title="Instructions (system message)", collapsed=True, sizing_mode="stretch_width"))
            else:
                parts.append(pn.Column(pn.pane.Markdown(f"**{m.get('role', '')}**"), text, sizing_mode="stretch_width"))
        self.prompt.objects = parts
        self.answer_box.visible = True

    def _on_send(self, _: Any) -> None:
        if self._request is None or self._form is None or self._get is None:
            return
        try:
            raw = self.raw.value_input if self.raw.value_input is not None else self.raw.value
            answer = raw.strip() or value_of(self._form, self._get())
        except ValueError as e:
            self.alert.object = f"**Not sent:** {e}"
            self.alert.visible = True
            return
        self.queue.answer(self._request, answer)
        self._sent_for = self._request["request_id"]
        self.send.disabled = True
        self.status.object = "Answer sent; checking it…"


def seat_app(run_dir: Path, tokens: dict[str, str]) -> Callable[[], Any]:
    """The page function: the seat whose token the URL carries, or a refusal."""

    def page() -> Any:
        args = pn.state.session_args.get("token") or [b""]
        token = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        agent_id = tokens.get(token) if token else None
        if agent_id is None:
            return pn.pane.Alert("This link is not a seat of this run: use the link printed for your seat.", alert_type="danger")
        seat = SeatPage(run_dir, agent_id)
        seat.refresh()
        pn.state.add_periodic_callback(seat.refresh, period=POLL_MS)
        return seat.layout

    return page


def serve_seats(run_dir: str | Path, seats: list[str], host: str = "127.0.0.1", port: int = 0) -> SeatServer:
    """Serve a page per seat on a thread; returns the server with a link per seat (a fresh random token each).
    Raises OSError when the port cannot be bound."""
    from panel.io.state import state

    port = port or free_port(host)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, port))  # refuse a taken port here, as an OSError, not in the server's thread
    tokens = {secrets.token_urlsafe(16): s for s in seats}
    thread, port, root = panel_server({"seat": seat_app(Path(run_dir), tokens)}, host, port, title="agentsim seat",
                                      threaded=True, resources="server")
    deadline = time.monotonic() + 30
    while thread.server_id not in state._servers and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.02)
    if thread.server_id not in state._servers:
        raise OSError(f"the seat pages did not start on {host}:{port}")
    base = f"{root}seat?token="
    links = {agent: base + tok for tok, agent in tokens.items()}
    for agent, url in links.items():  # for `agentsim view`'s links area, while this run serves the seat
        SeatQueue(run_dir, agent).publish_link(url)
    return SeatServer(thread, port, links, Path(run_dir))
