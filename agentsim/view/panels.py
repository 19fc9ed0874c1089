"""The panels every run page has, and the pieces family views build theirs from.

- `ViewContext`: what a panel reads (the run's `RunData`) and what it follows: the step scrubber and a `tick` that
  goes up whenever the page takes a newer snapshot of the log. `ctx.live(fn)` redraws `fn(step)` on either.
- `table` / `figure`: a capped DataFrame as an HTML table (numbers formatted as the terminal's tables,
  agentsim/analysis/display.py) and a matplotlib Figure as a PNG.
- The common panels: `status_panel`, `per_step_panel`, `agents_panel`, `links_panel`.

Hooks for the parts other modules add (human seats, interviews):
- `seat_link(run_dir, seat)`: the URL of a human seat's page while the run serves it, listed in the links area.
- `AGENT_HOOKS`: callables (ctx, agent_id, step) -> Panel object, drawn under an agent's timeline (the
  "ask this agent" box goes here).
"""

from __future__ import annotations

import html
import json
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import panel as pn
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from agentsim.analysis.display import column_formatter, header
from agentsim.analysis.tables import notes_of
from agentsim.view.data import MAX_ROWS, MAX_TIMELINE, RunData

log = logging.getLogger("agentsim.view")


@dataclass
class ViewContext:
    """One page session's view of one run: `data` (shared by the sessions of the run), `step` (the scrubber: the
    last step shown, as logged, 0-based) and `tick` (bumped on each newer snapshot). `run_name` names the run in
    URLs (an experiment's page opens `?run=<run_name>`)."""

    data: RunData
    step: pn.widgets.IntSlider
    tick: pn.widgets.IntInput
    run_name: str

    def live(self, fn: Callable[[int], Any], name: str = "panel") -> Any:
        """A Panel object showing `fn(step)`, redrawn when the scrubber moves or the log grows. An error while
        drawing shows as a message in its place (and its traceback in the server's log), not as a broken page."""

        def draw(step: int, tick: int) -> Any:
            try:
                return fn(step)
            except Exception as e:  # one panel's failure must not take the page down
                log.warning("view: %s failed at step %s:\n%s", name, step, traceback.format_exc())
                return pn.pane.Alert(f"{name}: could not draw this panel ({type(e).__name__}: {e})", alert_type="warning")

        # lazy: a panel in a tab not opened yet is not drawn (the page's Tabs are dynamic) until it is opened.
        return pn.param.ParamFunction(pn.bind(draw, step=self.step, tick=self.tick), lazy=True)


