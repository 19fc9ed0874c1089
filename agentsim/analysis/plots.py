"""Plot helpers shared by the analyses: matplotlib `Figure` objects, never pyplot's global state.

Figures are made with `matplotlib.figure.Figure` and saved with `Figure.savefig`, so no function here selects a
backend (`matplotlib.use`) or registers a figure with pyplot: in a notebook, the inline backend keeps drawing every
later figure, and a figure drawn here is shown with `display(fig)` (or as a cell's last value). A caller that
passes `ax` (a notebook cell's axes) gets its own axes drawn on and nothing saved.

Honest uncertainty (`band_plot`): every line's legend entry gives n (the runs, arms or conversations behind each
point: `n=3`, or `n=1-3 per point`); a line whose points all rest on one
observation says `n=1, no CI` and has no band (not a zero-width one); a band is drawn only over points with n >= 2
(an error bar at a lone one); points on n=1 or on at most half the line's largest n are marked `n=k` (once per run
of points with the same k);
a line is broken, not drawn across, at a step without data; the interval method is the legend's title.

Nothing to show, one rule: a figure with nothing to show is not drawn. The plotting function raises
`NothingToShow` with the reason; `draw` (used by the analyses' `--out` plots) catches it and puts
"<file> not drawn: <reason>" on the table behind the figure, so it reaches `<analysis>_notes.csv` and stderr.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Resolution of the PNGs written by `--out` (print quality).
DPI = 300
#: The formats `save` writes beside a figure's PNG: `figure_formats("png", "pdf")` adds a PDF of each (`--out` with
#: `AGENTSIM_FIGURE_FORMATS=png,pdf`, or `with figure_formats(...)` in Python).
_FORMATS: list[tuple[str, ...]] = []

#: Okabe & Ito's colour-blind-safe palette ("Color Universal Design", 2008), black last: blue, orange, bluish green,
#: vermillion, reddish purple, sky blue, yellow, black.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
#: After the 8 colours, keys repeat them with another line style and marker (told apart without colour too), and line
#: figures with more keys than colours also label each line at its end (`label_ends`).
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def styles(keys: Any) -> dict[Any, dict[str, Any]]:
    """A fixed colour (and line style, marker) per key: the keys in sorted order take the palette's colours in turn,
    so the same models (or arms) get the same colours in every figure of an analysis, whatever each figure shows.
    Returns {key: {"color", "linestyle", "marker"}}."""
    out = {}
    for i, k in enumerate(sorted(set(keys), key=str)):
        out[k] = {"color": PALETTE[i % len(PALETTE)], "linestyle": LINESTYLES[(i // len(PALETTE)) % len(LINESTYLES)],
                  "marker": MARKERS[(i // len(PALETTE)) % len(MARKERS)]}
    return out


def label_ends(ax: Any, fontsize: float = 6.5) -> int:
    """Label each labelled line of `ax` at its last finite point, just right of the axes, in the line's colour, the
    labels spread apart so that none overlaps (a line told apart by name where colours repeat: more keys than
    `PALETTE` has colours). The text is the legend label up to " (" (without the n). Returns the labels placed."""
    from matplotlib.transforms import blended_transform_factory

    ends = []
    for line in ax.get_lines():
        label = str(line.get_label())
        if label.startswith("_"):
            continue
        xs, ys = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        ok = np.isfinite(xs) & np.isfinite(ys)
        if ok.any():
            ends.append((float(ys[ok][-1]), label.split(" (")[0], line.get_color()))
    if not ends:
        return 0
    ends.sort()
    lo, hi = ax.get_ylim()
    height_pt = ax.get_position().height * ax.figure.get_figheight() * 72
    gap = abs(hi - lo) * fontsize * 1.25 / max(height_pt, 1.0) * (1 if hi >= lo else -1)
    placed: list[float] = []
    for y, _, _ in ends:  # push each label up from the one below it, then centre the stack on the ends' span
        placed.append(y if not placed or (y - placed[-1]) * np.sign(gap) >= abs(gap) else placed[-1] + gap)
    shift = (placed[-1] - ends[-1][0]) / 2 if placed[-1] != ends[-1][0] else 0.0
    trans = blended_transform_factory(ax.transAxes, ax.transData)
    for (y, text, color), yl in zip(ends, placed, strict=True):
        ax.annotate(text, xy=(1.0, y), xycoords=trans, xytext=(1.02, yl - shift), textcoords=trans, fontsize=fontsize,
                    color=color, va="center", annotation_clip=False,
                    arrowprops={"arrowstyle": "-", "color": color, "lw": 0.4, "shrinkA": 0, "shrinkB": 0})
    return len(ends)


def formats() -> tuple[str, ...]:
    """The formats `save` writes: the innermost `figure_formats`, else AGENTSIM_FIGURE_FORMATS (comma-separated),
    else PNG only."""
    import os

    if _FORMATS:
        return _FORMATS[-1]
    env = [f.strip().lower().lstrip(".") for f in os.environ.get("AGENTSIM_FIGURE_FORMATS", "").split(",") if f.strip()]
    return tuple(env) or ("png",)


class figure_formats:  # noqa: N801 - used as a context manager, like a function
    """`with figure_formats("png", "pdf"):` every figure saved inside also gets a file per format (same stem)."""

    def __init__(self, *fmts: str):
        self.fmts = tuple(f.lower().lstrip(".") for f in fmts) or ("png",)

    def __enter__(self) -> figure_formats:
        _FORMATS.append(self.fmts)
        return self

    def __exit__(self, *exc: Any) -> None:
        _FORMATS.pop()


class NothingToShow(ValueError):
    """A figure has nothing to show; the message says why. Nothing was drawn or written."""


def new_figure(figsize: tuple[float, float] = (7, 4), nrows: int = 1, ncols: int = 1, **subplots: Any) -> tuple[Any, Any]:
    """A `Figure` (no pyplot, no backend chosen) and its axes (one Axes, or an array as `Figure.subplots` gives)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(nrows, ncols, **subplots)


