"""The "ask this agent" box under every agent's timeline: `agentsim interview` from the page.

The question goes to the agent as it stood at the scrubbed step, through its own model alias
(agentsim/interviews.py `ask`), and the answer is appended to the run's `interviews` table, as the command does.
The model answers on a worker thread, so the page (and the other sessions of the server) stay responsive while an
LLM thinks; the answer, or why there is none (a replay or human seat, nothing stored to rebuild the prompt from),
is shown under the box.
"""

from __future__ import annotations

import asyncio
import html
from typing import Any

import panel as pn

from agentsim.view.panels import AGENT_HOOKS, ViewContext


def ask_box(ctx: ViewContext, agent_id: str, step: int) -> Any:
    """A question box, its button and the answer's place, for `agent_id` at `step` (0-based, as logged)."""
    question = pn.widgets.TextInput(name=f"ask {agent_id} (as it stood at step {step})", placeholder="Why did you act as you did?",
                                    sizing_mode="stretch_width", css_classes=["agentsim-ask-q"])
    go = pn.widgets.Button(name="ask this agent", button_type="primary", width=140, css_classes=["agentsim-ask-go"])
    answer = pn.pane.HTML("", css_classes=["agentsim-ask-answer"], sizing_mode="stretch_width")

    async def on_click(_: Any) -> None:
        from agentsim.interviews import InterviewError, ask
        from agentsim.llm.types import BackendError
        from agentsim.spec.errors import SpecError

        text = question.value.strip()
        if not text:
            answer.object = '<p class="ask-error">type a question first</p>'
            return
        go.disabled = True
        answer.object = f"<p><i>asking {html.escape(agent_id)}…</i></p>"
        try:
            iv = await asyncio.to_thread(ask, ctx.data.run_dir, agent_id, text, step)
        except (InterviewError, BackendError, SpecError) as e:
            answer.object = f'<p class="ask-error">cannot ask: {html.escape(str(e))}</p>'
        except Exception as e:  # the box must not break the page; the server's log has the rest
            answer.object = f'<p class="ask-error">the interview failed: {html.escape(type(e).__name__)}: {html.escape(str(e))}</p>'
        else:
            from agentsim.analysis.labels import backend_model_label

            s = iv.seen
            who = backend_model_label({"backend": iv.backend, "model": iv.model})
            answer.object = (f'<div class="ask-done" data-step="{s.step}"><b>{html.escape(agent_id)}</b> at step {s.step} '
                             f"(rebuilt from {html.escape(s.source)}; answered by {html.escape(who)}):"
                             f'<pre style="white-space: pre-wrap">{html.escape(iv.answer)}</pre></div>')
        finally:
            go.disabled = False

    go.on_click(on_click)
    return pn.Column(pn.Row(question, go, sizing_mode="stretch_width"), answer, sizing_mode="stretch_width",
                     css_classes=["agentsim-ask"])


if ask_box not in AGENT_HOOKS:
    AGENT_HOOKS.append(ask_box)
