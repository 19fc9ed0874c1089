"""A simulated cascade against a real one, computed OASIS's way: scale, depth and max breadth per minute and their
normalised RMSE (Yang et al. 2024, "OASIS", information-spread alignment with Twitter15/16).

OASIS's definitions (camel-ai/oasis, `visualization/twitter_simulation/align_with_real_world/code/graph.py`, class
`prop_graph`, and `analysis_all.py`, `get_stat_list` / `get_all_xdb_data` / `plot_rmse`) are the defaults:

- the propagation graph's nodes are **users** (a user who shares twice is one node, at its first share), so
  **scale** is the number of users in the cascade, the source post's author included (`scale: users`); `events`
  counts every share instead;
- **depth** is the longest path from the source's author;
- **max breadth** is the largest number of users at one depth, the source's level excluded (`prop_graph`'s
  `last_breadth_list = [1]`; `breadth: without_root`); `with_root` counts level 0 too;
- the curves are taken every minute from the source post (minute 0), each carried at its last value to the end
  (`get_stat_list` pads to 300 minutes), and the first 150 minutes are compared (`get_all_xdb_data`); a user's
  share made during a step counts at the end of that step (posts the platform makes, like the source, at its start);
- **NRMSE** = sqrt(mean((sim - real)^2)) / max(real) (`plot_rmse`; `normalise: max`); `range` divides by
  max - min instead.

Time: simulated times are minutes since the source post (the events' sim_time; runs set `world.time.minutes_per_step`).
A reference in minutes is used as given; a reference in steps is converted with the runs' minutes_per_step (runs with
different ones cannot share such a reference: an error).

Inputs from outside (reference files, events tables) are checked: `ReferenceError` (a DataFileError) names the file,
row and field; `TableError` the table, column and rows.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentsim.analysis.cascades import cascade_nodes
from agentsim.analysis.stats import interval_notes, mean_t_interval
from agentsim.analysis.tables import TableError, check_table, empty, note
from agentsim.core.datafile import DataFileError, drop_blank_optionals, read_table, validate_rows

METRICS = ("scale", "depth", "max_breadth")


class AlignmentParams(BaseModel):
    """How a run's cascade is scored against a reference (`agentsim analyze RUN social --reference FILE --param
    KEY=VALUE`, or a scenario's `world.alignment`). Defaults are OASIS's definitions (module docstring)."""

    model_config = ConfigDict(extra="forbid")
    reference: Path | None = Field(None, description="Reference cascade: a CSV/Parquet table (minute or step, scale, depth, max_breadth) "
                                                     "or OASIS's real_world_prop_data folder (with `topic`).")
    topic: str | None = Field(None, description="With an OASIS real_world_prop_data folder: the topic (e.g. False_Business_0), whose "
                                                "real_data_<metric>/<topic>.pkl lists are read.")
    scale: Literal["users", "events"] = Field("users", description="users: unique users incl. the source's author (OASIS); events: shares + 1.")
    breadth: Literal["without_root", "with_root"] = Field("without_root", description="without_root: levels 1.. (OASIS); with_root: level 0 too.")
    normalise: Literal["max", "range"] = Field("max", description="NRMSE divided by the reference's max (OASIS) or its max - min.")
    window_minutes: int = Field(150, ge=1, le=1_000_000, description="Minutes compared from the source post (OASIS: 150).")
    cascade: Literal["source", "largest"] | int = Field(
        "source", description="Which simulated cascade: source (the run's first post), largest, or a root event id.")

    @field_validator("topic")
    @classmethod
    def _topic(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or "/" in v or "\\" in v or v.startswith(".")):
            raise ValueError(f"{v!r} is not a topic name (a file name under real_data_<metric>/, without .pkl)")
        return v

    def describe(self) -> str:
        return (f"scale = {'unique users, source author included (OASIS)' if self.scale == 'users' else 'shares + 1 (events)'}; "
                f"depth = longest path from the source; max breadth = most users at one depth, "
                f"{'source level excluded (OASIS)' if self.breadth == 'without_root' else 'source level included'}; "
                f"NRMSE = RMSE / reference {'max (OASIS)' if self.normalise == 'max' else 'range (max - min)'}; "
                f"minutes 0..{self.window_minutes - 1} from the source post, each curve carried at its last value")


class ReferenceRow(BaseModel):
    """One time point of a reference cascade (minute or step since the source post)."""

    model_config = ConfigDict(extra="forbid")
    minute: float | None = Field(None, ge=0, allow_inf_nan=False, description="Whole minutes since the source post (give minute or step).")
    step: float | None = Field(None, ge=0, allow_inf_nan=False, description="Steps since the source post, converted with the runs' minutes_per_step.")
    scale: float | None = Field(None, ge=0, allow_inf_nan=False, description="Users in the cascade by then, the source's author included.")
    depth: float | None = Field(None, ge=0, allow_inf_nan=False, description="Longest path from the source by then.")
    max_breadth: float | None = Field(None, ge=0, allow_inf_nan=False, description="Most users at one depth by then.")

    @field_validator("minute", "step")
    @classmethod
    def _whole(cls, v: float | None) -> float | None:
        if v is not None and v != int(v):
            raise ValueError(f"{v} is not a whole number (one row per whole minute or step)")
        return v


# -- the reference --------------------------------------------------------------------------------------------
class _NoGlobals(pickle.Unpickler):
    """OASIS keeps its real cascades as pickled lists of numbers; a pickle that names any class or function (the
    way code would run on loading) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"it names {module}.{name}; only plain lists of numbers are read")


def _read_pickle_list(path: Path) -> list[float]:
    try:
        value = _NoGlobals(io.BytesIO(path.read_bytes())).load()
    except FileNotFoundError:
        raise DataFileError(path, [f"{path}: file not found"]) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError) as e:
        raise DataFileError(path, [f"{path}: not an OASIS real-cascade pickle (a list of numbers): {e}"]) from None
    if not isinstance(value, list | tuple) or not value or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
        raise DataFileError(path, [f"{path}: expected a non-empty list of numbers (one per minute); got {type(value).__name__}"])
    return [float(x) for x in value]


def read_reference(params: AlignmentParams) -> tuple[str, pd.DataFrame]:
    """The reference as (unit, table): unit 'minute' or 'step', table columns t and the metrics it gives (sorted by
    t, starting at 0). Raises DataFileError naming the file, row and field."""
    path = params.reference
    assert path is not None
    if path.is_dir():
        if params.topic is None:
            raise DataFileError(path, [f"{path} is a folder: give the topic (--param topic=NAME) to read OASIS's "
                                       "real_data_<metric>/<topic>.pkl lists from it"])
        cols = {}
        for m in METRICS:
            f = path / f"real_data_{m}" / f"{params.topic}.pkl"
            if f.exists():
                cols[m] = _read_pickle_list(f)
        if not cols:
            raise DataFileError(path, [f"{path}: no real_data_<metric>/{params.topic}.pkl for any of {list(METRICS)}"])
        n = max(len(v) for v in cols.values())
        table = pd.DataFrame({"t": np.arange(n)})
        for m, v in cols.items():
            table[m] = v + [v[-1]] * (n - len(v))  # OASIS pads each list with its last value
        return "minute", table
    columns, raw = read_table(path, "reference cascade")
    problems = []
    units = [c for c in ("minute", "step") if c in columns]
    if len(units) != 1:
        problems.append(f"{path}: the reference needs exactly one time column, minute or step; it has {list(columns)}")
    given = [m for m in METRICS if m in columns]
    if not given:
        problems.append(f"{path}: the reference has none of the columns {list(METRICS)}; it has {list(columns)}")
    unknown = [c for c in columns if c not in ReferenceRow.model_fields]
    if unknown:
        problems.append(f"{path}: unknown column(s) {unknown}; a reference has minute or step, and {', '.join(METRICS)}")
    if problems:
        raise DataFileError(path, problems)
    rows = validate_rows(path, drop_blank_optionals(raw, ReferenceRow), ReferenceRow, None)
    unit = units[0]
    bad = [f"{path} row {i}: field {m}: a value is required (the column is given)" for i, r in enumerate(rows, start=1)
           for m in given if getattr(r, m) is None]
    bad += [f"{path} row {i}: field {unit}: a value is required" for i, r in enumerate(rows, start=1) if getattr(r, unit) is None]
    if bad:
        raise DataFileError(path, bad)
    table = pd.DataFrame({"t": [int(getattr(r, unit)) for r in rows], **{m: [float(getattr(r, m)) for r in rows] for m in given}})
    dup = table["t"].duplicated(keep=False)
    if dup.any():
        rows_at = (np.flatnonzero(dup.to_numpy()) + 1).tolist()
        raise DataFileError(path, [f"{path} rows {rows_at[:10]}: field {unit}: {sorted(set(table['t'][dup]))[:5]} given more than once"])
    table = table.sort_values("t").reset_index(drop=True)
    if int(table["t"].iloc[0]) != 0:
        raise DataFileError(path, [f"{path}: the reference starts at {unit} {int(table['t'].iloc[0])}; it must start at 0 (the source post)"])
    return unit, table


def reference_curve(unit: str, table: pd.DataFrame, minutes_per_step: float | None, window: int) -> pd.DataFrame:
    """The reference on minutes 0..window-1, each value carried forward from the latest time at or before it."""
    t = table["t"].to_numpy(np.float64)
    if unit == "step":
        if minutes_per_step is None:
            raise TableError("the reference is in steps, but the runs' minutes_per_step is not known; give a reference in minutes")
        t = t * minutes_per_step
    minutes = np.arange(window)
    idx = np.searchsorted(t, minutes, side="right") - 1
    out = pd.DataFrame({"minute": minutes})
    for m in METRICS:
        if m in table:
            out[m] = table[m].to_numpy(np.float64)[np.maximum(idx, 0)]
    return out


# -- the simulated curve --------------------------------------------------------------------------------------
def choose_root(nodes: pd.DataFrame, which: str | int) -> int | None:
    """The root event id of the cascade to score: the run's first post (source), the largest, or a given id."""
    roots = nodes.loc[nodes["parent"] < 0, "event_id"]
    if roots.empty:
        return None
    if which == "source":
        return int(roots.min())
    if which == "largest":
        sizes = nodes.groupby("root").size()
        return int(sizes.sort_index().idxmax())
    if int(which) not in set(roots.tolist()):
        raise TableError(f"cascade {which}: not a root event id of this run (roots: {sorted(roots.tolist())[:10]}...)")
    return int(which)


def growth_minutes(nodes: pd.DataFrame, times: pd.Series, root: int, params: AlignmentParams) -> pd.DataFrame:
    """Scale, depth and max breadth of cascade `root` on minutes 0..window-1 since its root (OASIS's definitions by
    default; `params`). `nodes` from cascade_nodes; `times` maps event_id -> sim_time (seconds)."""
    sel = nodes[nodes["root"] == root]
    t_sec = sel["event_id"].map(times).to_numpy(np.float64)
    t0 = float(times[root])
    minute = np.floor((t_sec - t0) / 60.0 + 1e-9)
    df = pd.DataFrame({"event_id": sel["event_id"].to_numpy(), "agent": sel["agent_id"].to_numpy(), "depth": sel["depth"].to_numpy(),
                       "minute": np.maximum(minute, 0)}).sort_values(["minute", "event_id"])
    if params.scale == "users":
        # prop_graph adds a node per user, at its first share (a user sharing again adds no node).
        df = df.drop_duplicates("agent", keep="first")
    w = params.window_minutes
    mins = np.arange(w)
    tm = df["minute"].to_numpy()
    scale = np.searchsorted(tm, mins, side="right").astype(np.float64)
    depth = np.zeros(w)
    levels = df["depth"].to_numpy()
    breadth = np.zeros(w)
    for d in np.unique(levels):
        if d == 0 and params.breadth == "without_root":
            continue
        at = np.sort(tm[levels == d])
        count = np.searchsorted(at, mins, side="right")
        breadth = np.maximum(breadth, count)
        depth = np.where(count > 0, np.maximum(depth, d), depth)
    return pd.DataFrame({"minute": mins, "scale": scale, "depth": depth, "max_breadth": breadth})


def nrmse(sim: np.ndarray, ref: np.ndarray, normalise: str = "max") -> float:
    """sqrt(mean((sim - ref)^2)) / max(ref) (OASIS's plot_rmse) or / (max - min); NaN when that is 0."""
    s, r = np.asarray(sim, float), np.asarray(ref, float)
    scale = r.max() if normalise == "max" else r.max() - r.min()
    if not r.size or scale == 0:
        return float("nan")
    return float(np.sqrt(np.mean((s - r) ** 2)) / scale)


def event_minutes(events: pd.DataFrame, minutes_per_step: float | None) -> pd.Series:
    """event_id -> time in seconds at which the event counts: a user's answer (an event with a request) at the end
    of its step (users act during the step, after the platform's posts at its start, which keep the step's time)."""
    t = events["sim_time"].to_numpy(np.float64).copy()
    if minutes_per_step:
        t += np.where(events["request_id"].notna().to_numpy(), 60.0 * minutes_per_step, 0.0)
    return pd.Series(t, index=events["event_id"].to_numpy())


def _minutes_per_step(log: Any) -> float | None:
    mps = ((log.meta.get("world") or {}).get("time") or {}).get("minutes_per_step")
    return float(mps) if mps is not None else None


def run_curve(log: Any, params: AlignmentParams) -> tuple[pd.DataFrame, list[str]]:
    """The chosen cascade's OASIS curves for one run, and notes."""
    ev = log.df("events", ["event_id", "step", "sim_time", "agent_id", "action", "parent_event_id", "request_id"])
    check_table(ev, "events table", {"event_id": "int", "sim_time": "number"}, nullable=[])
    nodes = cascade_nodes(ev)
    root = choose_root(nodes, params.cascade)
    if root is None:
        raise TableError(f"{log.run_dir.name}: no posts in this run, so no cascade to compare")
    times = event_minutes(ev, _minutes_per_step(log))
    curve = growth_minutes(nodes, times, root, params)
    size = int((nodes["root"] == root).sum())
    last_min = float((ev["sim_time"].max() + 60.0 * (_minutes_per_step(log) or 0.0) - times[root]) / 60.0)
    notes = [f"{log.run_dir.name}: cascade of event {root} ({params.cascade}), {size} node(s)"]
    if last_min < params.window_minutes - 1:
        notes.append(f"{log.run_dir.name}: the run ends {last_min:g} minutes after the source post; its curves are carried at their "
                     f"last values to minute {params.window_minutes - 1}, as OASIS pads them")
    return curve, notes


def alignment_tables(logs: list[Any], params: AlignmentParams) -> dict[str, pd.DataFrame]:
    """growth (mean simulated curve per minute with a t-interval over runs, and the reference), alignment (NRMSE
    per metric: of the mean curve, and the mean over runs with a t-interval) and alignment_runs (per run)."""
    curves, notes = [], [params.describe()]
    for log in logs:
        c, n = run_curve(log, params)
        curves.append(c)
        notes += n
    unit, ref_table, ref = None, None, None
    if params.reference is not None:
        unit, ref_table = read_reference(params)
        steps = {log.run_dir.name: _minutes_per_step(log) for log in logs}
        if unit == "step" and len(set(steps.values())) > 1:
            raise TableError(f"the reference is in steps, but the runs take different minutes per step ({steps}); "
                             "give a reference in minutes, or runs of one minutes_per_step")
        ref = reference_curve(unit, ref_table, next(iter(steps.values())), params.window_minutes)
    minutes = curves[0]["minute"]
    growth = pd.DataFrame({"minute": minutes, "runs": len(curves)})  # runs: n behind every point (a figure's n)
    why = []
    for m in METRICS:
        stack = np.vstack([c[m].to_numpy() for c in curves])
        growth[m] = stack.mean(axis=0)
        lows, highs, seen = [], [], set()
        for j in range(stack.shape[1]):
            _, ci = mean_t_interval(stack[:, j])
            lows.append(ci.low)
            highs.append(ci.high)
            if ci.note and ci.note not in seen:  # one note per metric and reason, not one per minute
                seen.add(ci.note)
                why.append((m, ci.note))
        growth[f"{m}_low"], growth[f"{m}_high"] = lows, highs
        if ref is not None and m in ref:
            growth[f"{m}_reference"] = ref[m].to_numpy()
    rows, per_run = [], []
    if ref is not None:
        for m in METRICS:
            if m not in ref:
                continue
            r = ref[m].to_numpy()
            scores = [nrmse(c[m].to_numpy(), r, params.normalise) for c in curves]
            per_run += [{"run": log.run_dir.name, "metric": m, "nrmse": s} for log, s in zip(logs, scores, strict=True)]
            mean, ci = mean_t_interval(np.asarray(scores))
            rows.append({"metric": m, "nrmse_mean_curve": nrmse(growth[m].to_numpy(), r, params.normalise), "nrmse_mean": mean,
                         "low": ci.low, "high": ci.high, "runs": len(curves)})
            if ci.note:
                notes.append(f"{m}: NRMSE interval over runs {ci.note}")
            if np.isnan(scores).all():
                notes.append(f"{m}: the reference's {'max' if params.normalise == 'max' else 'range'} is 0, so NRMSE is undefined")
        missing = [m for m in METRICS if m not in ref]
        if missing:
            notes.append(f"the reference gives no {', '.join(missing)}")
        notes.append(f"reference: {params.reference}" + (f" (topic {params.topic})" if params.topic else "")
                     + f", in {unit}s" + (" (converted with the runs' minutes_per_step)" if unit == "step" else ""))
    note(growth, *interval_notes("per-minute t-interval over runs", why), *notes)
    if ref is None:
        alignment = empty(["metric", "nrmse_mean_curve", "nrmse_mean", "low", "high", "runs"],
                          "no reference given: --reference FILE (or the scenario's world.alignment.reference) scores the curves")
        runs_table = empty(["run", "metric", "nrmse"], "no reference given")
    else:
        alignment = note(pd.DataFrame(rows, columns=["metric", "nrmse_mean_curve", "nrmse_mean", "low", "high", "runs"]), *notes)
        runs_table = pd.DataFrame(per_run, columns=["run", "metric", "nrmse"])
    return {"growth": growth, "alignment": alignment, "alignment_runs": runs_table}


def params_from(log: Any, given: dict[str, Any] | None = None) -> AlignmentParams:
    """The run's scenario alignment settings (world.alignment, if any), overridden by `given` (the command line)."""
    world = (log.meta.get("world") or {}).get("alignment") or {}
    merged = {k: v for k, v in world.items() if v is not None}
    merged.update({k: v for k, v in (given or {}).items() if v is not None})
    return AlignmentParams.model_validate(merged)