def own_axes(ax: Any, figsize: tuple[float, float] = (5, 4)) -> tuple[Any, bool]:
    """The axes to draw on: the caller's (a notebook cell's), or those of a new `Figure`; and whether it is ours."""
    if ax is not None:
        return ax, False
    return new_figure(figsize)[1], True


def fit_titles(fig: Any) -> None:
    """Wrap the figure's suptitle and each axes' title onto more lines where one is wider than the room it has (the
    figure's width; for an axes title, twice the distance from the axes' centre to the nearer figure edge, since
    it is centred there): a title of long scenario and model names is never cut off at the figure's edges."""
    import textwrap

    # the layout engine places the axes (no output, and the figure's canvas, maybe a caller's GUI one, is kept);
    # titles are measured where they will be drawn
    fig.draw_without_rendering()
    width = fig.bbox.width
    titles = [(getattr(fig, "_suptitle", None), width * 0.98)]
    for ax in fig.axes:
        box = ax.get_window_extent()
        centre = (box.x0 + box.x1) / 2
        titles.append((ax.title, 2 * min(centre, width - centre) * 0.98))
    changed = False
    for text, room in titles:
        if text is None or not text.get_text() or room <= 0:
            continue
        wide = text.get_window_extent().width
        if wide > room:
            longest = max(len(line) for line in text.get_text().splitlines())
            chars = max(12, int(longest * room / wide))
            text.set_text("\n".join(textwrap.fill(line, chars) for line in text.get_text().splitlines()))
            changed = True
    if changed:
        fig.draw_without_rendering()  # the constrained layout makes room for the extra lines


def save(fig: Any, path: str | Path | None) -> Any:
    """Write `fig` to `path` (PNG at `DPI`, or the format of its suffix; folders created) when given, and a file of
    each other format in `formats()` beside it (`x.png` -> `x.pdf`); returns `fig`. Titles too wide for the figure
    are wrapped first (`fit_titles`)."""
    fit_titles(fig)
    if path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI)
        for fmt in formats():
            other = path.with_suffix(f".{fmt}")
            if other != path:
                fig.savefig(other, dpi=DPI)
    return fig


def save_own(ax: Any, own: bool, path: str | Path | None) -> Any:
    """Save the figure of `ax` when this module made it (never a caller's); returns the Figure."""
    return save(ax.figure, path) if own else ax.figure


def draw(plot: Callable[[], Any], path: Path, table: pd.DataFrame | None, paths: list[Path]) -> Path | None:
    """Run `plot()` (which writes `path`); if it has nothing to show, note "<file> not drawn: <why>" on `table`
    instead (agentsim.analysis.tables.note). Appends `path` to `paths` when written; returns it or None."""
    from agentsim.analysis.tables import note

    try:
        plot()
    except NothingToShow as e:
        if table is not None:
            note(table, f"figure {path.name} not drawn: {e}")
        return None
    paths.append(path)
    return path


def _n_label(n: np.ndarray) -> str:
    n = n[~np.isnan(n)].astype(int)
    if not n.size:
        return ""
    lo, hi = int(n.min()), int(n.max())
    if hi <= 1:
        return "n=1, no CI"
    return f"n={hi}" if lo == hi else f"n={lo}-{hi} per point"


