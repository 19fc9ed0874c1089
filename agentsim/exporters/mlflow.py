"""`agentsim export RUN_OR_EXPERIMENT --to mlflow`: runs as MLflow runs, for researchers who track experiments there.

One agentsim run becomes one MLflow run (named after its run id, tagged `agentsim.run_id`):
- params: the scenario as dotted paths (`world.max_actions_per_day`, `models.default.model`, ...), the seed, and for
  a cell of an experiment its varied parameters; MLflow keeps at most 6,000 characters of a value
  (`mlflow.utils.validation.MAX_PARAM_VAL_LENGTH`), so longer ones (a persona, a day-0 text) are cut with "...";
- per-step metrics: the run's `metrics` table (run-level rows; per-agent rows are summed per step under the same
  name, so a million agents do not become a million series), and from `llm_calls` per step: `llm/calls`,
  `llm/invalid`, `llm/prompt_tokens`, `llm/completion_tokens`, `llm/latency_s_mean`; MLflow's step is agentsim's step;
- final metrics: `steps_completed`, and the LLM totals;
- tags: status, family (`kind`), scenario name, schema version, agentsim version, the run directory;
- artifacts: the run directory (run.json, Parquet parts, checkpoints), unless `artifacts=False`.

An experiment directory becomes an MLflow parent run (named after it) with one nested run per cell. The tracking
store is MLflow's own choice (`MLFLOW_TRACKING_URI`; MLflow 3 defaults to `sqlite:///mlflow.db` in the working
directory) unless `tracking_uri` is given. A run already exported to the same MLflow experiment is skipped unless
`force` (then it is exported again as a new MLflow run).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

#: MLflow's own limit on a parameter value (mlflow/utils/validation.py MAX_PARAM_VAL_LENGTH).
MAX_PARAM_CHARS = 6000
#: Metrics per MLflow log_batch call (mlflow/utils/validation.py MAX_METRICS_PER_BATCH).
BATCH = 1000


class ExportError(Exception):
    """An export that cannot be done; the message says why (the CLI prints it, exit 2)."""


@dataclass(frozen=True)
class Exported:
    run_dir: Path
    mlflow_run_id: str
    skipped: bool  # already exported (and not forced)
    metrics: int  # metric values logged


def flat_params(tree: Any, prefix: str = "") -> dict[str, str]:
    """A nested spec as {dotted path: text}: lists by index (`world.groups.0.share`), values as JSON (strings
    as themselves), cut to MLflow's limit."""
    out: dict[str, str] = {}
    if isinstance(tree, dict) and tree:
        for k, v in tree.items():
            out.update(flat_params(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(tree, list) and tree and len(tree) <= 100:
        for i, v in enumerate(tree):
            out.update(flat_params(v, f"{prefix}.{i}"))
    elif prefix:
        text = tree if isinstance(tree, str) else json.dumps(tree, sort_keys=True, default=str)
        out[prefix] = text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 3] + "..."
    return out


def step_metrics(log: Any) -> pd.DataFrame:
    """(key, step, value) of a run: its metrics table (per-agent rows summed per step and name) and the LLM calls
    per step. Non-finite values are left out (MLflow refuses NaN in some stores)."""
    frames = []
    m = log.df("metrics", ["step", "metric", "value"])
    if len(m):
        frames.append(m.groupby(["metric", "step"], as_index=False)["value"].sum().rename(columns={"metric": "key"}))
    calls = log.df("llm_calls", ["step", "valid", "prompt_tokens", "completion_tokens", "latency_s"])
    if len(calls):
        g = calls.groupby("step")
        per = pd.DataFrame({"llm/calls": g.size(), "llm/invalid": g["valid"].apply(lambda v: int((~v.astype(bool)).sum())),
                            "llm/prompt_tokens": g["prompt_tokens"].sum(), "llm/completion_tokens": g["completion_tokens"].sum(),
                            "llm/latency_s_mean": g["latency_s"].mean()})
        frames.append(per.reset_index().melt(id_vars="step", var_name="key", value_name="value"))
    if not frames:
        return pd.DataFrame(columns=["key", "step", "value"])
    out = pd.concat(frames, ignore_index=True)[["key", "step", "value"]]
    out["value"] = out["value"].astype(float)
    return out[out["value"].map(lambda v: v == v and abs(v) != float("inf"))].reset_index(drop=True)


def _client(tracking_uri: str | None) -> Any:
    try:
        import mlflow
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ExportError("the MLflow exporter needs mlflow: pip install 'agentsim[mlflow]'") from None
    # MLflow and alembic announce database set-up at INFO on first use: not the user's business here.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # A tracking server that does not answer is said in seconds, not after MLflow's minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    uri = tracking_uri or mlflow.get_tracking_uri()
    try:
        return MlflowClient(tracking_uri=uri), uri
    except Exception as e:  # an unknown scheme, a store that cannot be opened
        raise ExportError(f"--tracking-uri {uri}: {type(e).__name__}: {e}") from None


def _experiment_id(client: Any, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    return exp.experiment_id if exp is not None else client.create_experiment(name)


def _find_by_tag(client: Any, experiment_id: str, tag: str, value: str) -> Any | None:
    """The first MLflow run of the experiment whose tag `tag` is `value`, or None. The value is quoted with the
    quote it does not contain (a directory named with an apostrophe)."""
    quote = '"' if "'" in value else "'"
    found = client.search_runs([experiment_id], filter_string=f"tags.`{tag}` = {quote}{value}{quote}", max_results=1)
    return found[0] if found else None


def export_run(log: Any, client: Any, experiment_id: str, *, extra_params: dict[str, Any] | None = None,
               parent: str | None = None, artifacts: bool = True, force: bool = False) -> Exported:
    """One agentsim run (a RunLog) as one MLflow run in `experiment_id` (see the module docstring)."""
    from mlflow.entities import Metric, Param
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

    import agentsim

    meta = log.meta
    if not force:
        done = _find_by_tag(client, experiment_id, "agentsim.run_id", log.run_id)
        if done is not None:
            return Exported(log.run_dir, done.info.run_id, True, 0)
    tags = {MLFLOW_RUN_NAME: log.run_id, "agentsim.run_id": log.run_id, "agentsim.status": str(meta.get("status")),
            "agentsim.family": str(log.spec.get("kind")), "agentsim.scenario": str(log.spec.get("name")),
            "agentsim.schema_version": str(meta.get("schema_version")), "agentsim.version": agentsim.__version__,
            "agentsim.run_dir": str(Path(log.run_dir).resolve())}
    if parent:
        tags[MLFLOW_PARENT_RUN_ID] = parent
    run = client.create_run(experiment_id, tags=tags)
    rid = run.info.run_id
    params = flat_params(log.spec)
    params["seed"] = str(meta.get("seed", log.spec.get("seed")))
    for k, v in (extra_params or {}).items():
        params[f"cell.{k}"] = v if isinstance(v, str) else json.dumps(v, default=str)
    items = [Param(k, v) for k, v in sorted(params.items())]
    for i in range(0, len(items), 100):  # MLflow's MAX_PARAMS_TAGS_PER_BATCH
        client.log_batch(rid, params=items[i : i + 100])
    series = step_metrics(log)
    now = int(pd.Timestamp.now().timestamp() * 1000)
    metrics = [Metric(k, float(v), now, int(s)) for k, s, v in series.itertuples(index=False)]
    last = int(series["step"].max()) if len(series) else 0
    totals = {"steps_completed": float(log.complete_steps)}
    calls = series[series["key"].str.startswith("llm/") & (series["key"] != "llm/latency_s_mean")]
    totals.update({f"{k}_total": float(v) for k, v in calls.groupby("key")["value"].sum().items()})
    metrics += [Metric(k, v, now, last) for k, v in totals.items()]
    for i in range(0, len(metrics), BATCH):
        client.log_batch(rid, metrics=metrics[i : i + BATCH])
    if artifacts:
        client.log_artifacts(rid, str(log.run_dir), artifact_path="run")
    status = "FINISHED" if meta.get("status") == "completed" else "KILLED" if meta.get("status") == "interrupted" else "FAILED"
    client.set_terminated(rid, status=status)
    return Exported(log.run_dir, rid, False, len(metrics))


def export(path: str | Path, *, tracking_uri: str | None = None, experiment: str | None = None,
           artifacts: bool = True, force: bool = False) -> list[Exported]:
    """Export a run directory, a directory of runs, or an experiment directory to MLflow (module docstring).
    `experiment`: the MLflow experiment's name (default: the agentsim experiment's name, or `agentsim`).

    Raises ExportError (mlflow missing) and agentsim.logs.reader.LogError / experiments' ManifestError (not a run
    or experiment directory, a damaged log) with messages naming the path."""

    path = Path(path)
    client, uri = _client(tracking_uri)
    try:
        return _export(path, client, experiment, artifacts, force)
    except ExportError:
        raise
    except Exception as e:
        from mlflow.exceptions import MlflowException

        if isinstance(e, MlflowException | OSError) or type(e).__module__.startswith(("requests", "urllib3")):
            raise ExportError(f"MLflow at {uri}: {type(e).__name__}: {e}") from None
        raise


def _export(path: Path, client: Any, experiment: str | None, artifacts: bool, force: bool) -> list[Exported]:
    from agentsim.logs.reader import RunLog, find_runs

    if (path / "experiment.json").exists():
        from agentsim.experiments.load import load_experiment

        exp = load_experiment(path)
        experiment_id = _experiment_id(client, experiment or exp.name)
        where = str(Path(exp.exp_dir).resolve())
        # One parent run per experiment directory: a second export adds its cells to the first one's parent.
        parent = _find_by_tag(client, experiment_id, "agentsim.experiment", where) or client.create_run(
            experiment_id, tags={"mlflow.runName": Path(exp.exp_dir).name, "agentsim.experiment": where})
        out = []
        for _, row in exp.cells.iterrows():
            if not Path(row["run_dir"]).exists():
                continue  # a cell that never started
            out.append(export_run(RunLog(row["run_dir"]), client, experiment_id, parent=parent.info.run_id, artifacts=artifacts,
                                  force=force, extra_params={"base": row["base"], **{p: row[p] for p in exp.params}}))
        client.set_terminated(parent.info.run_id)
        return out
    experiment_id = _experiment_id(client, experiment or "agentsim")
    return [export_run(RunLog(run), client, experiment_id, artifacts=artifacts, force=force) for run in find_runs(path)]