# -- building blocks ----------------------------------------------------------------------------------------------
def table_html(df: pd.DataFrame, name: str, max_rows: int = MAX_ROWS, tail: bool = False) -> str:
    """`df` as an HTML table (class agentsim-table, data-name=`name`; each cell has data-col=<column>), at most
    `max_rows` rows (the last ones with `tail`), numbers formatted as in the terminal, cells escaped; a cut table
    says how many rows are not shown, and the table's notes (agentsim.analysis.tables.note) follow it."""
    shown = df.tail(max_rows) if tail else df.head(max_rows)
    fmts = [column_formatter(df.iloc[:, i]) for i in range(df.shape[1])]
    head = "".join(f"<th>{html.escape(header(c))}</th>" for c in df.columns)
    rows = []
    for row in shown.itertuples(index=False):
        cells = "".join(f'<td data-col="{html.escape(str(c))}">{html.escape(f(v))}</td>'
                        for c, f, v in zip(df.columns, fmts, row, strict=True))
        rows.append(f"<tr>{cells}</tr>")
    out = (f'<table class="agentsim-table" data-name="{html.escape(name)}" data-rows="{len(df)}">'
           f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    if len(shown) < len(df):
        which = "last" if tail else "first"
        out += f'<p class="agentsim-more">{len(df) - len(shown)} more rows ({which} {len(shown)} of {len(df)} shown)</p>'
    for n in notes_of(df):
        out += f'<p class="agentsim-note">note: {html.escape(n)}</p>'
    return out


TABLE_CSS = """
table.agentsim-table { border-collapse: collapse; font-size: 12px; font-family: monospace; }
table.agentsim-table th, table.agentsim-table td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
table.agentsim-table th { background: #f4f4f4; }
p.agentsim-note, p.agentsim-more { font-size: 11px; color: #666; margin: 2px 0; }
details.agentsim-call { border: 1px solid #ddd; border-radius: 4px; margin: 4px 0; padding: 4px 8px; font-size: 12px; }
details.agentsim-call.invalid { border-color: #d9534f; }
details.agentsim-call pre { white-space: pre-wrap; max-height: 240px; overflow: auto; background: #f8f8f8; padding: 4px; }
"""


def table(df: pd.DataFrame, name: str, title: str = "", max_rows: int = MAX_ROWS, tail: bool = False) -> Any:
    """A titled HTML table pane of `df` (see `table_html`)."""
    body = (f"<h4>{html.escape(title)}</h4>" if title else "") + table_html(df, name, max_rows, tail)
    return pn.pane.HTML(body, stylesheets=[TABLE_CSS], sizing_mode="stretch_width")


def figure(fig: Figure, width: int = 640) -> Any:
    """A matplotlib Figure (matplotlib.figure.Figure, not pyplot: nothing global per session) as a PNG pane."""
    return pn.pane.Matplotlib(fig, dpi=96, tight=True, format="png", width=width)


def new_figure(w: float = 6.4, h: float = 3.2) -> Figure:
    return Figure(figsize=(w, h))


def empty_note(text: str) -> Any:
    return pn.pane.HTML(f'<p class="agentsim-note">{html.escape(text)}</p>')


# -- common panels --------------------------------------------------------------------------------------------------
def status_panel(ctx: ViewContext) -> Any:
    """Run id, family, scenario, status, steps done of the scenario's steps, backends, and a progress bar."""

    def draw(_: int) -> Any:
        s = ctx.data.status()
        total = s.steps_total if s.steps_total is not None else "?"
        text = (f'<div class="agentsim-status" data-status="{html.escape(s.status)}" data-steps-done="{s.steps_done}" '
                f'data-steps-total="{total}"><b>{html.escape(s.run_id)}</b> · {html.escape(s.kind)} · '
                f'{html.escape(s.scenario)} · status <b class="status">{html.escape(s.status)}</b> · '
                f'steps <b class="steps-done">{s.steps_done}</b> of {total} · backend {html.escape(s.backends)}</div>')
        bar = pn.indicators.Progress(value=int(round(100 * s.fraction)), max=100, width=300,
                                     bar_color="success" if s.status == "completed" else "info")
        return pn.Column(pn.pane.HTML(text, sizing_mode="stretch_width"), bar)

    return ctx.live(draw, "status")


def per_step_panel(ctx: ViewContext) -> Any:
    """Calls, tokens, invalid answers and prefix-cache hit rate per step (RunData.per_step), drawn with the scrubbed
    step marked, and as a table."""

    def draw(step: int) -> Any:
        df = ctx.data.per_step()
        if df.empty:
            return empty_note("no step has completed yet")
        fig = new_figure(9, 4.2)
        axes = fig.subplots(2, 2, sharex=True)
        specs = [("llm_calls", "LLM calls"), ("completion_tokens", "completion tokens"), ("invalid", "invalid answers"),
                 ("prefix_cache_hit_rate", "prefix-cache hit rate")]
        for ax, (col, label) in zip(axes.flat, specs, strict=True):
            ax.plot(df["step"], df[col], marker="o", ms=3)
            ax.axvline(step, color="#d9534f", lw=1, ls="--")
            ax.set_title(label, fontsize=9)
            ax.tick_params(labelsize=8)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[1, 0].set_xlabel("step", fontsize=8)
        axes[1, 1].set_xlabel("step", fontsize=8)
        return pn.Column(figure(fig, 760), table(df, "per-step", "Per step (the runtime's counts)", max_rows=200, tail=True))

    return ctx.live(draw, "per-step counts")


def _call_html(c: dict[str, Any]) -> str:
    esc = html.escape
    state = "valid" if c["valid"] else "invalid"
    acts = c["actions"]
    summary = (f'step {c["step"]} · {esc(str(c["phase"]))} · attempt {c["attempt"]} · <span class="{state}">{state}</span>'
               f' · {len(acts)} event{"s" if len(acts) != 1 else ""} · {c["prompt_tokens"]}+{c["completion_tokens"]} tokens')
    parts = [f'<summary>{summary}</summary>']
    if c["observation"] is not None:
        parts.append(f'<div><b>observation</b> (the prompt\'s last message)<pre class="observation">{esc(c["observation"])}</pre></div>')
        parts.append(f'<details><summary>whole prompt</summary><pre class="prompt">{esc(c["prompt"] or "")}</pre></details>')
    else:
        parts.append('<div class="agentsim-note">observation: prompts not recorded (logging.record_prompts: false)</div>')
    if c["reasoning"]:
        parts.append(f'<div><b>private reasoning</b><pre class="reasoning">{esc(c["reasoning"])}</pre></div>')
    if acts:
        items = "".join(f'<li class="action">{esc(str(a["action"]))}' + (f' → {esc(str(a["target"]))}' if a["target"] is not None else "")
                        + (f' <small>{esc(_short_payload(a["payload"]))}</small>' if a["payload"] else "") + "</li>" for a in acts)
        parts.append(f"<div><b>answer applied as</b><ul>{items}</ul></div>")
    if c["invalid"] or c["error"]:
        parts.append(f'<div class="invalid-reason"><b>refused</b>: {esc(str(c["invalid"] or c["error"]))}</div>')
    parts.append(f'<div><b>raw text</b> ({esc(str(c["backend"]))})<pre class="answer">{esc(c["answer"] or "")}</pre></div>')
    return f'<details class="agentsim-call {state}" data-step="{c["step"]}">' + "".join(parts) + "</details>"


def _short_payload(payload: Any, limit: int = 200) -> str:
    try:
        d = json.loads(payload)
    except (TypeError, ValueError):
        return str(payload)[:limit]
    text = json.dumps(d, ensure_ascii=False) if not isinstance(d, dict) else ", ".join(f"{k}: {v}" for k, v in d.items())
    return text if len(text) <= limit else text[:limit] + " …"


def timeline_html(calls: list[dict[str, Any]], agent: str, step: int) -> str:
    if not calls:
        return f'<p class="agentsim-note">{html.escape(agent)} made no LLM call up to step {step}</p>'
    head = (f'<p class="agentsim-note">{html.escape(agent)}: the latest {len(calls)} call(s) up to step {step}, newest first'
            + (f" (at most {MAX_TIMELINE})" if len(calls) >= MAX_TIMELINE else "") + "</p>")
    body = "".join(_call_html(c) for c in calls)
    # The newest call open, the rest folded.
    body = body.replace('<details class="agentsim-call', '<details open class="agentsim-call', 1)
    return f'<div class="agentsim-timeline" data-agent="{html.escape(agent)}">{head}{body}</div>'


#: (ctx, agent_id, step) -> Panel object, drawn under the agent's timeline (the interview box is wired in here).
AGENT_HOOKS: list[Callable[[ViewContext, str, int], Any]] = []


def agents_panel(ctx: ViewContext) -> Any:
    """Pick an agent (the 500 with the most calls, or type any id) and see its timeline up to the scrubbed step:
    observations, answers with their private reasoning, what was applied, refusals and the raw text."""
    agents = ctx.data.agents()
    options = [str(a) for a in agents["agent_id"]]
    pick = pn.widgets.Select(label="agent", options=options, value=options[0] if options else None, width=220)
    typed = pn.widgets.TextInput(label="or any agent id", placeholder="agent id", width=220)
    total = ctx.data.agent_count()
    shown = (f"{len(options)} of {total} agents listed (most LLM calls first); type any other id"
             if total > len(options) else f"{len(options)} agents")

    def draw(step: int, agent: str | None, other: str) -> Any:
        who = other.strip() or agent
        if not who:
            return empty_note("no agents in this run yet")
        if other.strip() and not ctx.data.has_agent(who):
            return empty_note(f"no agent {who!r} in this run")
        items = [pn.pane.HTML(timeline_html(ctx.data.timeline(who, step), who, step), stylesheets=[TABLE_CSS],
                              sizing_mode="stretch_width")]
        items += [hook(ctx, who, step) for hook in AGENT_HOOKS]
        return pn.Column(*items, sizing_mode="stretch_width", css_classes=["agentsim-agent"])

    def drawn(step: int, tick: int, agent: str | None, other: str) -> Any:
        try:
            return draw(step, agent, other)
        except Exception as e:
            log.warning("view: agent timeline failed:\n%s", traceback.format_exc())
            return pn.pane.Alert(f"agent timeline: {type(e).__name__}: {e}", alert_type="warning")

    body = pn.bind(drawn, step=ctx.step, tick=ctx.tick, agent=pick, other=typed)
    return pn.Column(pn.Row(pick, typed), empty_note(shown), pn.param.ParamFunction(body, lazy=True), sizing_mode="stretch_width")


def seat_link(run_dir: Path, seat: str) -> str | None:
    """The URL of a human seat's page while the run serves it (`agentsim run` publishes it in the seat's folder,
    agentsim.llm.human.SeatQueue.link), else None."""
    from agentsim.llm.human import SeatQueue

    return SeatQueue(run_dir, seat).link()


def links_panel(ctx: ViewContext) -> Any:
    """Links area: the pages of the run's human seats, when `<run>/humans/` exists (else nothing)."""

    def draw(_: int) -> Any:
        seats = ctx.data.human_seats()
        if not seats:
            return pn.pane.HTML('<div class="agentsim-links" data-seats="0"></div>')
        items = "".join(
            f'<li><a href="{html.escape(url)}" target="_blank">{html.escape(s)}</a></li>' if (url := seat_link(ctx.data.run_dir, s))
            else f'<li>{html.escape(s)} (no page: the run is not serving this seat now)</li>' for s in seats)
        return pn.pane.HTML(f'<div class="agentsim-links" data-seats="{len(seats)}"><b>human seats</b><ul>{items}</ul></div>')

    return ctx.live(draw, "links")
