"""`agentsim view`: serve a run's (or an experiment's) pages on a local port with HoloViz Panel (Bokeh's Tornado
server). Every JS/CSS resource is served by this server itself (Panel's default for served apps; the browser tests
check that no request leaves it), so the page works offline.

One page per browser session. A run page: status and progress, the links area, the step scrubber (with "follow":
it stays on the newest step while the run grows), then tabs: per-step counts, the family's view
(agentsim/view/registry.py) and the agents' timelines. Every `REFRESH_MS` the page takes a new snapshot of the log
(RunData.refresh); when it differs, the scrubber's end moves and every panel redraws. An experiment directory (or a
folder of runs) gets an index page listing its runs, each opened with `?run=<name>`.

`EXTRA_ROUTES` maps a URL path to a page function; other modules (human seats) add theirs before `serve()`.
"""

from __future__ import annotations

import contextlib
import html
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import panel as pn

from agentsim.logs.reader import LogError
from agentsim.view import ask as _ask  # noqa: F401  (registers the "ask this agent" box)
from agentsim.view import net
from agentsim.view.data import RunData, Target, open_target
from agentsim.view.panels import (
    TABLE_CSS,
    ViewContext,
    agents_panel,
    links_panel,
    per_step_panel,
    status_panel,
    table,
)
from agentsim.view.registry import family_view

#: How often a page re-reads the log's snapshot (milliseconds).
REFRESH_MS = 1500
#: URL path -> page function (called once per browser session), served beside "/".
EXTRA_ROUTES: dict[str, Callable[[], Any]] = {}


class RunCache:
    """One RunData per run directory, shared by every session of the server (the snapshot and the per-snapshot
    tables are computed once however many pages are open)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[Path, RunData] = {}

    def get(self, run_dir: Path) -> RunData:
        with self._lock:
            if run_dir not in self._runs:
                self._runs[run_dir] = RunData(run_dir)
            return self._runs[run_dir]


# -- pages ----------------------------------------------------------------------------------------------------------
def run_page(data: RunData, run_name: str, back: str | None = None) -> Any:
    """The page of one run (see the module docstring)."""
    done = data.status().steps_done
    step = pn.widgets.IntSlider(label="step (as logged, from 0)", start=0, end=max(done - 1, 1), value=max(done - 1, 0),
                                width=420, disabled=done == 0, css_classes=["agentsim-scrubber"])
    follow = pn.widgets.Checkbox(label="follow the newest step", value=True)
    tick = pn.widgets.IntInput(value=0, visible=False)
    status_tick = pn.widgets.IntInput(value=0, visible=False)
    ctx = ViewContext(data, step, tick, run_name)
    status_ctx = ViewContext(data, step, status_tick, run_name)
    seen = {"version": data.version}
    # Scrubbing back stops following the newest step; scrubbing to the end follows it again.
    step.param.watch(lambda e: setattr(follow, "value", e.new >= step.end), "value")

    def sync() -> None:
        """After a newer snapshot: the status and the scrubber's range now (sent to the browser as soon as this
        callback returns), the panels (tick; its redraws take longer) on the next tick of the server's loop."""
        n = data.status().steps_done
        status_tick.value += 1
        step.disabled = n == 0
        step.end = max(n - 1, 1)
        moved = follow.value or step.value > n - 1
        doc = pn.state.curdoc

        def redraw() -> None:
            if moved and step.value != max(n - 1, 0):
                step.value = max(n - 1, 0)  # redraws every panel
            else:
                tick.value += 1

        if doc is not None and doc.session_context is not None:
            doc.add_next_tick_callback(redraw)
        else:
            redraw()

    def poll() -> None:
        try:
            data.refresh()
        except LogError as e:  # a log damaged while we watch: say so, keep the last good snapshot on the page
            warning.object = f"could not read a newer snapshot: {e}"
            warning.visible = True
            return
        warning.visible = False
        if data.version != seen["version"]:
            seen["version"] = data.version
            sync()

    warning = pn.pane.Alert("", alert_type="warning", visible=False)
    view = family_view(data.kind)
    tabs = [("Per step", per_step_panel(ctx))]
    if view is not None:
        tabs.append((data.kind.capitalize(), view(ctx)))
    tabs.append(("Agents", agents_panel(ctx)))
    head = [pn.pane.HTML(f'<a href="{html.escape(back)}">all runs</a>')] if back else []
    page = pn.Column(
        *head, pn.pane.Markdown("## agentsim view"), status_panel(status_ctx), warning, links_panel(status_ctx),
        pn.Row(step, follow), pn.Tabs(*tabs, dynamic=True), tick, status_tick, sizing_mode="stretch_width")
    pn.state.add_periodic_callback(poll, period=REFRESH_MS)
    return page


