"""The drift family's panel in `agentsim view`: D_t per arm and turn with the turns where reminders were given
marked, and constraint satisfaction per turn, up to the scrubbed step. Tables are agentsim.analysis.drift's
(turns_table, curves, satisfaction, kl_available)."""

from __future__ import annotations

from typing import Any

import panel as pn
from matplotlib.ticker import MaxNLocator

from agentsim.analysis.drift import curves, kl_available, satisfaction, turns_table
from agentsim.view.panels import ViewContext, empty_note, figure, new_figure, table


def build(ctx: ViewContext) -> Any:
    data = ctx.data

    def turns(step: int) -> Any:
        ev = data.sql("SELECT step, action, target, payload FROM events WHERE action = 'turn' AND step <= ?", [int(step)])
        if ev.empty:
            return empty_note(f"no turns up to step {step}")
        t = turns_table(ev)
        ok, why = kl_available(t)
        parts = []
        reminders = t[t["reminder"]].groupby("arm")["turn"].unique()
        if ok:
            c = curves(t, "d_mc")
            fig = new_figure(7, 3.4)
            ax = fig.subplots()
            for arm, g in c.groupby("arm"):
                line, = ax.plot(g["turn"], g["d_mc_mean"], marker="o", ms=3, label=arm)
                for r in reminders.get(arm, []):
                    ax.axvline(r, color=line.get_color(), ls=":", lw=1)
            ax.set_xlabel("turn")
            ax.set_ylabel("D_t (nats/token)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title("Drift D_t per arm (dotted: reminder given before that turn's reply)", fontsize=9)
            ax.legend(fontsize=7)
            parts += [figure(fig, 640), table(c, "drift-curves", "D_t per arm and turn (analysis.drift.curves)")]
        else:
            parts.append(empty_note(f"D_t unavailable: {why}"))
        marks = t[t["reminder"]][["arm", "conversation", "turn"]]
        parts.append(table(marks, "reminders", f"Reminders up to step {step}", max_rows=100))
        parts.append(table(satisfaction(t), "satisfaction", "Constraint satisfaction per arm and turn (analysis.drift)"))
        return pn.Column(*parts)

    return pn.Column(ctx.live(turns, "drift"), sizing_mode="stretch_width")
