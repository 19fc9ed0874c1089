"""Plot helpers shared by the analyses (matplotlib, headless).

No data, one rule: a plot of an empty table is still written, as a figure that says "no data" and why
(`no_data`), so a report folder always has the same files and a reader sees the reason where the plot would be."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd


def band_plot(
    df: pd.DataFrame, x: str, y: str, group: str, path: str | Path, *, low: str | None = "ci_low", high: str | None = "ci_high",
    xlabel: str = "", ylabel: str = "", title: str = "", ylim: tuple[float, float] | None = None, marker: str = "o",
) -> Path:
    """One line per group, with its interval band when `low`/`high` are given; saved as PNG. An empty `df` (or
    one without the columns) gives a "no data" figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    if df.empty or not {x, y, group} <= set(df.columns):
        from agentsim.analysis.tables import notes_of

        no_data(ax, title or f"{y} by {group}", "\n".join(notes_of(df)[:2]))
        return _save(fig, path)
    for key, g in df.groupby(group):
        ax.plot(g[x], g[y], marker=marker, label=str(key))
        if low and high:
            ax.fill_between(g[x], g[low], g[high], alpha=0.2)
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    if title:
        ax.set_title(title)
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def no_data(ax: Any, what: str, why: str = "") -> Any:
    """Mark `ax` as a plot with nothing to show: "no data" and what/why in the middle, no ticks."""
    ax.text(0.5, 0.5, f"no data\n{what}" + (f"\n{why}" if why else ""), ha="center", va="center", transform=ax.transAxes,
            fontsize=11, color="0.35", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def own_axes(ax: Any, path: str | Path | None, figsize: tuple[float, float] = (5, 4)) -> tuple[Any, bool]:
    """The axes to draw on: the caller's (a notebook cell), or a new figure, headless when it goes to a file."""
    if ax is not None:
        return ax, False
    import matplotlib

    if path:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)[1], True


def save_own(ax: Any, own: bool, path: str | Path | None) -> Any:
    """Save and close a figure this module made (never the caller's)."""
    if own and path:
        import matplotlib.pyplot as plt

        ax.figure.tight_layout()
        ax.figure.savefig(path, dpi=120)
        plt.close(ax.figure)
    return ax