def index_page(target: Target, runs: RunCache) -> Any:
    """An experiment's (or a folder's) runs with their status and steps, each a link to its page; refreshed with
    the runs (cells not started yet are listed as such)."""
    import pandas as pd

    def rows() -> str:
        out = []
        for name, path in target.runs.items():
            try:
                s = runs.get(path).status() if path.is_dir() else None
            except LogError as e:
                out.append({"run": name, "status": f"unreadable: {e}", "steps": ""})
                continue
            if s is None:
                out.append({"run": name, "status": "not started", "steps": ""})
            else:
                out.append({"run": name, "status": s.status, "steps": f"{s.steps_done} of {s.steps_total or '?'}"})
        links = "".join(f'<li><a class="agentsim-run-link" href="?run={html.escape(r["run"])}">{html.escape(r["run"])}</a> '
                        f'· {html.escape(r["status"])} · {html.escape(r["steps"])}</li>' for r in out)
        return f'<ul class="agentsim-runs" data-runs="{len(out)}">{links}</ul>'

    listing = pn.pane.HTML(rows(), stylesheets=[TABLE_CSS])

    def poll() -> None:
        for path in target.runs.values():
            if path.is_dir() and (path / "run.json").exists():
                with contextlib.suppress(LogError):
                    runs.get(path).refresh()
        listing.object = rows()

    pn.state.add_periodic_callback(poll, period=REFRESH_MS * 2)
    what = "experiment" if target.kind == "experiment" else "folder of runs"
    return pn.Column(pn.pane.Markdown(f"## agentsim view: {what} {html.escape(str(target.path))}"),
                     table(pd.DataFrame({"runs": [len(target.runs)]}), "run-count"), listing)


def app(target: Target, runs: RunCache) -> Callable[[], Any]:
    """The page function of "/": a run's page, or the index of an experiment with `?run=<name>` opening one."""

    def page() -> Any:
        if target.kind == "run":
            name, path = next(iter(target.runs.items()))
            return run_page(runs.get(path), name)
        arg = (pn.state.session_args or {}).get("run")
        if not arg:
            return index_page(target, runs)
        name = arg[0].decode()
        path = target.runs.get(name)
        if path is None:
            return pn.Column(pn.pane.Alert(f"no run {name!r} here", alert_type="danger"), pn.pane.HTML('<a href="./">all runs</a>'))
        try:
            data = runs.get(path)
        except LogError as e:
            return pn.Column(pn.pane.Alert(f"{name}: {e}", alert_type="warning"), pn.pane.HTML('<a href="./">all runs</a>'))
        return run_page(data, name, back="./")

    return page


def make_server(path: str | Path | Target, host: str = "127.0.0.1", port: int = 0) -> tuple[Any, str]:
    """A Panel server for `path` (not started) and its URL. `port` 0: a free one. Raises ViewError / LogError for
    a path that is not a run, an experiment or a folder of runs; OSError when the port cannot be bound."""
    target = path if isinstance(path, Target) else open_target(path)
    runs = RunCache()
    if target.kind == "run":  # a broken run is an error now, not a broken page later
        runs.get(next(iter(target.runs.values())))
    routes: dict[str, Any] = {"/": app(target, runs), **EXTRA_ROUTES}
    # warm: the first page pays no imports
    server, _, url = net.panel_server(routes, host, port, title="agentsim view", start=False, warm=True)
    return server, url


def serve(path: str | Path | Target, host: str = "127.0.0.1", port: int = 0,
          on_ready: Callable[[str], None] = print) -> None:
    """Serve the viewer until interrupted; `on_ready(url)` is called once the port is bound (the URL has the
    actual port when `port` is 0)."""
    server, url = make_server(path, host, port)
    server.start()
    on_ready(url)
    try:
        server.io_loop.start()
    finally:
        server.stop()