def _gapped(g: pd.DataFrame, x: str) -> pd.DataFrame:
    """`g` sorted by `x`; with whole-number steps, the steps without a row inserted as NaN so the line breaks there."""
    g = g.sort_values(x)
    xs = pd.to_numeric(g[x], errors="coerce")
    if len(g) < 2 or xs.isna().any() or not np.allclose(xs, np.round(xs)):
        return g
    full = np.arange(int(xs.min()), int(xs.max()) + 1)
    if len(full) == len(g):
        return g
    return g.set_index(xs.astype(int).to_numpy()).reindex(full).rename_axis(None).assign(**{x: full})


def _band(ax: Any, xs: np.ndarray, lo: np.ndarray, hi: np.ndarray, ok: np.ndarray, color: Any) -> None:
    """The interval over the points where `ok`: a band over each run of 2 or more consecutive points, an error bar
    at a point alone (a band there would have zero width)."""
    i = 0
    while i < len(ok):
        if not ok[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(ok) and ok[j + 1]:
            j += 1
        if j > i:
            ax.fill_between(xs[i : j + 1], lo[i : j + 1], hi[i : j + 1], alpha=0.2, color=color, lw=0)
        else:
            mid = (lo[i] + hi[i]) / 2
            ax.errorbar([xs[i]], [mid], yerr=[[mid - lo[i]], [hi[i] - mid]], fmt="none", ecolor=color, alpha=0.5, capsize=3)
        i = j + 1


def band_plot(
    df: pd.DataFrame, x: str, y: str, group: str, path: str | Path | None = None, *, low: str | None = "ci_low",
    high: str | None = "ci_high", n: str | None = None, interval: str = "95% CI", xlabel: str = "", ylabel: str = "",
    title: str = "", ylim: tuple[float, float] | None = None, marker: str = "o", ax: Any = None,
    integer_x: bool = True, colors: dict[Any, dict[str, Any]] | None = None,
) -> Any:
    """One line per `group` over `x`, with its interval band (`low`/`high`) where the point rests on n >= 2
    (column `n`: observations per point; without it every point counts as n >= 2 when it has an interval).
    Legend entries say n (`_n_label`); the legend's title names the interval method (`interval`). Steps without a
    row break the line. Each group's colour is `colors[group]` (`styles`; default: `styles` of this table's groups).
    Returns the Figure (saved to `path` when given).

    Raises NothingToShow when `df` is empty, lacks the columns, or has no finite `y`."""
    missing = [c for c in (x, y, group) if c not in df.columns]
    if df.empty or missing or not np.isfinite(pd.to_numeric(df[y], errors="coerce")).any():
        from agentsim.analysis.tables import notes_of

        why = "; ".join(notes_of(df)[:2]) or ("no rows" if df.empty else f"no column {missing}" if missing else f"no values of {y}")
        raise NothingToShow(why)
    ax, own = own_axes(ax, (7, 4))
    banded = False
    colors = colors or styles(df[group].dropna().unique())
    for key, g in df.groupby(group, sort=True):
        g = _gapped(g, x)
        counts = pd.to_numeric(g[n], errors="coerce").to_numpy(float) if n and n in g else None
        label = str(key)
        if counts is not None and _n_label(counts):
            label += f" ({_n_label(counts)})"
        st = colors.get(key, {})
        line, = ax.plot(g[x], g[y], marker=marker, ms=4, label=label, color=st.get("color"), linestyle=st.get("linestyle", "-"))
        if low and high and low in g and high in g:
            ok = np.isfinite(pd.to_numeric(g[low], errors="coerce").to_numpy(float))
            if counts is not None:
                ok &= np.nan_to_num(counts) >= 2
            if ok.any():
                _band(ax, g[x].to_numpy(float), g[low].to_numpy(float), g[high].to_numpy(float), ok, line.get_color())
                banded = True
        if counts is not None and np.nanmax(counts, initial=0) > 1:
            top = np.nanmax(counts)
            shown = None  # one label per run of equal n along the line: where n changes, not at every point
            for xv, yv, c in zip(g[x], g[y], counts, strict=True):
                if np.isfinite(c) and (c < 2 or c <= top / 2) and np.isfinite(yv):  # the points resting on little
                    if c != shown:
                        ax.annotate(f"n={int(c)}", (xv, yv), textcoords="offset points", xytext=(0, 5), fontsize=6,
                                    ha="center", color=line.get_color())
                    shown = c
                else:
                    shown = None
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    if integer_x:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        ax.set_title(title, fontsize=10)
    if ylim:
        ax.set_ylim(*ylim)
    if len(colors) > len(PALETTE):
        label_ends(ax)
    ax.legend(fontsize=8, title=f"bands: {interval}" if banded else ("no interval bands" if low and high else None),
              title_fontsize=8)
    return save_own(ax, own, path)
